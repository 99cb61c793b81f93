package traffic

import (
	"io"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkDirectAgainstFake runs the direct scenario against the
// in-process fake gateway: the CPU it reports per delivered message is the
// client's and the fake's together, an upper bound on the client's own.
func BenchmarkDirectAgainstFake(b *testing.B) {
	_, url := startFake(b, testSecret)
	for b.Loop() {
		c, err := ParseFlags("direct", []string{"-gateways", url, "-secret", testSecret, "-pairs", "200", "-duration", "3s", "-window", "64"},
			func(string) string { return "" }, io.Discard)
		require.NoError(b, err)
		rep, err := Run(b.Context(), c, io.Discard)
		require.NoError(b, err)
		b.ReportMetric(rep.DeliveredPerSec, "delivered/s")
		b.ReportMetric(float64(rep.ClientCPUPerMsg.Microseconds()), "cpu-µs/msg")
		b.ReportMetric(rep.ClientCores, "cores")
		b.Log("lost " + strconv.FormatInt(rep.Lost, 10))
	}
}
