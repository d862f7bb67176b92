#!/usr/bin/env bash
# Single-node SLURM test cluster on 127.0.0.1 (Debian/Ubuntu packages, no systemd needed).
#
#   scripts/slurm/cluster.sh install              # apt-get the daemons (root; skipped when installed)
#   scripts/slurm/cluster.sh start  STATE_DIR     # write config, start munged/mariadbd/slurmdbd/slurmctld/slurmd
#   scripts/slurm/cluster.sh status STATE_DIR     # exit 0 when the cluster answers sinfo, else 1
#   scripts/slurm/cluster.sh stop   STATE_DIR     # stop every daemon by its PID file (idempotent)
#
# `start` prints, as its last line on stdout, `export SLURM_CONF=STATE_DIR/slurm.conf`, so a caller can do
#   eval "$(scripts/slurm/cluster.sh start /tmp/slurm | tail -1)"
# and then use sbatch/squeue/sacct/snakemake --executor slurm against the test cluster.
#
# The cluster: one node (the real hostname, as `slurmd -C` reports it) with one fake GPU, two partitions
# `cpu` (default) and `gpu`, both on that node; accounting through slurmdbd + a private MariaDB.
# Everything (config, munge key, database, spool, logs, PID files, sockets) lives under STATE_DIR; nothing is
# written under /etc or /var. The one exception is the symlink /run/slurm/conf -> STATE_DIR (see link_run_conf),
# for commands that run without SLURM_CONF. All daemons run as root (SlurmUser=root), which keeps file
# ownership trivial.
#
# Facts this script is built around:
# * `sacct` needs slurmdbd: with the default accounting_storage/none, sacct just reports that accounting is
#   disabled, and the snakemake SLURM executor plugin, which polls job states with sacct, never sees its jobs
#   finish (its status checks hang / retry forever). Hence the MariaDB + slurmdbd, and the cluster is
#   registered in the accounting database (`sacctmgr -i add cluster`) before slurmctld starts.
#   (MinJobAge=600 also keeps finished jobs in squeue long enough for the plugin's squeue-based status checks.)
# * A GRES needs a device file per GPU: a GPU GRES without `File=` (or with a file that does not exist) makes
#   slurmd report fewer GPUs than slurm.conf claims and slurmctld drains the node. The fake GPU is therefore a
#   character device aliasing /dev/null (`mknod STATE_DIR/fakegpu0 c 1 3`), named in gres.conf; the job gets
#   CUDA_VISIBLE_DEVICES=0 like on a real GPU node. Devices are not constrained (no cgroups are used at all:
#   ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, ConstrainDevices=no), so nothing ever opens it.
#
# Environment overrides (all optional):
#   SLURM_TEST_CLUSTER       cluster name                                    [testcluster]
#   SLURMCTLD_PORT / SLURMD_PORT / SLURMDBD_PORT  TCP ports on 127.0.0.1    [6817 / 6818 / 6819]
#   SLURM_TEST_MEM_RESERVE_MB  memory (MB) kept off RealMemory from slurmd -C [512]
#   SLURM_TEST_DEF_MEM_PER_CPU memory (MB) per CPU of a job without --mem     [1024]
#   SLURM_TEST_START_TIMEOUT seconds to wait for the node to be idle         [60]
#   SLURM_TEST_KEEP_ON_FAILURE=1  leave the daemons running when start fails (to debug them)
#   SLURM_TEST_RUN_CONF_LINK=0    do not create the /run/slurm/conf symlink

set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

CLUSTER_NAME=${SLURM_TEST_CLUSTER:-testcluster}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
DBD_PORT=${SLURMDBD_PORT:-6819}
MEM_RESERVE_MB=${SLURM_TEST_MEM_RESERVE_MB:-512}
DEF_MEM_PER_CPU=${SLURM_TEST_DEF_MEM_PER_CPU:-1024}
START_TIMEOUT=${SLURM_TEST_START_TIMEOUT:-60}
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=slurmtestpass

log() { echo "[slurm-cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ----------------------------------------------------------------------------------------------------------
# install: the Debian packages. Their post-install scripts cannot start the daemons (no systemd; in containers
# policy-rc.d usually forbids it anyway) -- `start` runs them by hand.
# ----------------------------------------------------------------------------------------------------------
cmd_install() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "already installed: ${PKGS[*]}"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by other means"
    [ "$(id -u)" -eq 0 ] || die "must run as root to apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    log "installing ${missing[*]}"
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${PKGS[@]}" || die "apt-get install failed"
}

# ----------------------------------------------------------------------------------------------------------
# Helpers: paths under STATE_DIR, PID-file handling.
# ----------------------------------------------------------------------------------------------------------
set_paths() {
    [ -n "${1:-}" ] || usage
    S=$(realpath -m "$1")               # absolute, symlink-free: it goes into config files
    CONF=$S/slurm.conf
    ETC=$S/etc
    RUN=$S/run
    LOGD=$S/log
    MUNGE_SOCK=$RUN/munge.socket.2
    MYSQL_SOCK=$RUN/mysqld.sock
    MYSQL_DATA=$S/mysql
}

# pid_of NAME -> the live PID from $RUN/NAME.pid whose process is really NAME (PIDs get reused), else nothing
pid_of() {
    local f=$RUN/$1.pid pid comm
    [ -s "$f" ] || return 0
    pid=$(tr -dc '0-9' <"$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case "$comm" in "$1"*) echo "$pid" ;; esac
}

# stop_daemon NAME: SIGTERM by PID file, wait up to 30 s, then SIGKILL; remove the PID file
stop_daemon() {
    local name=$1 pid i
    pid=$(pid_of "$name")
    if [ -n "$pid" ]; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM for 30 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$RUN/$name.pid"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds
wait_for() {
    local what=$1 secs=$2 deadline=$((SECONDS + $2))
    shift 2
    while [ "$SECONDS" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "timed out after ${secs} s waiting for $what"
    return 1
}

show_logs() {
    local f
    for f in "$LOGD"/*.log; do
        [ -f "$f" ] || continue
        echo "===== $f (last 40 lines) =====" >&2
        tail -n 40 "$f" >&2
    done
    if [ -f "$CONF" ]; then
        echo "===== sinfo -N -l / scontrol show node =====" >&2
        SLURM_CONF=$CONF timeout 10 sinfo -N -l >&2 2>&1 || true
        SLURM_CONF=$CONF timeout 10 scontrol show node >&2 2>&1 || true
    fi
}

fail_start() {
    log "start failed: $*"
    show_logs
    if [ "${SLURM_TEST_KEEP_ON_FAILURE:-0}" != 1 ]; then
        log "stopping what was started (set SLURM_TEST_KEEP_ON_FAILURE=1 to keep it)"
        stop_all
    fi
    exit 1
}

# shellcheck disable=SC2120  # called with arguments through wait_for
mysql_root() { mariadb --no-defaults --socket="$MYSQL_SOCK" -u root "$@"; }

# ----------------------------------------------------------------------------------------------------------
# Configuration files (rewritten on every start; state, database and logs are kept).
# ----------------------------------------------------------------------------------------------------------
write_config() {
    local host node_line real_mem cpus_line

    # The node line as slurmd itself sees this machine: NodeName must be the hostname slurmd reports, or slurmd
    # cannot find itself in slurm.conf. RealMemory is lowered a little (a node that reports less memory than
    # configured is drained); drop UpTime, add the fake GPU and the address.
    node_line=$(slurmd -C | head -1)
    host=$(sed -n 's/.*NodeName=\([^ ]*\).*/\1/p' <<<"$node_line")
    real_mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
    if [ -z "$host" ] || [ -z "$real_mem" ]; then fail_start "cannot parse 'slurmd -C': $node_line"; fi
    real_mem=$((real_mem - MEM_RESERVE_MB))
    [ "$real_mem" -ge 4000 ] || log "WARNING: only ${real_mem} MB for jobs: sbatch --mem=4000 will be rejected"
    cpus_line=$(sed -e 's/NodeName=[^ ]* *//' -e 's/RealMemory=[0-9]*//' -e 's/UpTime=[^ ]*//' <<<"$node_line")
    NODE=$host

    # Fake GPU: a character device with the numbers of /dev/null (1,3). Fall back to a symlink to /dev/null where
    # mknod is not permitted (slurmd only stat()s the file).
    if [ ! -c "$S/fakegpu0" ]; then
        rm -f "$S/fakegpu0"
        mknod "$S/fakegpu0" c 1 3 2>/dev/null || ln -s /dev/null "$S/fakegpu0"
    fi

    cat >"$CONF" <<EOF
# Generated by scripts/slurm/cluster.sh -- single-node test cluster; rewritten on every start.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# The private munged's socket (clients, slurmctld, slurmd and slurmdbd all read this).
AuthInfo=socket=$MUNGE_SOCK
StateSaveLocation=$S/spool/ctld
SlurmdSpoolDir=$S/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGD/slurmctld.log
SlurmdLogFile=$LOGD/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$ETC/plugstack.conf
MpiDefault=none
# No cgroups: track processes through /proc, no task binding or device constraint.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU
GresTypes=gpu
ReturnToService=2
SlurmdTimeout=120
SlurmctldTimeout=60
InactiveLimit=0
KillWait=10
# Finished jobs stay visible in squeue/scontrol for 10 minutes.
MinJobAge=600
# Accounting through slurmdbd, so that sacct works (the snakemake SLURM plugin polls sacct).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
# Keep the job comment (the snakemake plugin writes rule_<rule>_wildcards_<...> there) for `sacct -o Comment`.
AccountingStoreFlags=job_comment
# For slurmdbd connections Slurm takes the munge socket from AccountingStoragePass, not AuthInfo.
AccountingStoragePass=$MUNGE_SOCK
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host $cpus_line RealMemory=$real_mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF

    # The GRES: one GPU backed by the fake device file (without File= the node would be drained).
    cat >"$S/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu File=$S/fakegpu0
EOF

    # cgroup.conf: read by slurmd/slurmstepd even when no cgroup plugin is configured; nothing is constrained.
    cat >"$S/cgroup.conf" <<EOF
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainSwapSpace=no
ConstrainDevices=no
EOF

    # An empty SPANK plugin stack (the package's /etc/slurm/plugstack.conf is not ours to read).
    : >"$ETC/plugstack.conf"

    # slurmdbd.conf: must be owned by SlurmUser and mode 600. slurmdbd finds it next to $SLURM_CONF.
    cat >"$S/slurmdbd.conf" <<EOF
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
PidFile=$RUN/slurmdbd.pid
LogFile=$LOGD/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
# 'localhost' = the unix socket; its path comes from MYSQL_UNIX_PORT (see start_slurmdbd).
StorageHost=localhost
StorageLoc=$DB_NAME
StorageUser=$DB_USER
StoragePass=$DB_PASS
EOF
    chmod 600 "$S/slurmdbd.conf"
}

# ----------------------------------------------------------------------------------------------------------
# Daemons, in dependency order. Each is started in its own session (setsid) with stdio on its log file, so
# that it neither holds the caller's stdout (which would block `$(cluster.sh start ...)`) nor dies with the
# caller's process group.
# ----------------------------------------------------------------------------------------------------------
start_munged() {
    # A private key and socket: authentication between all Slurm components and clients.
    if [ ! -s "$ETC/munge.key" ]; then
        dd if=/dev/urandom of="$ETC/munge.key" bs=1 count=1024 status=none
    fi
    chmod 400 "$ETC/munge.key"
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
    setsid munged --force \
        --key-file="$ETC/munge.key" --socket="$MUNGE_SOCK" --pid-file="$RUN/munged.pid" \
        --log-file="$LOGD/munged.log" --seed-file="$S/munge/munged.seed" \
        </dev/null >>"$LOGD/munged.log" 2>&1 ||
        fail_start "munged did not start"
    wait_for "munged" 15 sh -c "munge -S '$MUNGE_SOCK' -n | unmunge -S '$MUNGE_SOCK'" ||
        fail_start "munged does not answer on $MUNGE_SOCK"
}

start_mariadb() {
    # A private MariaDB: own datadir and unix socket under STATE_DIR, no TCP (--skip-networking), so it cannot
    # clash with any other MySQL on the machine. root logs in through the socket (unix_socket auth).
    if [ ! -d "$MYSQL_DATA/mysql" ]; then
        rm -rf "$MYSQL_DATA"
        mariadb-install-db --no-defaults --datadir="$MYSQL_DATA" --user=root \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOGD/mariadb-install-db.log" 2>&1 || fail_start "mariadb-install-db failed"
    fi
    rm -f "$MYSQL_SOCK"
    # innodb_lock_wait_timeout as Slurm recommends; the buffer pool stays at the small default, so slurmdbd.log
    # says "Database settings not recommended values: innodb_buffer_pool_size" (harmless for a test cluster).
    setsid mariadbd --no-defaults --datadir="$MYSQL_DATA" --socket="$MYSQL_SOCK" \
        --pid-file="$RUN/mariadbd.pid" --log-error="$LOGD/mariadbd.log" --skip-networking --user=root \
        --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOGD/mariadbd.log" 2>&1 &
    wait_for "mariadbd" 60 mysql_root -e 'SELECT 1' || fail_start "mariadbd does not answer on $MYSQL_SOCK"
    # shellcheck disable=SC2119
    mysql_root <<EOF || fail_start "cannot create the $DB_NAME database"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    # libmariadb connects to 'localhost' through the socket named by MYSQL_UNIX_PORT (slurmdbd.conf has no
    # socket option). slurmdbd daemonizes itself and writes its PID file.
    SLURM_CONF=$CONF MYSQL_UNIX_PORT=$MYSQL_SOCK setsid slurmdbd </dev/null >>"$LOGD/slurmdbd.log" 2>&1 ||
        fail_start "slurmdbd did not start"
    wait_for "slurmdbd" 60 env SLURM_CONF="$CONF" timeout 10 sacctmgr -n list cluster ||
        fail_start "slurmdbd does not answer"
    # Register the cluster (its root account and root user come with it); slurmctld then registers with it.
    if ! SLURM_CONF=$CONF sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER_NAME"; then
        SLURM_CONF=$CONF sacctmgr -i add cluster "$CLUSTER_NAME" >&2 || fail_start "sacctmgr add cluster failed"
    fi
}

start_slurmctld() {
    SLURM_CONF=$CONF setsid slurmctld </dev/null >>"$LOGD/slurmctld.log" 2>&1 ||
        fail_start "slurmctld did not start"
    wait_for "slurmctld" 60 env SLURM_CONF="$CONF" timeout 10 scontrol ping ||
        fail_start "slurmctld does not answer"
}

start_slurmd() {
    SLURM_CONF=$CONF setsid slurmd </dev/null >>"$LOGD/slurmd.log" 2>&1 || fail_start "slurmd did not start"
}

# The node must be idle in both partitions (mixed/allocated would also do after a restart with jobs).
node_ready() {
    local out
    out=$(SLURM_CONF=$CONF timeout 10 sinfo -h -N -n "$NODE" -o '%P %t') || return 1
    grep -Eq '^cpu\*? (idle|mix|alloc)$' <<<"$out" && grep -Eq '^gpu (idle|mix|alloc)$' <<<"$out"
}

# Commands that run without SLURM_CONF (e.g. the `srun` that the snakemake SLURM jobstep plugin starts inside
# each job: it strips every SLURM_* variable, SLURM_CONF included, from srun's environment) look for
# /etc/slurm/slurm.conf, then /run/slurm/conf/slurm.conf (where a configless slurmd keeps its config), then
# DNS SRV records. Without /etc/slurm/slurm.conf, point /run/slurm/conf at STATE_DIR (a symlink, the one thing
# written outside STATE_DIR; only one cluster at a time can own it; SLURM_TEST_RUN_CONF_LINK=0 disables it).
link_run_conf() {
    [ "${SLURM_TEST_RUN_CONF_LINK:-1}" = 1 ] || return 0
    if [ -e /etc/slurm/slurm.conf ]; then
        log "WARNING: /etc/slurm/slurm.conf exists: commands run without SLURM_CONF (srun inside snakemake jobs) use it"
    elif [ -e /run/slurm/conf ] && [ ! -L /run/slurm/conf ]; then
        log "WARNING: /run/slurm/conf is not a symlink, leaving it: srun inside snakemake jobs may not find the config"
    else
        mkdir -p /run/slurm
        ln -sfn "$S" /run/slurm/conf
    fi
}

unlink_run_conf() {
    if [ -L /run/slurm/conf ] && [ "$(readlink /run/slurm/conf)" = "$S" ]; then
        rm -f /run/slurm/conf
    fi
}

# descendants PID...: the PIDs and all their descendants
descendants() {
    local p
    for p in "$@"; do
        echo "$p"
        # shellcheck disable=SC2046
        descendants $(pgrep -P "$p" 2>/dev/null || true)
    done
}

stop_all() {
    local pid i steps
    # Cancel the jobs while slurmctld still answers, so that slurmstepd ends them cleanly (slurmstepd outlives
    # slurmd by design), then kill whatever job steps of this cluster are left, with their processes.
    if [ -f "$CONF" ] && [ -n "$(pid_of slurmctld)" ]; then
        SLURM_CONF=$CONF timeout 10 squeue -h -o %A 2>/dev/null | xargs -r env SLURM_CONF="$CONF" scancel 2>/dev/null || true
    fi
    for i in $(seq 1 30); do
        steps=()
        for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
            # the job steps of this cluster: slurmstepd inherits slurmd's SLURM_CONF
            if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qx "SLURM_CONF=$CONF"; then
                steps+=("$pid")
            fi
        done
        [ ${#steps[@]} -gt 0 ] || break
        if [ "$i" -eq 30 ]; then
            log "killing leftover job steps: ${steps[*]}"
            # shellcheck disable=SC2046
            kill -KILL $(descendants "${steps[@]}") 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    # Then the daemons, clients before servers.
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon slurmdbd
    stop_daemon mariadbd
    stop_daemon munged
    unlink_run_conf
}

cmd_start() {
    set_paths "$1"
    local p
    for p in slurmctld slurmd slurmdbd munged mariadbd sinfo sacctmgr; do
        command -v "$p" >/dev/null 2>&1 || die "$p not found: run '$0 install' first"
    done
    # unix socket paths are limited to 107 bytes
    [ ${#MYSQL_SOCK} -lt 100 ] || die "STATE_DIR path too long for unix sockets: $S"
    # A rerun restarts: stop whatever this STATE_DIR still runs.
    stop_all
    # The ports must be free (another test cluster, or a real slurm on this machine, would answer instead).
    for p in "$CTLD_PORT" "$SLURMD_PORT" "$DBD_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            die "port $p on 127.0.0.1 is in use (another cluster?): stop it or set SLURMCTLD_PORT/SLURMD_PORT/SLURMDBD_PORT"
        fi
    done
    mkdir -p "$ETC" "$RUN" "$LOGD" "$S/spool/ctld" "$S/spool/d" "$S/munge"
    chmod 700 "$ETC" "$S/munge"
    chmod 755 "$RUN" "$LOGD"
    local t0=$SECONDS
    write_config
    link_run_conf
    start_munged
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    wait_for "node $NODE idle in partitions cpu and gpu" "$START_TIMEOUT" node_ready ||
        fail_start "node $NODE is not idle in both partitions"
    log "cluster up in $((SECONDS - t0)) s: node $NODE, partitions cpu (default) and gpu; logs in $LOGD"
    SLURM_CONF=$CONF sinfo >&2
    echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
    set_paths "$1"
    [ -d "$S" ] || { log "nothing to stop in $S"; return 0; }
    stop_all
    log "stopped"
}

cmd_status() {
    [ -n "${1:-}" ] && [ -f "$1/slurm.conf" ] || exit 1
    SLURM_CONF=$(realpath -m "$1")/slurm.conf timeout 10 sinfo >/dev/null 2>&1
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    *) usage ;;
esac
