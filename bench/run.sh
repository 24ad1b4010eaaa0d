#!/usr/bin/env bash
# Builds the benchmark harness (its own Go module) and runs it as root from
# the repository root against bin/masqd. Arguments go to the harness:
# -quick, -only apply,resync,change,latency,packet,idle,restart,huge,conntrack, -sizes 64,1000.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x bin/masqd ]]; then
	echo "bench: bin/masqd is missing; run make build" >&2
	exit 1
fi
go -C bench build -o "$PWD/bin/masqd-bench" .
if [[ $(id -u) -ne 0 ]]; then
	exec sudo bin/masqd-bench "$@"
fi
exec bin/masqd-bench "$@"
