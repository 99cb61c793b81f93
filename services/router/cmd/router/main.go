// Command router runs the router service: it validates data messages,
// verifies their signatures, stamps sender and time, runs the ordered route
// chain and hands what the chain decides to the delivery service.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bachata-chat/bachata/services/router/chain"
	"github.com/bachata-chat/bachata/services/router/routerd"
)

func main() {
	if err := routerd.Run(context.Background(), os.Args, os.Getenv, os.Stderr, chain.NewRegistry()); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}
