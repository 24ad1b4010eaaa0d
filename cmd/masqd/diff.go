package main

import (
	"context"

	"github.com/masqd/masqd/internal/cli"
	"github.com/masqd/masqd/internal/nft"
)

// runDiff prints what a sync would change in the kernel's table, as
// kubectl diff does: exit 0 and nothing when in sync, 1 with the changes,
// 2 when it cannot tell. It only reads.
func runDiff(ctx context.Context, s *settings, args []string, e env) error {
	if err := noConfigArgs("diff", args); err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	c, err := nft.Open(s.netns)
	if err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	defer c.Close()
	d, err := c.Diff(ctx, rs)
	if err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	if d.Empty() {
		return nil
	}
	d.WriteText(e.stdout, rs, cfg, opts)
	return &cli.ExitError{Code: 1}
}
