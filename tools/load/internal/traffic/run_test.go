package traffic

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

const testSecret = "traffic-test-secret-sixteen"

func parse(t *testing.T, scenario string, args ...string) Config {
	t.Helper()
	c, err := ParseFlags(scenario, args, func(string) string { return "" }, &bytes.Buffer{})
	require.NoError(t, err)
	return c
}

func TestDirectAccountsForEveryMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "unpaced", args: []string{"-pairs", "8", "-window", "16"}},
		{name: "paced", args: []string{"-pairs", "4", "-rate", "400"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := startFake(t, testSecret)
			args := append([]string{"-gateways", url + "," + url, "-secret", testSecret, "-duration", "300ms", "-drain", "5s", "-json"}, tc.args...)
			c := parse(t, "direct", args...)
			var out bytes.Buffer
			rep, err := Run(t.Context(), c, &out)
			require.NoError(t, err)
			require.Positive(t, rep.Sent)
			senders := int64(c.Pairs)
			require.Equal(t, map[string]int64{"4290": senders}, rep.Errors, "m5 of each sender is refused")
			require.Equal(t, rep.Sent-senders, rep.Accepted)
			require.Equal(t, rep.Accepted, rep.Delivered)
			require.Equal(t, rep.Accepted, rep.Receipts)
			require.Zero(t, rep.Lost)
			require.Zero(t, rep.Duplicates)
			require.Zero(t, rep.Unanswered)
			require.Zero(t, rep.Unknown)
			require.Equal(t, uint64(rep.Delivered), rep.Deliver.Count)
			require.Positive(t, rep.DeliveredPerSec)
			if c.Rate > 0 {
				// 400/s for 300 ms, give or take the first tick of each sender.
				require.InDelta(t, 120, rep.Sent, 12)
			}
			var back Report
			require.NoError(t, json.Unmarshal(out.Bytes(), &back))
			require.Equal(t, rep.Delivered, back.Delivered)
		})
	}
}

func TestGroupAccountsForEveryMember(t *testing.T) {
	t.Parallel()
	_, url := startFake(t, testSecret)
	c := parse(t, "group", "-gateways", url+","+url, "-admin", strings.TrimSuffix(strings.Replace(url, "ws:", "http:", 1), "/ws"),
		"-admin-token", fakeAdminToken, "-secret", testSecret, "-members", "20", "-window", "4", "-duration", "300ms")
	var out bytes.Buffer
	rep, err := Run(t.Context(), c, &out)
	require.NoError(t, err, out.String())
	require.Equal(t, map[string]int64{"4290": 1}, rep.Errors)
	require.Equal(t, rep.Sent-1, rep.Accepted)
	require.Equal(t, rep.Accepted, rep.Delivered)
	require.Equal(t, rep.Accepted*19, rep.Deliveries, "each to 19 members")
	require.Zero(t, rep.Lost)
	require.Zero(t, rep.Duplicates)
	require.Equal(t, rep.Accepted, rep.Receipts)
	require.Equal(t, uint64(rep.Deliveries), rep.Member.Count)
	require.Equal(t, uint64(rep.Delivered), rep.FanoutLast.Count)
	require.Contains(t, out.String(), "send→last member")
}

func TestHumanReport(t *testing.T) {
	t.Parallel()
	_, url := startFake(t, testSecret)
	c := parse(t, "direct", "-gateways", url, "-secret", testSecret, "-pairs", "2", "-duration", "100ms")
	var out bytes.Buffer
	_, err := Run(t.Context(), c, &out)
	require.NoError(t, err)
	for _, want := range []string{"delivered (unique)", "lost", "send→deliver", "send→300", "errors", "4290×2", "client CPU"} {
		require.Contains(t, out.String(), want)
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "remote gateway", args: []string{"-gateways", "ws://10.0.0.1:8080/ws", "-secret", testSecret}},
		{name: "no secret", args: []string{}},
		{name: "zero pairs", args: []string{"-pairs", "0", "-secret", testSecret}},
		{name: "zero window", args: []string{"-window", "0", "-secret", testSecret}},
		{name: "huge frame", args: []string{"-size", "70000", "-secret", testSecret}},
		{name: "bad pid", args: []string{"-server-pids", "x", "-secret", testSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFlags("direct", tc.args, func(string) string { return "" }, &bytes.Buffer{})
			require.ErrorIs(t, err, usage.ErrUsage)
		})
	}
	c, err := ParseFlags("direct", nil, func(k string) string { return map[string]string{"BACHATA_JWT_SECRET": testSecret}[k] }, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 200, c.Pairs)
	require.Equal(t, 64, c.Window)
	require.Equal(t, 20*time.Second, c.Duration)
}
