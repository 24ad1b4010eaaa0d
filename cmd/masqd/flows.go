package main

import (
	"context"
	"fmt"

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
		return kernelHint(s, err)
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stdout, "no matching translations in conntrack")
		return nil
	}
	fmt.Fprintf(e.stdout, "%-7s %-45s %-45s %s\n", "PROTO", "POD", "NODE (TRANSLATED)", "DESTINATION")
	for _, t := range ts {
		fmt.Fprintf(e.stdout, "%-7s %-45s %-45s %s\n", t.Proto, t.Pod, t.Node, t.Dst)
	}
	return nil
}
