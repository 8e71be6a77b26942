#!/usr/bin/env bash
# Serve an exported GGUF file with llama.cpp's server (from llama-cpp-python[server], installed by
# requirements-llama.txt) on a CPU, and answer through the project's safety layer with --upstream.
#
#   bash configs/serving/llama-server.sh exports/RUN/RUN-q4_k_m.gguf
#   python serve.py --upstream http://127.0.0.1:8002/v1
#
# For one process, `python serve.py --gguf FILE` runs llama.cpp inside the gateway instead.
set -euo pipefail
GGUF=${1:?usage: bash configs/serving/llama-server.sh FILE.gguf [PORT]}
PORT=${2:-8002}
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" -m llama_cpp.server --model "$GGUF" --model_alias gonggam --n_ctx 1024 --host 127.0.0.1 --port "$PORT"
