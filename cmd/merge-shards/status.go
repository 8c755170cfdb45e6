package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hydroshard/hydroshard/internal/cli"
	"github.com/hydroshard/hydroshard/lease"
	"github.com/hydroshard/hydroshard/merge"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// runStatus runs "status [--json] [--watch [--interval D]] [--lease-grace
// D] OUT": exit 0 when OUT could be read (status is no verdict), 1 on a
// usage or environment error.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlags("merge-shards status")
	asJSON := fs.Bool("json", false, "print the status as JSON (with --watch: one compact JSON object a line, per refresh)")
	watch := fs.Bool("watch", false, "refresh every --interval until every writer is closed or dead (or SIGINT): the table redrawn on a terminal, else one summary line per refresh")
	interval := fs.Duration("interval", 2*time.Second, "with --watch: time between refreshes")
	grace := fs.Duration("lease-grace", lease.DefaultGrace, "a writer whose lease was renewed within this time (file system clock) is live; an older lease, a missing one, or a gone process of this host: dead")
	out, code := parse(fs, args, stdout, stderr, func() error {
		if *interval <= 0 {
			return fmt.Errorf("--interval %v: want > 0", *interval)
		}
		return graceCheck(*grace)
	})
	if code >= 0 {
		return code
	}
	opts := merge.Options{Lease: lease.Options{Grace: *grace}}
	if !*watch {
		rep, err := merge.Status(ctx, out, opts)
		if err != nil {
			fmt.Fprintf(stderr, "merge-shards status: %v\n", err)
			return exitEnv
		}
		if err := print(stdout, *asJSON, rep, rep.Human()); err != nil {
			fmt.Fprintf(stderr, "merge-shards status: %v\n", err)
			return exitEnv
		}
		return exitComplete
	}
	tty := cli.IsTerminal(stdout)
	settled := false // the previous refresh found writers, none of them live
	for {
		rep, err := merge.Status(ctx, out, opts)
		if ctx.Err() != nil {
			return exitComplete // SIGINT: the end of a watch
		}
		if err != nil {
			fmt.Fprintf(stderr, "merge-shards status: %v\n", err)
			return exitEnv
		}
		var b []byte
		switch {
		case *asJSON:
			b, err = json.Marshal(rep)
			b = append(b, '\n')
		case tty:
			b = []byte(clearScreen + rep.Human())
		default:
			b = []byte(rep.Now.Format(time.RFC3339) + " " + rep.Summary() + "\n")
		}
		if err == nil {
			_, err = stdout.Write(b)
		}
		if err != nil {
			fmt.Fprintf(stderr, "merge-shards status: %v\n", err)
			return exitEnv
		}
		// Done once two refreshes in a row find no live writer: a rank
		// that closes its training journal opens its simulation one a
		// moment later.
		done := rep.Totals.Writers > 0 && rep.Totals.WritersLive == 0
		if done && settled {
			return exitComplete
		}
		settled = done
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return exitComplete
		case <-t.C:
		}
	}
}
