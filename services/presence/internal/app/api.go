package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	"github.com/bachata-chat/bachata/services/presence/internal/lease"
)

// api is PresenceService over gRPC: it translates requests for the tracker
// and maps its errors to status codes, here and nowhere else.
type api struct {
	presencev1.UnimplementedPresenceServiceServer
	tracker *lease.Tracker
}

func connection(d *commonv1.DeviceRef, gateway, id string) lease.Connection {
	return lease.Connection{User: d.GetUser(), Device: d.GetDevice(), Gateway: gateway, ID: id}
}

// Connect opens the device's session, then records it as online on a
// gateway. The session comes first so a failure there publishes no
// presence change.
func (s *api) Connect(ctx context.Context, req *presencev1.ConnectRequest) (*presencev1.ConnectResponse, error) {
	c := connection(req.GetDevice(), req.GetGatewayId(), req.GetConnectionId())
	sess, err := s.tracker.OpenSession(ctx, c.User, c.Device, req.GetResumeSession())
	if err != nil {
		return nil, statusOf(err)
	}
	if err := s.tracker.Connect(ctx, c); err != nil {
		return nil, statusOf(err)
	}
	return &presencev1.ConnectResponse{SessionKey: sess.Key, Resumed: sess.Resumed}, nil
}

// Disconnect records a device's connection as closed.
func (s *api) Disconnect(ctx context.Context, req *presencev1.DisconnectRequest) (*presencev1.DisconnectResponse, error) {
	if err := s.tracker.Disconnect(ctx, connection(req.GetDevice(), req.GetGatewayId(), req.GetConnectionId())); err != nil {
		return nil, statusOf(err)
	}
	return &presencev1.DisconnectResponse{}, nil
}

// Heartbeat renews a gateway's lease.
func (s *api) Heartbeat(ctx context.Context, req *presencev1.HeartbeatRequest) (*presencev1.HeartbeatResponse, error) {
	ms := req.GetLeaseMs()
	// Checked before the conversion to a Duration, which could overflow.
	if ms < 0 || ms > lease.MaxLease.Milliseconds() {
		return nil, statusOf(fmt.Errorf("heartbeat: %w: lease_ms %d: want 0 (default) to %d", lease.ErrInvalid, ms, lease.MaxLease.Milliseconds()))
	}
	known, err := s.tracker.Heartbeat(ctx, req.GetGatewayId(), time.Duration(ms)*time.Millisecond)
	if err != nil {
		return nil, statusOf(err)
	}
	return &presencev1.HeartbeatResponse{Known: known}, nil
}

// Release ends a gateway's lease at the end of its graceful shutdown.
func (s *api) Release(ctx context.Context, req *presencev1.ReleaseRequest) (*presencev1.ReleaseResponse, error) {
	if err := s.tracker.Release(ctx, req.GetGatewayId()); err != nil {
		return nil, statusOf(err)
	}
	return &presencev1.ReleaseResponse{}, nil
}

// Query returns the state of users, in request order.
func (s *api) Query(ctx context.Context, req *presencev1.QueryRequest) (*presencev1.QueryResponse, error) {
	states, err := s.tracker.Query(ctx, req.GetUsers())
	if err != nil {
		return nil, statusOf(err)
	}
	resp := &presencev1.QueryResponse{Users: make([]*presencev1.UserPresence, 0, len(states))}
	for _, st := range states {
		up := &presencev1.UserPresence{User: st.User, Status: presencev1.Status_STATUS_OFFLINE, LastSeenMs: st.LastSeenMs}
		if st.Online {
			up.Status = presencev1.Status_STATUS_ONLINE
		}
		for _, d := range st.Devices {
			up.Devices = append(up.Devices, &presencev1.DevicePresence{Device: d.Device, GatewayId: d.Gateway, SinceMs: d.SinceMs})
		}
		resp.Users = append(resp.Users, up)
	}
	return resp, nil
}

// statusOf maps a tracker error to its gRPC status. Anything not a
// caller's mistake is a store failure: Unavailable, which clients retry.
func statusOf(err error) error {
	var code codes.Code
	switch {
	case errors.Is(err, lease.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, lease.ErrUnknownGateway):
		code = codes.FailedPrecondition
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}
