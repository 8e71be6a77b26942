"""Any OpenAI-compatible server (`--upstream URL`): vLLM on a GPU, llama.cpp's server on a CPU.

The project renders the chat template itself and sends the exact prompt text to /v1/completions (not
/v1/chat/completions), so the bytes the engine sees are the bytes training saw, whatever template the engine would
apply. Every failure (server down, timeout, a non-2xx answer, an answer that is not a completion) becomes one
UserError sentence: never a traceback, never a silent empty reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from gonggam.backends import Generated, Sampling
from gonggam.chat import EOS_TOKEN, GENERATION_DEFAULTS, TURN_MARKER
from gonggam.errors import UserError

STOP = [EOS_TOKEN, TURN_MARKER]
MAX_PARALLEL = 8  # a batch goes out as concurrent requests: the engine batches them itself


class UpstreamError(UserError):
    """The upstream server failed or answered something unusable."""


class UpstreamBackend:
    name = "upstream"
    # Safe to call from several threads at once (httpx.Client is): serve.py sends concurrent requests and lets the
    # server batch them, where in-process engines take turns.
    thread_safe = True

    def __init__(self, client: httpx.Client, model: str, url: str):
        self.client = client
        self.model = model
        self.url = url
        self.generation_config = dict(GENERATION_DEFAULTS)

    @classmethod
    def connect(
        cls, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 120.0
    ) -> UpstreamBackend:
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise UserError(f"--upstream {url} is not an http(s) URL: pass e.g. http://127.0.0.1:8001/v1.")
        if not base.endswith("/v1"):
            base += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        client = httpx.Client(base_url=base, headers=headers, timeout=timeout)
        backend = cls(client, model or "", base)
        if not model:
            backend.model = backend.first_model()
        return backend

    def first_model(self) -> str:
        answer = self._request("GET", "/models")
        try:
            return str(answer["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as error:
            raise UpstreamError(
                f"{self.url}/models lists no model: pass --upstream-model NAME (the name the server serves)."
            ) from error

    def payload(self, prompt: str, sampling: Sampling, stream: bool) -> dict[str, Any]:
        greedy = not sampling.do_sample
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": 0.0 if greedy else sampling.temperature,
            "top_p": 1.0 if greedy else sampling.top_p,
            "top_k": 1 if greedy else sampling.top_k,  # vLLM and llama.cpp's server both read it
            "stop": STOP,
            "stream": stream,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        # Sent even when neutral: llama.cpp's server would otherwise apply its own repeat_penalty 1.1 and min_p 0.05,
        # which transformers never does. vLLM's name and llama.cpp's; each server ignores the other's.
        body["repetition_penalty"] = body["repeat_penalty"] = sampling.repetition_penalty or 1.0
        body["min_p"] = 0.0
        return body

    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generated]:
        if len(prompts) == 1:
            return [self._complete(prompts[0], sampling)]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(prompts))) as pool:
            return list(pool.map(lambda prompt: self._complete(prompt, sampling), prompts))

    def _complete(self, prompt: str, sampling: Sampling) -> Generated:
        answer = self._request("POST", "/completions", json=self.payload(prompt, sampling, stream=False))
        try:
            choice = answer["choices"][0]
            text = choice["text"]
            finish = choice.get("finish_reason")
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError) as error:
            raise self._malformed(error) from error
        usage = answer.get("usage") or {}
        tokens = usage.get("completion_tokens")
        return Generated(text, "length" if finish == "length" else "eos", int(tokens) if tokens is not None else 0)

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        body = self.payload(prompt, sampling, stream=True)
        try:
            with self.client.stream("POST", "/completions", json=body) as response:
                self._check_status(response, streamed=True)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    raise self._malformed(ValueError("a stream was asked for; the answer is not server-sent events"))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments and keep-alives
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    try:
                        piece = json.loads(data)["choices"][0]["text"]
                    except (ValueError, KeyError, IndexError, TypeError) as error:
                        raise self._malformed(error) from error
                    if piece:
                        yield piece
                # Never a silent, cut-off reply: OpenAI-compatible servers end every stream with [DONE].
                raise self._malformed(ValueError("the stream ended before data: [DONE]"))
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error

    def count_tokens(self, text: str) -> int | None:
        return None  # the server's tokenizer is not here; streamed pieces are counted instead

    def unsupported(self, sampling: Sampling) -> list[str]:
        return ["no_repeat_ngram_size"] if sampling.no_repeat_ngram_size else []

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        self._check_status(response)
        try:
            answer = response.json()
        except ValueError as error:
            raise self._malformed(error) from error
        if not isinstance(answer, dict):
            raise self._malformed(TypeError("not a JSON object"))
        return answer

    def _check_status(self, response: httpx.Response, streamed: bool = False) -> None:
        if response.is_success:
            return
        if streamed:
            response.read()
        detail = _error_message(response)
        raise UpstreamError(
            f"{self.url} answered {response.status_code}{': ' + detail if detail else ''}; "
            "check the server's log and that --upstream-model names a model it serves."
        )

    def _unreachable(self, error: httpx.HTTPError) -> UpstreamError:
        if isinstance(error, httpx.TimeoutException):
            return UpstreamError(
                f"{self.url} did not answer within {self.client.timeout.read:g} s: "
                "check that the server is up and not overloaded, or raise --upstream-timeout."
            )
        return UpstreamError(f"cannot reach {self.url} ({type(error).__name__}): start the server or fix --upstream.")

    def _malformed(self, error: Exception) -> UpstreamError:
        return UpstreamError(
            f"{self.url} answered with something that is not an OpenAI completion ({error}); "
            "point --upstream at an OpenAI-compatible /v1 server."
        )


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        return str(message or body.get("detail") or "")[:200]
    except (ValueError, AttributeError):
        return response.text.strip()[:200]
