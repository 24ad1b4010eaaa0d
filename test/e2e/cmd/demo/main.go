// Command demo runs masqd on its built-in default config in throw-away
// network namespaces (pod → node → world), prints the node's ruleset and
// the source address each destination saw, then removes everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/masqd/masqd/test/e2e/testbed"
)

func main() {
	bin := flag.String("masqd", "bin/masqd", "the masqd binary")
	ipv6 := flag.Bool("ipv6", false, "run masqd with --enable-ipv6 and show IPv6 destinations")
	flag.Parse()
	if err := run(*bin, *ipv6); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string, ipv6 bool) error {
	if why := testbed.Skip(); why != "" {
		return fmt.Errorf("cannot run: %s", why)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	b, err := testbed.New(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: cleanup:", err)
		}
	}()
	fmt.Printf("Built namespaces %s, %s and %s: a pod %s behind a node %s.\n\n", b.PodNS, b.NodeNS, b.WorldNS, testbed.PodIP4, testbed.NodeIP4)

	tmp, err := os.MkdirTemp("", "masqd-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"--once", "--config", filepath.Join(tmp, "no-config-here"), "--netns", b.NodePath(), "--log-format=console"}
	if ipv6 {
		args = append(args, "--enable-ipv6")
	}
	fmt.Printf("$ masqd %v   (no config file: ip-masq-agent's defaults)\n", args)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("masqd: %w", err)
	}
	out, err := b.Exec(ctx, b.NodeNS, "nft", "list", "ruleset")
	if err != nil {
		return fmt.Errorf("nft list ruleset: %w: %s", err, out)
	}
	fmt.Printf("\n$ nft list ruleset   (in the node's namespace)\n%s\n", out)

	fmt.Println("Connections from the pod; the receiver reports the source address it saw:")
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DESTINATION\tWHAT\tSOURCE SEEN\tMASQUERADED")
	for _, d := range testbed.Destinations {
		if d.Addr.Is6() && !ipv6 {
			continue
		}
		seen, err := b.SourceSeen(ctx, d.Addr)
		verdict := "no (pod IP kept)"
		switch {
		case err != nil:
			verdict = "error: " + err.Error()
		case seen.Addr() == testbed.NodeIP4 || seen.Addr() == testbed.NodeIP6:
			verdict = "yes (node IP)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.Addr, d.What, seen.Addr(), verdict)
	}
	w.Flush()
	fmt.Println("\nRemoving the namespaces; nothing outside them was touched.")
	return nil
}
