package deploy

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath is masqd's module, whose packages the flag defaults may name.
const modulePath = "github.com/masqd/masqd"

// repoRoot is masqd's module root, seen from this directory.
const repoRoot = ".."

// documentedFlags are masqd's flags as documented. They stand in for
// cmd/masqd's definitions only while that package has no source. Only the
// defaults of config, health-bind-address and metrics-bind-address are
// checked against the DaemonSet; "" marks a default that does not matter here.
var documentedFlags = map[string]string{
	"config":                     "/etc/config/ip-masq-agent",
	"table":                      "masqd",
	"masq-chain":                 "",
	"nomasq-all-reserved-ranges": "false",
	"enable-ipv6":                "false",
	"random-fully":               "true",
	"to-ports":                   "",
	"log-format":                 "",
	"log-level":                  "",
	"metrics-bind-address":       "127.0.0.1:9761",
	"health-bind-address":        "0.0.0.0:9762",
	"cleanup-on-exit":            "false",
	"remove-legacy-rules":        "false",
}

// masqdFlags is masqd's command line as its source defines it.
type masqdFlags struct {
	// source tells where the flags came from, for the test log.
	source string
	// defaults maps every flag name to its default as text; a flag whose
	// default is not a constant (flag.Var, flag.Func) maps to "".
	defaults map[string]string
}

// defaultOf returns the default of a flag that must exist.
func (f masqdFlags) defaultOf(t tb, name string) string {
	t.Helper()
	d, ok := f.defaults[name]
	if !ok {
		t.Fatalf("masqd has no flag --%s (flags from %s)", name, f.source)
	}
	return d
}

// loadMasqdFlags reads masqd's flag definitions from ../cmd/masqd, or falls
// back to documentedFlags when that package has no Go source yet. It says in
// the test log which it used.
func loadMasqdFlags(t *testing.T) masqdFlags {
	t.Helper()
	dir := filepath.Join(repoRoot, "cmd", "masqd")
	files, err := parsePackage(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(files) == 0) {
		t.Logf("flags: %s has no Go source; using the documented defaults", dir)
		return masqdFlags{source: "the documented defaults", defaults: documentedFlags}
	}
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver()
	r.pkgs[modulePath+"/cmd/masqd"] = files
	defaults, err := r.flagDefaults(files)
	if err != nil {
		t.Fatalf("flags in %s: %v", dir, err)
	}
	t.Logf("flags: read %d flag definitions from %s", len(defaults), dir)
	return masqdFlags{source: dir, defaults: defaults}
}

// configDefaultPath reads internal/config's DefaultPath constant.
func configDefaultPath(t tb) string {
	t.Helper()
	r := newResolver()
	p, err := r.constant(modulePath+"/internal/config", "DefaultPath")
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// configKeys reads the keys of ip-masq-agent's config that internal/config
// accepts: the string constants named key*.
func configKeys(t *testing.T) []string {
	t.Helper()
	r := newResolver()
	files, err := r.pkg(modulePath + "/internal/config")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if !strings.HasPrefix(n.Name, "key") {
						continue
					}
					v, err := r.constant(modulePath+"/internal/config", n.Name)
					if err != nil {
						t.Fatal(err)
					}
					keys = append(keys, v)
				}
			}
		}
	}
	if len(keys) == 0 {
		t.Fatal("internal/config defines no key* constants: the config keys cannot be checked")
	}
	slices.Sort(keys)
	return keys
}

// parsePackage parses the non-test Go files of one directory.
func parsePackage(dir string) ([]*ast.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read package %s: %w", dir, err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// resolver evaluates the constant expressions flag defaults are written
// with: literals, and constants of masqd's own packages.
type resolver struct {
	pkgs map[string][]*ast.File // import path → parsed files
}

func newResolver() *resolver {
	return &resolver{pkgs: map[string][]*ast.File{}}
}

func (r *resolver) pkg(path string) ([]*ast.File, error) {
	if files, ok := r.pkgs[path]; ok {
		return files, nil
	}
	rel, ok := strings.CutPrefix(path, modulePath+"/")
	if !ok {
		return nil, fmt.Errorf("package %s is not masqd's", path)
	}
	files, err := parsePackage(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	r.pkgs[path] = files
	return files, nil
}

// constant evaluates the package-level constant name of package path.
func (r *resolver) constant(path, name string) (string, error) {
	files, err := r.pkg(path)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name {
						continue
					}
					if i >= len(vs.Values) {
						return "", fmt.Errorf("constant %s.%s has no explicit value", path, name)
					}
					return r.eval(path, f, vs.Values[i])
				}
			}
		}
	}
	return "", fmt.Errorf("package %s has no constant %s", path, name)
}

// eval evaluates e, written in file f of package path.
func (r *resolver) eval(path string, f *ast.File, e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			return strconv.Unquote(e.Value)
		}
		return e.Value, nil
	case *ast.ParenExpr:
		return r.eval(path, f, e.X)
	case *ast.Ident:
		if e.Name == "true" || e.Name == "false" {
			return e.Name, nil
		}
		return r.constant(path, e.Name)
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok {
			break
		}
		imp, ok := importPath(f, x.Name)
		if !ok {
			break
		}
		return r.constant(imp, e.Sel.Name)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			break
		}
		a, err := r.eval(path, f, e.X)
		if err != nil {
			return "", err
		}
		b, err := r.eval(path, f, e.Y)
		if err != nil {
			return "", err
		}
		return a + b, nil
	}
	return "", fmt.Errorf("cannot evaluate %s in %s: write it as a literal or a constant", exprText(e), path)
}

// importPath finds the masqd package that file f imports under name.
func importPath(f *ast.File, name string) (string, bool) {
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || !strings.HasPrefix(p, modulePath+"/") {
			continue
		}
		if imp.Name != nil && imp.Name.Name == name || imp.Name == nil && p[strings.LastIndex(p, "/")+1:] == name {
			return p, true
		}
	}
	return "", false
}

// flagPositions maps the methods of the standard flag package (on a FlagSet
// or the package itself) to the argument positions of the flag's name and
// default; -1 means the method takes no default.
var flagPositions = map[string][2]int{
	"String": {0, 1}, "Bool": {0, 1}, "Int": {0, 1}, "Int64": {0, 1}, "Uint": {0, 1},
	"Uint64": {0, 1}, "Float64": {0, 1}, "Duration": {0, 1},
	"StringVar": {1, 2}, "BoolVar": {1, 2}, "IntVar": {1, 2}, "Int64Var": {1, 2},
	"UintVar": {1, 2}, "Uint64Var": {1, 2}, "Float64Var": {1, 2}, "DurationVar": {1, 2},
	"TextVar": {1, 2},
	"Var":     {1, -1}, "Func": {0, -1}, "BoolFunc": {0, -1},
}

// flagDefaults finds every flag definition in files and evaluates its
// default. A flag defined twice (the agent and a sub-command) must have the
// same default both times.
func (r *resolver) flagDefaults(files []*ast.File) (map[string]string, error) {
	path := modulePath + "/cmd/masqd"
	defaults := map[string]string{}
	var errs []error
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			// zap.String("config", ...) is a log field, not a flag: calls
			// on an imported package other than flag are not definitions.
			if id, isIdent := sel.X.(*ast.Ident); isIdent && importsOther(f, id.Name) {
				return true
			}
			pos, ok := flagPositions[sel.Sel.Name]
			if !ok || len(call.Args) <= max(pos[0], pos[1]) {
				return true
			}
			lit, ok := call.Args[pos[0]].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil || name == "" {
				return true
			}
			def := ""
			if pos[1] >= 0 {
				def, err = r.eval(path, f, call.Args[pos[1]])
				if err != nil {
					errs = append(errs, fmt.Errorf("default of --%s: %w", name, err))
					return true
				}
			}
			if prev, ok := defaults[name]; ok && prev != def {
				errs = append(errs, fmt.Errorf("--%s is defined twice, with defaults %q and %q", name, prev, def))
			}
			defaults[name] = def
			return true
		})
	}
	if len(defaults) == 0 {
		errs = append(errs, errors.New("no flag definitions found"))
	}
	return defaults, errors.Join(errs...)
}

// importsOther reports whether name is a package f imports, other than flag.
func importsOther(f *ast.File, name string) bool {
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || p == "flag" {
			continue
		}
		if imp.Name != nil && imp.Name.Name == name || imp.Name == nil && p[strings.LastIndex(p, "/")+1:] == name {
			return true
		}
	}
	return false
}

func exprText(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprText(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprText(e.Fun) + "(...)"
	}
	return fmt.Sprintf("%T", e)
}

func TestResolverEvaluatesFlagDefaults(t *testing.T) {
	src := `package main

import (
	"flag"
	cfg "github.com/masqd/masqd/internal/config"
)

const healthPort = "9762"

const healthAddr = "0.0.0.0:" + healthPort

func flags(fs *flag.FlagSet) {
	var s string
	fs.StringVar(&s, "config", cfg.DefaultPath, "config file or directory")
	fs.String("health-bind-address", healthAddr, "")
	fs.Bool("random-fully", true, "")
	fs.Duration("timeout", 5, "")
	fs.Func("netns", "", nil)
	fmt.Println("not-a-flag", "x")
}
`
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver()
	r.pkgs[modulePath+"/cmd/masqd"] = []*ast.File{f}
	got, err := r.flagDefaults([]*ast.File{f})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"config":              configDefaultPath(t),
		"health-bind-address": "0.0.0.0:9762",
		"random-fully":        "true",
		"timeout":             "5",
		"netns":               "",
	}
	if !maps.Equal(got, want) {
		t.Errorf("flagDefaults = %v, want %v", got, want)
	}
}

func TestResolverRejects(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"computed default", `fs.String("metrics-bind-address", addr(), "")`, "cannot evaluate addr(...)"},
		{"conflicting defaults", `fs.String("config", "/a", ""); fs.String("config", "/b", "")`, "defined twice"},
		{"unknown constant", `fs.String("config", missing, "")`, "has no constant missing"},
		{"no flags", `println("config")`, "no flag definitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "package main\nfunc f() { " + tt.body + " }\n"
			f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			r := newResolver()
			r.pkgs[modulePath+"/cmd/masqd"] = []*ast.File{f}
			_, err = r.flagDefaults([]*ast.File{f})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("flagDefaults error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
