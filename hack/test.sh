#!/usr/bin/env bash
# The README's test command: every test of the three modules (root, bench/,
# deploy/) under the race detector, in a few minutes on two cores. Kernel
# and end-to-end tests create and remove their own network namespaces; they
# skip with a message when not run as root. Extra arguments go to the root
# module's go test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
	echo "note: not root: kernel and end-to-end tests will be skipped" >&2
fi
hack/build.sh
for mod in deploy bench; do
	echo "== $mod module"
	(cd "$mod" && go test -race -count=1 ./...)
done
echo "== root module"
MASQD_BIN=$PWD/bin/masqd go test -race -count=1 -timeout 15m "$@" ./...
