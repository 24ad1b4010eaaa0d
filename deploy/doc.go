// Package deploy holds masqd's Kubernetes manifests, a kustomize base, and
// the tests that keep them honest: every manifest decodes strictly into the
// Kubernetes API types, the DaemonSet meets the invariants the project
// promises (host network, NET_ADMIN only, probes, ports, config path), and
// the ports, paths and flags it relies on match masqd's own flag definitions
// in ../cmd/masqd and ../internal/config.
//
// It is a module of its own so that the Kubernetes and kustomize libraries
// its tests need never enter masqd's dependency graph. It must not import
// masqd: it reads masqd's source as text, so the agent stays free of it.
package deploy
