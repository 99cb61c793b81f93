package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dashboardFile is the Grafana dashboard operators import.
var dashboardFile = filepath.Join("..", "deploy", "grafana", "bachata.json")

// dashboard is the part of Grafana's dashboard JSON the test reads.
type dashboard struct {
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// metricName matches the suite's metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\bbachata_[a-z0-9_]+\b`)

// TestDashboardQueriesOnlyRegisteredMetrics runs the suite, sends some
// traffic (a message with its ack and 300, a bad frame, an unknown type, a
// closed connection) so that every labelled series exists, scrapes
// /metrics of every service, and checks that each PromQL expression of the
// Grafana dashboard names only metrics some service exports: a renamed
// metric fails here, not on an operator's empty panel.
func TestDashboardQueriesOnlyRegisteredMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	require.Equal(t, "Bachata", d.Title)
	require.True(t, hasDatasourceVariable(d), "a Prometheus datasource variable named datasource")

	var exprs []string
	rows := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				rows[p.Title] = true
				walk(p.Panels)
				continue
			}
			require.NotNil(t, p.Datasource, "panel %q has no datasource", p.Title)
			require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q must use the datasource variable", p.Title)
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %q has an empty query", p.Title)
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, r := range []string{"Traffic", "Latency", "Queues", "Connections", "Errors"} {
		require.True(t, rows[r], "row %q", r)
	}

	e := startSuite(t, 1)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(0), token(t, secret, "bob"), "laptop")
	alice.direct("m1", "bob", "hi")
	alice.expectTransport(100, "m1")
	bob.expectMessage("m1")
	bob.ack("m1")
	alice.expectTransport(300, "m1")
	alice.sendRaw(`not json`)
	alice.next()
	alice.send(map[string]any{"id": "m2", "type": "no.such.type", "dest": "bob", "data": map[string]string{}})
	alice.next()
	bob.close()

	var exported map[string]bool
	deadline := time.Now().Add(20 * time.Second)
	for {
		exported = scrapeAll(t, e)
		// The shard gauges are sampled by the shard owners, and the 300's
		// ack latency observed after the ack: wait for both.
		if exported["bachata_delivery_in_flight"] && exported["bachata_delivery_ack_latency_seconds_count"] && exported["bachata_gateway_closes_total"] {
			break
		}
		require.True(t, time.Now().Before(deadline), "metrics never appeared; have %v", keys(exported))
		time.Sleep(100 * time.Millisecond)
	}
	var missing []string
	for _, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !exported[name] {
				missing = append(missing, name+" (in "+expr+")")
			}
		}
	}
	require.Empty(t, missing, "the dashboard queries metrics no service exports")
}

func hasDatasourceVariable(d dashboard) bool {
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			return true
		}
	}
	return false
}

// scrapeAll returns the sample names every instance of the suite exports.
func scrapeAll(t *testing.T, e *env) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, in := range e.suite.Instances() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.HTTPAddr+"/metrics", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err, in.Name)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if i := strings.IndexAny(line, "{ "); i > 0 {
				out[line[:i]] = true
			}
		}
		require.NoError(t, sc.Err())
		_ = resp.Body.Close()
		cancel()
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if strings.HasPrefix(k, "bachata_") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
