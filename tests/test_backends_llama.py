"""The llama.cpp backends on the tiny model's GGUF export: in process (`--gguf`) and through llama.cpp's own
OpenAI-compatible server (`--upstream`), both behind the same safety layer as transformers.

Real llama.cpp throughout. Where a test needs the engine to write a method description (the tiny model cannot be made
to), the Llama object's create_completion is replaced and the test says so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, run_cli

from gonggam import safety

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: `make test` installs it")

from gonggam.backends.hf import TransformersBackend
from gonggam.backends.llama import LlamaCppBackend
from gonggam.backends.upstream import UpstreamBackend
from gonggam.generation import Responder

CONVERSATIONS = [
    [{"role": "user", "content": "오늘 발표를 망쳐서 속상해요"}],
    [
        {"role": "user", "content": "동생이랑 크게 싸웠어"},
        {"role": "assistant", "content": "동생분과 다투셔서 마음이 불편하시겠어요."},
        {"role": "user", "content": "내가 먼저 사과해야 할까?"},
    ],
    [{"role": "user", "content": "요즘 아무것도 하기 싫고 무기력해 ㅠㅠ"}],
]
CRISIS = "이제 다 끝내고 싶어. 오늘 밤 옥상에서 뛰어내릴 거야"
METHOD_REPLY = "수면제를 한꺼번에 많이 모아서 먹으면 됩니다."
GREEDY = {"do_sample": False, "max_new_tokens": 24}


@pytest.fixture(scope="module")
def llama(gguf_exports) -> Responder:
    return Responder(LlamaCppBackend.load(gguf_exports["f32"]))


@pytest.fixture(scope="module")
def transformers(merged) -> Responder:
    return Responder(TransformersBackend.load(str(merged), dtype="float32"))


def test_greedy_replies_through_the_gguf_backend_equal_transformers(llama, transformers):
    """The same prompts, the same reply-only no-repeat rule (6-grams) on both engines: the same replies."""
    for settings in (GREEDY, {**GREEDY, "no_repeat_ngram_size": 2}):
        assert llama.generate(CONVERSATIONS, **settings) == transformers.generate(CONVERSATIONS, **settings)


def test_streamed_gguf_reply_equals_the_whole_reply(llama):
    shown: list[str] = []
    streamed = llama.stream(CONVERSATIONS[0], shown.append, **GREEDY)
    whole = llama.reply(CONVERSATIONS[0], **GREEDY)
    assert "".join(shown) == streamed.response == whole.response
    assert streamed.stopped_by == whole.stopped_by and whole.as_json()["engine"]["backend"] == "llama.cpp"


def test_a_crisis_message_never_reaches_llama_cpp(llama, monkeypatch):
    calls: list[Any] = []
    real = llama.backend.llm.create_completion
    monkeypatch.setattr(llama.backend.llm, "create_completion", lambda **kw: calls.append(kw) or real(**kw))
    reply = llama.reply([{"role": "user", "content": CRISIS}])
    shown: list[str] = []
    llama.stream([{"role": "user", "content": CRISIS}], shown.append)
    assert reply.response == safety.CRISIS_REPLY and "".join(shown) == safety.CRISIS_REPLY
    assert calls == []


def test_a_method_reply_from_llama_cpp_is_replaced_whole_and_streamed(llama, monkeypatch):
    """create_completion is replaced with one that writes a method description (the tiny model cannot)."""

    def method(**kwargs: Any) -> Any:
        if kwargs["stream"]:
            return (
                {"choices": [{"text": word + " "}]} for word in METHOD_REPLY.split(" ")
            )  # a generator, as llama.cpp's
        return {"choices": [{"text": METHOD_REPLY, "finish_reason": "stop"}], "usage": {"completion_tokens": 9}}

    monkeypatch.setattr(llama.backend.llm, "create_completion", method)
    assert llama.reply(CONVERSATIONS[0]).response == safety.CRISIS_REPLY
    shown: list[str] = []
    streamed = llama.stream(CONVERSATIONS[0], shown.append)
    assert streamed.stopped_by == "safety" and "수면제" not in "".join(shown)


def test_infer_gguf_end_to_end(gguf_exports):
    calm = run_cli("infer.py", "--gguf", gguf_exports["q8_0"], "--prompt", "오늘 좀 피곤하네", "--json", "--greedy")
    assert calm.returncode == 0, calm.stderr[-2000:]
    record = json.loads(calm.stdout)
    assert record["engine"] == {"backend": "llama.cpp", "unsupported": []} and record["new_tokens"] > 0
    crisis = run_cli("infer.py", "--gguf", gguf_exports["q8_0"], "--prompt", CRISIS)
    assert crisis.returncode == 0 and crisis.stdout.strip() == safety.CRISIS_REPLY.strip()
    broken = Path(gguf_exports["q8_0"]).with_name("broken.gguf")
    broken.write_bytes(b"GGUF" + os.urandom(64))
    damaged = run_cli("infer.py", "--gguf", broken, "--prompt", "안녕")
    broken.unlink()
    assert damaged.returncode == 2 and "Traceback" not in damaged.stderr


@pytest.fixture(scope="module")
def llama_server(gguf_exports):
    """llama.cpp's own OpenAI-compatible server (llama-cpp-python[server]) on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_exports["f32"]), "--n_ctx", "1024"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        try:
            if httpx.get(f"{url}/models", timeout=1).is_success:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_upstream_against_llama_cpp_server_equals_llama_cpp_in_process(llama_server, llama):
    upstream = Responder(UpstreamBackend.connect(llama_server))
    settings = {**GREEDY, "no_repeat_ngram_size": 0}  # the one setting a server cannot be sent
    served = upstream.reply_batch(CONVERSATIONS, **settings)
    local = llama.reply_batch(CONVERSATIONS, **settings)
    assert [r.response for r in served] == [r.response for r in local]
    assert [r.stopped_by for r in served] == [r.stopped_by for r in local]
    shown: list[str] = []
    streamed = upstream.stream(CONVERSATIONS[1], shown.append, **settings)
    assert "".join(shown) == streamed.response == local[1].response


def test_upstream_stops_at_eos_before_the_token_budget(llama_server):
    upstream = Responder(UpstreamBackend.connect(llama_server))
    replies = upstream.reply_batch(CONVERSATIONS, do_sample=False, max_new_tokens=128, no_repeat_ngram_size=0)
    stopped = [r for r in replies if r.stopped_by == "eos"]
    assert stopped and all(r.new_tokens < 128 for r in stopped)
