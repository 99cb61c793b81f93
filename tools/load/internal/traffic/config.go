// Package traffic is the load tool's message scenarios: direct (sender →
// receiver pairs) and group (one sender, a room of members). Every message
// is accounted for in a ledger: sent, 100s, deliveries with duplicates,
// 300s, lost, errors by code, and the latencies send → 100, send →
// delivery and send → 300.
//
// The client is built not to be what limits a run: one goroutine reads
// each socket through a buffer; a sender writes every message its window
// allows in one system call, and a receiver acks everything it has read
// in one write before it blocks again.
package traffic

import (
	"flag"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/bachata-chat/bachata/tools/load/internal/token"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

// Limits of the flags: generous, but a typo must not become a million
// sockets or a week-long run.
const (
	MaxPairs    = 50_000
	MaxMembers  = 50_000
	MaxSize     = 60 << 10 // under the gateway's 64 KiB frame
	MaxWindow   = 100_000
	MaxDuration = 24 * time.Hour
	MaxRate     = 10_000_000
)

// Config is one run.
type Config struct {
	// Scenario is "direct" or "group".
	Scenario string
	// Gateways are the WebSocket endpoints; connections are spread over
	// them, and a pair's receiver sits on another gateway than its
	// sender when there are several (flag -gateways).
	Gateways []*url.URL
	// Pairs is the sender/receiver pairs of the direct scenario (flag
	// -pairs).
	Pairs int
	// Members is the room size of the group scenario, the sender
	// included (flag -members).
	Members int
	// Room is the group scenario's room name (flag -room; default from
	// the user prefix).
	Room string
	// AdminURL is a gateway's admin API base, http://host:port, through
	// which the group scenario adds the members (flag -admin).
	AdminURL *url.URL
	// AdminToken is its bearer token (flag -admin-token, default
	// $BACHATA_ADMIN_TOKEN).
	AdminToken string
	// Size is the length of each message's data.text in bytes (flag
	// -size).
	Size int
	// Window is the most messages a sender has without a 100 or an
	// error (flag -window).
	Window int
	// Duration is how long to send (flag -duration).
	Duration time.Duration
	// Rate paces the senders to this many messages per second in total;
	// 0 sends as fast as the windows allow (flag -rate).
	Rate float64
	// Drain bounds the wait, after the last send, for every message's
	// outcome (flag -drain).
	Drain time.Duration
	// Secret signs the clients' HS256 tokens (flag -secret, default
	// $BACHATA_JWT_SECRET).
	Secret string
	// UserPrefix starts every user name; the default is unique per run
	// so that nothing queued by an earlier run is mistaken for this
	// one's (flag -user-prefix).
	UserPrefix string
	// ConnectTimeout bounds one connect (flag -connect-timeout).
	ConnectTimeout time.Duration
	// Parallel is the connects in flight (flag -parallel).
	Parallel int
	// ServerPIDs are processes whose CPU time over the run is reported,
	// per delivered message (flag -server-pids).
	ServerPIDs []int
	// JSON prints the report as JSON (flag -json).
	JSON bool
}

// ParseFlags reads the flags of scenario (args without the program and
// scenario names) and checks every limit. The -h output goes to usage.
func ParseFlags(scenario string, args []string, getenv func(string) string, help io.Writer) (Config, error) {
	c := Config{Scenario: scenario}
	var gateways, admin, pids string
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	fs.SetOutput(help)
	fs.StringVar(&gateways, "gateways", "ws://127.0.0.1:8080/ws", "comma-separated gateway WebSocket URLs; hosts must be in 127.0.0.0/8")
	if scenario == "direct" {
		fs.IntVar(&c.Pairs, "pairs", 200, "sender/receiver pairs")
	} else {
		fs.IntVar(&c.Members, "members", 1000, "room members, the sender included")
		fs.StringVar(&c.Room, "room", "", "room name (default: from the user prefix)")
		fs.StringVar(&admin, "admin", "http://127.0.0.1:8081", "a gateway's admin API base URL, to add the members")
		fs.StringVar(&c.AdminToken, "admin-token", "", "admin API bearer token (default $BACHATA_ADMIN_TOKEN)")
	}
	fs.IntVar(&c.Size, "size", 100, "bytes of text in each message")
	fs.IntVar(&c.Window, "window", 64, "most messages per sender without a 100 or an error")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long to send")
	fs.Float64Var(&c.Rate, "rate", 0, "messages per second in total, paced; 0: as fast as the windows allow")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "after sending, wait up to this long for every outcome")
	fs.StringVar(&c.Secret, "secret", "", "HS256 secret of the gateway's tokens (default $BACHATA_JWT_SECRET)")
	fs.StringVar(&c.UserPrefix, "user-prefix", "", "prefix of every user name (default: unique per run)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 30*time.Second, "bound on one connect")
	fs.IntVar(&c.Parallel, "parallel", 100, "connects in flight")
	fs.StringVar(&pids, "server-pids", "", "comma-separated server process IDs whose CPU time to report")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := usage.NoArgs(fs); err != nil {
		return c, err
	}
	if c.Secret == "" {
		c.Secret = getenv("BACHATA_JWT_SECRET")
	}
	if c.AdminToken == "" && scenario == "group" {
		c.AdminToken = getenv("BACHATA_ADMIN_TOKEN")
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "ld" + strconv.FormatInt(time.Now().UnixMilli()%1e9, 36) + "-"
	}
	if c.Room == "" {
		c.Room = strings.TrimSuffix(c.UserPrefix, "-") + "-room"
	}
	var probs usage.Problems
	gws, err := loopback.CheckURLs(gateways, "ws")
	if err != nil {
		probs.Flag("-gateways", err)
	}
	c.Gateways = gws
	probs.Addf(len(c.Gateways) == 0, "-gateways: want at least one")
	if scenario == "direct" {
		probs.Addf(c.Pairs < 1 || c.Pairs > MaxPairs, "-pairs %d: want 1 to %d", c.Pairs, MaxPairs)
	} else {
		probs.Addf(c.Members < 2 || c.Members > MaxMembers, "-members %d: want 2 to %d", c.Members, MaxMembers)
		u, err := loopback.CheckURL(admin, "http")
		if err != nil {
			probs.Flag("-admin", err)
		}
		c.AdminURL = u
		probs.Addf(c.AdminToken == "", "-admin-token or $BACHATA_ADMIN_TOKEN: want the admin API token")
	}
	probs.Addf(c.Size < 0 || c.Size > MaxSize, "-size %d: want 0 to %d", c.Size, MaxSize)
	probs.Addf(c.Window < 1 || c.Window > MaxWindow, "-window %d: want 1 to %d", c.Window, MaxWindow)
	probs.Addf(c.Duration <= 0 || c.Duration > MaxDuration, "-duration %s: want more than 0, at most %s", c.Duration, MaxDuration)
	probs.Addf(c.Rate < 0 || c.Rate > MaxRate, "-rate %g: want 0 to %d", c.Rate, MaxRate)
	probs.Addf(c.Drain < 0 || c.Drain > MaxDuration, "-drain %s: want 0 to %s", c.Drain, MaxDuration)
	probs.Addf(len(c.Secret) < token.MinSecret, "-secret or $BACHATA_JWT_SECRET: want at least %d bytes", token.MinSecret)
	probs.Addf(c.ConnectTimeout <= 0, "-connect-timeout %s: want more than 0", c.ConnectTimeout)
	probs.Addf(c.Parallel < 1 || c.Parallel > 10_000, "-parallel %d: want 1 to 10000", c.Parallel)
	for p := range strings.SplitSeq(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		probs.Addf(err != nil || n <= 0, "-server-pids: %q is not a process ID", p)
		c.ServerPIDs = append(c.ServerPIDs, n)
	}
	return c, probs.Err()
}
