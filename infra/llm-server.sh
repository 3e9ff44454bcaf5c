#!/usr/bin/env bash
# A real OpenAI-compatible server on 127.0.0.1 for the tests of the judge's `openai` backend:
# llama-cpp-python's server with the cached judge GGUF (Qwen2.5-Coder-1.5B-Instruct).
#
#   infra/llm-server.sh start    install the server if needed, start it (idempotent)
#   infra/llm-server.sh stop     stop the server this script started (idempotent)
#   infra/llm-server.sh status   exit 0 when it is running and answering
#   infra/llm-server.sh env      print `export` lines for the tests: eval "$(infra/llm-server.sh env)"
#
# Why llama-cpp-python 0.3.16: it serves /v1/chat/completions with `logprobs`/`top_logprobs`, applies
# the GGUF's own chat template (so the judge sees the same prompt as emorg's local judge), installs
# from PyPI as a CPU wheel (built once from source with the compiler, then reused from pip's
# cache), and runs the very GGUF file the local judge runs, so the two can be compared.
# Flags: `--logits_all true` is what makes llama-cpp-python return logprobs at all (it is the
# server's default in 0.3.16, given explicitly here); `--model_alias` is the model name clients
# send; one thread, a 2048-token context (judge prompts are ~400 tokens).
#
# Everything lives in the user's cache so that CI reruns and fresh clones reuse it:
#   $EMORG_CACHE/llm-server-venv/   the virtualenv (pinned: infra/llm-server-requirements.txt)
#   $EMORG_CACHE/llm-server/        pid file, logs, lock
#
# Settings: EMORG_LLM_PORT (default 9124), EMORG_LLM_MODEL (GGUF path, default the cached
# qwen2.5-coder-1.5b-instruct), EMORG_LLM_ALIAS (served name, default qwen2.5-coder-1.5b-instruct),
# EMORG_LLM_THREADS (default 1), EMORG_LLM_START_TIMEOUT (seconds, default 180), EMORG_PYTHON
# (default python3, >= 3.9), EMORG_DAEMON_STOP_GRACE (seconds between SIGTERM and SIGKILL on stop,
# default 10; infra/daemon.sh starts, waits for and stops the server).
set -euo pipefail

readonly LLAMA_CPP_PYTHON_VERSION=0.3.16
HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
DAEMON_TAG=llm-server
# shellcheck source=daemon.sh source-path=SCRIPTDIR
source "$HERE/daemon.sh"
readonly REQUIREMENTS="$HERE/llm-server-requirements.txt"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
readonly CACHE
readonly VENV="$CACHE/llm-server-venv"
readonly PY="$VENV/bin/python"
readonly STATE="$CACHE/llm-server"
readonly PIDFILE="$STATE/server.pid"
readonly LOG="$STATE/server.log"
readonly INSTALL_LOG="$STATE/install.log"
readonly STAMP="$VENV/.emorg-requirements.sha256"
readonly HOST=127.0.0.1
readonly PORT="${EMORG_LLM_PORT:-9124}"
readonly BASE_URL="http://$HOST:$PORT/v1"
readonly MODELS_DIR="${EMORG_MODELS:-$CACHE/models}"
readonly MODEL="${EMORG_LLM_MODEL:-$MODELS_DIR/qwen2.5-coder-1.5b-instruct.gguf}"
readonly ALIAS="${EMORG_LLM_ALIAS:-qwen2.5-coder-1.5b-instruct}"
readonly THREADS="${EMORG_LLM_THREADS:-1}"
readonly START_TIMEOUT="${EMORG_LLM_START_TIMEOUT:-180}"
readonly PYTHON="${EMORG_PYTHON:-python3}"

say() { daemon_say "$@"; }

die() {
  say "ERROR: $*"
  exit 1
}

# The server is recognised by its command line, our venv's python running llama_cpp.server (a
# recycled pid is never trusted or killed).
daemon_define llama_cpp.server "$PIDFILE" "$LOG" "$PY -m llama_cpp.server"

requirements_hash() {
  sha256sum "$REQUIREMENTS" | cut -d' ' -f1
}

installed_ok() {
  [[ -x $PY ]] && [[ -f $STAMP ]] && [[ "$(<"$STAMP")" == "$(requirements_hash)" ]] \
    && [[ "$("$PY" -c 'import llama_cpp, llama_cpp.server, uvicorn; print(llama_cpp.__version__)' 2>/dev/null)" == "$LLAMA_CPP_PYTHON_VERSION" ]]
}

install_server() {
  if installed_ok; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; it is needed for llama-cpp-python"
  say "installing llama-cpp-python[server] $LLAMA_CPP_PYTHON_VERSION into $VENV (compiles llama.cpp on first use, several minutes; log: $INSTALL_LOG)"
  local t0=$SECONDS
  mkdir -p "$STATE"
  rm -f "$STAMP"
  if ! { [[ -x $PY ]] || "$PYTHON" -m venv "$VENV"; } >"$INSTALL_LOG" 2>&1; then
    daemon_show_tail "$INSTALL_LOG"
    die "cannot create the virtualenv $VENV"
  fi
  # pip reuses the wheel it built before (its cache), so only the first install compiles.
  if ! "$PY" -m pip install --disable-pip-version-check -r "$REQUIREMENTS" >>"$INSTALL_LOG" 2>&1; then
    daemon_show_tail "$INSTALL_LOG"
    die "pip install -r $REQUIREMENTS failed (full log: $INSTALL_LOG)"
  fi
  requirements_hash >"$STAMP"
  installed_ok || die "llama-cpp-python in $VENV does not report version $LLAMA_CPP_PYTHON_VERSION"
  say "installed llama-cpp-python[server] $LLAMA_CPP_PYTHON_VERSION in $((SECONDS - t0)) s"
}

# The body of GET /v1/models, or nothing when the port does not answer.
models_json() {
  curl -s --max-time 5 "$BASE_URL/models" 2>/dev/null || true
}

answers_http() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE_URL/models" 2>/dev/null || true) != 000 ]]
}

# GET /v1/models lists our alias: the readiness probe.
serves_model() {
  [[ $(models_json) == *"\"$ALIAS\""* ]]
}

# The server runs, on our port (read from its command line), and serves the model.
running() {
  local port
  daemon_status llama_cpp.server >/dev/null && port=$(daemon_arg llama_cpp.server --port) \
    && [[ $port == "$PORT" ]] && serves_model
}

stop_server() {
  daemon_stop llama_cpp.server
}

start_server() {
  local pid port
  if pid=$(daemon_status llama_cpp.server); then
    port=$(daemon_arg llama_cpp.server --port) || port=unknown
    if [[ $port != "$PORT" ]]; then
      die "llama_cpp.server (pid $pid) already runs on port $port, not $PORT; run: infra/llm-server.sh stop"
    fi
    if running; then
      say "already running at $BASE_URL (pid $pid)"
      return 0
    fi
    say "llama_cpp.server (pid $pid) does not answer; restarting it"
    stop_server
  fi
  if answers_http; then
    die "something else already answers on $BASE_URL; stop it or pick another port with EMORG_LLM_PORT"
  fi
  command -v curl >/dev/null || die "curl is needed to check the server"
  [[ -f $MODEL ]] || die "no model at $MODEL; run: emorg models fetch qwen2.5-coder-1.5b-instruct (or set EMORG_LLM_MODEL)"
  install_server

  local t0 ms
  t0=${EPOCHREALTIME/./}
  daemon_start llama_cpp.server "$PY" -m llama_cpp.server --model "$MODEL" --model_alias "$ALIAS" \
    --host "$HOST" --port "$PORT" --n_ctx 2048 --n_threads "$THREADS" --n_threads_batch "$THREADS" \
    --logits_all true --verbose false
  # Ready when GET /v1/models lists the alias. On failure (it exits, e.g. the port is taken or the
  # model does not load; or it is not ready in time) this prints the log's tail and names the log.
  daemon_wait llama_cpp.server "$START_TIMEOUT" serves_model || exit 1
  pid=$(daemon_status llama_cpp.server)
  # The judge needs logprobs in chat completions: check that this server gives them.
  local reply
  reply=$(curl -s --max-time 120 "$BASE_URL/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"$ALIAS\",\"messages\":[{\"role\":\"user\",\"content\":\"Say 1.\"}],\"max_tokens\":1,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2}" \
    2>/dev/null || true)
  if [[ $reply != *'"top_logprobs"'*'"logprob"'* ]]; then
    daemon_show_tail "$LOG"
    stop_server
    die "the server answers chat completions without top_logprobs: ${reply:0:300}"
  fi
  ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  say "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION at $BASE_URL serving $ALIAS from $MODEL (pid $pid, $THREADS thread(s), ready in $ms ms; log $LOG)"
}

print_env() {
  if ! running; then
    say "warning: the server is not running; run: infra/llm-server.sh start"
  fi
  # EMORG_TEST_LLAMA_PY: the venv's python, whose llama_cpp (llama.cpp's own tokenizer) the
  # tokenizer parity tests use as an independent implementation.
  printf 'export %s=%q\n' \
    EMORG_TEST_OPENAI_URL "$BASE_URL" \
    EMORG_TEST_OPENAI_MODEL "$ALIAS" \
    EMORG_TEST_LLAMA_PY "$PY"
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
        say "running at $BASE_URL (pid $(daemon_status llama_cpp.server))"
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
