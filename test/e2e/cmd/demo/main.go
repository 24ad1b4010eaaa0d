// Command demo shows masqd's main job with real traffic: it builds
// throw-away network namespaces (pod → node → world, see package testbed),
// runs `masqd --once` in the node's namespace on the built-in default
// config, prints the source address each destination saw and then the
// node's table, whose counters count those connections, then removes
// everything, also on error or Ctrl-C.
//
//	go run ./test/e2e/cmd/demo -masqd bin/masqd [-ipv6]
//
// It needs root, ip and nft, and changes nothing outside its namespaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/masqd/masqd/test/e2e/testbed"
)

func main() {
	bin := flag.String("masqd", "bin/masqd", "the masqd binary (make build)")
	ipv6 := flag.Bool("ipv6", false, "run masqd with --enable-ipv6 and show the IPv6 destinations too")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Stdout, *bin, *ipv6)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, bin string, ipv6 bool) error {
	if why := testbed.Skip(); why != "" {
		return fmt.Errorf("cannot run: %s", why)
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("masqd binary: %w (build it with make build, or pass -masqd)", err)
	}
	tmp, err := os.MkdirTemp("", "masqd-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	b, err := testbed.New(ctx)
	if err != nil {
		return fmt.Errorf("build namespaces: %w", err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: remove namespaces:", err)
		}
	}()
	fmt.Fprintf(w, "Built network namespaces %s, %s and %s:\n", b.PodNS, b.NodeNS, b.WorldNS)
	fmt.Fprintf(w, "a pod (%s) sends through its node (uplink %s) to addresses in the world namespace.\n", testbed.PodIP4, testbed.NodeIP4)
	fmt.Fprintln(w, whyMasquerade)
	fmt.Fprintln(w)

	// No file at the config path: masqd applies ip-masq-agent's defaults.
	args := []string{"--once", "--config", filepath.Join(tmp, "ip-masq-agent"), "--log-format=console"}
	if ipv6 {
		args = append(args, "--enable-ipv6")
	}
	fmt.Fprintf(w, "$ masqd %s   # in the node's namespace; no config file, so the defaults apply\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.NodeNS, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("masqd --once: %w", err)
	}

	fmt.Fprintln(w, "\nEach row is a real TCP connection from the pod; the receiver reports the source address it saw.")
	fmt.Fprintf(w, "Every destination is an address of the world namespace the demo made: nothing leaves this machine.\n")
	fmt.Fprintf(w, "Masqueraded means the node's address replaced the pod's (%s → %s).\n\n", testbed.PodIP4, testbed.NodeIP4)
	if err := connect(ctx, w, b, ipv6); err != nil {
		return err
	}

	// The table after the traffic, so that its counters mean something.
	out, err := b.Exec(ctx, b.NodeNS, "nft", "list", "table", "inet", "masqd")
	if err != nil {
		return fmt.Errorf("nft list table inet masqd: %w: %s", err, out)
	}
	fmt.Fprintf(w, "\n$ nft list table inet masqd   # in the node's namespace, after those connections\n%s\n", out)
	fmt.Fprintln(w, "Each counter is the number of the connections above that its rule decided: NAT rules see only a connection's first packet.")
	if ipv6 {
		fmt.Fprintln(w, "\nIPv6 has no default nonMasqueradeCIDRs (as in ip-masq-agent): list the cluster's IPv6 ranges to keep pod addresses.")
	}
	fmt.Fprintln(w, "\nRemoving the namespaces; nothing outside them was touched.")
	return nil
}

// connect makes one TCP connection from the pod to each destination of the
// test bed and prints a row per connection: the source the receiver saw,
// and whether that is the node's address.
func connect(ctx context.Context, w io.Writer, b *testbed.Bed, ipv6 bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tWHAT IT IS\tSOURCE SEEN\tMASQUERADED?")
	var errs []error
	for _, d := range testbed.Destinations {
		if d.Addr.Is6() && !ipv6 {
			continue
		}
		seen, err := b.SourceSeen(ctx, d.Addr)
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(tw, "%s\t%s\t-\tno answer\n", d.Addr, d.What)
			continue
		}
		verdict := "no  (pod IP kept)"
		if seen.Addr() == testbed.NodeIP4 || seen.Addr() == testbed.NodeIP6 {
			verdict = "yes (node IP)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Addr, d.What, seen.Addr(), verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// whyMasquerade is the demo's one sentence on what masquerading is for.
const whyMasquerade = "Why masquerade: a pod's address means nothing outside the cluster, so replies could not find their way back; " +
	"for traffic leaving the cluster the node puts its own address in the pod's place, and traffic to the cluster's ranges keeps the pod's address."
