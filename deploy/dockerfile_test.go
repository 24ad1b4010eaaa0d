package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

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

func TestDockerfileRuntimeStage(t *testing.T) {
	final := readDockerfile(t)[1]
	img := fromImage(final[0])
	name, _, _ := strings.Cut(img, "@")
	if name != "gcr.io/distroless/static-debian12" {
		t.Errorf("runtime FROM %s, want gcr.io/distroless/static-debian12: static, no shell, and root (not :nonroot) for CAP_NET_ADMIN", img)
	}
	var entrypoint []string
	for _, ins := range final {
		switch ins.cmd {
		case "RUN":
			t.Errorf("runtime stage RUN %q: the image has no shell", ins.args)
		case "USER":
			if !slices.Contains([]string{"0", "0:0", "root", "root:root"}, ins.args) {
				t.Errorf("USER %s: masqd must run as root for CAP_NET_ADMIN", ins.args)
			}
		case "COPY":
			if !strings.HasPrefix(ins.args, "--from=build ") {
				t.Errorf("COPY %s: the runtime image takes only the binary from the build stage", ins.args)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(ins.args), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s: use the exec form: %v", ins.args, err)
			}
		}
	}
	if !slices.Equal(entrypoint, []string{"/masqd"}) {
		t.Errorf("ENTRYPOINT = %q, want [\"/masqd\"]", entrypoint)
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
		{"deploy/go.mod", true},
		{"internal/nft/testdata/default.nft", true},
		{"internal/config/parse_test.go", true},
	}
	for _, tt := range tests {
		if got := dockerignored(patterns, tt.path); got != tt.ignored {
			t.Errorf(".dockerignore: %s ignored = %v, want %v", tt.path, got, tt.ignored)
		}
	}
}
