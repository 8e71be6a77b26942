"""The chatbot as a service: an OpenAI-compatible API and a web chat, behind the safety layer.

    python serve.py                                        # the newest model in merged/, http://127.0.0.1:8000/
    python serve.py --model merged/RUN --port 8080
    python serve.py --gguf exports/RUN/RUN-q4_k_m.gguf      # llama.cpp in process
    python serve.py --upstream http://127.0.0.1:8001/v1      # vLLM or llama.cpp's server behind the gateway
    API_KEY=... python serve.py --host 0.0.0.0 --api-key-env API_KEY

POST /v1/chat/completions (stream or not), GET /v1/models, GET /healthz, and the web chat at /. Conversations are
never written to disk or to the log. The app is gonggam/serve/.
"""

from __future__ import annotations

import sys

from gonggam.serve.cli import main

if __name__ == "__main__":
    sys.exit(main())
