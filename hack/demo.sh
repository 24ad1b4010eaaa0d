#!/usr/bin/env bash
# masqd's main job on its built-in defaults, in throw-away namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
	echo "make demo needs root: it creates network namespaces (nothing outside them is touched)" >&2
	exit 1
fi
go run ./test/e2e/cmd/demo -masqd bin/masqd "$@"
