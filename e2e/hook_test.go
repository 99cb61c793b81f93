package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/localsuite"
	hookv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/hook/v1"
)

// moderation is an out-of-process route: it refuses direct messages that
// mention "forbidden" with a custom code and passes everything else.
type moderation struct {
	hookv1.UnimplementedRouteHookServiceServer
}

func (moderation) Process(_ context.Context, req *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
	if strings.Contains(string(req.GetMessage().GetData()), "forbidden") {
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: 10002, Text: "refused by moderation"}}}, nil
	}
	return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Pass{Pass: &hookv1.Pass{}}}, nil
}

// TestRouteHookPlacedByTheRoutesFile: a gRPC route hook named in the routes
// file sees messages before direct and can stop them with its own code.
func TestRouteHookPlacedByTheRoutesFile(t *testing.T) {
	t.Parallel()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hookv1.RegisterRouteHookServiceServer(srv, moderation{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	routes := filepath.Join(t.TempDir(), "routes.json")
	require.NoError(t, os.WriteFile(routes, fmt.Appendf(nil, `{"routes":[
		{"route":"handshake"},
		{"route":"hook","options":{"name":"moderation","target":%q,"types":["direct"],"timeout":"2s","failure":"closed"}},
		{"route":"direct"}]}`, lis.Addr().String()), 0o600))
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Env = append(c.Env, "BACHATA_ROUTES_FILE="+routes)
	})
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(0), token(t, secret, "bob"), "laptop")

	alice.direct("m1", "bob", "this is forbidden")
	f := alice.expect("the hook's refusal", func(f frame) bool { return f.dataType() == "direct:error" && f.ID == "m1" })
	require.Equal(t, 10002, f.errCode())
	bob.quiet(300 * time.Millisecond)

	alice.direct("m2", "bob", "this is fine")
	alice.expectTransport(100, "m2")
	bob.expectMessage("m2")
}
