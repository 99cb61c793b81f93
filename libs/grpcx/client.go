package grpcx

import (
	"fmt"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/bachata-chat/bachata/libs/obs"
)

// serviceConfig balances calls over every address a name resolves to, so a
// headless Kubernetes Service spreads load across all instances, and retries
// calls that failed before reaching a server.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// staticScheme names the resolver of a fixed list of addresses.
const staticScheme = "bachata-static"

// ValidTarget reports whether target is one Dial accepts: "host:port",
// "dns:///host:port", or a comma-separated list of "host:port".
func ValidTarget(target string) bool {
	target = strings.TrimPrefix(target, "dns:///")
	for _, a := range strings.Split(target, ",") {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil || host == "" || port == "" {
			return false
		}
	}
	return true
}

// Dial returns a client connection to target ("host:port",
// "dns:///name:port" for every address of a name, or "host:port,host:port"
// for a fixed list). Calls are balanced round robin and UNAVAILABLE
// failures retried with backoff. Connections are made lazily, so a service
// can start before its peers. When tracing is on (obs.TracingEnabled) every
// call but health checks gets a client span, and its trace context goes to
// the server in the request metadata.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if strings.Contains(target, ",") && !strings.HasPrefix(target, "dns:///") {
		r := manual.NewBuilderWithScheme(staticScheme)
		var addrs []resolver.Address
		for _, a := range strings.Split(target, ",") {
			addrs = append(addrs, resolver.Address{Addr: strings.TrimSpace(a)})
		}
		r.InitialState(resolver.State{Addresses: addrs})
		opts = append(opts, grpc.WithResolvers(r))
		target = staticScheme + ":///" + strings.ReplaceAll(target, ",", "_")
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if obs.TracingEnabled() {
		base = append(base, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))))
	}
	opts = append(base, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", target, err)
	}
	return cc, nil
}
