// Command rida rebuilds RPM modules when dist-git changes. See README.md.
//
// main is a thin shell over Main so tests can run every subcommand in
// process with their own arguments, output and environment.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
