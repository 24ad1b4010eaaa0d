package agent

import (
	"strings"
	"testing"
)

// TestConfigWarnings: a config ip-masq-agent accepted is applied as it
// applied it, each warning is logged, and masqd_config_warnings counts them
// for every valid read, also when the settings did not change.
func TestConfigWarnings(t *testing.T) {
	h := newHarness(t, "nonMasqueradeCIDRs: [192.0.2.0/24]\nmasqLinkLocal: yes\nresyncIntervl: 5s\n")
	if !strings.Contains(h.k.text(), "192.0.2.0/24") || strings.Contains(h.k.text(), "169.254.0.0/16") || !h.ready() {
		t.Fatalf("ready %v, kernel:\n%s", h.ready(), h.k.text())
	}
	if got := h.metric("masqd_config_warnings"); got != 2 {
		t.Errorf("masqd_config_warnings = %v, want 2", got)
	}
	var got []string
	for _, e := range h.logs.FilterMessage("config warning").All() {
		got = append(got, e.ContextMap()["warning"].(string))
	}
	want := []string{
		h.path + ":2:16: masqLinkLocal: yes read as true, as ip-masq-agent did (YAML 1.1) (fix: write true)",
		h.path + `:3:1: resyncIntervl: unknown key "resyncIntervl" is ignored, as ip-masq-agent ignored it (fix: did you mean "resyncInterval"?)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same warnings again are not logged again.
	h.fileChanged()
	if n := h.logs.FilterMessage("config warning").Len(); n != 2 {
		t.Errorf("%d warnings logged after a reload of the same file, want the 2 of the start", n)
	}
	h.write("nonMasqueradeCIDRs: [192.0.2.0/24]\nmasqLinkLocal: true\n")
	h.fileChanged()
	if got := h.metric("masqd_config_warnings"); got != 0 {
		t.Errorf("after the fix, masqd_config_warnings = %v, want 0", got)
	}
	// A typo added beside unchanged settings is logged, though nothing is
	// reloaded.
	h.write("nonMasqueradeCIDRs: [192.0.2.0/24]\nmasqLinkLocal: true\nmasqLinkLocl: false\n")
	h.fileChanged()
	last := h.logs.FilterMessage("config warning").All()
	if len(last) != 3 || last[2].ContextMap()["warning"] != h.path+`:3:1: masqLinkLocl: unknown key "masqLinkLocl" is ignored, as ip-masq-agent ignored it (fix: did you mean "masqLinkLocal"?)` {
		t.Errorf("warnings logged: %v", last)
	}
	if got := h.metric("masqd_config_warnings"); got != 1 || h.metric("masqd_config_loads_total", "result", "unchanged") != 3 {
		t.Errorf("masqd_config_warnings = %v, unchanged loads %v; want 1 and 3", got, h.metric("masqd_config_loads_total", "result", "unchanged"))
	}
}
