package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/tools/load/internal/client"
	"github.com/bachata-chat/bachata/tools/load/internal/ledger"
	"github.com/bachata-chat/bachata/tools/load/internal/probe"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

// settlePoll is how often the drain checks the ledger.
const settlePoll = 20 * time.Millisecond

// plan is the peers of a run and who sends to whom.
type plan struct {
	senders   []*sender
	receivers []*receiver
	peers     []*peer
	fanout    int
	l         *ledger.Ledger
}

// planDirect pairs sender i with receiver i; with several gateways the
// receiver sits on the next gateway after its sender's.
func planDirect(c Config) *plan {
	pl := &plan{fanout: 1, l: ledger.New(c.Pairs, 1)}
	n := len(c.Gateways)
	for i := range c.Pairs {
		s := &peer{user: c.UserPrefix + "s" + strconv.Itoa(i), gw: c.Gateways[i%n]}
		r := &peer{user: c.UserPrefix + "r" + strconv.Itoa(i), gw: c.Gateways[(i+1)%n]}
		pl.peers = append(pl.peers, r, s)
		pl.senders = append(pl.senders, newSender(s, i, protocol.TypeDirect, r.user, c, pl.l))
		pl.receivers = append(pl.receivers, &receiver{p: r, l: pl.l, streams: map[string]int{s.user: i}})
	}
	return pl
}

// Run runs the scenario and writes its report to out.
func Run(ctx context.Context, c Config, out io.Writer) (*Report, error) {
	var pl *plan
	switch c.Scenario {
	case "direct":
		pl = planDirect(c)
	case "group":
		var err error
		if pl, err = planGroup(ctx, c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown scenario %q", usage.ErrUsage, c.Scenario)
	}
	connStart := time.Now()
	if err := connectAll(ctx, c, pl.peers); err != nil {
		return nil, err
	}
	connected := time.Since(connStart)
	defer closeAll(pl.peers)

	var (
		readers sync.WaitGroup
		ended   ends
	)
	for _, r := range pl.receivers {
		readers.Go(func() { ended.add(r.p.conn.RunFunc(&discard, r.onText, r.flush)) })
	}
	for _, s := range pl.senders {
		readers.Go(func() { ended.add(s.p.conn.RunFunc(&discard, s.onText, nil)) })
	}

	cpu0, _ := probe.CPU(0)
	srv0 := serverCPU(c.ServerPIDs)
	start := time.Now()
	sendCtx, cancel := context.WithTimeout(ctx, c.Duration)
	var (
		writers sync.WaitGroup
		sendErr error
		errMu   sync.Mutex
	)
	var interval time.Duration
	if c.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(len(pl.senders)) / c.Rate)
	}
	for i, s := range pl.senders {
		first := start
		if interval > 0 {
			first = start.Add(interval * time.Duration(i) / time.Duration(len(pl.senders)))
		}
		writers.Go(func() {
			if err := s.send(sendCtx, first, interval); err != nil {
				errMu.Lock()
				sendErr = errors.Join(sendErr, fmt.Errorf("sender %s: %w", s.p.user, err))
				errMu.Unlock()
			}
		})
	}
	writers.Wait()
	cancel()
	windowEnd := time.Now()

	drainCtx, stop := context.WithTimeout(ctx, c.Drain)
	tick := time.NewTicker(settlePoll)
	for !pl.l.Settled(true) {
		select {
		case <-drainCtx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	tick.Stop()
	stop()
	end := time.Now()
	cpu1, _ := probe.CPU(0)
	srv1 := serverCPU(c.ServerPIDs)

	closeAll(pl.peers)
	readers.Wait()

	tot, lat := pl.l.Tally(windowEnd)
	rep := newReport(c, tot, lat)
	rep.Connect = connected
	rep.SendWindow = windowEnd.Sub(start)
	rep.DrainWait = end.Sub(windowEnd)
	rep.ConnEnds = ended.snapshot()
	rep.setThroughput()
	rep.setCPU(cpu1-cpu0, end.Sub(start), srv1-srv0, len(c.ServerPIDs) > 0)
	if err := rep.Write(out, c.JSON); err != nil {
		return rep, err
	}
	if sendErr != nil {
		return rep, sendErr
	}
	return rep, ctx.Err()
}

// discard takes the client's frame counts, which the ledger supersedes.
var discard client.Stats

func serverCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		d, err := probe.CPU(pid)
		if err == nil {
			total += d
		}
	}
	return total
}
