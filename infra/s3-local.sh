#!/usr/bin/env bash
# A real S3-compatible server on 127.0.0.1 for the store's integration tests.
#
#   infra/s3-local.sh start    install s3s-fs if needed, start it on a fresh data dir (idempotent)
#   infra/s3-local.sh stop     stop the server this script started (idempotent)
#   infra/s3-local.sh status   exit 0 when it is running and answering
#   infra/s3-local.sh env      print `export` lines for a client: eval "$(infra/s3-local.sh env)"
#
# Why s3s-fs 0.14.1: it is a real S3 server over a directory that checks SigV4 and honours
# If-None-Match / If-Match (single client), and it installs from crates.io with our rustc; 0.15+
# needs a newer rustc, MinIO is not installable here, and the mocks accept any credentials
# (shared/reference/s3-local.md). Its conditional puts are check-then-act, so do not test
# first-writer-wins races against it.
#
# Everything lives in the user's cache so that CI reruns and fresh clones reuse the binary:
#   $EMORG_CACHE/tools/bin/s3s-fs   the binary (cargo install --root)
#   $EMORG_CACHE/tools-build/       cargo's target dir for that install (not the workspace's)
#   $EMORG_CACHE/s3-local/          data dir, pid file, logs, lock
#
# Settings: EMORG_S3_PORT (default 9123), EMORG_S3_START_TIMEOUT (seconds, default 30),
# EMORG_S3_RUST_LOG (the server's RUST_LOG, default info).
set -euo pipefail

readonly S3S_FS_VERSION=0.14.1
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
readonly CACHE
readonly TOOLS="$CACHE/tools"
readonly BIN="$TOOLS/bin/s3s-fs"
readonly BUILD_DIR="$CACHE/tools-build"
readonly STATE="$CACHE/s3-local"
readonly DATA="$STATE/data"
readonly PIDFILE="$STATE/s3s-fs.pid"
readonly LOG="$STATE/s3s-fs.log"
readonly INSTALL_LOG="$STATE/install.log"
readonly HOST=127.0.0.1
readonly PORT="${EMORG_S3_PORT:-9123}"
readonly ENDPOINT="http://$HOST:$PORT"
readonly START_TIMEOUT="${EMORG_S3_START_TIMEOUT:-30}"
# Test-only credentials: the server is bound to loopback and holds throwaway data.
readonly ACCESS_KEY=emorg-test-access-key
readonly SECRET_KEY=emorg-test-secret-key
readonly REGION=us-east-1
readonly BUCKET=emorg-test
readonly PREFIX=ci
# SHA-256 of an empty body: s3s rejects a signed request without x-amz-content-sha256.
readonly EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

say() { echo "s3-local: $*" >&2; }

die() {
  say "ERROR: $*"
  exit 1
}

# Prints the tail of a log file to stderr, for failure messages.
show_tail() {
  local file=$1
  if [[ -s $file ]]; then
    say "last lines of $file:"
    tail -n 40 "$file" >&2
  else
    say "($file is empty or missing)"
  fi
}

# Serialises start/stop so two callers cannot start two servers on one pid file. fd 9 must be
# closed for the server itself (see start_server), or it would hold the lock for its lifetime.
take_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock 9
}

installed_version_ok() {
  [[ -x $BIN ]] && [[ "$("$BIN" --version 2>/dev/null)" == "s3s-fs $S3S_FS_VERSION" ]]
}

install_server() {
  if installed_version_ok; then
    return 0
  fi
  command -v cargo >/dev/null || die "cargo not found; it is needed to install s3s-fs"
  say "installing s3s-fs $S3S_FS_VERSION into $TOOLS (a few minutes on first use; log: $INSTALL_LOG)"
  local t0=$SECONDS
  # Run from the cache, not the workspace, so the workspace's cargo config and target dir do not
  # apply; --locked uses the crate's own lock file; --force replaces a wrong or broken binary.
  if ! (cd "$CACHE" && CARGO_TARGET_DIR="$BUILD_DIR" cargo install s3s-fs \
    --version "$S3S_FS_VERSION" --features binary --locked --force --root "$TOOLS") \
    >"$INSTALL_LOG" 2>&1; then
    show_tail "$INSTALL_LOG"
    die "cargo install s3s-fs $S3S_FS_VERSION failed (full log: $INSTALL_LOG)"
  fi
  installed_version_ok || die "installed $BIN does not report version $S3S_FS_VERSION"
  say "installed s3s-fs $S3S_FS_VERSION in $((SECONDS - t0)) s"
}

# The recorded PID, if the pid file holds a number.
recorded_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# True when $1 is alive and is our s3s-fs binary, so a recycled PID is never killed or trusted.
is_our_server() {
  local pid=$1 argv0
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)
  [[ $argv0 == "$BIN" ]]
}

# The HTTP status of a SigV4-signed HEAD of the bucket ("000" when nothing answers). Signed, so
# that the readiness probes prove the credentials and the bucket too, and do not fill the log
# with "Signature is required" errors.
bucket_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" "$ENDPOINT/$BUCKET" 2>/dev/null || true
}

# True when anything answers HTTP on the port (any status).
answers_http() {
  local code
  code=$(bucket_status)
  [[ -n $code && $code != 000 ]]
}

# The --port the server $1 was started with, read from its command line: the state under the
# cache is shared by all ports, so a server on another port must be noticed, not reused or killed.
server_port() {
  local pid=$1 prev="" arg
  while IFS= read -r -d '' arg; do
    if [[ $prev == --port ]]; then
      echo "$arg"
      return 0
    fi
    prev=$arg
  done <"/proc/$pid/cmdline"
  return 1
}

running() {
  local pid port
  pid=$(recorded_pid) && is_our_server "$pid" && port=$(server_port "$pid") \
    && [[ $port == "$PORT" ]] && answers_http
}

# Kills the recorded server (TERM, then KILL after 10 s) and removes the pid file.
stop_server() {
  local pid i
  if ! pid=$(recorded_pid); then
    rm -f "$PIDFILE"
    say "not running (no pid file)"
    return 0
  fi
  if is_our_server "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    say "stopped s3s-fs (pid $pid)"
  else
    say "not running (stale pid file for pid $pid)"
  fi
  rm -f "$PIDFILE"
}

start_server() {
  local pid port
  if pid=$(recorded_pid) && is_our_server "$pid"; then
    port=$(server_port "$pid") || port=unknown
    if [[ $port != "$PORT" ]]; then
      die "s3s-fs (pid $pid) already runs on port $port, not $PORT; run: infra/s3-local.sh stop"
    fi
    if answers_http; then
      say "already running at $ENDPOINT (pid $pid)"
      return 0
    fi
    # Alive but not answering: wedged, so replace it.
    say "s3s-fs (pid $pid) does not answer; restarting it"
    stop_server
  fi
  rm -f "$PIDFILE"
  if answers_http; then
    die "something else already answers on $ENDPOINT; stop it or pick another port with EMORG_S3_PORT"
  fi
  command -v curl >/dev/null || die "curl is needed to check the server"
  install_server

  # A fresh data dir every start: s3s-fs leaves sidecar files and empty directories behind deleted
  # objects, and tests must not see a previous run's objects. s3s-fs maps each top-level
  # directory of its root to a bucket, so creating the bucket is a mkdir.
  rm -rf "$DATA"
  mkdir -p "$DATA/$BUCKET"

  local t0 i ms code
  t0=${EPOCHREALTIME/./}
  # nohup: survive the caller's terminal closing; stdin from /dev/null and output to the log so
  # that a caller capturing our output does not wait on the server; 9>&- drops the lock.
  RUST_LOG="${EMORG_S3_RUST_LOG:-info}" nohup "$BIN" --host "$HOST" --port "$PORT" \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$DATA" \
    </dev/null >"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"

  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      show_tail "$LOG"
      die "s3s-fs exited during start-up (port $PORT in use? see $LOG)"
    fi
    if answers_http; then
      break
    fi
    sleep 0.1
  done
  if ! answers_http; then
    show_tail "$LOG"
    stop_server
    die "s3s-fs did not answer on $ENDPOINT within $START_TIMEOUT s"
  fi
  code=$(bucket_status)
  if [[ $code != 200 ]]; then
    show_tail "$LOG"
    stop_server
    die "s3s-fs answers but a signed HEAD of bucket $BUCKET got HTTP $code, not 200 (credentials or bucket)"
  fi
  # The tests rely on a server that checks signatures (a mock accepting anything hides credential
  # bugs): an unsigned request must be refused. It logs one "Signature is required" error.
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$ENDPOINT/$BUCKET" 2>/dev/null || true)
  if [[ $code != 403 ]]; then
    stop_server
    die "s3s-fs accepted an unsigned request (HTTP $code, expected 403): authentication is off"
  fi
  ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  say "s3s-fs $S3S_FS_VERSION at $ENDPOINT, bucket $BUCKET (pid $pid, answered in $ms ms; data $DATA; log $LOG)"
}

print_env() {
  if ! running; then
    say "warning: the server is not running; run: infra/s3-local.sh start"
  fi
  # A session token from the caller's real AWS environment must not ride along on test requests,
  # and object_store reads both region variables in no fixed order, so both are set.
  echo "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE"
  printf 'export %s=%q\n' \
    AWS_ACCESS_KEY_ID "$ACCESS_KEY" \
    AWS_SECRET_ACCESS_KEY "$SECRET_KEY" \
    AWS_REGION "$REGION" \
    AWS_DEFAULT_REGION "$REGION" \
    AWS_ENDPOINT_URL "$ENDPOINT" \
    AWS_ALLOW_HTTP true \
    AWS_VIRTUAL_HOSTED_STYLE_REQUEST false \
    EMORG_TEST_S3_URL "s3://$BUCKET/$PREFIX"
}

# Everything runs from main, called (with exit) on the last line: bash has then read the whole
# file, so an edit or checkout of this script while it runs cannot change what this run does.
main() {
  case "${1:-}" in
    start)
      take_lock
      start_server
      ;;
    stop)
      take_lock
      stop_server
      ;;
    status)
      if running; then
        say "running at $ENDPOINT (pid $(recorded_pid))"
      else
        say "not running"
        exit 1
      fi
      ;;
    env) print_env ;;
    *)
      echo "usage: $0 start|stop|status|env" >&2
      exit 2
      ;;
  esac
}

main "$@"; exit
