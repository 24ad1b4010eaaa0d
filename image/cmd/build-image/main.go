// Command build-image writes masqd's container image from a built binary:
// an OCI image layout and a `docker load` tarball, with no container engine
// and no registry. `make image` runs it (hack/image.sh).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/masqd/masqd/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "bin/masqd", "the static masqd binary")
	version := flag.String("version", "", "the image's tag and version label (required)")
	revision := flag.String("revision", "", "the source commit, for the revision label")
	out := flag.String("out", "dist", "directory for the OCI layout and the tarball")
	flag.Parse()
	if *version == "" {
		return errors.New("-version is required")
	}
	created := time.Unix(0, 0)
	// The reproducible-builds convention, which Docker's BuildKit honours too.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the Unix epoch", s)
		}
		created = time.Unix(sec, 0)
	}
	img, err := image.Build(image.Options{Binary: *binary, Version: *version, Revision: *revision, Created: created})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	o := image.OutputsIn(*out)
	if err := image.Write(img, *version, o); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var compressed int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return err
		}
		compressed += n
	}
	tag, err := image.Tag(*version)
	if err != nil {
		return err
	}
	fmt.Printf("image %s %s (one layer, %.1f MiB compressed)\n", tag, digest, float64(compressed)/(1<<20))
	fmt.Printf("  OCI layout: %s (ref %s)\n  docker load / kind load image-archive: %s\n", o.Layout, *version, o.Tarball)
	return nil
}
