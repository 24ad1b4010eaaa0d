#!/usr/bin/env bash
# gofmt, go vet and the pinned linters, over the four modules (root, bench/,
# deploy/, image/).
set -euo pipefail
cd "$(dirname "$0")/.."
STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools 2025.x
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi
bin=$(go env GOPATH)/bin/staticcheck
if ! "$bin" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
for mod in . bench deploy image; do
	echo "== vet and staticcheck: module $mod"
	(cd "$mod" && go vet ./... && "$bin" ./...)
done
# Issue 12's sizes: no function over 80 lines, cmd/masqd under 700 lines.
echo "== code size: modules . deploy image bench"
go run ./hack/codesize . deploy image bench
echo "verify: ok"
