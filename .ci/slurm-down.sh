#!/usr/bin/env bash
# Stop the one-node SLURM cluster that .ci/slurm-up.sh started in FOLDER:
#
#   bash .ci/slurm-down.sh FOLDER
#
# Jobs still queued on that cluster are cancelled, then slurmd, slurmctld and munged are stopped by
# the pids in FOLDER/*.pid (TERM, then KILL after 30 s) and waited for. Nothing is killed by name.
# A pid file whose process is gone, or whose pid now belongs to another program, is only removed.
# Running it again (or on a folder without daemons) does nothing (idempotent).
set -euo pipefail

log() { echo "slurm-down: $*" >&2; }

DIR=${1:?usage: slurm-down.sh FOLDER (the folder that slurm-up.sh printed)}
if [[ ! -d $DIR ]]; then
    log "no folder $DIR: nothing to stop"
    exit 0
fi
DIR=$(cd "$DIR" && pwd -P)

# Cancel what is left on this cluster (only this cluster: its own SLURM_CONF).
if [[ -s $DIR/slurmctld.pid ]] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null &&
    [[ -f $DIR/etc/slurm.conf ]] && command -v scancel >/dev/null; then
    SLURM_CONF=$DIR/etc/slurm.conf timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
fi

stop() { # stop NAME: the daemon NAME whose pid is in $DIR/NAME.pid
    local name=$1 pidfile=$DIR/$1.pid pid comm
    [[ -e $pidfile ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile" || true)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        return 0
    fi
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ $comm != "$name"* ]]; then
        log "pid $pid of $pidfile is '$comm', not $name: leaving it alone"
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) still running after 30 s: KILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}

# slurmd first (it talks to slurmctld), munged last (both daemons authenticate through it).
stop slurmd
stop slurmctld
stop munged

# The /etc/slurm/slurm.conf link that slurm-up.sh made, if it still points at this folder.
SYS_CONF=/etc/slurm/slurm.conf
if [[ -L $SYS_CONF && $(readlink "$SYS_CONF") == "$DIR/etc/slurm.conf" ]]; then
    rm -f "$SYS_CONF"
fi
log "stopped the cluster in $DIR"
