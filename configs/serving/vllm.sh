#!/usr/bin/env bash
# Serve a merged gonggam model with vLLM, in vLLM's own environment (its wheel pins its own torch and transformers,
# so it cannot share the project's .venv), and answer through the project's safety layer with --upstream.
#
#   bash configs/serving/vllm.sh merged/RUN            # on the GPU machine; then, in the project's environment:
#   python infer.py --upstream http://127.0.0.1:8001/v1 --chat
#   python serve.py --upstream http://127.0.0.1:8001/v1          # the web chat and OpenAI API, with the safety layer
#
# Never expose vLLM itself to users: it knows nothing of the safety layer. It binds to 127.0.0.1 here.
set -euo pipefail
MODEL=${1:?usage: bash configs/serving/vllm.sh merged/RUN [PORT]}
PORT=${2:-8001}
VLLM_VENV=${VLLM_VENV:-$HOME/.venvs/vllm}
VLLM_VERSION=0.33.0

if [ ! -x "$VLLM_VENV/bin/vllm" ]; then
    python3 -m venv "$VLLM_VENV"
    "$VLLM_VENV/bin/pip" install -q "vllm==$VLLM_VERSION"
fi
# --max-model-len 1024: Polyglot-ko's context. --generation-config vllm: sampling comes from each request (the
# project sends temperature, top_p, top_k, stop and max_tokens itself), not from the model folder.
exec "$VLLM_VENV/bin/vllm" serve "$MODEL" \
    --served-model-name gonggam \
    --dtype bfloat16 \
    --max-model-len 1024 \
    --generation-config vllm \
    --host 127.0.0.1 --port "$PORT"
