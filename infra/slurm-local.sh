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
#   EMORG_DAEMON_STOP_GRACE seconds between SIGTERM and SIGKILL when a daemon is stopped (default 10)
#
# /etc/slurm/slurm.conf is written (the place every Slurm client reads), marked as ours; state, pid
# files and logs live under $EMORG_CACHE/slurm-local/.
#
# Every daemon (munged, mariadbd, slurmdbd, slurmctld, slurmd) runs in the foreground under
# infra/daemon.sh, which records its own pid, sends its stdout and stderr to $LOGS/<name>.out
# (mariadbd: mariadb.log; the Slurm daemons copy their log there, next to their <name>.log), waits
# for it to answer (naming the log when it dies or does not answer), and stops it with one grace.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
DAEMON_TAG=slurm-local
# shellcheck source=daemon.sh source-path=SCRIPTDIR
source "$HERE/daemon.sh"

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

say() { daemon_say "$@"; }

die() {
  say "ERROR: $*"
  exit 1
}

# Recognised by the base name of their program, so that a munged this script adopted (started by
# someone else) counts too. The Slurm daemons' configured pid files are these same files (they
# write their own pid, which is the recorded one: they run in the foreground).
daemon_define munged "$MUNGE_PID" "$LOGS/munged.out" munged
daemon_define mariadbd "$MARIADB_PID" "$LOGS/mariadb.log" mariadbd
daemon_define slurmdbd "$DBD_PID" "$LOGS/slurmdbd.out" slurmdbd
daemon_define slurmctld "$CTLD_PID" "$LOGS/slurmctld.out" slurmctld
daemon_define slurmd "$SLURMD_PID" "$LOGS/slurmd.out" slurmd

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
    daemon_show_tail "$STATE/apt.log"
    die "apt-get install ${missing[*]} failed"
  fi
  say "installed in $((SECONDS - t0)) s"
}

# Readiness probes (daemon_wait runs them and discards their output).
munge_answers() { munge -n </dev/null | unmunge; }
# shellcheck disable=SC2317 # called by daemon_wait
mariadb_answers() { mariadb-admin --socket="$MARIADB_SOCK" ping; }
# shellcheck disable=SC2317 # called by daemon_wait
dbd_listens() { (exec 3<>/dev/tcp/127.0.0.1/6819); }

start_munge() {
  if daemon_status munged >/dev/null; then
    return 0
  fi
  mkdir -p /run/munge
  chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
  # A munged we did not record (a package script, an earlier session) holds the socket: reuse it.
  if [[ -S /run/munge/munge.socket.2 ]] && munge_answers >/dev/null 2>&1; then
    local pid
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    [[ -n $pid ]] && echo "$pid" >"$MUNGE_PID"
    return 0
  fi
  # As user munge; setpriv execs munged in place (runuser would fork and be the recorded pid).
  daemon_start munged setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged --foreground --pid-file=/run/munge/munged.pid
  daemon_wait munged 5 munge_answers || exit 1
}

start_mariadb() {
  if daemon_status mariadbd >/dev/null; then
    return 0
  fi
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  daemon_start mariadbd /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
    --socket="$MARIADB_SOCK" --skip-networking
  daemon_wait mariadbd 30 mariadb_answers || exit 1
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

# The Slurm daemons run with -D (foreground; their log is copied to stdout, so to $LOGS/<name>.out).
start_daemons() {
  start_munge
  if [[ $ACCOUNTING == 1 ]]; then
    start_mariadb
    if ! daemon_status slurmdbd >/dev/null; then
      daemon_start slurmdbd /usr/sbin/slurmdbd -D
      # slurmctld registers the cluster with slurmdbd when it starts; give slurmdbd its port first.
      daemon_wait slurmdbd 20 dbd_listens || exit 1
    fi
  fi
  if ! daemon_status slurmctld >/dev/null; then
    daemon_start slurmctld /usr/sbin/slurmctld -D
  fi
  daemon_wait slurmctld 20 ctld_answers || exit 1
  if ! daemon_status slurmd >/dev/null; then
    daemon_start slurmd /usr/sbin/slurmd -D
  fi
  # The node is usable (sinfo: idle, mix, alloc or comp).
  daemon_wait slurmd 30 node_usable || exit 1
}

stop_daemons() {
  if [[ ${SLURM_LOCAL_CANCEL:-1} == 1 ]] && daemon_status slurmctld >/dev/null; then
    # No slurmstepd may outlive slurmd.
    scancel --user=root 2>/dev/null || true
    sleep 1
  fi
  local name rc=0
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    daemon_stop "$name" || rc=1
  done
  return "$rc"
}

start() {
  local t0=${EPOCHREALTIME/./}
  mkdir -p "$RUN" "$LOGS"
  install_packages
  write_config
  if ((CONFIG_CHANGED)); then
    if daemon_status slurmctld >/dev/null || daemon_status slurmd >/dev/null; then
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
      daemon_lock "$STATE"
      start
      ;;
    stop)
      daemon_lock "$STATE"
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
