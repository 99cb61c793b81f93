package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bachata-chat/bachata/libs/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHandle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "extra is echoed as sent",
			body: `{"id":"m-1","time":1700000000300,"from":"@alice@localhost","device":"phone","app":"chat.example.echo","mod":"say","act":"hello","extra":{"text":"hi","n":[1,2.50]}}`,
			want: `{"echo":{"text":"hi","n":[1,2.50]},"act":"hello","mod":"say","from":"@alice@localhost"}`,
		},
		{
			name: "no extra echoes null",
			body: `{"id":"m-2","time":1,"from":"@bob@localhost","device":"laptop","app":"chat.example.echo","mod":"say","act":"ping"}`,
			want: `{"echo":null,"act":"ping","mod":"say","from":"@bob@localhost"}`,
		},
		{
			name: "unknown fields are ignored",
			body: `{"id":"m-3","from":"@bob@localhost","mod":"m","act":"a","extra":"x","future":{"field":1}}`,
			want: `{"echo":"x","act":"a","mod":"m","from":"@bob@localhost"}`,
		},
		{name: "not JSON", body: `hello`, want: `{"error":"request is not JSON"}`},
		{name: "empty", body: ``, want: `{"error":"request is not JSON"}`},
		{name: "no act", body: `{"id":"m-4","mod":"m"}`, want: `{"error":"request has no id or act"}`},
		{name: "no id", body: `{"act":"a"}`, want: `{"error":"request has no id or act"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.JSONEq(t, tt.want, string(handle([]byte(tt.body))))
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	require.Equal(t, "bachata.app.chat_example_echo.>", subject("bachata", "chat.example.echo"))
	require.Equal(t, "env.test.app.a-b.>", subject("env.test", "a-b"))
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	c, err := parseConfig([]string{"app-echo"}, noEnv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{
		NATSURL: "nats://127.0.0.1:4222", Prefix: "bachata", App: "chat.example.echo",
		Queue: "app-echo", DrainTimeout: 10 * time.Second,
	}, c)

	env := map[string]string{"NATS_URL": "nats://nats:4222", "BACHATA_NATS_PREFIX": "dev", "APP_ECHO_APP": "com.example.x"}
	c, err = parseConfig([]string{"app-echo", "-app", "org.example.y", "-drain-timeout", "3s"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "nats://nats:4222", c.NATSURL)
	require.Equal(t, "dev", c.Prefix)
	require.Equal(t, "org.example.y", c.App, "a flag wins over the environment")
	require.Equal(t, 3*time.Second, c.DrainTimeout)

	for _, args := range [][]string{
		{"app-echo", "-app", "Chat.Example"},
		{"app-echo", "-app", "chat_example"},
		{"app-echo", "-app", "chat..example"},
		{"app-echo", "-app", "a.>"},
		{"app-echo", "-prefix", "a.*"},
		{"app-echo", "-prefix", ""},
		{"app-echo", "-queue", "a b"},
		{"app-echo", "-drain-timeout", "0s"},
		{"app-echo", "extra-arg"},
		{"app-echo", "-no-such-flag"},
	} {
		_, err := parseConfig(args, noEnv, io.Discard)
		require.Error(t, err, "%q", args)
	}
	_, err = parseConfig([]string{"app-echo"}, func(k string) string {
		return map[string]string{"APP_ECHO_DRAIN_TIMEOUT": "soon"}[k]
	}, io.Discard)
	require.Error(t, err)
}

// TestServe runs the backend against an embedded NATS server and talks to
// it as the router does: a request with the router's JSON body on the
// app's subject.
func TestServe(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	cfg := config{Prefix: "test", App: "chat.example.echo", Queue: "app-echo", DrainTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, n.Conn(), cfg, slog.New(slog.DiscardHandler)) }()

	client := n.Conn()
	body := []byte(`{"id":"m-1","time":1700000000300,"from":"@alice@localhost","device":"phone","app":"chat.example.echo","mod":"say","act":"hello","extra":{"text":"hi"}}`)
	var resp *nats.Msg
	require.Eventually(t, func() bool {
		var err error
		resp, err = client.Request("test.app.chat_example_echo.say.hello", body, time.Second)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the backend never answered")
	require.JSONEq(t, `{"echo":{"text":"hi"},"act":"hello","mod":"say","from":"@alice@localhost"}`, string(resp.Data))

	// Another app is not answered.
	_, err := client.Request("test.app.chat_example_other.say.hello", body, time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	// Drained: nobody answers any more.
	_, err = client.Request("test.app.chat_example_echo.say.hello", body, time.Second)
	require.True(t, errors.Is(err, nats.ErrNoResponders), "got %v", err)
}
