package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckModule builds a module with a function of 81 lines, one of 80,
// an overgrown cmd/masqd and a nested module, and expects exactly the
// first and the third to be reported.
func TestCheckModule(t *testing.T) {
	root := t.TempDir()
	body := func(name string, lines int) string {
		return "func " + name + "() {\n" + strings.Repeat("\t_ = 0\n", lines-2) + "}\n"
	}
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example\n")
	write("a/a.go", "package a\n\n"+body("long", 81)+body("fits", 80))
	write("cmd/masqd/main.go", "package main\n"+strings.Repeat("\n", maxCmdLines))
	write("cmd/masqd/main_test.go", "package main\n"+strings.Repeat("\n", maxCmdLines))
	write("nested/go.mod", "module nested\n")
	write("nested/n.go", "package n\n\n"+body("ignored", 200))

	problems, err := checkModule(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(root, "a/a.go") + ":3: long is 81 lines, want at most 80",
		filepath.Join(root, "cmd/masqd") + ": 701 lines of non-test code, want under 700",
	}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}
