package image

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is masqd's module root, seen from this directory.
const repoRoot = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// readDockerfile splits ../Dockerfile into stages of instructions, one
// stage per FROM.
func readDockerfile(t *testing.T) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var line strings.Builder
	for l := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && line.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(trimmed)
		cmd, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		ins := instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")}
		if ins.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", ins.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], ins)
	}
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2: build, then the runtime image", len(stages))
	}
	return stages
}

// fromImage returns a FROM instruction's image, without --platform or AS.
func fromImage(ins instruction) string {
	for f := range strings.FieldsSeq(ins.args) {
		if !strings.HasPrefix(f, "--") {
			return f
		}
	}
	return ""
}

// ldflagsRE finds the flags of a `go build` up to its -o.
var ldflagsRE = regexp.MustCompile(`go build (-trimpath -ldflags "[^"]*")`)

// shellVarRE matches ${NAME} and $NAME, which the two builds spell differently.
var shellVarRE = regexp.MustCompile(`\$\{?[A-Za-z_]+\}?`)

// TestDockerfileBuildStage: Docker compiles masqd as hack/build.sh does,
// with the Go of ../go.mod.
func TestDockerfileBuildStage(t *testing.T) {
	build := readDockerfile(t)[0]

	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("../go.mod has no go directive")
	}
	if img, want := fromImage(build[0]), "golang:"+string(m[1]); img != want {
		t.Errorf("build stage FROM %s, want %s, the Go of ../go.mod", img, want)
	}

	var run string
	for _, ins := range build {
		if ins.cmd == "RUN" && strings.Contains(ins.args, "go build") {
			run = ins.args
		}
	}
	if !strings.Contains(run, "CGO_ENABLED=0") || !strings.HasSuffix(run, "./cmd/masqd") {
		t.Errorf("build RUN %q: want a static build (CGO_ENABLED=0) of ./cmd/masqd", run)
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, "hack", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	image, local := ldflagsRE.FindStringSubmatch(run), ldflagsRE.FindStringSubmatch(string(script))
	if image == nil || local == nil {
		t.Fatalf("no `go build -trimpath -ldflags \"...\"` in the Dockerfile (%v) or hack/build.sh (%v)", image != nil, local != nil)
	}
	if a, b := shellVarRE.ReplaceAllString(image[1], "$V"), shellVarRE.ReplaceAllString(local[1], "$V"); a != b {
		t.Errorf("the image builds with %s, hack/build.sh with %s: stamp the version the same way", image[1], local[1])
	}
	if !strings.Contains(run, "main.version=${VERSION}") {
		t.Errorf("build RUN %q does not stamp main.version from the VERSION build argument", run)
	}
}

// dockerImage is what the Dockerfile's runtime stage makes, as far as the
// Dockerfile says: its files with their modes, entrypoint, user and labels.
type dockerImage struct {
	files      map[string]int64 // path → mode
	entrypoint []string
	user       string
	labels     map[string]string
}

// labelRE matches one key="value" pair of a LABEL instruction.
var labelRE = regexp.MustCompile(`([A-Za-z0-9._-]+)="([^"]*)"`)

// runtimeStage reads the Dockerfile's last stage with its build arguments
// set to args, as `docker build --build-arg` would.
func runtimeStage(t *testing.T, args map[string]string) dockerImage {
	t.Helper()
	stage := readDockerfile(t)[1]
	if img := fromImage(stage[0]); img != "scratch" {
		t.Errorf("runtime FROM %s, want scratch: the static binary needs nothing else", img)
	}
	vars := map[string]string{}
	expand := func(s string) string {
		return shellVarRE.ReplaceAllStringFunc(s, func(v string) string {
			return vars[strings.Trim(v, "${}")]
		})
	}
	d := dockerImage{files: map[string]int64{}, labels: map[string]string{}}
	for _, ins := range stage[1:] {
		switch ins.cmd {
		case "ARG":
			name, def, _ := strings.Cut(ins.args, "=")
			vars[name] = def
			if v, ok := args[name]; ok {
				vars[name] = v
			}
		case "LABEL":
			for _, m := range labelRE.FindAllStringSubmatch(ins.args, -1) {
				d.labels[m[1]] = expand(m[2])
			}
		case "COPY":
			f := strings.Fields(ins.args)
			mode := int64(0o644)
			var paths []string
			for _, a := range f {
				switch {
				case a == "--from=build":
				case strings.HasPrefix(a, "--chmod="):
					m, err := strconv.ParseInt(strings.TrimPrefix(a, "--chmod="), 8, 64)
					if err != nil {
						t.Errorf("COPY %s: %v", ins.args, err)
					}
					mode = m
				case strings.HasPrefix(a, "--"):
					t.Errorf("COPY %s: option %s is not understood here", ins.args, a)
				default:
					paths = append(paths, a)
				}
			}
			if !strings.HasPrefix(ins.args, "--from=build ") || len(paths) != 2 {
				t.Errorf("COPY %s: the runtime image takes only the binary from the build stage", ins.args)
				continue
			}
			d.files[paths[1]] = mode
		case "USER":
			d.user = ins.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(ins.args), &d.entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s: use the exec form: %v", ins.args, err)
			}
		default:
			t.Errorf("runtime stage %s %s: only ARG, LABEL, COPY, USER and ENTRYPOINT (scratch has no shell)", ins.cmd, ins.args)
		}
	}
	return d
}

// TestDockerfileMatchesImage builds the image as `make image` does and
// holds the Dockerfile's runtime stage to the same files, modes,
// entrypoint, user and labels.
func TestDockerfileMatchesImage(t *testing.T) {
	const version, revision = "v9.8.7", "0123456789abcdef"
	img, err := Build(Options{Binary: masqdBinary(t), Version: version, Revision: revision})
	if err != nil {
		t.Fatal(err)
	}
	got := imageContents(t, img)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{}
	for _, f := range got {
		files["/"+f.Name] = f.Mode
	}
	d := runtimeStage(t, map[string]string{"VERSION": version, "REVISION": revision})
	if !maps.Equal(d.files, files) {
		t.Errorf("Dockerfile files (path → mode) %v, make image's %v", d.files, files)
	}
	if !slices.Equal(d.entrypoint, cf.Config.Entrypoint) {
		t.Errorf("Dockerfile ENTRYPOINT %q, make image's %q", d.entrypoint, cf.Config.Entrypoint)
	}
	if d.user != cf.Config.User {
		t.Errorf("Dockerfile USER %q, make image's %q", d.user, cf.Config.User)
	}
	if !maps.Equal(d.labels, cf.Config.Labels) {
		t.Errorf("Dockerfile labels %v, make image's %v", d.labels, cf.Config.Labels)
	}
	// Unset build arguments give the defaults make image uses without them.
	if d := runtimeStage(t, map[string]string{"VERSION": version}); d.labels["org.opencontainers.image.revision"] != Labels(version, "")["org.opencontainers.image.revision"] {
		t.Errorf("revision label without REVISION: Dockerfile %q, make image %q", d.labels["org.opencontainers.image.revision"], Labels(version, "")["org.opencontainers.image.revision"])
	}
}

// dockerignored approximates Docker's .dockerignore matching: a pattern
// excludes a path when it matches the path or one of its parent
// directories; "**/" matches at any depth; "!" re-includes.
func dockerignored(patterns []string, p string) bool {
	segs := strings.Split(p, "/")
	ignored := false
	for _, pat := range patterns {
		include := strings.HasPrefix(pat, "!")
		pat = strings.TrimSuffix(strings.TrimPrefix(pat, "!"), "/")
		anyDepth := strings.HasPrefix(pat, "**/")
		pat = strings.TrimPrefix(pat, "**/")
		for i := range segs {
			for j := i + 1; j <= len(segs); j++ {
				if i > 0 && !anyDepth {
					break
				}
				if ok, _ := filepath.Match(pat, strings.Join(segs[i:j], "/")); ok {
					ignored = !include
				}
			}
		}
	}
	return ignored
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	tests := []struct {
		path    string
		ignored bool
	}{
		{"go.mod", false},
		{"go.sum", false},
		{"cmd/masqd/main.go", false},
		{"internal/config/config.go", false},
		{"internal/nft/build.go", false},
		{".git/HEAD", true},
		{"bin/masqd", true},
		{"dist/masqd-image.tar", true},
		{"deploy/go.mod", true},
		{"image/go.mod", true},
		{"internal/nft/testdata/default.nft", true},
		{"internal/config/parse_test.go", true},
	}
	for _, tt := range tests {
		if got := dockerignored(patterns, tt.path); got != tt.ignored {
			t.Errorf(".dockerignore: %s ignored = %v, want %v", tt.path, got, tt.ignored)
		}
	}
}
