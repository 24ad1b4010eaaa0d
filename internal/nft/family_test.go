package nft

import (
	"net/netip"
	"testing"
)

// TestFamilyTable checks that each family's parameters agree with each other
// and with the address family itself, so a typo in one cannot hide behind
// golden files that only exercise common cases.
func TestFamilyTable(t *testing.T) {
	for _, f := range families {
		fi := f.info()
		if got := addrFamily(fi.zero); got != f {
			t.Errorf("%s: zero %s is of family %s", fi.name, fi.zero, got)
		}
		if fi.zero.BitLen() != fi.addrLen*8 || int(fi.key.Bytes) != fi.addrLen {
			t.Errorf("%s: address length %d, zero %d bits, set key %d bytes", fi.name, fi.addrLen, fi.zero.BitLen(), fi.key.Bytes)
		}
		if want := lastAddr(netip.PrefixFrom(fi.zero, 0)); fi.max != want || !isMax(fi.max) {
			t.Errorf("%s: max %s, want %s", fi.name, fi.max, want)
		}
		if addrFamily(fi.linkLocal.Addr()) != f || !fi.linkLocal.Addr().IsLinkLocalUnicast() || fi.linkLocal.Masked() != fi.linkLocal {
			t.Errorf("%s: link-local prefix %s", fi.name, fi.linkLocal)
		}
		// The source address ends where the destination address starts.
		if fi.saddr+uint32(fi.addrLen) != fi.daddr {
			t.Errorf("%s: saddr at %d, %d bytes long, daddr at %d", fi.name, fi.saddr, fi.addrLen, fi.daddr)
		}
		if f.String() != fi.name || (fi.suffix != "") != (f != IPv4) {
			t.Errorf("%s: String %q, suffix %q", fi.name, f, fi.suffix)
		}
	}
}
