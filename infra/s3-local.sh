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
# EMORG_S3_RUST_LOG (the server's RUST_LOG, default info), EMORG_DAEMON_STOP_GRACE (seconds
# between SIGTERM and SIGKILL on stop, default 10; infra/daemon.sh starts, waits for and stops it).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
DAEMON_TAG=s3-local
# shellcheck source=daemon.sh source-path=SCRIPTDIR
source "$HERE/daemon.sh"

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

say() { daemon_say "$@"; }

die() {
  say "ERROR: $*"
  exit 1
}

# The server is recognised by its binary (a recycled pid is never trusted or killed).
daemon_define s3s-fs "$PIDFILE" "$LOG" "$BIN"

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
    daemon_show_tail "$INSTALL_LOG"
    die "cargo install s3s-fs $S3S_FS_VERSION failed (full log: $INSTALL_LOG)"
  fi
  installed_version_ok || die "installed $BIN does not report version $S3S_FS_VERSION"
  say "installed s3s-fs $S3S_FS_VERSION in $((SECONDS - t0)) s"
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

# The server runs, on our port, and answers. The port is read from its command line: the state
# under the cache is shared by all ports, so a server on another port must be noticed, not reused
# or killed.
running() {
  local port
  daemon_status s3s-fs >/dev/null && port=$(daemon_arg s3s-fs --port) \
    && [[ $port == "$PORT" ]] && answers_http
}

stop_server() {
  daemon_stop s3s-fs
}

start_server() {
  local pid port
  if pid=$(daemon_status s3s-fs); then
    port=$(daemon_arg s3s-fs --port) || port=unknown
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

  local t0 ms code
  t0=${EPOCHREALTIME/./}
  # Detached, output to the log, so that a caller capturing our output does not wait on the
  # server; env execs the binary, so the recorded pid is the server's.
  daemon_start s3s-fs env RUST_LOG="${EMORG_S3_RUST_LOG:-info}" "$BIN" --host "$HOST" \
    --port "$PORT" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$DATA"
  # On failure (it exits, e.g. the port is taken; or it does not answer in time) this prints the
  # log's tail and names the log.
  daemon_wait s3s-fs "$START_TIMEOUT" answers_http || exit 1
  pid=$(daemon_status s3s-fs)
  code=$(bucket_status)
  if [[ $code != 200 ]]; then
    daemon_show_tail "$LOG"
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
      daemon_lock "$STATE"
      start_server
      ;;
    stop)
      daemon_lock "$STATE"
      stop_server
      ;;
    status)
      if running; then
        say "running at $ENDPOINT (pid $(daemon_status s3s-fs))"
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
