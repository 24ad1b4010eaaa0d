// Package image builds masqd's container image without a container engine
// or a registry: FROM scratch, the static masqd binary as /masqd and the
// entrypoint, user 0, the OCI labels, every timestamp fixed, so that the
// same binary always gives the same digest. It writes the image as an OCI
// image layout (for umoci, skopeo and crane) and as a tarball that
// `docker load` and `kind load image-archive` read.
//
// Nothing else goes into the image because masqd needs nothing else: it
// is statically linked (no libc), execs no program (no shell), talks only
// netlink and local HTTP (no CA bundle), and logs in UTC (no tzdata).
//
// It is a module of its own, like ../deploy, so that go-containerregistry
// never enters masqd's dependency graph. The Dockerfile at the root builds
// the same image with Docker; image_test.go holds the two to the same
// files, entrypoint, user and labels.
package image
