// Command profanity-router is the Bachata router with one more route, a
// profanity filter, to show how a custom route joins the chain: register
// it, then name it in the routes file.
//
//	BACHATA_ROUTES_FILE=routes.json go run ./examples/profanity-router
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bachata-chat/bachata/services/router/chain"
	"github.com/bachata-chat/bachata/services/router/routerd"
)

func main() {
	reg := chain.NewRegistry()
	if err := reg.Register("profanity", newProfanity); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
	if err := routerd.Run(context.Background(), os.Args, os.Getenv, os.Stderr, reg); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}
