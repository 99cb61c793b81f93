package embedredis

import (
	"strconv"
	"strings"
)

// maxDB is the highest database index: 16 databases, redis-server's
// default. Snapshots cover exactly these.
const maxDB = 15

// kind says what a command does to the data, which decides whether it is
// journaled.
type kind uint8

const (
	kindUnknown kind = iota // miniredis does not know it: an error reply
	kindRead                // reads only
	kindWrite               // may change data: journaled
	kindSession             // changes the connection or nothing: never journaled
)

// sessionCommands are commands miniredis does not flag read-only that
// nevertheless change no data. MULTI, EXEC, SELECT and SCRIPT are
// journaled through what they lead to, not themselves.
var sessionCommands = set(
	"AUTH", "CLIENT", "CLUSTER", "COMMAND", "DISCARD", "ECHO", "EXEC", "HELLO",
	"INFO", "MEMORY", "MULTI", "OBJECT", "PING", "PUBLISH", "PUBSUB", "QUIT",
	"SCRIPT", "SELECT", "TIME", "UNSUBSCRIBE", "PUNSUBSCRIBE", "UNWATCH", "WAIT", "WATCH",
)

// refusedCommands are not taken at all, with the reason. Each would make
// the journal or its snapshot incomplete: types a snapshot cannot write
// back, state outside the keyspace, or an effect replay cannot repeat.
var refusedCommands = func() map[string]string {
	m := map[string]string{}
	add := func(why string, cmds ...string) {
		for _, c := range cmds {
			m[c] = "ERR " + c + " is not supported by the embedded store: " + why
		}
	}
	add("streams are not supported",
		"XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XINFO", "XLEN", "XPENDING",
		"XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XTRIM")
	add("HyperLogLogs are not supported", "PFADD", "PFCOUNT", "PFMERGE")
	add("hash field expiry is not supported", "HEXPIRE", "HPERSIST", "HSETEX")
	add("pub/sub is not supported (Bachata uses NATS)", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE")
	add("its random choice could not be replayed", "SPOP")
	add("only BLMOVE, BRPOPLPUSH, BLPOP and BRPOP block", "BZMPOP", "BZPOPMAX", "BZPOPMIN", "BLMPOP")
	return m
}()

// refusedInScripts are refused inside Lua scripts: scripts are journaled as
// scripts and run again on replay, so they must be deterministic (take the
// time as an argument), and a script cannot block.
var refusedInScripts = set(
	"TIME", "RANDOMKEY", "SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER",
	"BLMOVE", "BRPOPLPUSH", "BLPOP", "BRPOP",
)

// emulatedBlocking are the blocking commands the store serves itself, as a
// wait on the key and the non-blocking command it journals.
var emulatedBlocking = set("BLMOVE", "BRPOPLPUSH", "BLPOP", "BRPOP")

// refusal returns the error reply for a command the store does not take
// here, or "".
func refusal(cmd string, args []string, nested bool) string {
	if why, ok := refusedCommands[cmd]; ok {
		return why
	}
	if nested && refusedInScripts[cmd] {
		return "ERR " + cmd + " is not allowed in scripts by the embedded store: scripts must be deterministic and must not block"
	}
	if !dbArgsOK(cmd, args) {
		return "ERR DB index is out of range"
	}
	return ""
}

// dbArgsOK checks the database indexes a command names: the store keeps
// databases 0 to maxDB.
func dbArgsOK(cmd string, args []string) bool {
	var idx []string
	switch cmd {
	case "SELECT":
		idx = args[:min(len(args), 1)]
	case "MOVE":
		idx = args[min(len(args), 1):min(len(args), 2)]
	case "SWAPDB":
		idx = args[:min(len(args), 2)]
	case "COPY":
		for i := 2; i+1 < len(args); i++ {
			if strings.EqualFold(args[i], "DB") {
				idx = append(idx, args[i+1])
			}
		}
	}
	for _, s := range idx {
		if n, err := strconv.Atoi(s); err == nil && (n < 0 || n > maxDB) {
			return false
		}
	}
	return true
}

// pushTarget names the key a command may turn into a non-empty list, so
// that commands blocked on it try again; all means any key may have.
func pushTarget(cmd string, args []string) (key string, all bool) {
	switch cmd {
	case "RPUSH", "LPUSH", "RPUSHX", "LPUSHX", "LINSERT", "LSET", "RESTORE":
		if len(args) > 0 {
			return args[0], false
		}
	case "LMOVE", "RPOPLPUSH", "BLMOVE", "BRPOPLPUSH", "RENAME", "RENAMENX":
		if len(args) > 1 {
			return args[1], false
		}
	case "COPY", "MOVE", "SWAPDB", "SORT", "FLUSHALL", "FLUSHDB":
		return "", true
	}
	return "", false
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
