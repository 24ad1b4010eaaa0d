package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/masqd/masqd/internal/nft"
)

// runExplain answers for each address or prefix in args. A bad argument is
// reported on stderr and the others are still answered; the command then
// fails.
func runExplain(_ context.Context, s *settings, args []string, e env) error {
	if len(args) == 0 {
		return errors.New("explain needs one or more IP addresses or prefixes")
	}
	var src netip.Addr
	if s.source != "" {
		var err error
		if src, err = netip.ParseAddr(s.source); err != nil {
			return fmt.Errorf("explain: --source %q is not an IP address", s.source)
		}
		src = src.Unmap()
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	local, err := nft.LocalRoutes(s.netns)
	if err != nil {
		fmt.Fprintf(e.stderr, "masqd: explain: cannot read the kernel's local routes (%v); answering as if no destination were local to this node\n", err)
	}
	bad := 0
	for _, a := range args {
		dst, err := nft.ParseDst(a)
		if err != nil {
			fmt.Fprintf(e.stderr, "masqd: explain: %v\n", err)
			bad++
			continue
		}
		answers := nft.Explain(cfg, opts, rs, nft.Query{Dst: dst, Src: src, Local: local})
		fmt.Fprint(e.stdout, nft.ExplainText(cfg, s.configPath, dst, answers))
	}
	if bad > 0 {
		return fmt.Errorf("explain: %d of %d arguments could not be read", bad, len(args))
	}
	return nil
}
