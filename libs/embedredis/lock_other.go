//go:build !unix

package embedredis

// lockDir does not lock where flock(2) is missing: the store is a
// development tool, and on such systems it trusts one server per directory.
func lockDir(string) (func(), error) { return func() {}, nil }
