package adminapi

import (
	"context"
	"net/http"

	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/natsx"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
)

// Publisher sends a NATS message; *nats.Conn satisfies it.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// deleteConnections kicks a user: presence tells which gateways hold the
// user's connections (?device= narrows it to one device), and each of
// those gets a Kick on its own subject and closes them with 1008
// "kicked". The token stays valid: a client that must stay out needs its
// token to expire, since it may reconnect.
func (a *api) deleteConnections(w http.ResponseWriter, r *http.Request) {
	user, ok := a.entityParam(r, "user", entity.KindUser)
	if !ok {
		writeError(w, http.StatusBadRequest, 0, "user: want a username or user ID @<user>@<server>")
		return
	}
	device := r.URL.Query().Get("device")
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Presence.Query(ctx, &presencev1.QueryRequest{Users: []string{user}})
	if err != nil {
		a.serviceError(ctx, w, "presence query", err)
		return
	}
	gateways := make(map[string]bool)
	devices := 0
	for _, u := range resp.GetUsers() {
		for _, d := range u.GetDevices() {
			if device == "" || d.GetDevice() == device {
				gateways[d.GetGatewayId()] = true
				devices++
			}
		}
	}
	payload, err := proto.Marshal(&eventsv1.Kick{User: user, Device: device})
	if err != nil {
		writeError(w, http.StatusInternalServerError, 0, "encode kick")
		return
	}
	subjects := natsx.Subjects{Prefix: a.o.NATSPrefix}
	for gw := range gateways {
		if err := a.o.NATS.Publish(subjects.GatewayKick(gw), payload); err != nil {
			a.serviceError(ctx, w, "publish kick", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "devices": devices, "gateways": len(gateways)})
}
