#!/usr/bin/env bash
# Builds masqd's container image from bin/masqd with no container engine and
# no registry: dist/masqd-oci (OCI layout) and dist/masqd-image.tar
# (`docker load`, `kind load image-archive`). Timestamps come from
# SOURCE_DATE_EPOCH (default: the last commit's time), so a rebuild of the
# same binary gives the same digest.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=$(git rev-parse HEAD 2>/dev/null || true)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
[[ -x bin/masqd ]] || hack/build.sh
(cd image && go run ./cmd/build-image -binary ../bin/masqd -version "$version" -revision "$revision" -out ../dist)
