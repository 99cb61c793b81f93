package dispatch

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/entity"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// Groups implements deliveryv1.GroupServiceServer over the queue store,
// which keeps each room's members next to the queues they fan out to.
type Groups struct {
	deliveryv1.UnimplementedGroupServiceServer

	store *queue.Store
}

// NewGroups returns the group membership API.
func NewGroups(store *queue.Store) *Groups { return &Groups{store: store} }

// maxPage bounds one ListMembers page.
const maxPage = 1000

// checkRoomUser validates a room ID and, when user is set, a user ID.
func checkRoomUser(room, user string, needUser bool) error {
	if id, err := entity.Parse(room); err != nil || id.Kind != entity.KindRoom {
		return status.Errorf(codes.InvalidArgument, "room %q: want a room ID !<room>@<server>", room)
	}
	if !needUser {
		return nil
	}
	if id, err := entity.Parse(user); err != nil || id.Kind != entity.KindUser {
		return status.Errorf(codes.InvalidArgument, "user %q: want a user ID @<user>@<server>", user)
	}
	return nil
}

// AddMember implements deliveryv1.GroupServiceServer.
func (g *Groups) AddMember(ctx context.Context, req *deliveryv1.AddMemberRequest) (*deliveryv1.AddMemberResponse, error) {
	if err := checkRoomUser(req.GetRoom(), req.GetUser(), true); err != nil {
		return nil, err
	}
	added, err := g.store.AddMember(ctx, req.GetRoom(), req.GetUser())
	if err != nil {
		return nil, storeErr("add member", err)
	}
	return &deliveryv1.AddMemberResponse{Added: added}, nil
}

// RemoveMember implements deliveryv1.GroupServiceServer.
func (g *Groups) RemoveMember(ctx context.Context, req *deliveryv1.RemoveMemberRequest) (*deliveryv1.RemoveMemberResponse, error) {
	if err := checkRoomUser(req.GetRoom(), req.GetUser(), true); err != nil {
		return nil, err
	}
	removed, err := g.store.RemoveMember(ctx, req.GetRoom(), req.GetUser())
	if err != nil {
		return nil, storeErr("remove member", err)
	}
	return &deliveryv1.RemoveMemberResponse{Removed: removed}, nil
}

// ListMembers implements deliveryv1.GroupServiceServer.
func (g *Groups) ListMembers(ctx context.Context, req *deliveryv1.ListMembersRequest) (*deliveryv1.ListMembersResponse, error) {
	if err := checkRoomUser(req.GetRoom(), "", false); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxPage)
	members, next, err := g.store.ListMembers(ctx, req.GetRoom(), req.GetCursor(), limit)
	if errors.Is(err, queue.ErrBadCursor) {
		return nil, status.Error(codes.InvalidArgument, "cursor: not one a listing returned")
	}
	if err != nil {
		return nil, storeErr("list members", err)
	}
	return &deliveryv1.ListMembersResponse{Members: members, NextCursor: next}, nil
}

// CheckMember implements deliveryv1.GroupServiceServer.
func (g *Groups) CheckMember(ctx context.Context, req *deliveryv1.CheckMemberRequest) (*deliveryv1.CheckMemberResponse, error) {
	if err := checkRoomUser(req.GetRoom(), "", false); err != nil {
		return nil, err
	}
	exists, member, err := g.store.CheckMember(ctx, req.GetRoom(), req.GetUser())
	if err != nil {
		return nil, storeErr("check member", err)
	}
	return &deliveryv1.CheckMemberResponse{RoomExists: exists, Member: member}, nil
}
