package adminapi

import (
	"context"
	"net/http"

	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/entity"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
)

// Presence is the part of the presence service the API calls;
// presencev1.PresenceServiceClient satisfies it.
type Presence interface {
	Query(ctx context.Context, in *presencev1.QueryRequest, opts ...grpc.CallOption) (*presencev1.QueryResponse, error)
}

// presenceDevice is one connected device in a presence answer.
type presenceDevice struct {
	Device  string `json:"device"`
	Gateway string `json:"gateway"`
	Since   int64  `json:"since"`
}

// presenceAnswer is what GET /v1/presence/{user} answers.
type presenceAnswer struct {
	User     string           `json:"user"`
	Online   bool             `json:"online"`
	LastSeen int64            `json:"lastSeen,omitempty"`
	Devices  []presenceDevice `json:"devices"`
}

// getPresence answers whether a user is online, on which devices and
// gateways since when (Unix ms), and when last seen if offline.
func (a *api) getPresence(w http.ResponseWriter, r *http.Request) {
	user, ok := a.entityParam(r, "user", entity.KindUser)
	if !ok {
		writeError(w, http.StatusBadRequest, 0, "user: want a username or user ID @<user>@<server>")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Presence.Query(ctx, &presencev1.QueryRequest{Users: []string{user}})
	if err != nil {
		a.serviceError(ctx, w, "presence query", err)
		return
	}
	out := presenceAnswer{User: user, Devices: []presenceDevice{}}
	if us := resp.GetUsers(); len(us) == 1 {
		u := us[0]
		out.Online = u.GetStatus() == presencev1.Status_STATUS_ONLINE
		out.LastSeen = u.GetLastSeenMs()
		for _, d := range u.GetDevices() {
			out.Devices = append(out.Devices, presenceDevice{Device: d.GetDevice(), Gateway: d.GetGatewayId(), Since: d.GetSinceMs()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
