package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// maxFuncLines is the longest a function may be.
	maxFuncLines = 80
	// cmdDir and maxCmdLines: cmd/masqd's non-test code must stay under
	// maxCmdLines lines.
	cmdDir      = "cmd/masqd"
	maxCmdLines = 700
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/codesize MODULE_DIR...")
		os.Exit(2)
	}
	var problems []string
	for _, root := range os.Args[1:] {
		ps, err := checkModule(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "codesize:", err)
			os.Exit(2)
		}
		problems = append(problems, ps...)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "codesize: %d problem(s); split long functions into named steps, move code out of %s to the package that owns it\n", len(problems), cmdDir)
		os.Exit(1)
	}
}

// checkModule returns the size problems of the module rooted at root.
func checkModule(root string) ([]string, error) {
	var problems []string
	cmdLines := 0
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if filepath.ToSlash(filepath.Dir(rel)) == cmdDir && !strings.HasSuffix(path, "_test.go") {
			cmdLines += bytes.Count(src, []byte("\n"))
		}
		ps, err := longFuncs(fset, path, src)
		problems = append(problems, ps...)
		return err
	})
	if cmdLines >= maxCmdLines {
		problems = append(problems, fmt.Sprintf("%s: %d lines of non-test code, want under %d", filepath.Join(root, cmdDir), cmdLines, maxCmdLines))
	}
	return problems, err
}

// longFuncs returns a problem for each function in src over maxFuncLines.
func longFuncs(fset *token.FileSet, path string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
		if n := end.Line - start.Line + 1; n > maxFuncLines {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is %d lines, want at most %d", path, start.Line, fd.Name.Name, n, maxFuncLines))
		}
	}
	return problems, nil
}

// isModule reports whether dir holds a go.mod: another module.
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}
