#!/usr/bin/env bash
# The README's test command: every test that runs in a few minutes on two
# cores. Kernel and end-to-end tests create and remove their own network
# namespaces; they skip with a message when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
	echo "note: not root: kernel and end-to-end tests will be skipped" >&2
fi
hack/build.sh
(cd deploy && go test -count=1 ./...)
(cd image && MASQD_BIN=$PWD/../bin/masqd go test -count=1 ./...)
MASQD_BIN=$PWD/bin/masqd go test -count=1 -timeout 15m "$@" ./...
