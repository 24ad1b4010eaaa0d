#!/usr/bin/env bash
# make soak: the long versions of the reliability tests, as root, in
# throw-away namespaces. SOAK sets the traffic soak's length (default 10m);
# the kill -9, fault and differential rounds scale with ROUNDS (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
soak=${SOAK:-10m}
rounds=${ROUNDS:-100}
export MASQD_BIN=$PWD/bin/masqd
echo "== soak: live traffic while the config flips, for $soak"
SOAK=$soak go test -count=1 -v -timeout 0 -run '^TestSoak$' ./test/e2e/ | grep -v '^\s*20[0-9][0-9]-'
echo "== kill -9 during large syncs, $rounds rounds"
go test -count=1 -v -timeout 0 -run '^TestCrashDuringSync$' ./test/e2e/ -crash-rounds "$rounds" | grep -E '^(---|ok|FAIL)|rounds in'
echo "== netlink faults, $((rounds * 5)) steps; kernel differential, $((rounds / 5)) rounds"
go test -count=1 -v -timeout 0 -run '^(TestSyncFaultSchedule|TestKernelDifferential)$' ./internal/nft/ \
	-fault-rounds "$((rounds * 5))" -diff-rounds "$((rounds / 5))" | grep -E '^(---|ok|FAIL)|faults injected'
