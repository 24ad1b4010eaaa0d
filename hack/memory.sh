#!/usr/bin/env bash
# make memory: the agent's peak memory when it restarts over a table of N
# CIDRs (every rolling update), measured in the DaemonSet's own container
# (runc, spec from deploy/daemonset.yaml) on a throw-away namespace node:
# without a limit, and under the manifest's limit and GOMEMLIMIT. As root,
# with runc and umoci. MEMORY_CIDRS sets the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${MEMORY_CIDRS:-10000,100000,300000}
hack/build.sh
hack/image.sh >/dev/null
cd image
MASQD_IMAGE=$PWD/../dist/masqd-oci go test -count=1 -v -timeout 60m -run '^TestMemory$' ./container -memory-cidrs "$sizes" |
	grep -E '^(---|ok|FAIL|PASS)|N=[0-9]+ |memory_test'
