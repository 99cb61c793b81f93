package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/tools/load/internal/ledger"
)

// adminTimeout bounds one admin API request.
const adminTimeout = 10 * time.Second

// planGroup makes members <prefix>g0 … g<M-1> of the room through the
// admin API; g0 sends, on the first gateway, and the others, spread over
// every gateway, receive.
func planGroup(ctx context.Context, c Config) (*plan, error) {
	users := make([]string, c.Members)
	for i := range users {
		users[i] = c.UserPrefix + "g" + strconv.Itoa(i)
	}
	roomID, err := addMembers(ctx, c, users)
	if err != nil {
		return nil, err
	}
	pl := &plan{fanout: c.Members - 1, l: ledger.New(1, c.Members-1)}
	streams := map[string]int{users[0]: 0}
	for i, u := range users {
		p := &peer{user: u, gw: c.Gateways[i%len(c.Gateways)]}
		pl.peers = append(pl.peers, p)
		if i == 0 {
			pl.senders = append(pl.senders, newSender(p, 0, protocol.TypeGroup, roomID, c, pl.l))
			continue
		}
		pl.receivers = append(pl.receivers, &receiver{p: p, l: pl.l, streams: streams, seen: map[int]map[int]struct{}{}})
	}
	return pl, nil
}

// addMembers puts every user in the room, c.Parallel requests at a time,
// and returns the room's ID as the server spells it (!room@server).
func addMembers(ctx context.Context, c Config, users []string) (string, error) {
	hc := &http.Client{Timeout: adminTimeout}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		roomID string
		errs   []error
	)
	sem := make(chan struct{}, c.Parallel)
	for _, u := range users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id, err := putMember(ctx, hc, c, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && len(errs) < 10 {
				errs = append(errs, err)
			}
			if id != "" {
				roomID = id
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if roomID == "" {
		return "", errors.New("add members: the admin API named no room")
	}
	return roomID, nil
}

func putMember(ctx context.Context, hc *http.Client, c Config, user string) (string, error) {
	u := c.AdminURL.JoinPath("v1", "groups", c.Room, "members", user)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("add member %s: %w", user, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("add member %s: %w", user, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("add member %s: %w", user, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("add member %s: %s: %s", user, resp.Status, body)
	}
	var out struct {
		Room string `json:"room"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("add member %s: %w", user, err)
	}
	return out.Room, nil
}
