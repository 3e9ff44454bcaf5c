#!/usr/bin/env bash
# A real single-node Slurm cluster on 127.0.0.1 for the Slurm executor's integration tests.
#
#   infra/slurm-local.sh start    install Debian's Slurm (and munge, MariaDB + slurmdbd for sacct) if
#                                 needed, write the config, start the daemons (idempotent)
#   infra/slurm-local.sh stop     cancel our jobs, stop the daemons this script started, by the PIDs
#                                 it recorded (idempotent); --purge also deletes job state and logs
#   infra/slurm-local.sh status   exit 0 when slurmctld answers and the node is usable
#   infra/slurm-local.sh env      print `export` lines for the tests: eval "$(infra/slurm-local.sh env)"
#
# Facts this follows (measured, /work/shared/reference/slurm-local.md): Slurm 22.05 from Debian
# bookworm, no systemd (daemons are started directly: the image's policy-rc.d blocks service starts),
# munged runs as user munge, NodeName must be `hostname -s`. EnforcePartLimits=ALL so that an
# impossible request is refused at sbatch time instead of pending forever; a fast scheduler interval
# so a trivial job completes in about a second; cred_expire=10 so a requeued job is eligible after
# about 10 s instead of 120 s; MaxJobCount=100000 so a 5,000-cell sweep (15,000 array tasks) fits.
#
# Settings:
#   SLURM_LOCAL_ACCOUNTING  1 (default): MariaDB + slurmdbd, so sacct works; 0: accounting/none
#   SLURM_LOCAL_CPUS        CPUs the node advertises (default: nproc; more oversubscribes)
#   SLURM_LOCAL_FORCE       1: overwrite a slurm.conf that this script did not write
#
# /etc/slurm/slurm.conf is written (the place every Slurm client reads), marked as ours; state, pid
# files and logs live under $EMORG_CACHE/slurm-local/.
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
readonly CACHE
readonly STATE="$CACHE/slurm-local"
readonly RUN="$STATE/run"
readonly LOGS="$STATE/log"
readonly CONF=/etc/slurm/slurm.conf
readonly DBD_CONF=/etc/slurm/slurmdbd.conf
readonly MARK="# written by emorg infra/slurm-local.sh"
readonly ACCOUNTING="${SLURM_LOCAL_ACCOUNTING:-1}"
readonly MUNGE_PID="$RUN/munged.pid"
readonly MARIADB_PID="$RUN/mariadbd.pid"
readonly MARIADB_SOCK=/run/mysqld/mysqld.sock
readonly DBD_PID="$RUN/slurmdbd.pid"
readonly CTLD_PID="$RUN/slurmctld.pid"
readonly SLURMD_PID="$RUN/slurmd.pid"
readonly PARTITION=debug
readonly MAX_ARRAY_SIZE=1001
# Test-only database password: MariaDB runs with --skip-networking (unix socket only).
readonly DB_PASS=slurmpw

say() { echo "slurm-local: $*" >&2; }

die() {
  say "ERROR: $*"
  exit 1
}

show_tail() {
  local file=$1
  if [[ -s $file ]]; then
    say "last lines of $file:"
    tail -n 30 "$file" >&2
  fi
}

take_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock 9
}

install_packages() {
  local pkgs=(slurm-wlm slurmctld slurmd slurm-client munge)
  if [[ $ACCOUNTING == 1 ]]; then
    pkgs+=(mariadb-server slurmdbd)
  fi
  local missing=()
  local p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get)"
  say "installing ${missing[*]} (log: $STATE/apt.log)"
  local t0=$SECONDS
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"; } >"$STATE/apt.log" 2>&1; then
    show_tail "$STATE/apt.log"
    die "apt-get install ${missing[*]} failed"
  fi
  say "installed in $((SECONDS - t0)) s"
}

# The recorded PID of $1 (a pid file), if it is a number and the process is alive and runs $2.
live_pid() {
  local file=$1 exe=$2 pid argv0
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)
  [[ $(basename -- "$argv0") == "$exe" ]] || return 1
  echo "$pid"
}

# Stops the process recorded in $1 (TERM, then KILL after 15 s) and removes the pid file.
stop_pid() {
  local file=$1 exe=$2 pid i
  if pid=$(live_pid "$file" "$exe"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$exe (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $exe (pid $pid)"
  fi
  rm -f "$file"
}

wait_for() {
  local what=$1 tries=$2
  shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  die "$what did not come up in $((tries / 10)) s"
}

start_munge() {
  if live_pid "$MUNGE_PID" munged >/dev/null; then
    return 0
  fi
  mkdir -p /run/munge
  chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
  # A munged we did not record (a package script, an earlier session) holds the socket: reuse it.
  if [[ -S /run/munge/munge.socket.2 ]] && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    local pid
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    [[ -n $pid ]] && echo "$pid" >"$MUNGE_PID"
    return 0
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid 9>&- </dev/null
  wait_for munged 50 test -s /run/munge/munged.pid
  cp /run/munge/munged.pid "$MUNGE_PID"
  wait_for munged 50 bash -c 'munge -n </dev/null | unmunge'
}

start_mariadb() {
  if live_pid "$MARIADB_PID" mariadbd >/dev/null; then
    return 0
  fi
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  setsid nohup /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
    --socket="$MARIADB_SOCK" --skip-networking </dev/null >"$LOGS/mariadb.log" 2>&1 9>&- &
  wait_for mariadb 300 mariadb-admin --socket="$MARIADB_SOCK" ping
  cp /run/mysqld/mysqld.pid "$MARIADB_PID"
  mariadb --socket="$MARIADB_SOCK" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

real_memory() {
  # Kept from the existing config so re-runs do not change it (a change restarts the daemons).
  if [[ -f $CONF ]] && grep -q "^$MARK" "$CONF"; then
    local old
    old=$(sed -n 's/^NodeName=.* RealMemory=\([0-9]*\).*/\1/p' "$CONF")
    if [[ -n $old ]]; then
      echo "$old"
      return
    fi
  fi
  awk '/MemAvailable/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo
}

write_config() {
  local host cpus mem acct new
  host=$(hostname -s)
  cpus="${SLURM_LOCAL_CPUS:-$(nproc)}"
  mem=$(real_memory)
  if [[ $ACCOUNTING == 1 ]]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
  else
    acct="AccountingStorageType=accounting_storage/none"
  fi
  local overrides=""
  if ((cpus > $(nproc))); then
    overrides="SlurmdParameters=config_overrides"
  fi
  new=$(
    cat <<EOF
$MARK (accounting=$ACCOUNTING)
ClusterName=localcluster
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
EnforcePartLimits=ALL
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
$acct
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=0,batch_sched_delay=0
MinJobAge=600
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=100000
$overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  )
  if [[ -f $CONF ]] && ! grep -q "^$MARK" "$CONF" && [[ ${SLURM_LOCAL_FORCE:-0} != 1 ]]; then
    die "$CONF exists and was not written by this script; set SLURM_LOCAL_FORCE=1 to replace it"
  fi
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/spool" "$LOGS" "$RUN"
  CONFIG_CHANGED=0
  if [[ ! -f $CONF ]] || [[ "$(<"$CONF")" != "$new" ]]; then
    printf '%s\n' "$new" >"$CONF"
    CONFIG_CHANGED=1
  fi
  if [[ $ACCOUNTING == 1 ]]; then
    local dbd
    dbd=$(
      cat <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOGS/slurmdbd.log
PidFile=$DBD_PID
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
    )
    if [[ ! -f $DBD_CONF ]] || [[ "$(<"$DBD_CONF")" != "$dbd" ]]; then
      (umask 077 && printf '%s\n' "$dbd" >"$DBD_CONF")
      CONFIG_CHANGED=1
    fi
  fi
}

ctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

node_usable() {
  local state
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1)
  [[ $state =~ ^(idle|mix|alloc|comp)$ ]]
}

start_daemons() {
  start_munge
  if [[ $ACCOUNTING == 1 ]]; then
    start_mariadb
    if ! live_pid "$DBD_PID" slurmdbd >/dev/null; then
      /usr/sbin/slurmdbd 9>&- </dev/null
      wait_for slurmdbd 100 live_pid "$DBD_PID" slurmdbd
      # slurmctld registers the cluster with slurmdbd when it starts; give slurmdbd its port first.
      wait_for slurmdbd 100 bash -c "exec 3<>/dev/tcp/127.0.0.1/6819"
    fi
  fi
  if ! live_pid "$CTLD_PID" slurmctld >/dev/null; then
    /usr/sbin/slurmctld 9>&- </dev/null || { show_tail "$LOGS/slurmctld.log"; die "slurmctld did not start"; }
  fi
  wait_for slurmctld 200 ctld_answers
  if ! live_pid "$SLURMD_PID" slurmd >/dev/null; then
    /usr/sbin/slurmd 9>&- </dev/null || { show_tail "$LOGS/slurmd.log"; die "slurmd did not start"; }
  fi
  wait_for "the node (sinfo idle)" 300 node_usable
}

stop_daemons() {
  if [[ ${SLURM_LOCAL_CANCEL:-1} == 1 ]] && live_pid "$CTLD_PID" slurmctld >/dev/null; then
    # No slurmstepd may outlive slurmd.
    scancel --user=root 2>/dev/null || true
    sleep 1
  fi
  stop_pid "$SLURMD_PID" slurmd
  stop_pid "$CTLD_PID" slurmctld
  stop_pid "$DBD_PID" slurmdbd
  stop_pid "$MARIADB_PID" mariadbd
  stop_pid "$MUNGE_PID" munged
}

start() {
  local t0=${EPOCHREALTIME/./}
  mkdir -p "$RUN" "$LOGS"
  install_packages
  write_config
  if ((CONFIG_CHANGED)); then
    if live_pid "$CTLD_PID" slurmctld >/dev/null || live_pid "$SLURMD_PID" slurmd >/dev/null; then
      say "the configuration changed: restarting the daemons"
      SLURM_LOCAL_CANCEL=0 stop_daemons
    fi
  fi
  start_daemons
  say "up in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms: $(sinfo -h -o '%P %a %D %t %c CPUs' | head -n 1); accounting=$ACCOUNTING; logs $LOGS"
}

status() {
  if ctld_answers && node_usable; then
    say "running: $(sinfo -h -o '%P %a %D %t' | head -n 1); accounting=$ACCOUNTING"
  else
    say "not running"
    exit 1
  fi
}

print_env() {
  if ! { ctld_answers && node_usable; }; then
    say "warning: the cluster is not running; run: infra/slurm-local.sh start"
  fi
  printf 'export %s=%q\n' \
    EMORG_TEST_SLURM 1 \
    EMORG_TEST_SLURM_PARTITION "$PARTITION" \
    EMORG_TEST_SLURM_ACCOUNTING "$ACCOUNTING"
}

main() {
  case "${1:-}" in
    start)
      take_lock
      start
      ;;
    stop)
      take_lock
      stop_daemons
      if [[ ${2:-} == --purge ]]; then
        rm -rf "$STATE/ctld" "$STATE/spool" "$LOGS"
        say "purged job state and logs"
      fi
      ;;
    status) status ;;
    env) print_env ;;
    *)
      echo "usage: $0 start|stop [--purge]|status|env" >&2
      exit 2
      ;;
  esac
}

main "$@"; exit
