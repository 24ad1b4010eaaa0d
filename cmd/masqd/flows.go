package main

import (
	"context"
	"io"

	"github.com/masqd/masqd/internal/conntrack"
)

// runFlows answers "which pod sent this connection from node address X,
// port P?" from conntrack, read-only.
func runFlows(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("flows", args); err != nil {
		return err
	}
	m, err := conntrack.ParseMatch(s.flowPort, s.flowPod, s.flowDst)
	if err != nil {
		return err
	}
	ts, err := conntrack.Translations(ctx, s.netns, m)
	if err != nil {
		return err
	}
	_, err = io.WriteString(e.stdout, conntrack.TranslationsText(ts))
	return err
}
