package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/tools/load/internal/client"
	"github.com/bachata-chat/bachata/tools/load/internal/ledger"
	"github.com/bachata-chat/bachata/tools/load/internal/token"
)

// readBuffer is each connection's read buffer: many frames per read.
const readBuffer = 32 << 10

// maxBatch bounds the messages a sender writes in one system call.
const maxBatch = 64

// peer is one user's connection.
type peer struct {
	user string
	gw   *url.URL
	conn *client.Conn
}

// connectAll opens every peer, at most parallel at a time; on any failure
// it closes what it opened and returns the errors.
func connectAll(ctx context.Context, c Config, peers []*peer) error {
	m, err := token.NewMinter(c.Secret, c.Duration+c.Drain+time.Hour)
	if err != nil {
		return fmt.Errorf("token minter: %w", err)
	}
	sem := make(chan struct{}, c.Parallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range peers {
		tok, err := m.Mint(p.user)
		if err != nil {
			return err
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
			defer cancel()
			conn, err := client.Dial(cctx, client.Options{URL: p.gw, Token: tok, ReadBuffer: readBuffer})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if len(errs) < 10 {
					errs = append(errs, fmt.Errorf("connect %s: %w", p.user, err))
				}
				return
			}
			p.conn = conn
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		closeAll(peers)
		return errors.Join(errs...)
	}
	return nil
}

func closeAll(peers []*peer) {
	for _, p := range peers {
		if p.conn != nil {
			_ = p.conn.Close()
		}
	}
}

// ends counts how connections ended before the run closed them.
type ends struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *ends) add(err error) {
	if errors.Is(err, client.ErrClosedHere) {
		return
	}
	key := "read error"
	var ce *client.CloseError
	if errors.As(err, &ce) {
		key = "close " + strconv.Itoa(int(ce.Code))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[key]++
}

func (e *ends) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// idPrefix starts every message id; the rest is the sequence number in
// the sender's stream.
const idPrefix = "m"

func parseSeq(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, idPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// appendMessage appends a data message frame's JSON: id m<seq>, the given
// type and dest, data {"text": pad}.
func appendMessage(dst []byte, seq int, typ, dest string, pad []byte) []byte {
	dst = append(dst, `{"id":"`+idPrefix...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, `","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","dest":"`...)
	dst = append(dst, dest...)
	dst = append(dst, `","data":{"text":"`...)
	dst = append(dst, pad...)
	return append(dst, `"}}`...)
}

// sender writes one stream of messages and reads their answers.
type sender struct {
	p      *peer
	stream int
	typ    string
	dest   string
	pad    []byte
	l      *ledger.Ledger
	// window holds a token per message without an answer.
	window chan struct{}
}

func newSender(p *peer, stream int, typ, dest string, c Config, l *ledger.Ledger) *sender {
	return &sender{p: p, stream: stream, typ: typ, dest: dest, pad: []byte(strings.Repeat("x", c.Size)), l: l, window: make(chan struct{}, c.Window)}
}

func (s *sender) release() {
	select {
	case <-s.window:
	default:
	}
}

// onText handles a frame to the sender: 100, 300 or an error reply.
func (s *sender) onText(p []byte) {
	now := time.Now()
	f, err := protocol.Decode(p)
	if err != nil {
		s.l.Unknown()
		return
	}
	switch m := f.(type) {
	case *protocol.TransportMessage:
		seq, ok := parseSeq(m.Data)
		switch {
		case !ok:
			s.l.Unknown()
		case m.Type == protocol.TransportReceived:
			if s.l.Accepted(s.stream, seq, now) {
				s.release()
			}
		case m.Type == protocol.TransportDelivered:
			s.l.Receipt(s.stream, seq, now)
		default:
			s.l.Unknown()
		}
	case *protocol.DataMessage:
		seq, ok := parseSeq(m.ID)
		if !ok || !strings.HasSuffix(m.Type, protocol.ErrorSuffix) {
			s.l.Unknown()
			return
		}
		var e struct {
			Code int `json:"errCode"`
		}
		_ = json.Unmarshal(m.Data, &e)
		if s.l.Failed(s.stream, seq, e.Code, now) {
			s.release()
		}
	}
}

// send writes messages until ctx ends: as many at once as the window
// allows when interval is 0, else one every interval from first on.
func (s *sender) send(ctx context.Context, first time.Time, interval time.Duration) error {
	buf := make([]byte, 0, maxBatch*(len(s.pad)+128))
	var scratch []byte
	var timer *time.Timer
	if interval > 0 {
		timer = time.NewTimer(time.Until(first))
		defer timer.Stop()
	}
	for k := 1; ; k++ {
		if timer != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
			timer.Reset(time.Until(first.Add(time.Duration(k) * interval)))
		}
		select {
		case <-ctx.Done():
			return nil
		case s.window <- struct{}{}:
		}
		n := 1
	more:
		for timer == nil && n < maxBatch {
			select {
			case s.window <- struct{}{}:
				n++
			default:
				break more
			}
		}
		buf = buf[:0]
		now := time.Now()
		for range n {
			seq := s.l.Sent(s.stream, now)
			scratch = appendMessage(scratch[:0], seq, s.typ, s.dest, s.pad)
			buf = client.AppendText(buf, scratch)
		}
		if err := s.p.conn.WriteBatch(buf); err != nil {
			return err
		}
	}
}

// receiver acks everything it gets, in one write per read.
type receiver struct {
	p    *peer
	l    *ledger.Ledger
	acks []byte
	// streams maps a sender's username to its stream.
	streams map[string]int
	// seen holds each stream's sequence numbers already received, when
	// duplicates must be told apart per member (group); nil otherwise.
	seen map[int]map[int]struct{}
}

func (r *receiver) onText(p []byte) {
	now := time.Now()
	f, err := protocol.Decode(p)
	if err != nil {
		r.l.Unknown()
		return
	}
	m, ok := f.(*protocol.DataMessage)
	if !ok {
		r.l.Unknown()
		return
	}
	r.acks = client.AppendText(r.acks, protocol.AppendTransport(nil, &protocol.TransportMessage{Type: protocol.TransportAck, Data: m.ID}))
	seq, ok1 := parseSeq(m.ID)
	stream, ok2 := r.streams[userOf(m.From)]
	if !ok1 || !ok2 {
		r.l.Unknown()
		return
	}
	dup := false
	if r.seen != nil {
		s := r.seen[stream]
		if s == nil {
			s = make(map[int]struct{})
			r.seen[stream] = s
		}
		_, dup = s[seq]
		s[seq] = struct{}{}
	}
	r.l.Delivered(stream, seq, now, dup)
}

// flush writes the acks gathered since the last one.
func (r *receiver) flush() error {
	if len(r.acks) == 0 {
		return nil
	}
	err := r.p.conn.WriteBatch(r.acks)
	r.acks = r.acks[:0]
	return err
}

// userOf returns the username of an entity ID @user@server.
func userOf(id string) string {
	rest, ok := strings.CutPrefix(id, "@")
	if !ok {
		return ""
	}
	user, _, _ := strings.Cut(rest, "@")
	return user
}
