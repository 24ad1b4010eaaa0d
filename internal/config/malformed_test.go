package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// malformedCase is text users write by mistake. wants are the problems Load
// reports for the file holding it, nil when it is accepted with cidrs
// nonMasqueradeCIDRs.
type malformedCase struct {
	name  string
	text  string
	wants []want
	// cidrs and warns are the nonMasqueradeCIDRs entries and the warnings
	// of a text that is accepted.
	cidrs, warns int
}

// aliasBomb nests ten lists of ten aliases ten deep: 10^10 strings if
// expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString(`a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]` + "\n")
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		fmt.Fprintf(&b, "%s: &%s [%s]\n", name, name, strings.TrimSuffix(strings.Repeat("*"+prev+", ", 10), ", "))
		prev = name
	}
	b.WriteString("nonMasqueradeCIDRs: *j\n")
	return b.String()
}

const (
	// deep is one level past the nesting yaml.v3 and encoding/json allow.
	deep = 10001
	// long is the length of a very long line, key or value.
	long = 1 << 20
)

// elf is the start of an x86-64 executable.
const elf = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x01\x00\x00\x00\x40\x10\x40\x00"

// malformedCases are the texts TestLoadMalformed loads; functions build
// them, so that the megabyte-long ones exist only while a test runs.
func malformedCases() []malformedCase {
	return slices.Concat(acceptedMalformed(), rejectedMalformed(), textAndSizeCases())
}

// acceptedMalformed are texts that editors and tools mangle, and
// ip-masq-agent accepted: masqd reads them, some with a warning.
func acceptedMalformed() []malformedCase {
	return []malformedCase{
		// Accepted, though editors and tools mangle them.
		{name: "UTF-8 BOM", text: "\ufeffnonMasqueradeCIDRs: [10.0.0.0/8]\n", cidrs: 1},
		{name: "UTF-8 BOM before JSON", text: "\ufeff{\"nonMasqueradeCIDRs\": [\"10.0.0.0/8\", \"192.0.2.0/24\"]}\n", cidrs: 2},
		{name: "CRLF line ends", text: "nonMasqueradeCIDRs:\r\n  - 10.0.0.0/8\r\nresyncInterval: 60s\r\n", cidrs: 1},
		{name: "CRLF JSON", text: "{\r\n  \"nonMasqueradeCIDRs\": [\r\n    \"10.0.0.0/8\"\r\n  ]\r\n}\r\n", cidrs: 1},
		{name: "anchor and alias", text: "x: &n [10.0.0.0/8]\n", cidrs: 3, warns: 1},
		{name: "alias as the list", text: "nonMasqueradeCIDRs: &n [10.0.0.0/8, 192.0.2.0/24]\nmasqLinkLocal: &t true\nmasqLinkLocalIPv6: *t\n", cidrs: 2, warns: 1},
		{name: "JSON trailing comma, read as YAML", text: `{"nonMasqueradeCIDRs": ["10.0.0.0/8",],}`, cidrs: 1, warns: 1},
		// ip-masq-agent applied the last of two equal keys.
		{name: "duplicate key", text: "masqLinkLocal: true\nresyncInterval: 60s\nmasqLinkLocal: false\n", cidrs: 3, warns: 1},
		{name: "duplicate key, JSON", text: `{"cidrLimit": 5, "cidrLimit": 6}`, cidrs: 3, warns: 1},
	}
}

// rejectedMalformed are broken YAML and JSON, and values out of range.
func rejectedMalformed() []malformedCase {
	// The entries are placed where the anchored list writes them.
	var bomb []want
	for i := range 10 {
		bomb = append(bomb, want{line: 10, col: 8 + 4*i, field: entryName(keyCIDRs, i), msg: "must be a CIDR string, not a list", fix: "such as"})
	}
	return []malformedCase{
		{name: "tab indentation", text: "nonMasqueradeCIDRs:\n\t- 10.0.0.0/8\n",
			wants: []want{{line: 2, col: 1, msg: "a tab in the indentation", fix: "indent with spaces"}}},
		{name: "tab indentation, CRLF", text: "nonMasqueradeCIDRs:\r\n  - 10.0.0.0/8\r\n\t- 192.0.2.0/24\r\n",
			wants: []want{{line: 3, col: 1, msg: "a tab in the indentation", fix: "indent with spaces"}}},
		{name: "CRLF, problem position", text: "masqLinkLocal: true\r\nnonMasqueradeCIDRs:\r\n  - 10.0.0.1/8\r\n",
			wants: []want{{line: 3, col: 5, field: "nonMasqueradeCIDRs[0]", msg: "has host bits set", fix: "did you mean 10.0.0.0/8?"}}},
		{name: "alias bomb", text: aliasBomb(), wants: bomb},
		{name: "merge key", text: "base: &b {masqLinkLocal: true}\n<<: *b\n",
			wants: []want{{line: 2, col: 1, msg: "merge keys (<<) are not supported", fix: "write the keys out"}}},
		{name: "huge resyncInterval", text: "resyncInterval: 1e400\n",
			wants: []want{{line: 1, col: 17, field: "resyncInterval", msg: `"1e400" is not a duration`, fix: `such as "60s"`}}},
		{name: "huge resyncInterval, JSON", text: `{"resyncInterval": 1e400}`,
			wants: []want{{line: 1, col: 20, field: "resyncInterval", msg: "must be a duration with a unit, not a number", fix: `such as "60s"`}}},
		{name: "resyncInterval past time.Duration", text: "resyncInterval: 9999999999999h\n",
			wants: []want{{line: 1, col: 17, field: "resyncInterval", msg: `"9999999999999h" is not a duration`, fix: `such as "60s"`}}},
		{name: "huge cidrLimit", text: "cidrLimit: 99999999999999999999\n",
			wants: []want{{line: 1, col: 12, field: "cidrLimit", msg: "99999999999999999999 is out of range", fix: "write a whole number"}}},
		{name: "huge cidrLimit, JSON", text: `{"cidrLimit": 99999999999999999999}`,
			wants: []want{{line: 1, col: 15, field: "cidrLimit", msg: "99999999999999999999 is out of range", fix: "write a whole number"}}},
		{name: "huge negative cidrLimit", text: "cidrLimit: -99999999999999999999\n",
			wants: []want{{line: 1, col: 12, field: "cidrLimit", msg: "-99999999999999999999 is out of range", fix: "write a whole number"}}},
		// ip-masq-agent read keys in any case (encoding/json): read, with a
		// warning (TestKeyCaseWarnings).
		{name: "PascalCase keys", text: "NonMasqueradeCIDRs: [10.0.0.0/8]\nMasqLinkLocal: true\nResyncInterval: 60s\n", cidrs: 1, warns: 3},
		{name: "PascalCase keys, JSON", text: `{"NonMasqueradeCIDRs": ["10.0.0.0/8"], "CIDRLimit": 1}`, cidrs: 1, warns: 2},
		// ip-masq-agent ignored every key and applied its defaults: so does
		// masqd, and each key's warning says what the file is (TestCompat).
		{name: "the ConfigMap manifest instead of its config", text: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ip-masq-agent\ndata:\n  config: |\n    nonMasqueradeCIDRs: [10.0.0.0/8]\n",
			cidrs: 3, warns: 4},
	}
}

// textAndSizeCases are files that are not text, and texts too long or too
// deep.
func textAndSizeCases() []malformedCase {
	textFix := "a config is UTF-8 text"
	return []malformedCase{
		{name: "binary garbage", text: elf,
			wants: []want{{line: 1, col: 1, msg: "control character U+007F is not text", fix: textFix}}},
		{name: "every byte", text: func() string {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return string(b)
		}(), wants: []want{{line: 1, col: 1, msg: "control character U+0000 is not text", fix: textFix}}},
		{name: "NUL byte", text: "masqLinkLocal: true\nnonMasqueradeCIDRs: [10.0.0.0/8]\x00\n",
			wants: []want{{line: 2, col: 33, msg: "control character U+0000 is not text", fix: textFix}}},
		{name: "NUL byte in a JSON string", text: "{\n  \"nonMasqueradeCIDRs\": [\"10.0.0.0/8\x00\"]\n}\n",
			wants: []want{{line: 2, col: 37, msg: "invalid character '\\x00' in string literal", fix: "correct the JSON syntax"}}},
		{name: "Latin-1 comment", text: "# caf\xe9\nmasqLinkLocal: true\n",
			wants: []want{{line: 1, col: 6, msg: "byte 0xe9 is not UTF-8 text", fix: textFix}}},
		{name: "very long line", text: "nonMasqueradeCIDRs: [" + strings.Repeat("10.0.0.0/8, ", long/12) + "10.0.0.1/8]\n",
			wants: []want{{line: 1, col: 21 + 12*(long/12) + 1, field: entryName(keyCIDRs, long/12), msg: "10.0.0.1/8 has host bits set"}}},
		{name: "very long value", text: "resyncInterval: " + strings.Repeat("9", long) + "s\n",
			wants: []want{{line: 1, col: 17, field: "resyncInterval", msg: `"` + strings.Repeat("9", maxShown) + `…" is not a duration`}}},
		{name: "very long key, JSON", text: `{"` + strings.Repeat("k", long) + `": 1}`, cidrs: 3, warns: 1},
		{name: "very long CIDR", text: "nonMasqueradeCIDRs: [\"" + strings.Repeat("1", long) + "/8\"]\n",
			wants: []want{{line: 1, col: 22, field: entryName(keyCIDRs, 0), msg: `"` + strings.Repeat("1", maxShown) + `…" is not a CIDR`}}},
		{name: "deep nesting", text: "nonMasqueradeCIDRs: " + strings.Repeat("[", deep) + strings.Repeat("]", deep) + "\n",
			wants: []want{{msg: "exceeded max depth of 10000", fix: "correct the YAML syntax"}}},
		{name: "deep nesting, JSON", text: `{"nonMasqueradeCIDRs": ` + strings.Repeat("[", deep) + strings.Repeat("]", deep) + "}",
			wants: []want{{line: 1, col: 10023, msg: "exceeded max depth", fix: "correct the JSON syntax"}}},
		{name: "deep mappings", text: "masqLinkLocal: " + strings.Repeat("{a: ", deep) + strings.Repeat("}", deep) + "\n",
			wants: []want{{msg: "exceeded max depth of 10000", fix: "correct the YAML syntax"}}},
	}
}

// loadMeasured loads path with the default options and reports how long it
// took and how many bytes it allocated.
func loadMeasured(path string) (cfg *Config, elapsed time.Duration, alloc uint64, err error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	cfg, err = Load(path, Options{})
	elapsed = time.Since(start)
	runtime.ReadMemStats(&after)
	return cfg, elapsed, after.TotalAlloc - before.TotalAlloc, err
}

// TestLoadMalformed writes each malformed text to a file and loads it: every
// problem names the file and, where there is one, the line, column and field,
// and says how to fix it; nothing takes long or much memory.
func TestLoadMalformed(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range malformedCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, elapsed, alloc, err := loadMeasured(path)
			// Generous bounds for a loaded machine; an expanded alias bomb or a
			// quadratic walk would take minutes and gigabytes.
			if alloc > 64*uint64(len(tc.text))+16<<20 || elapsed > 10*time.Second {
				t.Errorf("Load of %d bytes took %v and allocated %d bytes", len(tc.text), elapsed, alloc)
			}
			if tc.wants == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if len(cfg.NonMasqueradeCIDRs) != tc.cidrs {
					t.Errorf("Load = %+v, want %d nonMasqueradeCIDRs", cfg, tc.cidrs)
				}
				ws := cfg.Warnings()
				if len(ws) != tc.warns {
					t.Errorf("warnings %v, want %d", ws, tc.warns)
				}
				for _, w := range ws {
					if w.Fix == "" || len(w.String()) > 1024 {
						t.Errorf("warning without a fix, or too long to read: %q", shown(w.String()))
					}
				}
				return
			}
			if cfg != nil {
				t.Errorf("Load = %+v, want nil", cfg)
			}
			checkProblems(t, err, path, tc.wants)
			var cerr *Error
			if errors.As(err, &cerr) {
				for _, p := range cerr.Problems {
					if p.Fix == "" || len(p.String()) > 1024 {
						t.Errorf("problem without a fix, or too long to read: %q", shown(p.String()))
					}
				}
			}
		})
	}
}

// TestLoadTooLarge loads a sparse 100 MB file: it fails from the file's size
// alone, in about the time of a stat, without reading or allocating it.
func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, elapsed, alloc, err := loadMeasured(path)
	t.Logf("Load of a 100 MB file: %v, %d bytes allocated", elapsed, alloc)
	if cfg != nil || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load = %+v, %v; want ErrTooLarge", cfg, err)
	}
	for _, s := range []string{"read config " + path + ": ", "larger than the 24 MiB cap", "104857600 bytes", "fix: "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if alloc > 1<<20 || elapsed > 5*time.Second {
		t.Errorf("Load took %v and allocated %d bytes: it read the file", elapsed, alloc)
	}
}

// TestLoadBadFiles loads paths that are not config files.
func TestLoadBadFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, culprit string)
		is    error
		says  []string
	}{
		{"an executable", func(t *testing.T, dir string) (string, string) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			return exe, exe
		}, nil, []string{":1:1: control character U+007F is not text", "fix: a config is UTF-8 text"}},
		{"a device in a config directory", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"config": "masqLinkLocal: true\n"})
			link := filepath.Join(dir, "null")
			if err := os.Symlink("/dev/null", link); err != nil {
				t.Fatal(err)
			}
			return dir, link
		}, ErrNotRegular, []string{"not a regular file", `names starting with "." are skipped`}},
		{"a device", func(t *testing.T, dir string) (string, string) {
			return "/dev/zero", "/dev/zero"
		}, ErrNotRegular, []string{"not a regular file"}},
		{"a symlink loop", func(t *testing.T, dir string) (string, string) {
			path := filepath.Join(dir, "config")
			if err := os.Symlink("config", path); err != nil {
				t.Fatal(err)
			}
			return path, path
		}, unix.ELOOP, []string{"too many levels of symbolic links"}},
		{"a symlink loop in a config directory", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"a": "masqLinkLocal: true\n"})
			path := filepath.Join(dir, "b")
			if err := os.Symlink("b", path); err != nil {
				t.Fatal(err)
			}
			return dir, path
		}, unix.ELOOP, []string{"too many levels of symbolic links"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, culprit := tt.setup(t, t.TempDir())
			cfg, err := Load(path, Options{})
			if cfg != nil || err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Load = %+v, %v; want an error that is %v", cfg, err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), culprit+":") && !strings.HasPrefix(err.Error(), "read config "+culprit+": ") {
				t.Errorf("error %q does not start with %s", shown(err.Error()), culprit)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", shown(err.Error()), s)
				}
			}
		})
	}
}

// TestLoadDanglingSymlink: a link to nothing reads as a missing file, the
// defaults, because kubelet's ConfigMap update leaves one for a moment.
func TestLoadDanglingSymlink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.Symlink("..data/config", path); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, Options{})
	if err != nil || !cfg.Equal(Default(Options{})) || len(cfg.Files) != 0 {
		t.Fatalf("Load = %+v, %v; want the defaults from no file", cfg, err)
	}
}

// TestLoadPermissionDenied reads unreadable files and directories as root
// without the capabilities that let root read anything.
func TestLoadPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH; TestLoadReadErrors covers other users")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, culprit string)
	}{
		{"a file", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"config": "masqLinkLocal: true\n"})
			path := filepath.Join(dir, "config")
			chmod(t, path, 0o200)
			return path, path
		}},
		{"a file in a config directory", func(t *testing.T, dir string) (string, string) {
			writeFiles(t, dir, map[string]string{"a": "masqLinkLocal: true\n", "b": "masqLinkLocal: true\n"})
			chmod(t, filepath.Join(dir, "b"), 0)
			return dir, filepath.Join(dir, "b")
		}},
		{"a config directory", func(t *testing.T, dir string) (string, string) {
			path := filepath.Join(dir, "config")
			writeFiles(t, path, map[string]string{"a": "masqLinkLocal: true\n"})
			chmod(t, path, 0o300)
			return path, path
		}},
		{"a directory above", func(t *testing.T, dir string) (string, string) {
			above := filepath.Join(dir, "etc")
			writeFiles(t, above, map[string]string{"config": "masqLinkLocal: true\n"})
			chmod(t, above, 0o600)
			return filepath.Join(above, "config"), filepath.Join(above, "config")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, culprit := tt.setup(t, t.TempDir())
			cfg, err := loadWithoutDACOverride(path)
			if cfg != nil || !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("Load = %+v, %v; want permission denied", cfg, err)
			}
			for _, s := range []string{"read config " + culprit + ": ", "permission denied", "fix: ", "defaultMode", "chmod"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	// Let t.TempDir's cleanup, with every capability, remove it.
	t.Cleanup(func() { os.Chmod(path, 0o700) })
}

// loadWithoutDACOverride loads path on an OS thread whose effective
// capabilities lack CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that file
// modes bind root too. Capabilities belong to a thread: the goroutine locks
// its thread and exits without unlocking it, and the runtime ends the thread
// rather than hand it, weakened, to other goroutines.
func loadWithoutDACOverride(path string) (*Config, error) {
	type result struct {
		cfg *Config
		err error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{err: fmt.Errorf("capget: %w", err)}
			return
		}
		data[0].Effective &^= 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- result{err: fmt.Errorf("capset: %w", err)}
			return
		}
		cfg, err := Load(path, Options{})
		done <- result{cfg, err}
	}()
	r := <-done
	return r.cfg, r.err
}

// TestYAMLSyntaxScanIsFlat: explaining a syntax error looks for tabs line by
// line without a slice of every line, which for a file of blank lines under
// the cap would take 24 bytes a byte.
func TestYAMLSyntaxScanIsFlat(t *testing.T) {
	data := []byte("nonMasqueradeCIDRs: [\n" + strings.Repeat("\n", 4<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, msg, _ := yamlSyntax(data, errors.New("yaml: line 4194305: did not find expected node content"))
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("yamlSyntax of %d lines allocated %d bytes", len(data), alloc)
	}
	if msg != "invalid YAML: did not find expected node content" {
		t.Errorf("message %q", msg)
	}
}
