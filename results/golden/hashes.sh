#!/usr/bin/env bash
# The safety net for refactors: runs the golden studies and the city's two
# hours (scenarios/tests/city_2h.ron), and writes the SHA-256 of every
# output file but timing.json (wall-clock figures) to
# results/golden/hashes.txt; with --check, compares against it instead and
# names every file that differs, appeared or vanished.
#
#     results/golden/hashes.sh [--check] [GRIDTWIN]
#
# GRIDTWIN is the binary to run (default target/release/gridtwin, built if
# missing). The runs go to target/golden/<study>/, so that the resolved
# scenario's relative path to data/ is the same in every checkout. About
# 15 s optimised. A change that alters a hash says so in its commit
# message and re-blesses on purpose: run this without --check, commit
# hashes.txt.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
check=false
if [ "${1:-}" = "--check" ]; then
    check=true
    shift
fi
bin="${1:-target/release/gridtwin}"
if [ ! -x "$bin" ]; then
    cargo build --release --locked --quiet
fi
studies=(
    minimal:scenarios/minimal.ron
    default:scenarios/default.ron
    ledger_byzantine:scenarios/ledger_byzantine.ron
    demand_response:scenarios/demand_response.ron
    ieee_eu_lv_short:scenarios/tests/ieee_eu_lv_short.ron
    mesh_degradation_short:scenarios/tests/mesh_degradation_short.ron
    city_2h:scenarios/tests/city_2h.ron
)
out=target/golden
rm -rf "$out"
mkdir -p "$out"
for s in "${studies[@]}"; do
    "$bin" run "${s#*:}" --out "$out/${s%%:*}" --quiet
done
fresh="$out/hashes.txt"
(cd "$out" && find . -type f ! -name timing.json ! -name hashes.txt | sed 's|^\./||' |
    LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done) > "$fresh"
golden=results/golden/hashes.txt
if ! $check; then
    cp "$fresh" "$golden"
    echo "wrote $golden ($(wc -l < "$golden") files)"
    exit 0
fi
if cmp -s "$golden" "$fresh"; then
    echo "golden hashes: all $(wc -l < "$golden") output files unchanged"
    exit 0
fi
echo "golden hashes: output files differ from $golden:" >&2
join -j 2 -a 1 -a 2 -e MISSING -o 0,1.1,2.1 \
    <(awk '{print $1, $2}' "$golden" | sort -k 2) \
    <(awk '{print $1, $2}' "$fresh" | sort -k 2) |
    awk '$2 != $3 { printf "  %s: %s\n", $1, ($2 == "MISSING" ? "new (not in the golden list)" : ($3 == "MISSING" ? "no longer written" : "changed")) }' >&2
echo "(a deliberate change re-blesses: results/golden/hashes.sh, then commit hashes.txt with the reason)" >&2
exit 1
