// Command hello is the smallest static binary, for tests that need one
// without building a service.
package main

import "os"

func main() {
	_, _ = os.Stdout.WriteString("hello\n")
}
