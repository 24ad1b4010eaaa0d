#!/usr/bin/env bash
# The README's test command: every test of the four modules (root, bench/,
# deploy/, image/) under the race detector, in a few minutes on two cores. Kernel
# and end-to-end tests create and remove their own network namespaces; they
# skip with a message when not run as root. Extra arguments go to the root
# module's go test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
	echo "note: not root: kernel and end-to-end tests will be skipped" >&2
fi
hack/build.sh
# The image make image writes, run in runc by image/container (as root, with
# runc and umoci; it skips with the reason otherwise).
hack/image.sh
for mod in deploy bench image; do
	echo "== $mod module"
	(cd "$mod" && MASQD_BIN=$PWD/../bin/masqd MASQD_IMAGE=$PWD/../dist/masqd-oci go test -race -count=1 -timeout 10m ./...)
done
echo "== root module"
MASQD_BIN=$PWD/bin/masqd go test -race -count=1 -timeout 15m "$@" ./...
