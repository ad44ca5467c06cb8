#!/usr/bin/env bash
# Peer comparisons, side by side on this machine in one sitting: gridtwin
# against OpenDSS (OpenDSSDirect.py) and pandapower (runpp_3ph) on the IEEE
# European LV feeder, and gridtwin's kernel against SimPy on the hold model.
# Not run by CI. The Python peers are measurement tools only: they go into a
# temporary virtual environment, never into the project.
#
#   benches/peers/run.sh [OUT_DIR]
#
# OUT_DIR (default: a new temporary directory) receives gridtwin_eu_lv.json,
# peers_eu_lv.json, hold_*.json and report.md; report.md is printed at the
# end (results/bench/peers.md is written from it). PEERS_VENV=DIR reuses a
# virtual environment instead of creating one; PP_MINUTES (default 120) is
# how many minutes of the day pandapower runs before its day is
# extrapolated. Reads the feeder in the repository's data/ieee_eu_lv/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
refdata="$root/data"
out="${1:-$(mktemp -d -t gridtwin-peers-XXXXXX)}"
mkdir -p "$out"

venv="${PEERS_VENV:-}"
if [ -z "$venv" ]; then
    venv="$(mktemp -d -t gridtwin-peers-venv-XXXXXX)"
    trap 'rm -rf "$venv"' EXIT
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# numba: pandapower's recommended accelerator for its power flow.
"$venv/bin/pip" install -q OpenDSSDirect.py pandapower numba simpy

echo "peers: building gridtwin's timing example (release)" >&2
cargo build -q --release --example peer_timing
gt="$root/target/release/examples/peer_timing"

echo "peers: EU LV, gridtwin" >&2
"$gt" eu-lv "$refdata/ieee_eu_lv/dss/Master.dss" > "$out/gridtwin_eu_lv.json"
echo "peers: EU LV, OpenDSS and pandapower" >&2
"$venv/bin/python" benches/peers/eu_lv.py "$refdata" --pp-minutes "${PP_MINUTES:-120}" \
    > "$out/peers_eu_lv.json"

for n in 1000 100000; do
    echo "peers: hold model, N = $n" >&2
    "$gt" hold "$n" 10000000 > "$out/hold_gridtwin_$n.json"
    "$venv/bin/python" benches/peers/hold.py "$n" 1000000 > "$out/hold_simpy_$n.json"
done

"$venv/bin/python" benches/peers/report.py "$out" "$refdata" | tee "$out/report.md"
echo "peers: results in $out" >&2
