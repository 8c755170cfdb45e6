#!/usr/bin/env bash
# A private single-node SLURM cluster (slurm-wlm 22.05 + munge from Debian's
# apt) for trying the batch scripts in this directory on one machine.
#   usage: scripts/slurm/local-cluster.sh up|down|status
# up:     (root) installs slurm-wlm and munge with apt-get when missing, writes a
#         private slurm.conf plus state/spool/log/pid dirs and a private munge key
#         under $HYDROSHARD_SLURM_DIR (default /tmp/hydroshard-slurm), starts munged
#         (as the munge user, on a private socket), slurmctld and slurmd in the
#         foreground-detached way (no init system), records their PIDs in $DIR/state,
#         waits until the node is idle, and prints `export SLURM_CONF=...`.
#         Idempotent: a running cluster is left alone and its SLURM_CONF printed
#         again. Exits 75 when a daemon died because its port was taken (pick
#         other ports, run down, and retry).
# down:   cancels the cluster's jobs (bounded wait), stops exactly the recorded PIDs (TERM, then KILL after a bounded wait)
#         and removes $DIR.
# status: the recorded daemons (alive or not) and sinfo.
# Env: HYDROSHARD_SLURM_DIR, SLURM_CPUS (default 8: the node claims more CPUs
# than it has, SlurmdParameters=config_overrides, so 8-task jobs run on 2 cores),
# SLURMCTLD_PORT (6817), SLURMD_PORT (6818), SLURM_CLUSTER_NAME (hydroshard),
# UP_TIMEOUT seconds (30).
# Several clusters may run on one host at once, each with its own DIR and
# ports: everything a cluster writes (conf, munge key, socket and seed, state,
# spool with slurmstepd's sockets, pid and log files) is under its DIR, nothing
# under /etc/munge, /var or /run. They share the node name (the host's short
# name): slurmd keeps no per-host state outside its spool dir, and each slurmd
# talks only to its own controller, through its own ports.
set -euo pipefail

DIR=${HYDROSHARD_SLURM_DIR:-/tmp/hydroshard-slurm}
STATE=$DIR/state
CONF=$DIR/etc/slurm.conf
CPUS=${SLURM_CPUS:-8}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
CLUSTER_NAME=${SLURM_CLUSTER_NAME:-hydroshard}
UP_TIMEOUT=${UP_TIMEOUT:-30}

log() { echo "local-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

read_state() {  # sets MUNGED_PID SLURMCTLD_PID SLURMD_PID from the state file
  MUNGED_PID= SLURMCTLD_PID= SLURMD_PID=
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
}

node_state() { SLURM_CONF=$CONF timeout 5 sinfo -h -N -o '%t' 2>/dev/null | head -1; }

wait_idle() {
  local deadline=$((SECONDS + UP_TIMEOUT)) s=
  while [ $SECONDS -lt $deadline ]; do
    s=$(node_state || true)
    case "$s" in idle|mix|alloc) return 0 ;; esac
    alive "$SLURMCTLD_PID" || died slurmctld "$CTLD_PORT"
    alive "$SLURMD_PID" || died slurmd "$SLURMD_PORT"
    sleep 0.2
  done
  die "node not idle after ${UP_TIMEOUT}s (state '${s}'); see $DIR/log/"
}

# A daemon died while starting: exit 75 when it could not bind its port
# (taken by another process since the caller chose it), else 1.
died() {
  local name=$1 port=$2
  if grep -qs 'Address already in use' "$DIR/log/$name.log" "$DIR/log/$name.out"; then
    log "error: $name could not bind port $port (Address already in use); see $DIR/log/$name.log"
    exit 75
  fi
  die "$name died; see $DIR/log/$name.log"
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; installing needs root (apt-get install slurm-wlm munge)"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # another cluster starting at the same time may be installing too: wait for the lock
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

ensure_hostname_resolves() {
  local host=$1
  getent hosts "$host" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "hostname $host does not resolve; add it to /etc/hosts"
  # locked and checked again: another cluster starting at the same time may add it too
  (
    flock 9
    getent hosts "$host" >/dev/null && exit 0
    log "adding '127.0.1.1 $host' to /etc/hosts"
    echo "127.0.1.1 $host" >>/etc/hosts
  ) 9>>/etc/hosts
}

# Stop one recorded pid: TERM, wait up to 10 s, then KILL.
stop_pid() {
  local name=$1 pid=$2 i
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do alive "$pid" || return 0; sleep 0.2; done
  log "$name (pid $pid) ignored TERM for 10s: KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 25); do alive "$pid" || return 0; sleep 0.2; done
  log "warning: $name (pid $pid) still alive"
}

cmd_up() {
  if read_state && alive "$MUNGED_PID" && alive "$SLURMCTLD_PID" && alive "$SLURMD_PID"; then
    wait_idle
    log "already up ($DIR)"
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  if [ -f "$STATE" ]; then
    log "stale or partial cluster in $DIR: stopping what is left of it first"
    cmd_down
  fi
  [ "$(id -u)" = 0 ] || die "up needs root (daemons run as root with SlurmUser=root)"
  install_packages
  local host mem
  host=$(hostname -s)
  ensure_hostname_resolves "$host"
  mem=$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)

  mkdir -p "$DIR"/{etc,ctld-state,spool,log,run,munge}
  chown munge:munge "$DIR/munge"; chmod 0755 "$DIR/munge"  # munged requires a socket dir that everyone may traverse
  # The cluster's own munge key (not /etc/munge/munge.key): credentials of
  # another cluster on this host are rejected, not silently accepted.
  local key=$DIR/munge/munge.key sock=$DIR/munge/munge.socket
  (umask 077; dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
  chown munge:munge "$key"; chmod 0400 "$key"

  cat >"$CONF" <<CONF
# Private single-node cluster written by scripts/slurm/local-cluster.sh
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
KillWait=10
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
StateSaveLocation=$DIR/ctld-state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$host CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

  # All three run in the foreground (-F / -D) as background children of a new
  # session, so $! is the daemon's own pid and it outlives this script.
  setsid setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged -F --socket="$sock" --key-file="$key" --pid-file="$DIR/munge/munged.pid" \
      --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
    </dev/null >"$DIR/log/munged.out" 2>&1 &
  MUNGED_PID=$!
  echo "MUNGED_PID=$MUNGED_PID" >"$STATE"
  local i
  for i in $(seq 50); do [ -S "$sock" ] && break; alive "$MUNGED_PID" || break; sleep 0.1; done
  [ -S "$sock" ] || die "munged did not start; see $DIR/log/munged.out $DIR/munge/munged.log"
  timeout 5 munge -n --socket="$sock" | timeout 5 unmunge --socket="$sock" >/dev/null || die "munge round trip failed"

  setsid slurmctld -D -c -f "$CONF" </dev/null >"$DIR/log/slurmctld.out" 2>&1 &
  SLURMCTLD_PID=$!
  echo "SLURMCTLD_PID=$SLURMCTLD_PID" >>"$STATE"
  setsid slurmd -D -f "$CONF" </dev/null >"$DIR/log/slurmd.out" 2>&1 &
  SLURMD_PID=$!
  echo "SLURMD_PID=$SLURMD_PID" >>"$STATE"
  echo "SLURM_CONF=$CONF" >>"$STATE"
  wait_idle
  log "up: node $host idle, $CPUS CPUs, state in $DIR"
  echo "export SLURM_CONF=$CONF"
}

# Cancel every job of this cluster and wait (bounded) until none is left, so
# that no job step (slurmstepd and its tasks) outlives the daemons.
cancel_jobs() {
  alive "$SLURMCTLD_PID" || return 0
  local jobs i
  jobs=$(SLURM_CONF=$CONF timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') || return 0
  [ -n "${jobs// /}" ] || return 0
  log "cancelling jobs: $jobs"
  # shellcheck disable=SC2086
  SLURM_CONF=$CONF timeout 10 scancel $jobs 2>/dev/null || true
  for i in $(seq 75); do
    # squeue lists pending, running and completing jobs by default
    [ -z "$(SLURM_CONF=$CONF timeout 5 squeue -h -o %A 2>/dev/null | head -1)" ] && return 0
    sleep 0.2
  done
  log "warning: jobs still running after 15s: $(SLURM_CONF=$CONF timeout 5 squeue -h -o '%A %T' 2>/dev/null | tr '\n' ' ')"
}

cmd_down() {
  if ! read_state; then log "not up ($STATE missing)"; return 0; fi
  cancel_jobs
  # slurmd first (it may still be running job steps), then the controller, then munge.
  stop_pid slurmd "$SLURMD_PID"
  stop_pid slurmctld "$SLURMCTLD_PID"
  stop_pid munged "$MUNGED_PID"
  rm -rf "$DIR"
  log "down"
}

cmd_status() {
  if ! read_state; then echo "not up ($STATE missing)"; return 1; fi
  local rc=0 n p
  for n in munged slurmctld slurmd; do
    case $n in munged) p=$MUNGED_PID ;; slurmctld) p=$SLURMCTLD_PID ;; slurmd) p=$SLURMD_PID ;; esac
    if alive "$p"; then echo "$n: running (pid $p)"; else echo "$n: NOT running (recorded pid ${p:-none})"; rc=1; fi
  done
  echo "SLURM_CONF=$CONF"
  SLURM_CONF=$CONF timeout 5 sinfo || rc=1
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
