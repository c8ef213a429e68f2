#!/usr/bin/env bash
# Bring up a private one-node SLURM cluster on this machine (run as root), for tests/test_slurm.py.
#
#   D=$(bash .ci/slurm-up.sh [FOLDER])     # FOLDER defaults to a fresh mktemp -d
#   source "$D/env"                       # exports SLURM_CONF (or: export SLURM_CONF=$(cat "$D/slurm_conf"))
#   ...                                   # sinfo, sbatch, snakemake --workflow-profile profiles/slurm
#   bash .ci/slurm-down.sh "$D"           # stops exactly the daemons started here, by pid
#
# Everything lives in FOLDER: slurm.conf, munge socket and key use, state, spool, logs and the pid
# files of munged, slurmctld and slurmd. Only the folder's path is printed on stdout; progress goes
# to stderr. Running it again on a folder whose cluster is up only prints the folder (idempotent).
# Accounting is off (no slurmdbd): the SLURM profile therefore uses `slurm-status-command: squeue`
# and `slurm-no-account: true`, and MinJobAge is kept at 300 s so that squeue still sees finished jobs.
set -euo pipefail

log() { echo "slurm-up: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (it installs packages and runs the daemons as root)"
    exit 1
fi

DIR=${1:-}
if [[ -z $DIR ]]; then
    DIR=$(mktemp -d /tmp/slurm.XXXXXX)
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF

alive() { # alive PIDFILE: the pid in PIDFILE is a running process
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() {
    timeout 10 sinfo -h -N -n localhost -o '%t' 2>/dev/null | head -n1 || true
}

# ---------------------------------------------------------------- already up? (idempotent)
if alive "$DIR/munged.pid" && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" &&
    [[ $(node_state) == idle* || $(node_state) == mix* || $(node_state) == alloc* ]]; then
    log "cluster in $DIR is already up"
    echo "$DIR"
    exit 0
fi

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v munged >/dev/null || need_pkgs+=(munge)
command -v slurmctld >/dev/null || need_pkgs+=(slurmctld)
command -v slurmd >/dev/null || need_pkgs+=(slurmd)
command -v sbatch >/dev/null || need_pkgs+=(slurm-client)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    # --no-install-recommends keeps out the recommended extras; the four packages are enough.
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >&2
fi

# ---------------------------------------------------------------- munge
MUNGE_KEY=/etc/munge/munge.key
if [[ ! -s $MUNGE_KEY ]]; then
    log "creating $MUNGE_KEY"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$MUNGE_KEY"
    else
        dd if=/dev/urandom bs=1 count=1024 of="$MUNGE_KEY" status=none
    fi
fi
chmod 0400 "$MUNGE_KEY"

mkdir -p "$DIR/etc" "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log"
chmod 0755 "$DIR" "$DIR/munge"
MUNGE_SOCKET=$DIR/munge/munge.socket.2

# A daemon left over from an earlier run of this folder (pid file, process gone or not) is
# stopped first, by its pid, so that the start below is clean.
if [[ -e $DIR/munged.pid || -e $DIR/slurmctld.pid || -e $DIR/slurmd.pid ]]; then
    log "stopping the daemons left in $DIR"
    bash "$(dirname "${BASH_SOURCE[0]}")/slurm-down.sh" "$DIR" >&2
fi

# ---------------------------------------------------------------- slurm.conf
cpus=$(nproc)
total_mb=$(free -m | awk '/^Mem:/ {print $2}')
# Leave room for the OS and the daemons: 10 % or 512 MiB, whichever is larger.
reserve_mb=$((total_mb / 10 > 512 ? total_mb / 10 : 512))
real_mb=$((total_mb - reserve_mb))
if ((real_mb < 1024)); then real_mb=$total_mb; fi

cat >"$CONF" <<EOF
# One-node cluster for tests, written by .ci/slurm-up.sh; everything under $DIR.
ClusterName=local
MailProg=/bin/true
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue must still list finished jobs when snakemake asks (the plugin wants >= 3 x its interval).
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=main Default=YES Nodes=localhost MaxTime=INFINITE State=UP
EOF
# No cgroups are used (proctrack/linuxproc, task/none); an empty cgroup.conf keeps slurmd from
# looking for the system's.
printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' >"$DIR/etc/cgroup.conf"
echo "$CONF" >"$DIR/slurm_conf"
printf 'export SLURM_CONF=%q\n' "$CONF" >"$DIR/env"

# The job step of snakemake's SLURM plugin (snakemake-executor-plugin-slurm-jobstep) runs `srun`
# with every SLURM_* variable removed, SLURM_CONF included, so srun inside a job only finds the
# default /etc/slurm/slurm.conf. Link it to this cluster's file, unless a real one is there (that
# one is never touched: then this script stops, as jobs could not run their steps).
# slurm-down.sh removes the link when it still points here.
SYS_CONF=/etc/slurm/slurm.conf
if [[ -L $SYS_CONF && ! -e $SYS_CONF ]]; then
    rm -f "$SYS_CONF" # a dangling link, left by a cluster whose folder is gone
fi
if [[ -L $SYS_CONF ]] && head -n1 "$SYS_CONF" | grep -q 'written by .ci/slurm-up.sh'; then
    ln -sfn "$CONF" "$SYS_CONF" # another cluster of this script: this one takes over
elif [[ -e $SYS_CONF ]]; then
    log "$SYS_CONF exists and is not from this script: not touching it; srun inside jobs would"
    log "read it instead of $CONF. Stop here (use the machine's own cluster, or move that file)."
    exit 1
else
    mkdir -p /etc/slurm
    ln -s "$CONF" "$SYS_CONF"
fi

# ---------------------------------------------------------------- daemons
log "starting munged"
munged --force --socket="$MUNGE_SOCKET" --pid-file="$DIR/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" --key-file="$MUNGE_KEY"
for _ in $(seq 50); do
    [[ -S $MUNGE_SOCKET ]] && break
    sleep 0.2
done
munge --socket="$MUNGE_SOCKET" -n | unmunge --socket="$MUNGE_SOCKET" >/dev/null

log "starting slurmctld"
slurmctld -i -f "$CONF"
log "starting slurmd"
slurmd -N localhost -f "$CONF"

# ---------------------------------------------------------------- wait for the node
deadline=$((SECONDS + ${SLURM_UP_TIMEOUT:-60}))
state=""
while ((SECONDS < deadline)); do
    state=$(node_state)
    case $state in
    idle*) break ;;
    down* | drain* | drng* | fail*)
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        ;;
    esac
    sleep 1
done
if [[ $state != idle* ]]; then
    log "node localhost is not idle after ${SLURM_UP_TIMEOUT:-60} s (state: '${state:-no answer}')"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    exit 1
fi
log "node localhost is idle: $cpus CPUs, ${real_mb} MiB; export SLURM_CONF=$CONF"
echo "$DIR"
