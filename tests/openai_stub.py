"""A stand-in OpenAI-compatible engine for tests: a real stdlib HTTP server on 127.0.0.1 (vLLM cannot run here).

`OpenAIStub` answers the completions API with fixed text and records every request, which is how a test proves that
a crisis message never reached the engine. Shared by tests/test_backends.py and tests/test_serve.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIStub:
    """A real HTTP server speaking the OpenAI completions API with a fixed reply; records what it was sent."""

    def __init__(
        self,
        reply: str = "그러셨군요. 많이 속상하셨겠어요.",
        mode: str = "ok",
        delay: float = 0.0,
        word_delay: float = 0.0,
    ):
        self.reply, self.mode, self.delay, self.word_delay = reply, mode, delay, word_delay
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stub.requests.append({"path": self.path})
                self._json(200, {"object": "list", "data": [{"id": "gonggam-stub", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                time.sleep(stub.delay)
                if stub.mode == "error":
                    self._json(500, {"error": {"message": "CUDA out of memory", "type": "server_error"}})
                elif stub.mode == "malformed":
                    self._json(200, {"id": "x", "object": "text_completion", "choices": []})
                elif body.get("stream"):
                    self._stream()
                else:
                    choice = {"index": 0, "text": stub.reply, "finish_reason": "stop"}
                    self._json(200, {"choices": [choice], "usage": {"completion_tokens": len(stub.reply.split())}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for word in stub.reply.split(" "):
                    time.sleep(stub.word_delay)  # a slow engine, for a client that stops reading
                    chunk = {"choices": [{"index": 0, "text": word + " ", "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def completions(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/completions")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stub_servers() -> Iterator[Callable[..., OpenAIStub]]:
    """The body of a `stub` fixture: start(**kwargs) starts a stub; all are closed when the test ends."""
    servers: list[OpenAIStub] = []

    def start(**kwargs: Any) -> OpenAIStub:
        servers.append(OpenAIStub(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
