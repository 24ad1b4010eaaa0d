package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFiles creates dir/name with content for each entry.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"config": "nonMasqueradeCIDRs: [192.0.2.0/24]\nmasqLinkLocal: true\n",
		"empty":  "",
		"bad":    "masqLinkLocal: maybe\n",
	})
	tests := []struct {
		name string
		path string
		want *Config
	}{
		{"file", filepath.Join(dir, "config"), &Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), MasqLinkLocal: true,
			ResyncInterval: DefaultResyncInterval, Files: []string{filepath.Join(dir, "config")}}},
		{"empty file", filepath.Join(dir, "empty"), &Config{NonMasqueradeCIDRs: rfc1918,
			ResyncInterval: DefaultResyncInterval, Files: []string{filepath.Join(dir, "empty")}}},
		{"missing file", filepath.Join(dir, "missing"), &Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: DefaultResyncInterval}},
		{"missing directory", filepath.Join(dir, "missing", "config"), &Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: DefaultResyncInterval}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.path, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpConfig); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("invalid file", func(t *testing.T) {
		path := filepath.Join(dir, "bad")
		_, err := Load(path, Options{})
		checkProblems(t, err, path, []want{{line: 1, col: 16, field: "masqLinkLocal", msg: `not the string "maybe"`}})
	})
}

func TestLoadDirectory(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opts  Options
		want  Config // Files relative to the directory
	}{
		{"no files", nil, Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: DefaultResyncInterval}},
		{"only hidden files", map[string]string{".config": "masqLinkLocal: true\n", "..data/config": "masqLinkLocal: true\n"},
			Options{NoMasqAllReservedRanges: true}, Config{NonMasqueradeCIDRs: reservedCIDRs, ResyncInterval: DefaultResyncInterval}},
		{"one file", map[string]string{"config": "nonMasqueradeCIDRs: [192.0.2.0/24]\n"}, Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), ResyncInterval: DefaultResyncInterval, Files: []string{"config"}}},
		{"lists joined in name order", map[string]string{
			"b.json": `{"nonMasqueradeCIDRs": ["198.51.100.0/24", "192.0.2.0/24"]}`,
			"a.yaml": "nonMasqueradeCIDRs: [203.0.113.0/24]\n",
			"c.yaml": "masqLinkLocal: true\n",
		}, Options{}, Config{NonMasqueradeCIDRs: prefixes("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"), MasqLinkLocal: true,
			ResyncInterval: DefaultResyncInterval, Files: []string{"a.yaml", "b.json", "c.yaml"}}},
		{"an empty list joins as nothing", map[string]string{
			"a": "nonMasqueradeCIDRs: []\n",
			"b": "resyncInterval: 10s\n",
		}, Options{}, Config{NonMasqueradeCIDRs: []netip.Prefix{}, ResyncInterval: 10 * time.Second, Files: []string{"a", "b"}}},
		{"booleans ORed", map[string]string{
			"a": "masqLinkLocal: true\nmasqLinkLocalIPv6: false\n",
			"b": "masqLinkLocal: false\nmasqLinkLocalIPv6: true\n",
		}, Options{}, Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true, MasqLinkLocalIPv6: true,
			ResyncInterval: DefaultResyncInterval, Files: []string{"a", "b"}}},
		{"shortest resyncInterval, smallest non-zero cidrLimit", map[string]string{
			"a": "resyncInterval: 2m\ncidrLimit: 10\n",
			"b": "resyncInterval: 30s\ncidrLimit: 0\n",
			"c": "resyncInterval: 45s\ncidrLimit: 5\n",
		}, Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: 30 * time.Second, CIDRLimit: 5,
			Files: []string{"a", "b", "c"}}},
		{"a longer resyncInterval than the default wins if alone", map[string]string{"a": "resyncInterval: 5m\n"}, Options{},
			Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: 5 * time.Minute, Files: []string{"a"}}},
		{"empty files count as read", map[string]string{"a": "", "b": "# nothing\n"}, Options{},
			Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: DefaultResyncInterval, Files: []string{"a", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			got, err := Load(dir, tt.opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := tt.want
			want.Files = nil
			for _, f := range tt.want.Files {
				want.Files = append(want.Files, filepath.Join(dir, f))
			}
			if diff := cmp.Diff(&want, got, cmpConfig); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDirectoryProblems(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml": "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 11.0.0.0/8\ncidrLimit: 3\n",
		"b.json": "{\n  \"nonMasqueradeCIDRs\": [\"12.0.0.0/8\", \"13.0.0.1/8\"],\n  \"resyncInterval\": \"1x\"\n}\n",
		"c.yaml": "masqLinkLocal: \"yes\"\n",
	})
	_, err := Load(dir, Options{})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load error = %v, want *Error", err)
	}
	want := []Problem{
		{File: filepath.Join(dir, "b.json"), Line: 2, Column: 40, Field: "nonMasqueradeCIDRs[1]",
			Message: "13.0.0.1/8 has host bits set", Fix: "did you mean 13.0.0.0/8?"},
		{File: filepath.Join(dir, "b.json"), Line: 3, Column: 21, Field: "resyncInterval",
			Message: `"1x" is not a duration`, Fix: `write a duration such as "60s" or "500ms"`},
		{File: filepath.Join(dir, "c.yaml"), Line: 1, Column: 16, Field: "masqLinkLocal",
			Message: `must be true or false, not the string "yes"`, Fix: "write true"},
		{File: filepath.Join(dir, "a.yaml"), Line: 4, Column: 12, Field: "cidrLimit",
			Message: "2 files have 4 nonMasqueradeCIDRs entries in all, over this limit of 3", Fix: "raise cidrLimit or remove entries"},
	}
	if diff := cmp.Diff(want, cerr.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestLoadConfigMap reads a directory laid out as kubelet mounts a ConfigMap:
// each key a symlink through ..data into a timestamped directory.
func TestLoadConfigMap(t *testing.T) {
	dir := t.TempDir()
	const stamp = "..2026_11_25_00_00_00.123"
	writeFiles(t, dir, map[string]string{
		stamp + "/config": "nonMasqueradeCIDRs: [192.0.2.0/24]\nresyncInterval: 30s\n",
	})
	for link, target := range map[string]string{"..data": stamp, "config": "..data/config"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), ResyncInterval: 30 * time.Second,
		Files: []string{filepath.Join(dir, "config")}}
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	// kubelet's update: a new directory, ..data swapped by rename, the old one removed.
	const stamp2 = "..2026_11_25_00_05_00.456"
	writeFiles(t, dir, map[string]string{stamp2 + "/config": "nonMasqueradeCIDRs: [198.51.100.0/24]\n"})
	if err := os.Symlink(stamp2, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, stamp)); err != nil {
		t.Fatal(err)
	}
	got, err = Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load after the swap: %v", err)
	}
	want = &Config{NonMasqueradeCIDRs: prefixes("198.51.100.0/24"), ResyncInterval: DefaultResyncInterval,
		Files: []string{filepath.Join(dir, "config")}}
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Load after the swap (-want +got):\n%s", diff)
	}

	// Loading the key's path, as ip-masq-agent's default path does.
	got, err = Load(filepath.Join(dir, "config"), Options{})
	if err != nil || len(got.NonMasqueradeCIDRs) != 1 {
		t.Errorf("Load of the symlinked file = %+v, %v", got, err)
	}
}

func TestLoadDirectorySkipsDanglingLinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": "masqLinkLocal: true\n"})
	if err := os.Symlink("..data/gone", filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []string{filepath.Join(dir, "a")}; !cmp.Equal(got.Files, want) || !got.MasqLinkLocal {
		t.Errorf("Load = %+v, want files %v and masqLinkLocal", got, want)
	}
}

func TestLoadReadErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, culprit string)
		is    error
		msg   string
	}{
		{"subdirectory", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"a": "masqLinkLocal: true\n", "nested/config": ""})
			return dir, filepath.Join(dir, "nested")
		}, ErrNotRegular, "not a regular file"},
		{"FIFO", func(t *testing.T, dir string) (string, string) {
			fifo := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			return dir, fifo
		}, ErrNotRegular, "not a regular file"},
		{"too large", func(t *testing.T, dir string) (string, string) {
			path := filepath.Join(dir, "huge")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Sparse: no disk used, and the cap is checked before reading.
			if err := f.Truncate(MaxFileSize + 1); err != nil {
				t.Fatal(err)
			}
			return path, path
		}, ErrTooLarge, "file is larger than the 24 MiB cap"},
		{"path through a file", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"file": ""})
			path := filepath.Join(dir, "file", "config")
			return path, path
		}, syscall.ENOTDIR, "not a directory"},
		{"permission denied", func(t *testing.T, dir string) (string, string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads files whatever their mode")
			}
			writeFiles(t, dir, map[string]string{"config": "masqLinkLocal: true\n"})
			path := filepath.Join(dir, "config")
			if err := os.Chmod(path, 0); err != nil {
				t.Fatal(err)
			}
			return dir, path
		}, fs.ErrPermission, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, culprit := tt.setup(t, t.TempDir())
			done := make(chan struct{})
			var (
				cfg *Config
				err error
			)
			go func() {
				defer close(done)
				cfg, err = Load(path, Options{})
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked")
			}
			if cfg != nil || !errors.Is(err, tt.is) {
				t.Fatalf("Load = %+v, %v; want an error that is %v", cfg, err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "read config "+culprit+": ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not name %s and say %q", err, culprit, tt.msg)
			}
		})
	}
}

// TestLoadOrRead: "-" reads the given reader as standard input, by name;
// any other path is loaded.
func TestLoadOrRead(t *testing.T) {
	cfg, err := LoadOrRead(StdinPath, strings.NewReader("nonMasqueradeCIDRs: [192.0.2.0/24]\n"), Options{})
	if err != nil || len(cfg.NonMasqueradeCIDRs) != 1 || !slices.Equal(cfg.Files, []string{StdinName}) {
		t.Errorf("stdin: %+v, %v; want one CIDR from %s", cfg, err, StdinName)
	}
	path := filepath.Join(t.TempDir(), "missing")
	if _, err := LoadOrRead(path, strings.NewReader("not read"), Options{}); err != nil {
		t.Errorf("a missing file: %v, want the defaults", err)
	}
	if DisplayName(StdinPath) != StdinName || DisplayName(path) != path {
		t.Errorf("DisplayName: %q, %q", DisplayName(StdinPath), DisplayName(path))
	}
}
