#!/usr/bin/env bash
# The cost of the store's `Arc<dyn …>` dispatch per store call against static dispatch
# (issue 8 §1), in instructions counted by callgrind (repeatable on a loaded machine) and
# in wall time. See scripts/dispatch-cost/main.rs for what is measured.
#
#   scripts/dispatch-cost.sh [CALLS]     (default 1000000; needs rustc and valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
BIN=target/dispatch-cost
mkdir -p target
rustc -O --edition 2024 scripts/dispatch-cost/main.rs -o "$BIN"
for mode in dyn static; do "$BIN" "$mode" "$N"; done
irefs() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$N" 2>&1 | awk '/Collected/ {print $4}'; }
base="$(irefs none)"
for mode in dyn static; do
    total="$(irefs "$mode")"
    awk -v t="$total" -v b="$base" -v n="$N" -v m="$mode" \
        'BEGIN { printf "%s: %.1f instructions per call (callgrind)\n", m, (t - b) / n }'
done
