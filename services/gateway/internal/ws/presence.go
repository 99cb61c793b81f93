package ws

import (
	"errors"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/services/gateway/internal/presencewatch"
)

// kindPresence labels presence events in the frame metrics.
const kindPresence = "presence"

// PresenceChanged implements presencewatch.Subscriber: the event is
// queued to the socket (never blocking the watcher). A connection too slow
// to take it is closed with 1013 like for any frame; presence events are
// not stored, and a client that reconnects subscribes again and gets the
// current state.
func (c *client) PresenceChanged(st presencewatch.State) {
	c.send(protocol.AppendPresence(nil, st.User, st.Online, st.LastSeenMs), kindPresence, nil)
}

// presenceRequest handles presence.subscribe and presence.unsubscribe on
// the gateway: the subscriptions belong to this connection and end with
// it (a client subscribes again after reconnecting, on any gateway). A
// subscribe is answered by the current state of each user, an unsubscribe
// by nothing; a bad request by an error reply.
func (c *client) presenceRequest(m *protocol.DataMessage) {
	s := c.srv
	raw, err := protocol.ParsePresenceUsers(m.Data)
	if err != nil {
		c.replyError(protocol.AsError(err).For(m.ID, m.Type))
		return
	}
	users := make([]string, len(raw))
	for i, u := range raw {
		id, err := entity.ResolveUser(u, s.opts.ServerName)
		if err != nil {
			c.replyError(protocol.Errorf(protocol.CodeInvalidPresence, "user %d: %v", i, err).For(m.ID, m.Type))
			return
		}
		users[i] = id.String()
	}
	if m.Type == protocol.TypePresenceUnsubscribe {
		s.opts.Presence.Unsubscribe(c, users)
		return
	}
	ctx, cancel := s.rpcContext()
	defer cancel()
	err = s.opts.Presence.Subscribe(ctx, c, users)
	switch {
	case err == nil:
	case errors.Is(err, presencewatch.ErrTooMany):
		c.replyError(protocol.NewError(protocol.CodeTooManySubscriptions).For(m.ID, m.Type))
	default:
		s.log.WarnContext(ctx, "presence subscribe failed", c.attrs("id", m.ID, "err", err)...)
		c.replyError(protocol.NewError(protocol.CodeUnavailable).For(m.ID, m.Type))
	}
}
