package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// FanoutBatch is how many members one fan-out step reads: it bounds the
// Redis round trips of a message to a room at members/FanoutBatch reads
// plus, per read, one pipelined script call per shard the members fall in.
const FanoutBatch = 1000

// membersKey is a room's member set; the room is its hash tag, so a room's
// membership is one key in one slot.
func (s *Store) membersKey(room string) string {
	return s.opts.Prefix + ":{r:" + room + "}:members"
}

// AddMember puts user in room and reports whether it was new.
func (s *Store) AddMember(ctx context.Context, room, user string) (bool, error) {
	n, err := s.rdb.SAdd(ctx, s.membersKey(room), user).Result()
	if err != nil {
		return false, fmt.Errorf("queue: add %s to %s: %w", user, room, err)
	}
	return n == 1, nil
}

// RemoveMember takes user out of room and reports whether it was there.
func (s *Store) RemoveMember(ctx context.Context, room, user string) (bool, error) {
	n, err := s.rdb.SRem(ctx, s.membersKey(room), user).Result()
	if err != nil {
		return false, fmt.Errorf("queue: remove %s from %s: %w", user, room, err)
	}
	return n == 1, nil
}

// CheckMember reports whether room has members and whether user is one.
func (s *Store) CheckMember(ctx context.Context, room, user string) (exists, member bool, err error) {
	k := s.membersKey(room)
	pipe := s.rdb.Pipeline()
	card := pipe.SCard(ctx, k)
	is := pipe.SIsMember(ctx, k, user)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, false, fmt.Errorf("queue: check %s in %s: %w", user, room, err)
	}
	return card.Val() > 0, is.Val(), nil
}

// ListMembers returns one page of room's members (about limit of them) and
// the cursor of the next page, "" when the listing is complete.
func (s *Store) ListMembers(ctx context.Context, room, cursor string, limit int) ([]string, string, error) {
	var c uint64
	if cursor != "" {
		var err error
		if c, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", ErrBadCursor
		}
	}
	members, next, err := s.rdb.SScan(ctx, s.membersKey(room), c, "", int64(limit)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("queue: list %s: %w", room, err)
	}
	if next == 0 {
		return members, "", nil
	}
	return members, strconv.FormatUint(next, 10), nil
}

// ErrBadCursor means a listing cursor was not one ListMembers returned.
var ErrBadCursor = errors.New("queue: bad cursor")

// RoomResult says what an EnqueueRoom did.
type RoomResult struct {
	// Members is how many members got the message for the first time.
	Members int
	// Devices is how many device queues got it.
	Devices int
	// Dead are entries the queue length limit pushed out.
	Dead []DeadLetter
}

// EnqueueRoom queues msg for every member of room: their devices but the
// sending one. It reads the members FanoutBatch at a time and queues each
// batch with one script call per shard, pipelined, so a room of any size
// costs a bounded number of round trips per thousand members. When it
// returns without error, Redis has accepted the message for every member
// it read; a resend of the same id adds only members it missed.
func (s *Store) EnqueueRoom(ctx context.Context, msg *commonv1.Message, sender *commonv1.DeviceRef, room string, receipt bool) (RoomResult, error) {
	body, err := proto.Marshal(msg)
	if err != nil {
		return RoomResult{}, fmt.Errorf("queue: encode message: %w", err)
	}
	var out RoomResult
	key := s.membersKey(room)
	var cursor uint64
	for {
		members, next, err := s.rdb.SScan(ctx, key, cursor, "", FanoutBatch).Result()
		if err != nil {
			return RoomResult{}, fmt.Errorf("queue: read members of %s: %w", room, err)
		}
		if err := s.enqueueMembers(ctx, &out, members, msg, body, sender, receipt); err != nil {
			return RoomResult{}, err
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// enqueueMembers queues one batch of members, one pipelined script call
// per shard. A server that does not know the script yet (a restart empties
// its cache) gets it loaded and the batch is sent again: the calls that ran
// already find their dedupe marks and add nothing.
func (s *Store) enqueueMembers(ctx context.Context, out *RoomResult, members []string, msg *commonv1.Message, body []byte, sender *commonv1.DeviceRef, receipt bool) error {
	if len(members) == 0 {
		return nil
	}
	byShard := make(map[int][]string)
	for _, m := range members {
		k := s.ShardOf(m)
		byShard[k] = append(byShard[k], m)
	}
	now := s.now()
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, 0, len(byShard))
		for k, users := range byShard {
			args := make([]any, 0, 13+len(users))
			args = append(args, s.base(k), sender.GetUser()+":"+msg.GetId(), int64(s.opts.DedupeTTL/time.Second),
				msg.GetId(), body, sender.GetUser(), sender.GetDevice(), flag(receipt),
				now, s.opts.MaxQueueLength, ms(s.opts.MaxAge), ms(s.opts.UndeliveredAfter), msg.GetTraceParent())
			for _, u := range users {
				args = append(args, u)
			}
			cmds = append(cmds, enqueueMembersScript.EvalSha(ctx, pipe, s.route(k), args...))
		}
		_, err := pipe.Exec(ctx)
		if isNoScript(err) && attempt == 0 {
			if err := enqueueMembersScript.Load(ctx, s.rdb).Err(); err != nil {
				return fmt.Errorf("queue: load the members script: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("queue: enqueue members: %w", err)
		}
		for _, c := range cmds {
			res, err := c.Slice()
			if err != nil {
				return fmt.Errorf("queue: enqueue members: %w", err)
			}
			if len(res) != 3 {
				return errReply("enqueue members", res)
			}
			out.Members += asInt(res[0])
			out.Devices += asInt(res[1])
			dead, err := deadLetters(res[2])
			if err != nil {
				return err
			}
			out.Dead = append(out.Dead, dead...)
		}
		return nil
	}
}

func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}
