# shellcheck shell=bash
# Background daemons for emorg's infra scripts (sourced by s3-local.sh, llm-server.sh and
# slurm-local.sh), so that every server they run is started, waited for, stopped and reported the
# same way.
#
#   daemon_define NAME PIDFILE LOG MATCH   describe a daemon (call once per daemon, before the rest)
#   daemon_lock DIR                        serialise start/stop: flock on DIR/lock, held on fd 9
#   daemon_start NAME CMD...               run CMD in the background: pid file, log, detached
#   daemon_wait NAME TIMEOUT PROBE...      wait until PROBE succeeds, or fail clearly
#   daemon_stop NAME                       SIGTERM, a grace period, SIGKILL, wait until gone
#   daemon_status NAME                     print the pid and return 0 when running, 1 when stopped
#   daemon_arg NAME FLAG                   the value after FLAG on the running daemon's command line
#   daemon_show_tail FILE                  the last lines of a log, for error messages
#   daemon_say MESSAGE...                  "TAG: MESSAGE" on stderr (TAG: $DAEMON_TAG, set before
#                                          sourcing; default the script's name without .sh)
#
# What "running" means: the pid file holds a number, that process is alive (not a zombie), and
# its command line matches MATCH, so a recycled pid is never trusted or killed. MATCH with a slash
# or a space is a prefix of the command line (its words joined by single spaces, ending at a word
# boundary: "/path/bin" or "/venv/bin/python -m pkg"); MATCH without either is the base name of
# the program ("slurmd"). Daemons must run in the foreground (no self-daemonising fork), so that
# the pid the helper records is the daemon's own.
#
# Start: CMD runs under setsid and nohup (its own session, so a Ctrl-C or hang-up at the caller's
# terminal does not reach it), stdin from /dev/null, stdout and stderr to LOG (truncated), and
# fd 9 closed, so it never holds the start/stop lock. The pid file is written at once.
#
# Wait: every 0.1 s, the daemon must still be alive and PROBE (a command or function, output
# discarded) is tried; TIMEOUT is whole seconds by the clock (time spent in the probe counts, so a
# probe must bound its own run, e.g. curl --max-time). When the
# daemon exits first, or PROBE has not succeeded by the deadline, it prints the tail of LOG and an
# ERROR line naming LOG (with the exit status, or the timeout and the probe), stops the daemon, and
# returns 1; the caller then exits (`daemon_wait ... || exit 1`).
#
# Stop: one grace period everywhere: SIGTERM, then up to $EMORG_DAEMON_STOP_GRACE seconds
# (default 10) for the daemon to exit, then SIGKILL, then up to 10 s more until the process is
# gone. Only then is the pid file removed; a process that survives even SIGKILL is an ERROR
# (return 1) and its pid file is kept so that a later stop retries. Stopping a daemon that is not
# running (no pid file, or a stale one) says so and succeeds: stop is idempotent.
#
# The helper never exits the caller's shell and does not rely on `set -e` (callers use it).

DAEMON_TAG="${DAEMON_TAG:-$(basename -- "$0" .sh)}"
DAEMON_STOP_GRACE="${EMORG_DAEMON_STOP_GRACE:-10}"
if [[ ! $DAEMON_STOP_GRACE =~ ^[0-9]+$ ]]; then
  echo "$DAEMON_TAG: ERROR: EMORG_DAEMON_STOP_GRACE must be whole seconds, not '$DAEMON_STOP_GRACE'" >&2
  return 1
fi
readonly DAEMON_KILL_WAIT=10
readonly DAEMON_LOG_LINES=40
declare -A DAEMON_PIDFILE=() DAEMON_LOG=() DAEMON_MATCH=() DAEMON_CHILD=()

daemon_say() { echo "$DAEMON_TAG: $*" >&2; }

daemon_show_tail() {
  local file=$1
  if [[ -s $file ]]; then
    daemon_say "last lines of $file:"
    tail -n "$DAEMON_LOG_LINES" "$file" >&2
  else
    daemon_say "($file is empty or missing)"
  fi
}

daemon_define() {
  local name=$1
  DAEMON_PIDFILE[$name]=$2
  DAEMON_LOG[$name]=$3
  DAEMON_MATCH[$name]=$4
}

daemon__known() {
  [[ -n ${DAEMON_PIDFILE[$1]+set} ]] && return 0
  daemon_say "ERROR: daemon.sh: no daemon named '$1' (call daemon_define first)"
  return 2
}

# Microseconds since the epoch (EPOCHREALTIME's decimal point follows the locale).
daemon__now_us() { echo $((10#${EPOCHREALTIME/[.,]/})); }

daemon_lock() {
  local dir=$1
  mkdir -p "$dir" || return 1
  exec 9>"$dir/lock" || return 1
  if ! flock -n 9; then
    daemon_say "waiting for another start or stop to finish (lock $dir/lock)"
    flock 9
  fi
}

# True when $1 is alive and not a zombie (a zombie answers kill -0 until it is reaped).
daemon__alive() {
  local pid=$1 stat
  kill -0 "$pid" 2>/dev/null || return 1
  { stat=$(<"/proc/$pid/stat"); } 2>/dev/null || return 1
  stat=${stat##*') '}
  [[ ${stat%% *} != Z ]]
}

# True when pid $1 is alive and its command line matches $2 (see the header).
daemon__matches() {
  local pid=$1 match=$2 line IFS=" "
  local -a argv=()
  daemon__alive "$pid" || return 1
  mapfile -d '' -t argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
  ((${#argv[@]} > 0)) || return 1
  if [[ $match == */* || $match == *' '* ]]; then
    line="${argv[*]}"
    [[ $line == "$match" || $line == "$match "* ]]
  else
    [[ ${argv[0]##*/} == "$match" ]]
  fi
}

# The number in the pid file of daemon $1, whether or not that process runs.
daemon__recorded() {
  local file=${DAEMON_PIDFILE[$1]} pid
  [[ -f $file ]] || return 1
  pid=$(<"$file") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

daemon_status() {
  local name=$1 pid
  daemon__known "$name" || return 2
  pid=$(daemon__recorded "$name") && daemon__matches "$pid" "${DAEMON_MATCH[$name]}" && echo "$pid"
}

daemon_arg() {
  local name=$1 flag=$2 pid prev="" arg
  pid=$(daemon_status "$name") || return 1
  while IFS= read -r -d '' arg; do
    if [[ $prev == "$flag" ]]; then
      echo "$arg"
      return 0
    fi
    prev=$arg
  done 2>/dev/null <"/proc/$pid/cmdline"
  return 1
}

daemon_start() {
  local name=$1 pid
  shift
  daemon__known "$name" || return 2
  if pid=$(daemon_status "$name"); then
    daemon_say "ERROR: $name already runs (pid $pid); stop it first"
    return 1
  fi
  local pidfile=${DAEMON_PIDFILE[$name]} log=${DAEMON_LOG[$name]}
  mkdir -p "$(dirname -- "$pidfile")" "$(dirname -- "$log")" || return 1
  rm -f "$pidfile"
  # setsid runs the command in place (no fork) when the caller is not a process-group leader,
  # which holds for a background job of a script; with job control on (an interactive shell) the
  # job leads its group and setsid would fork, so the recorded pid would be setsid's: skip it then.
  local -a detach=(nohup)
  if [[ $- != *m* ]] && command -v setsid >/dev/null; then
    detach=(setsid nohup)
  fi
  "${detach[@]}" "$@" </dev/null >"$log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  DAEMON_CHILD[$name]=$pid
}

# Sets daemon__how to how daemon $1's process $2 ended, when this shell started it (and reaps it
# here); empty otherwise. Not run in a subshell: only this shell can wait for its children.
daemon__ended() {
  local name=$1 pid=$2 rc
  daemon__how=""
  [[ ${DAEMON_CHILD[$name]:-} == "$pid" ]] || return 0
  # Braces: bash's own "Killed" notice for the job goes to the stderr of the command reaping it.
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?
  unset 'DAEMON_CHILD[$name]'
  if ((rc > 128)); then
    daemon__how=" (killed by signal $((rc - 128)))"
  else
    daemon__how=" (exit status $rc)"
  fi
}

daemon_wait() {
  local name=$1 timeout=$2 pid daemon__how=""
  shift 2
  daemon__known "$name" || return 2
  if [[ ! $timeout =~ ^[0-9]+$ ]]; then
    daemon_say "ERROR: the start-up timeout for $name must be whole seconds, not '$timeout'"
    daemon_stop "$name"
    return 1
  fi
  local log=${DAEMON_LOG[$name]}
  if ! pid=$(daemon__recorded "$name"); then
    daemon_show_tail "$log"
    daemon_say "ERROR: $name is not running (no pid file ${DAEMON_PIDFILE[$name]}); its log: $log"
    return 1
  fi
  local deadline=$(($(daemon__now_us) + timeout * 1000000))
  while :; do
    if ! daemon__alive "$pid"; then
      daemon__ended "$name" "$pid"
      rm -f "${DAEMON_PIDFILE[$name]}"
      daemon_show_tail "$log"
      daemon_say "ERROR: $name (pid $pid) exited during start-up$daemon__how; its log: $log"
      return 1
    fi
    # Ready once the probe succeeds and the pid runs the daemon itself (setsid and nohup have
    # exec'd it), so that daemon_status agrees from here on.
    if daemon__matches "$pid" "${DAEMON_MATCH[$name]}" && "$@" >/dev/null 2>&1; then
      return 0
    fi
    (($(daemon__now_us) < deadline)) || break
    sleep 0.1
  done
  daemon_show_tail "$log"
  daemon_say "ERROR: $name (pid $pid) was not ready within $timeout s (probe: $*); its log: $log"
  daemon_stop "$name"
  return 1
}

# Waits up to $2 seconds for pid $1 to be gone.
daemon__wait_gone() {
  local pid=$1 deadline=$(($(daemon__now_us) + $2 * 1000000))
  while daemon__alive "$pid"; do
    (($(daemon__now_us) < deadline)) || return 1
    sleep 0.1
  done
}

daemon_stop() {
  local name=$1 pid
  daemon__known "$name" || return 2
  local pidfile=${DAEMON_PIDFILE[$name]}
  if ! pid=$(daemon__recorded "$name"); then
    rm -f "$pidfile"
    daemon_say "$name not running (no pid file)"
    return 0
  fi
  # A process this shell started is ours even before setsid and nohup have exec'd the daemon.
  if ! daemon__matches "$pid" "${DAEMON_MATCH[$name]}" \
    && ! { [[ ${DAEMON_CHILD[$name]:-} == "$pid" ]] && daemon__alive "$pid"; }; then
    rm -f "$pidfile"
    daemon_say "$name not running (stale pid file for pid $pid)"
    return 0
  fi
  # stderr of the kill-and-wait goes to /dev/null: when this shell started the daemon, bash
  # reports a job killed by a signal ("Killed ...") on the stderr of whatever runs then.
  { kill -TERM "$pid"; } 2>/dev/null || true
  if ! { daemon__wait_gone "$pid" "$DAEMON_STOP_GRACE"; } 2>/dev/null; then
    daemon_say "$name (pid $pid) ignored SIGTERM for $DAEMON_STOP_GRACE s; sending SIGKILL"
    { kill -KILL "$pid"; } 2>/dev/null || true
    if ! { daemon__wait_gone "$pid" "$DAEMON_KILL_WAIT"; } 2>/dev/null; then
      daemon_say "ERROR: $name (pid $pid) is still there $DAEMON_KILL_WAIT s after SIGKILL; pid file kept: $pidfile"
      return 1
    fi
  fi
  # Reap it when this shell started it, so no zombie is left behind.
  local daemon__how
  daemon__ended "$name" "$pid"
  rm -f "$pidfile"
  daemon_say "stopped $name (pid $pid)"
}
