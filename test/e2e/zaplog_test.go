package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// logLines decodes out, masqd's log in --log-format=json, one object per
// line, and fails the test naming a line that is not one. A last line
// without its newline is still being written and is left out.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	complete := out[:strings.LastIndexByte(out, '\n')+1]
	for i, l := range strings.Split(strings.TrimSuffix(complete, "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %d is not JSON (%v): %q", i+1, err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

// contains, as the value wanted of a field by findLog, matches a string
// field that holds it: an error's text, a summary.
type contains string

// field returns the value at a dotted path ("conntrack.removed") of a log
// line's nested objects, or nil.
func field(line map[string]any, path string) any {
	var v any = line
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// findLog returns the lines with the message msg whose fields are as
// wanted. want holds pairs of a field's dotted path and its value: a
// string, compared with the value as fmt.Sprint prints it (5, true, text),
// or a contains.
func findLog(lines []map[string]any, msg string, want ...any) []map[string]any {
	if len(want)%2 != 0 {
		panic(fmt.Sprintf("findLog: want holds pairs of a path and a value, got %q", want))
	}
	var found []map[string]any
lines:
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		for i := 0; i < len(want); i += 2 {
			v := field(l, want[i].(string))
			switch w := want[i+1].(type) {
			case contains:
				if s, ok := v.(string); !ok || !strings.Contains(s, string(w)) {
					continue lines
				}
			default:
				if v == nil || fmt.Sprint(v) != fmt.Sprint(w) {
					continue lines
				}
			}
		}
		found = append(found, l)
	}
	return found
}

// agentLog returns the lines the agent p has logged so far.
func agentLog(t *testing.T, p *agentProc) []map[string]any {
	t.Helper()
	out, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return logLines(t, string(out))
}

// logHas is for eventually: the agent p has logged at least n lines with
// the message msg and the fields want (as findLog).
func logHas(t *testing.T, p *agentProc, n int, msg string, want ...any) func() error {
	return func() error {
		lines := agentLog(t, p)
		if got := len(findLog(lines, msg, want...)); got < n {
			return fmt.Errorf("%d of the %d lines of %s have msg %q and fields %q, want at least %d", got, len(lines), p.log, msg, want, n)
		}
		return nil
	}
}

// masqdLog runs masqd with args in the node namespace, logging in JSON,
// fails the test if it exits non-zero, and returns its log lines and, for
// failure messages, its output.
func masqdLog(t *testing.T, b *testbed.Bed, args ...string) ([]map[string]any, string) {
	t.Helper()
	code, stdout, stderr := masqdCode(t, b, append(args, "--log-format=json")...)
	if code != 0 {
		t.Fatalf("masqd %s: exit code %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return logLines(t, stderr), stdout + stderr
}
