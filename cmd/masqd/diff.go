package main

import (
	"context"
	"fmt"

	"github.com/masqd/masqd/internal/nft"
)

// exitError makes run exit with code, printing err first unless it is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// runDiff prints what a sync would change in the kernel's table, as
// kubectl diff does: exit 0 and nothing when in sync, 1 with the changes,
// 2 when it cannot tell. It only reads.
func runDiff(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("diff", args); err != nil {
		return &exitError{2, err}
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return &exitError{2, err}
	}
	c, err := nft.Open(s.netns)
	if err != nil {
		return &exitError{2, err}
	}
	defer c.Close()
	d, err := c.Diff(ctx, rs)
	if err != nil {
		return &exitError{2, err}
	}
	if d.Empty() {
		return nil
	}
	d.WriteText(e.stdout, rs, cfg, opts)
	return &exitError{code: 1}
}
