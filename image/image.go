package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// Repository is where masqd's images are published, and the name the
	// kustomize base's DaemonSet runs.
	Repository = "ghcr.io/masqd/masqd"
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/masqd"
	// User is the image's user: root, for CAP_NET_ADMIN (deploy/README.md).
	User = "0:0"
	// Source is the project's repository, for the source label.
	Source = "https://github.com/masqd/masqd"
	// RefNameAnnotation tags an image inside an OCI layout; skopeo
	// (oci:DIR:TAG) and umoci (--image DIR:TAG) select it by this name.
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

// Options say what goes into the image.
type Options struct {
	// Binary is the path of the static masqd binary (hack/build.sh's bin/masqd).
	Binary string
	// Version is the image's tag and its version label.
	Version string
	// Revision is the source commit for the revision label; "" means
	// "unknown", as in the Dockerfile.
	Revision string
	// Created is every timestamp in the image: the config, the history,
	// the file in the layer. The zero time means the Unix epoch.
	Created time.Time
}

// Labels are the image's OCI annotations as config labels. The Dockerfile's
// LABEL instruction sets the same, with the version and revision from
// build arguments.
func Labels(version, revision string) map[string]string {
	if revision == "" {
		revision = "unknown"
	}
	return map[string]string{
		"org.opencontainers.image.title":       "masqd",
		"org.opencontainers.image.description": "nftables-native ip-masq-agent",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
	}
}

// Tag is the image's full reference: Repository and the version as tag.
func Tag(version string) (name.Tag, error) {
	t, err := name.NewTag(Repository+":"+version, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("version %q is not a valid image tag (letters, digits, '_', '.', '-'; at most 128): %w", version, err)
	}
	return t, nil
}

// Build makes the image from o. It refuses a binary that is not a static
// Linux executable, which could not run FROM scratch.
func Build(o Options) (v1.Image, error) {
	if o.Version == "" {
		return nil, errors.New("build image: no version")
	}
	if _, err := Tag(o.Version); err != nil {
		return nil, err
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("build image: %w (run hack/build.sh first)", err)
	}
	arch, err := staticArch(o.Binary, bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := singleFileTar(Entrypoint, bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("build image: layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "COPY masqd " + Entrypoint,
			Comment:   "masqd's static binary, FROM scratch",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{Entrypoint},
		User:       User,
		Labels:     Labels(o.Version, o.Revision),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	return img, nil
}

// goArch maps ELF machines to GOARCH, for the image's platform.
var goArch = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_ARM:     "arm",
	elf.EM_386:     "386",
	elf.EM_PPC64:   "ppc64le",
	elf.EM_S390:    "s390x",
	elf.EM_RISCV:   "riscv64",
}

// staticArch returns the architecture of a static Linux ELF executable.
func staticArch(path string, bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("%s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked, and a FROM scratch image has no libc: build it with CGO_ENABLED=0 (hack/build.sh)", path)
		}
	}
	arch, ok := goArch[f.Machine]
	if !ok {
		return "", fmt.Errorf("%s: ELF machine %s has no GOARCH here", path, f.Machine)
	}
	return arch, nil
}

// singleFileTar is a layer holding one executable owned by root.
func singleFileTar(path string, data []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path[1:],
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Outputs are the files Write makes, under one directory.
type Outputs struct {
	// Layout is an OCI image layout directory holding the image under its
	// version (annotation org.opencontainers.image.ref.name).
	Layout string
	// Tarball is `docker save`'s format, tagged Repository:version.
	Tarball string
}

// OutputsIn names the outputs in dir.
func OutputsIn(dir string) Outputs {
	return Outputs{Layout: filepath.Join(dir, "masqd-oci"), Tarball: filepath.Join(dir, "masqd-image.tar")}
}

// Write writes img, tagged version, to out, replacing what was there.
func Write(img v1.Image, version string, out Outputs) error {
	tag, err := Tag(version)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out.Layout); err != nil {
		return err
	}
	p, err := layout.Write(out.Layout, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", out.Layout, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: version})); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", out.Layout, err)
	}
	if err := tarball.WriteToFile(out.Tarball, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", out.Tarball, err)
	}
	return nil
}

// ReadLayout returns the image tagged version in the OCI layout at dir.
func ReadLayout(dir, version string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	for _, d := range m.Manifests {
		if d.Annotations[RefNameAnnotation] == version {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("OCI layout %s holds no image tagged %q (make image writes it)", dir, version)
}
