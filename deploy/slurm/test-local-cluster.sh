#!/usr/bin/env bash
# Tests the Slurm deployment on a real Slurm: installs Debian's slurmctld,
# slurmd, slurm-client and munge if missing (as root), starts a one-node
# cluster on 127.0.0.1 without systemd, submits a small sweep as an array
# job of 3 tasks with a dependent merge (submit.sh), waits, compares the
# merged runs.csv and summary.csv byte for byte with the same sweep run
# locally in one piece, and shuts the daemons down by their pids, whatever
# happens.
#
#   deploy/slurm/test-local-cluster.sh GRIDTWIN_BINARY
set -euo pipefail
gridtwin=$(realpath "${1:?usage: test-local-cluster.sh GRIDTWIN_BINARY}")
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/deploy/slurm

need=()
for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
munged_pid=""
cleanup() {
    set +e
    SLURM_CONF=$work/slurm.conf scontrol shutdown >/dev/null 2>&1
    for f in "$work/slurmctld.pid" "$work/slurmd.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    [ -n "$munged_pid" ] && kill "$munged_pid" 2>/dev/null
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/state" "$work/spool" "$work/out"
cat > "$work/slurm.conf" <<CONF
ClusterName=gridtwin-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=sim Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$work/slurm.conf

install -d -o munge -g munge -m 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
munged_pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
slurmctld -c
slurmd -c
for _ in $(seq 100); do
    [ "$(sinfo -h -N -o %t 2>/dev/null)" = "idle" ] && break
    sleep 0.1
done
[ "$(sinfo -h -N -o %t)" = "idle" ] || { echo "the node never came up: $(sinfo -h -N -o %t)"; cat "$work"/*.log; exit 1; }

export GRIDTWIN=$gridtwin SCENARIO=$root/scenarios/tests/gateway.ron REPLICATIONS=4
export VARY="mesh.report_interval=1min,2min" OUT=$work/out/sweep
ids=$("$here/submit.sh" 3 --cpus-per-task=1)
echo "submitted array and merge: $ids"
for id in $ids; do
    for _ in $(seq 600); do
        [ -z "$(squeue -h -j "${id%%;*}" 2>/dev/null)" ] && break
        sleep 0.2
    done
done
[ -f "$OUT/merged/summary.csv" ] || { echo "no merged result"; ls -R "$OUT"; cat "$OUT"/slurm-*.out 2>/dev/null; exit 1; }

"$gridtwin" sweep "$SCENARIO" --replications 4 --vary "$VARY" --out "$work/out/local" --quiet
for f in runs.csv summary.csv; do
    cmp "$OUT/merged/$f" "$work/out/local/$f"
done
echo "ok: the 3-task array job merged gives the local sweep's runs.csv and summary.csv byte for byte"
