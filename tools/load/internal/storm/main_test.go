package storm

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// connection's reader and every sender must end with its run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
