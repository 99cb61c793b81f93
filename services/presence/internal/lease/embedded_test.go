package lease

import (
	"testing"

	"github.com/bachata-chat/bachata/libs/embedredis/embedredistest"
	"github.com/bachata-chat/bachata/libs/testkit"
)

// startEmbeddedServers is startServers on the embedded store `make run`
// uses when REDIS_URL is unset (package embedredis), so every scenario that
// runs per topology proves presence works the same on it.
func startEmbeddedServers(t *testing.T) *servers {
	t.Helper()
	return &servers{nats: testkit.StartNATS(t), rdb: embedredistest.Start(t).Client()}
}
