#!/usr/bin/env bash
# Builds bin/masqd: static, trimmed, version stamped.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${version}" -o bin/masqd ./cmd/masqd
echo "built bin/masqd (${version})"
