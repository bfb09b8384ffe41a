// Command kappa is the CLI of the kappa stream processor: flags → config →
// wiring → run. See CONTRACT.md and the README for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `kappa — a Kappa-architecture stream processor for music listen events

Usage:
  kappa <command> [flags]

Commands:
  up        all-in-one: embedded broker, processors, HTTP API, optional synthetic load
  process   one processing instance against a Kafka cluster; start several to scale out
  produce   produce JSON lines from a file or stdin to the listens topic
  generate  synthetic, seeded listen events to a file, stdout or Kafka
  replay    rebuild into a new version from the log, show progress, cut over, retire the old
  status    versions, groups, lag per partition, store sizes, serving version
  catalog   the song and artist catalog: rollback a feed batch, reconcile with the source
  keys      API keys of the HTTP API: create, list, revoke

Run 'kappa <command> -h' for the flags of a command.
Exit codes: 0 ok, 1 runtime failure, 2 usage error.
`

// errUsage marks an error caused by bad command-line input (exit code 2).
var errUsage = errors.New("usage error")

type command struct {
	name string
	run  func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	commands := []command{
		{"up", runUp},
		{"process", runProcess},
		{"produce", runProduce},
		{"generate", runGenerate},
		{"replay", runReplay},
		{"catalog", runCatalog},
		{"status", runStatus},
		{"keys", runKeys},
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "kappa %s: %s\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "kappa: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// newFlagSet returns a flag set whose parse errors print the usage text
// and map to exit code 2.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kappa "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kappa %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, rejecting stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// usageErrorf prints a usage problem with the flag set's usage text.
func usageErrorf(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", args...)
	fs.Usage()
	return errUsage
}
