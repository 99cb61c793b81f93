package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that JWKS refreshers and hook calls leave nothing
// running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
