package main

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestAddForeignInterval checks that the repair benchmark's foreign change
// really lands in the kernel, as nft would show it.
func TestAddForeignInterval(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	set := newNamespaces()
	defer set.CloseAll()
	ctx := context.Background()
	ns, err := set.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := output(ctx, ns, "nft", "add table inet masqd; add set inet masqd nomasq-v4 { type ipv4_addr; flags interval; }"); err != nil {
		t.Fatal(err)
	}
	if _, err := addForeignInterval(ns, "masqd", "nomasq-v4", netip.MustParseAddr("10.251.0.0"), netip.MustParseAddr("10.251.1.0")); err != nil {
		t.Fatal(err)
	}
	out, err := output(ctx, ns, "nft", "list", "set", "inet", "masqd", "nomasq-v4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "10.251.0.0/24") {
		t.Errorf("the set lacks the element added:\n%s", out)
	}
	if _, err := addForeignInterval(ns, "masqd", "missing", netip.MustParseAddr("10.251.0.0"), netip.MustParseAddr("10.251.1.0")); err == nil {
		t.Error("adding to a missing set reported no error")
	}
}
