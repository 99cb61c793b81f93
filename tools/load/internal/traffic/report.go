package traffic

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/hist"
	"github.com/bachata-chat/bachata/tools/load/internal/ledger"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

// Report is one run's outcome, printed for people or as JSON.
type Report struct {
	Scenario string   `json:"scenario"`
	Gateways []string `json:"gateways"`
	Pairs    int      `json:"pairs,omitempty"`
	Members  int      `json:"members,omitempty"`
	Size     int      `json:"size"`
	Window   int      `json:"window"`
	Rate     float64  `json:"rate,omitempty"`

	// Connect is how long opening every connection took.
	Connect time.Duration `json:"connect_ns"`
	// SendWindow is how long the senders sent; DrainWait how long the
	// wait for the outcomes took after.
	SendWindow time.Duration `json:"send_window_ns"`
	DrainWait  time.Duration `json:"drain_ns"`

	ledger.Totals

	// AcceptedPerSec and DeliveredPerSec are the 100s and the fully
	// delivered messages within the send window, per second of it.
	AcceptedPerSec  float64 `json:"accepted_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`

	// Latency from the send of a message: to its 100, to its (first)
	// delivery, to its 300, and for a group to its last member.
	Accept     hist.Summary  `json:"send_to_100"`
	Deliver    hist.Summary  `json:"send_to_deliver"`
	Receipt    hist.Summary  `json:"send_to_300"`
	FanoutLast *hist.Summary `json:"send_to_last_member,omitempty"`
	// Member is send → each member's delivery, for a group.
	Member *hist.Summary `json:"send_to_each_member,omitempty"`

	// ConnEnds counts connections the server ended during the run, by
	// close code.
	ConnEnds map[string]int64 `json:"connections_ended,omitempty"`

	// ClientCPU is this process's CPU time from the first send to the end
	// of the drain, ClientCores the cores it kept busy on average, and
	// ClientCPUPerMsg per delivered message.
	ClientCPU       time.Duration `json:"client_cpu_ns"`
	ClientCores     float64       `json:"client_cores"`
	ClientCPUPerMsg time.Duration `json:"client_cpu_per_msg_ns"`
	// ServerCPU is the -server-pids processes' CPU time over the same
	// span, and ServerCPUPerMsg per delivered message.
	ServerCPU       time.Duration `json:"server_cpu_ns,omitempty"`
	ServerCPUPerMsg time.Duration `json:"server_cpu_per_msg_ns,omitempty"`
}

func newReport(c Config, t ledger.Totals, lat *ledger.Latencies) *Report {
	r := &Report{
		Scenario: c.Scenario, Pairs: c.Pairs, Members: c.Members,
		Size: c.Size, Window: c.Window, Rate: c.Rate, Totals: t,
		Accept: lat.Accept.Summary(), Deliver: lat.Deliver.Summary(), Receipt: lat.Receipt.Summary(),
	}
	for _, g := range c.Gateways {
		r.Gateways = append(r.Gateways, g.String())
	}
	if c.Scenario == "group" {
		s, m := lat.FanoutLast.Summary(), lat.Member.Summary()
		r.FanoutLast, r.Member = &s, &m
	}
	return r
}

func (r *Report) setThroughput() {
	if s := r.SendWindow.Seconds(); s > 0 {
		r.AcceptedPerSec = float64(r.AcceptedInWindow) / s
		r.DeliveredPerSec = float64(r.DeliveredInWindow) / s
	}
}

func (r *Report) setCPU(client, span, server time.Duration, haveServer bool) {
	r.ClientCPU = client
	if span > 0 {
		r.ClientCores = client.Seconds() / span.Seconds()
	}
	if r.Delivered > 0 {
		r.ClientCPUPerMsg = client / time.Duration(r.Delivered)
	}
	if haveServer {
		r.ServerCPU = server
		if r.Delivered > 0 {
			r.ServerCPUPerMsg = server / time.Duration(r.Delivered)
		}
	}
}

// Write prints the report, as indented JSON when asJSON is set.
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if asJSON {
		return usage.WriteJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(tw, format+"\n", a...) }
	shape := fmt.Sprintf("%d pairs", r.Pairs)
	if r.Scenario == "group" {
		shape = fmt.Sprintf("room of %d members", r.Members)
	}
	pace := "unpaced"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced at %g/s", r.Rate)
	}
	p("%s: %s, %d B, window %d, %s, %d gateway(s)", r.Scenario, shape, r.Size, r.Window, pace, len(r.Gateways))
	p("connect\t%s", r.Connect.Round(time.Millisecond))
	p("send window\t%s\tdrain %s", r.SendWindow.Round(time.Millisecond), r.DrainWait.Round(time.Millisecond))
	p("sent\t%d", r.Sent)
	p("100s\t%d\t%.0f/s", r.Accepted, r.AcceptedPerSec)
	p("delivered (unique)\t%d\t%.0f/s", r.Delivered, r.DeliveredPerSec)
	p("deliveries\t%d\tduplicates %d", r.Deliveries, r.Duplicates)
	p("300s\t%d\tduplicate 300s %d, delivered without 300 %d", r.Receipts, r.DupReceipts, r.NoReceipt)
	p("lost\t%d\tpartially delivered %d", r.Lost, r.Partial)
	p("unanswered\t%d", r.Unanswered)
	p("errors\t%d\t%s", r.Failed, codes(r.Errors))
	if r.Unknown > 0 {
		p("unknown frames\t%d", r.Unknown)
	}
	if len(r.ConnEnds) > 0 {
		p("connections ended\t%s", codes(r.ConnEnds))
	}
	p("latency\tp50\tp90\tp99\tp99.9\tmax\tcount")
	row := func(name string, s hist.Summary) {
		p("%s\t%s\t%s\t%s\t%s\t%s\t%d", name, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max), s.Count)
	}
	row("  send→100", r.Accept)
	row("  send→deliver", r.Deliver)
	if r.FanoutLast != nil {
		row("  send→each member", *r.Member)
		row("  send→last member", *r.FanoutLast)
	}
	row("  send→300", r.Receipt)
	p("client CPU\t%s\t%.2f cores, %s per delivered message", r.ClientCPU, r.ClientCores, r.ClientCPUPerMsg)
	if r.ServerCPU > 0 {
		p("server CPU\t%s\t%s per delivered message", r.ServerCPU, r.ServerCPUPerMsg)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func codes(m map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s×%d", k, m[k])
	}
	return b.String()
}
