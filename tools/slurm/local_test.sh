#!/bin/bash
# The Slurm test of `bench slurm` and `bench run --shard`: a one-node Slurm (slurmctld + slurmd on
# this machine, munge for authentication) runs the quickstart as an array of 4 tasks, and the
# table of its results must equal a local run's, byte for byte. Sets everything up under a
# temporary directory and tears it down (daemons stopped) whatever happens.
#
#   sudo apt-get install -y slurm-wlm munge      # Debian 12: Slurm 22.05, munge 0.5.15
#   cargo build --release
#   bash tools/slurm/local_test.sh [target/release/bench]
#
# Needs root (slurmd runs jobs as the submitting user and manages the node). Not part of CI
# (`.ci/run`): it needs the two packages and root. Prints the two tables and `SLURM TEST PASSED`.
set -euo pipefail

BENCH=$(realpath "${1:-target/release/bench}")
REPO=$(realpath "$(dirname "$0")/../..")
WORK=$(mktemp -d /tmp/bench-slurm.XXXXXX)
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "logs and results kept in $WORK"
}
trap cleanup EXIT

for tool in slurmctld slurmd sbatch squeue munged; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install slurm-wlm munge"; exit 2; }
done

# munge: a key and the daemon.
mkdir -p /etc/munge /var/run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chown -R munge:munge /etc/munge /var/run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- munged --force
fi
munge -n | unmunge >/dev/null

# A one-node cluster.
mkdir -p "$WORK/state" "$WORK/spool"
cat > "$WORK/slurm.conf" <<EOF
ClusterName=bench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$WORK/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$WORK/slurmctld.out" 2>&1 & PIDS+=($!)
sleep 2
slurmd -D -f "$SLURM_CONF" >"$WORK/slurmd.out" 2>&1 & PIDS+=($!)
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo

# The quickstart as an array of 4, into a results directory of its own.
cd "$REPO"
"$BENCH" slurm configs/quickstart.ron --results "$WORK/cluster" --shards 4 --out "$WORK/job.sh"
cat "$WORK/job.sh"
sbatch --wait "$WORK/job.sh"
squeue
cat slurm-bench-quickstart-*_*.out > "$WORK/array.out" 2>/dev/null || true
rm -f slurm-bench-quickstart-*_*.out
cat "$WORK/array.out"

# The same sweep locally; the tables must be equal.
"$BENCH" run configs/quickstart.ron --results "$WORK/local" --quiet
"$BENCH" table "$WORK/cluster/quickstart" > "$WORK/cluster.md"
"$BENCH" table "$WORK/local/quickstart" > "$WORK/local.md"
cat "$WORK/cluster.md"
if diff "$WORK/cluster.md" "$WORK/local.md"; then
    echo "SLURM TEST PASSED"
else
    echo "SLURM TEST FAILED: the tables differ"
    exit 1
fi
