package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// masqdBinary returns MASQD_BIN, or a static masqd built once for this run
// as hack/build.sh builds it.
func masqdBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MASQD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "masqd-image-test")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "masqd")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", builtBin, "./cmd/masqd")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.Join(err, errors.New(string(out)))
		}
	})
	if buildErr != nil {
		t.Fatalf("build masqd: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// layerFile is one entry of the image's layers.
type layerFile struct {
	Name     string
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Size     int64
}

// imageContents lists every entry of every layer of img.
func imageContents(t *testing.T, img v1.Image) []layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var files []layerFile
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, layerFile{h.Name, h.Mode, h.Uid, h.Gid, h.ModTime.UTC(), h.Size})
		}
		rc.Close()
	}
	return files
}

func TestImage(t *testing.T) {
	bin := masqdBinary(t)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	img, err := Build(Options{Binary: bin, Version: "v1.2.3", Revision: "abc", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	want := []layerFile{{Name: "masqd", Mode: 0o755, ModTime: created, Size: st.Size()}}
	if got := imageContents(t, img); !slices.Equal(got, want) {
		t.Errorf("layers hold %+v, want only %+v", got, want)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(created) {
		t.Errorf("config: os %q arch %q created %v, want linux, the binary's arch, %v", cf.OS, cf.Architecture, cf.Created, created)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/masqd"}) || cf.Config.User != "0:0" || len(cf.Config.Cmd) > 0 || len(cf.Config.Env) > 0 {
		t.Errorf("config: entrypoint %q cmd %q user %q env %q, want [/masqd], none, 0:0, none", cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, cf.Config.Env)
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" || cf.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels %v lack the version and revision", cf.Config.Labels)
	}
	for _, h := range cf.History {
		if !h.Created.Time.Equal(created) {
			t.Errorf("history %+v: created %v, want %v", h, h.Created, created)
		}
	}
	if mt, err := img.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s (%v), want OCI: umoci reads only OCI images", mt, err)
	}
}

// TestReproducible: the same binary gives the same digest and the same
// bytes in both outputs, whenever it is built.
func TestReproducible(t *testing.T) {
	bin := masqdBinary(t)
	var digests []v1.Hash
	var tarballs [][]byte
	for range 2 {
		img, err := Build(Options{Binary: bin, Version: "v1.2.3", Created: time.Unix(1700000000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		out := OutputsIn(t.TempDir())
		if err := Write(img, "v1.2.3", out); err != nil {
			t.Fatal(err)
		}
		back, err := ReadLayout(out.Layout, "v1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		d, err := back.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		data, err := os.ReadFile(out.Tarball)
		if err != nil {
			t.Fatal(err)
		}
		tarballs = append(tarballs, data)
		time.Sleep(1100 * time.Millisecond) // a wall-clock timestamp would now differ
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one binary: digests %s and %s", digests[0], digests[1])
	}
	if !bytes.Equal(tarballs[0], tarballs[1]) {
		t.Error("two builds of one binary wrote different tarballs")
	}
}

// TestTarballLoads reads the tarball as `docker load` does: manifest.json
// names the tag, the config and the layer.
func TestTarballLoads(t *testing.T) {
	img, err := Build(Options{Binary: masqdBinary(t), Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	out := OutputsIn(t.TempDir())
	if err := Write(img, "v1.2.3", out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out.Tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{Repository + ":v1.2.3"}) || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v, want one image tagged %s:v1.2.3 with one layer", manifest, Repository)
	}
	for _, name := range append([]string{manifest[0].Config}, manifest[0].Layers...) {
		if _, ok := entries[name]; !ok {
			t.Errorf("manifest.json names %s, which the tarball lacks", name)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	dynamic, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls to stand for a dynamic binary")
	}
	notELF := filepath.Join(t.TempDir(), "masqd")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"dynamic binary", Options{Binary: dynamic, Version: "v1"}, "CGO_ENABLED=0"},
		{"not ELF", Options{Binary: notELF, Version: "v1"}, "not an ELF executable"},
		{"missing binary", Options{Binary: filepath.Join(t.TempDir(), "none"), Version: "v1"}, "hack/build.sh"},
		{"bad tag", Options{Binary: notELF, Version: "v1+dirty"}, "not a valid image tag"},
		{"no version", Options{Binary: notELF}, "no version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestPushPull pushes the image to a registry on loopback, as
// `crane push dist/masqd-oci REF` does, and pulls it back unchanged.
func TestPushPull(t *testing.T) {
	img, err := Build(Options{Binary: masqdBinary(t), Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	out := OutputsIn(t.TempDir())
	if err := Write(img, "v1.2.3", out); err != nil {
		t.Fatal(err)
	}
	local, err := ReadLayout(out.Layout, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/masqd:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, local); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	want, err := local.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pulled.Digest(); err != nil || got != want {
		t.Errorf("pulled digest %s (%v), pushed %s", got, err, want)
	}
	if got := imageContents(t, pulled); len(got) != 1 || got[0].Name != "masqd" {
		t.Errorf("pulled image holds %+v, want only masqd", got)
	}
}
