package embedredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// childDirEnv makes the test binary a store process that serves dir until it
// is killed: the crash test kills it with SIGKILL.
const childDirEnv = "EMBEDREDIS_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		runChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func runChild(dir string) {
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stdout, "error:", err)
		return
	}
	fmt.Fprintln(os.Stdout, s.Addr())
	select {} // until killed
}

func open(t *testing.T, dir string, opts ...func(*Options)) *Server {
	t.Helper()
	o := Options{Dir: dir}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// write puts one key of every type the store keeps, two of them with a TTL.
func write(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "s", "v\x00with nul", 0).Err())
	require.NoError(t, c.HSet(ctx, "h", "a", "1", "b", "2").Err())
	require.NoError(t, c.RPush(ctx, "l", "x", "y", "z").Err())
	require.NoError(t, c.SAdd(ctx, "set", "m1", "m2").Err())
	require.NoError(t, c.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: -0.1, Member: "b"}).Err())
	require.NoError(t, c.Set(ctx, "ttl", "soon", time.Hour).Err())
	require.NoError(t, c.PExpire(ctx, "h", 30*time.Minute).Err())
	require.NoError(t, c.Do(ctx, "SELECT", "0").Err())
}

// check asserts what write put, and that the TTLs ran down but not out.
func check(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := t.Context()
	require.Equal(t, "v\x00with nul", c.Get(ctx, "s").Val())
	require.Equal(t, map[string]string{"a": "1", "b": "2"}, c.HGetAll(ctx, "h").Val())
	require.Equal(t, []string{"x", "y", "z"}, c.LRange(ctx, "l", 0, -1).Val())
	require.ElementsMatch(t, []string{"m1", "m2"}, c.SMembers(ctx, "set").Val())
	require.Equal(t, []redis.Z{{Score: -0.1, Member: "b"}, {Score: 1.5, Member: "a"}}, c.ZRangeWithScores(ctx, "z", 0, -1).Val())
	ttl := c.PTTL(ctx, "ttl").Val()
	require.True(t, ttl > 59*time.Minute && ttl <= time.Hour, "ttl %s", ttl)
	ttl = c.PTTL(ctx, "h").Val()
	require.True(t, ttl > 29*time.Minute && ttl <= 30*time.Minute, "ttl %s", ttl)
	require.Equal(t, time.Duration(-1), c.PTTL(ctx, "s").Val(), "no TTL")
}

func TestDataAndTTLsSurviveARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	write(t, client(t, s.Addr()))
	require.NoError(t, s.Close())

	s = open(t, dir)
	check(t, client(t, s.Addr()))
}

func TestEveryAcknowledgedWriteSurvivesAKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	c := client(t, s.Addr())
	write(t, c)
	acked := hammer(t, c, 4, 300*time.Millisecond, s.Kill)

	s = open(t, dir)
	c = client(t, s.Addr())
	check(t, c)
	verifyHammered(t, c, acked)
}

// TestEveryAcknowledgedWriteSurvivesSIGKILL kills a store process with
// SIGKILL while clients write, and checks every write it acknowledged is
// there after a restart, in order, with nothing that was never sent.
func TestEveryAcknowledgedWriteSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	addr := line[:len(line)-1]
	require.NotContains(t, addr, "error")
	c := client(t, addr)
	write(t, c)
	acked := hammer(t, c, 4, 500*time.Millisecond, func() {
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	})
	_ = cmd.Wait()

	s := open(t, dir)
	c = client(t, s.Addr())
	check(t, c)
	verifyHammered(t, c, acked)
}

// hammer runs n writers for d, each appending 0, 1, 2… to its own list,
// half of them through a script, then calls stop while they still write.
// It returns how many appends each writer had acknowledged, and how many
// it had sent.
func hammer(t *testing.T, c *redis.Client, n int, d time.Duration, stop func()) [][2]int {
	t.Helper()
	push := redis.NewScript(`redis.call('RPUSH', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[1] .. ':n')`)
	out := make([][2]int, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			key := "hammer:" + strconv.Itoa(w)
			for i := 0; ; i++ {
				out[w][1] = i + 1
				var err error
				if w%2 == 0 {
					err = c.RPush(context.Background(), key, i).Err()
				} else {
					err = push.Run(context.Background(), c, []string{key}, i).Err()
				}
				if err != nil {
					return
				}
				out[w][0] = i + 1
			}
		})
	}
	time.Sleep(d)
	stop()
	wg.Wait()
	return out
}

func verifyHammered(t *testing.T, c *redis.Client, acked [][2]int) {
	t.Helper()
	total := 0
	for w, a := range acked {
		got := c.LRange(t.Context(), "hammer:"+strconv.Itoa(w), 0, -1).Val()
		require.GreaterOrEqual(t, len(got), a[0], "writer %d: acknowledged appends lost", w)
		require.LessOrEqual(t, len(got), a[1], "writer %d: appends that were never sent", w)
		for i, v := range got {
			require.Equal(t, strconv.Itoa(i), v, "writer %d: order", w)
		}
		total += a[0]
	}
	require.Positive(t, total)
	t.Logf("%d acknowledged appends survived", total)
}

func TestKeysExpireWhileRunningAndWhileDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) { o.TickInterval = 10 * time.Millisecond })
	c := client(t, s.Addr())
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "short", "x", 50*time.Millisecond).Err())
	require.Eventually(t, func() bool { return c.Exists(ctx, "short").Val() == 0 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, c.Set(ctx, "down", "x", 200*time.Millisecond).Err())
	require.NoError(t, c.Set(ctx, "kept", "x", time.Hour).Err())
	require.NoError(t, s.Close())
	time.Sleep(300 * time.Millisecond)
	s = open(t, dir)
	c = client(t, s.Addr())
	require.Zero(t, c.Exists(ctx, "down").Val(), "expired while the store was down")
	require.Equal(t, "x", c.Get(ctx, "kept").Val())
}

func TestATornTailIsDropped(t *testing.T) {
	t.Parallel()
	for name, tail := range map[string][]byte{
		"record cut short": appendRecord(nil, record{cmds: [][]string{{"SET", "torn", "x"}}})[:12],
		"zeros":            make([]byte, 100),
		"bad checksum":     corruptCRC(appendRecord(nil, record{cmds: [][]string{{"SET", "torn", "x"}}})),
		"half a header":    {9, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := open(t, dir)
			write(t, client(t, s.Addr()))
			require.NoError(t, s.Close())
			appendFile(t, filepath.Join(dir, journalName), tail)

			s = open(t, dir)
			c := client(t, s.Addr())
			check(t, c)
			require.Zero(t, c.Exists(t.Context(), "torn").Val())
			require.NoError(t, s.Close())
			st, err := readJournal(filepath.Join(dir, journalName), func(record) error { return nil })
			require.NoError(t, err)
			require.Zero(t, st.tornBytes, "the journal was rewritten without the tail")
		})
	}
}

func TestDamageBeforeIntactRecordsIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	write(t, client(t, s.Addr()))
	require.NoError(t, s.Close())
	path := filepath.Join(dir, journalName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(magic)+headerSize+1] ^= 0xff // inside the first record
	require.NoError(t, os.WriteFile(path, b, 0o600))

	_, err = Open(Options{Dir: dir})
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestJournalIsCompactedWhileWritesGoOn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) { o.CompactSize = 16 << 10 })
	c := client(t, s.Addr())
	ctx := t.Context()
	value := string(make([]byte, 200))
	for i := range 2000 {
		require.NoError(t, c.Set(ctx, "overwritten", value+strconv.Itoa(i), 0).Err())
	}
	require.Eventually(t, func() bool {
		info, err := os.Stat(filepath.Join(dir, journalName))
		return err == nil && info.Size() < 32<<10
	}, 5*time.Second, 10*time.Millisecond, "the journal of 2000 overwrites of one key stays small")
	acked := hammer(t, c, 4, 300*time.Millisecond, s.Kill)

	s = open(t, dir)
	c = client(t, s.Addr())
	require.Equal(t, value+"1999", c.Get(ctx, "overwritten").Val())
	verifyHammered(t, c, acked)
}

func TestJournalIsCompactedWhenReplayWouldTakeLong(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) { o.MaxReplay = 5 * time.Millisecond })
	c := client(t, s.Addr())
	ctx := t.Context()
	for i := range 1000 {
		require.NoError(t, c.Set(ctx, "overwritten", strconv.Itoa(i), 0).Err())
	}
	require.Eventually(t, func() bool {
		info, err := os.Stat(filepath.Join(dir, journalName))
		return err == nil && info.Size() < 10<<10
	}, 5*time.Second, 10*time.Millisecond, "1000 overwrites of one key are compacted away")
	require.NoError(t, s.Close())
	s = open(t, dir)
	require.Equal(t, "999", client(t, s.Addr()).Get(ctx, "overwritten").Val())
}

func TestScriptsReplayAndTheCacheStartsEmpty(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	c := client(t, s.Addr())
	ctx := t.Context()
	incr := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
	read := redis.NewScript(`return redis.call('GET', KEYS[1])`)
	for range 3 {
		require.NoError(t, incr.Run(ctx, c, []string{"n"}, 2).Err())
	}
	// A failing script keeps what it wrote before the error, as in Redis.
	err := c.Eval(ctx, `redis.call('SET', KEYS[1], 'partial'); return redis.error_reply('NOPE')`, []string{"p"}).Err()
	require.ErrorContains(t, err, "NOPE")
	mark := s.jr.mark()
	require.Equal(t, "6", read.Run(ctx, c, []string{"n"}).Val())
	require.Equal(t, mark, s.jr.mark(), "a script that wrote nothing is not journaled")
	require.NoError(t, s.Close())

	s = open(t, dir)
	c = client(t, s.Addr())
	require.Equal(t, []bool{false}, incr.Exists(ctx, c).Val(), "scripts are loaded again after a restart")
	require.Equal(t, int64(8), incr.Run(ctx, c, []string{"n"}, 2).Val())
	require.Equal(t, "partial", c.Get(ctx, "p").Val())
}

func TestTransactionsJournalWhatRan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	c := client(t, s.Addr())
	ctx := t.Context()
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "l", "a")
		p.Incr(ctx, "n")
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, "w", "1", 0).Err())
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		require.NoError(t, c.Set(ctx, "w", "2", 0).Err()) // another client changes it
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "w", "3", 0)
			return nil
		})
		return err
	}, "w")
	require.ErrorIs(t, err, redis.TxFailedErr)
	require.NoError(t, s.Close())

	s = open(t, dir)
	c = client(t, s.Addr())
	require.Equal(t, []string{"a"}, c.LRange(ctx, "l", 0, -1).Val())
	require.Equal(t, "1", c.Get(ctx, "n").Val())
	require.Equal(t, "2", c.Get(ctx, "w").Val(), "the aborted transaction did not run")
}

func TestBlockingCommandsWakeOnPushAndJournalTheMove(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	blocked, pusher := client(t, s.Addr()), client(t, s.Addr())
	ctx := t.Context()

	got := make(chan string, 1)
	go func() { got <- blocked.BLMove(ctx, "src", "dst", "LEFT", "RIGHT", 10*time.Second).Val() }()
	waitBlocked(t, s, "src")
	require.NoError(t, pusher.RPush(ctx, "other", "x").Err())
	require.NoError(t, pusher.RPush(ctx, "src", "v").Err())
	select {
	case v := <-got:
		require.Equal(t, "v", v)
	case <-time.After(5 * time.Second):
		t.Fatal("BLMOVE did not wake on the push")
	}

	kv := make(chan []string, 1)
	go func() { kv <- blocked.BLPop(ctx, 10*time.Second, "q1", "q2").Val() }()
	waitBlocked(t, s, "q2")
	require.NoError(t, pusher.LPush(ctx, "q2", "w").Err())
	require.Equal(t, []string{"q2", "w"}, <-kv)

	began := time.Now()
	err := blocked.BLMove(ctx, "empty", "dst", "LEFT", "RIGHT", time.Second).Err()
	require.ErrorIs(t, err, redis.Nil)
	require.GreaterOrEqual(t, time.Since(began), 900*time.Millisecond)
	require.NoError(t, s.Close())

	s = open(t, dir)
	c := client(t, s.Addr())
	require.Zero(t, c.Exists(ctx, "src", "q2").Val())
	require.Equal(t, []string{"v"}, c.LRange(ctx, "dst", 0, -1).Val())
}

// waitBlocked waits until a command blocks on key.
func waitBlocked(t *testing.T, s *Server, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiting[key]) > 0
	}, 5*time.Second, time.Millisecond)
}

func TestWhatReplayCannotRepeatIsRefused(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	c := client(t, s.Addr())
	ctx := t.Context()
	require.NoError(t, c.SAdd(ctx, "s", "a").Err())
	for name, err := range map[string]error{
		"SPOP":            c.SPop(ctx, "s").Err(),
		"TIME in script":  c.Eval(ctx, `return redis.call('TIME')`, nil).Err(),
		"SELECT 16":       c.Do(ctx, "SELECT", "16").Err(),
		"streams":         c.XAdd(ctx, &redis.XAddArgs{Stream: "x", Values: []string{"a", "b"}}).Err(),
		"BLPOP in script": c.Eval(ctx, `return redis.call('BLPOP', KEYS[1], 0)`, []string{"s"}).Err(),
	} {
		require.Error(t, err, name)
	}
	require.Equal(t, []string{"a"}, c.SMembers(ctx, "s").Val())
	require.Equal(t, "PONG", c.Ping(ctx).Val())
}

func TestOneServerPerDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(Options{Dir: dir})
	require.ErrorIs(t, err, ErrLocked)
}

func TestProtocolErrorIsAnsweredAndCloses(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	d, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	_, err = d.Write([]byte("*1\r\n+PING\r\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(d).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "-ERR Protocol error: expected '$'\r\n", line)
}

func TestQuitAnswersAndCloses(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	d, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	_, err = d.Write([]byte("PING\r\nQUIT\r\nPING\r\n"))
	require.NoError(t, err)
	all, err := io.ReadAll(d)
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n+OK\r\n", string(all))
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, errors.Join(err, f.Close()))
}

func corruptCRC(b []byte) []byte {
	b[5] ^= 0xff
	return b
}
