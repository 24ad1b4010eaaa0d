package agent

import (
	"testing"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

func hashOf(t *testing.T, body string) string {
	t.Helper()
	h := newHarness(t, body)
	return nft.ConfigHash(h.a.good, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
}

func TestConfigInfo(t *testing.T) {
	h := newHarness(t, cfgA)
	hashA := nft.ConfigHash(h.a.good, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	if got := h.metric("masqd_config_info", "hash", hashA); got != 1 {
		t.Errorf("masqd_config_info{hash=%q} = %v after start, want 1", hashA, got)
	}
	h.write(cfgB)
	h.fileChanged()
	hashB := nft.ConfigHash(h.a.good, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	if hashB == hashA {
		t.Fatalf("configs A and B have the same hash %s", hashA)
	}
	if a, b := h.metric("masqd_config_info", "hash", hashA), h.metric("masqd_config_info", "hash", hashB); a != 0 || b != 1 {
		t.Errorf("after the change: hash A %v, hash B %v; want 0 (gone) and 1", a, b)
	}
	synced := h.logs.FilterMessage("synced").All()
	if got := synced[len(synced)-1].ContextMap()["config_hash"]; got != hashB {
		t.Errorf("sync log's config_hash = %v, want %s", got, hashB)
	}

	// An invalid config is not applied: the hash stays B's.
	h.write(bad)
	h.fileChanged()
	if b := h.metric("masqd_config_info", "hash", hashB); b != 1 {
		t.Errorf("after an invalid config: hash B %v, want 1", b)
	}
}

func TestConfigHashIgnoresFormatting(t *testing.T) {
	a := hashOf(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24]\n")
	b := hashOf(t, "# the same list\nnonMasqueradeCIDRs:\n  - 192.0.2.0/24\n  - 10.0.0.0/8\nresyncInterval: 60s\n")
	if a != b {
		t.Errorf("hash %s and %s for the same settings", a, b)
	}
	if d := nft.ConfigHash(config.Default(config.Options{}), nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}); d == a {
		t.Errorf("the defaults hash as %s, like a config that differs", d)
	}
}
