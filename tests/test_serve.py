"""The gateway (gonggam/serve) in process: the OpenAI schema, streaming, the safety layer in front of the engine,
every bad request, history that outgrew the context, auth, several clients at once, disconnects, and privacy.

`ScriptedEngine` stands in for an engine (transformers or llama.cpp): it implements the gonggam.backends Backend
protocol with scripted pieces, records every call, and notices when two generations overlap (which the engine lock
must prevent). The safety layer, the Responder, FastAPI and uvicorn are the real ones. All Korean text here was
written for these tests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import ROOT, run_cli
from fastapi.testclient import TestClient
from openai_stub import stub_servers

from gonggam import safety
from gonggam.backends import Generated, Sampling
from gonggam.backends.upstream import UpstreamBackend
from gonggam.chat import GENERATION_DEFAULTS, render_prompt
from gonggam.generation import Responder
from gonggam.history import HistoryTooLong, fit_history, token_counter
from gonggam.serve import app as serve_app
from gonggam.serve.app import create_app
from gonggam.serve.engine import FairLock, Gateway

CALM = "친구랑 싸워서 마음이 복잡해"
CALM_REPLY = ["그러셨군요.", " 많이", " 속상하셨겠어요.", " 어떤 일이", " 있었는지", " 들려주실래요?"]
CRISIS = "오늘 밤에 모아둔 수면제를 전부 삼킬 거야"
CONCERN = "사는 게 의미가 없는 것 같아"
# A method description, piece by piece: the safety layer must keep every word of it from the client.
METHOD = ["손목을", " 깊게", " 긋는", " 방법은", " 간단해요.", " 칼을", " 준비하세요."]
PRIVATE = "아무에게도 말 못 한 비밀인데 동생 일로 요즘 너무 괴로워"


class ScriptedEngine:
    """Stands in for an in-process engine; counts tokens as characters so that budgets are easy to reason about."""

    name = "scripted"

    def __init__(self, pieces: list[str] | None = None, delay: float = 0.0, thread_safe: bool = False, fail=None):
        self.pieces = list(pieces or CALM_REPLY)
        self.delay = delay
        self.thread_safe = thread_safe
        self.fail = fail
        self.generation_config = dict(GENERATION_DEFAULTS)
        self.calls: list[tuple[str, Any]] = []
        self.prompts: list[str] = []
        self.produced = self.closed = self.active = self.most_active = 0
        self._lock = threading.Lock()

    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generated]:
        self.calls.append(("generate", prompts))
        return [Generated("".join(self.pieces), "eos", len(self.pieces)) for _ in prompts]

    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        self.calls.append(("stream", sampling))
        self.prompts.append(prompt)
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.fail is not None:
                raise self.fail
            for piece in self.pieces:
                time.sleep(self.delay)
                self.produced += 1
                yield piece
        finally:
            with self._lock:
                self.active -= 1
                self.closed += 1

    def count_tokens(self, text: str) -> int | None:
        return len(text)

    def unsupported(self, sampling: Sampling) -> list[str]:
        return []

    def engine_calls(self) -> list[str]:
        return [name for name, _ in self.calls]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def client_for(engine: Any, **kwargs: Any) -> TestClient:
    return TestClient(create_app(Responder(engine), **kwargs))


def post(client: TestClient, **body: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json=body)


def sse_events(text: str) -> list[Any]:
    """The data of each server-sent event; [DONE] stays a string."""
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def contents(events: list[Any]) -> list[str]:
    return [e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]]


# ---------------------------------------------------------------- the OpenAI schema


def test_a_reply_has_the_openai_schema_and_the_safety_field():
    engine = ScriptedEngine()
    response = post(client_for(engine), model="anything", messages=user(CALM), temperature=0.5, seed=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["model"] == "gonggam"  # one model is served, whatever was asked
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "".join(CALM_REPLY)}
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    prompt_tokens = len(render_prompt(user(CALM)))
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len("".join(CALM_REPLY)),
        "total_tokens": prompt_tokens + len("".join(CALM_REPLY)),
    }
    assert body["gonggam"]["safety"]["level"] == "none" and body["gonggam"]["stopped_by"] == "eos"
    assert body["gonggam"]["engine"] == {"backend": "scripted", "unsupported": []}
    sampling = engine.calls[0][1]
    assert (sampling.temperature, sampling.seed, sampling.max_new_tokens) == (0.5, 3, 128)
    assert response.headers["x-request-id"] in body["id"]


def test_temperature_zero_is_greedy_and_max_tokens_reaches_the_engine():
    engine = ScriptedEngine()
    assert post(client_for(engine), messages=user(CALM), temperature=0, max_tokens=40).status_code == 200
    assert post(client_for(engine), messages=user(CALM), max_completion_tokens=30).status_code == 200
    first, second = engine.calls[0][1], engine.calls[1][1]
    assert (first.do_sample, first.max_new_tokens, second.max_new_tokens) == (False, 40, 30)


def test_streamed_chunks_come_sentence_by_sentence_then_the_finish_then_done():
    response = post(
        client_for(ScriptedEngine()), messages=user(CALM), stream=True, stream_options={"include_usage": True}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events[:-1])
    # The text shows a sentence at a time, each passed by the output check before it is written.
    assert [c for c in contents(events) if c] == [
        "그러셨군요.",
        " 많이 속상하셨겠어요.",
        " 어떤 일이 있었는지 들려주실래요?",
    ]
    finish, usage = events[-3], events[-2]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["gonggam"]["safety"]["level"] == "none"
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len("".join(CALM_REPLY))


def test_models_and_health():
    client = client_for(ScriptedEngine())
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["gonggam"]
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "model_loaded": True,
        "backend": "scripted",
        "model": "gonggam",
        "version": serve_app.version(),
    }
    assert health["version"] in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


# ---------------------------------------------------------------- the safety layer in front of the engine


@pytest.mark.parametrize("stream", [False, True])
def test_a_crisis_message_is_answered_without_the_engine(stream):
    engine = ScriptedEngine()
    response = post(client_for(engine), messages=user(CRISIS), stream=stream)
    assert response.status_code == 200
    if stream:
        events = sse_events(response.text)
        card = events[1]
        assert card["choices"][0]["delta"]["content"] == safety.CRISIS_REPLY
        assert card["gonggam"] == {"safety": {"level": "crisis"}, "replaced": False}  # the page shows a card
        assert events[-2]["choices"][0]["finish_reason"] == "content_filter" and events[-1] == "[DONE]"
    else:
        body = response.json()
        assert body["choices"][0]["message"]["content"] == safety.CRISIS_REPLY
        assert body["choices"][0]["finish_reason"] == "content_filter"
        assert body["gonggam"]["safety"]["level"] == "crisis" and body["usage"]["completion_tokens"] == 0
    assert engine.calls == []  # the engine never saw it


def test_a_crisis_message_too_long_for_the_context_still_gets_the_crisis_reply():
    """No model is asked, so no context limit applies: a person in crisis never gets "too long" instead of 109."""
    long_crisis = "요즘 아무도 내 얘기를 안 들어줘. " * 30 + CRISIS
    response = post(client_for(ScriptedEngine()), messages=user(long_crisis), max_tokens=900)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == safety.CRISIS_REPLY


@pytest.mark.parametrize("lead", [[], ["많이 힘드셨겠어요."]], ids=["from-the-start", "after-a-sentence"])
def test_a_method_description_never_reaches_the_client_not_even_partly(lead):
    engine = ScriptedEngine(pieces=lead + METHOD)
    streamed = post(client_for(engine), messages=user(CALM), stream=True)
    events = sse_events(streamed.text)
    shown = "".join(contents(events))
    for word in ("손목", "깊게", "긋", "방법", "칼"):
        assert word not in shown and word not in streamed.text
    card = next(e for e in events[1:-1] if e.get("gonggam", {}).get("safety", {}).get("level") == "crisis")
    assert card["gonggam"]["replaced"] is bool(lead)  # the page swaps the text already shown for the card
    assert events[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert engine.produced < len(lead + METHOD) and engine.closed == 1  # generation stopped at the failed sentence
    whole = post(client_for(ScriptedEngine(pieces=lead + METHOD)), messages=user(CALM)).json()
    assert whole["choices"][0]["message"]["content"] == safety.CRISIS_REPLY
    assert whole["gonggam"]["stopped_by"] == "safety"


def test_a_fragment_that_scores_unsafe_alone_is_held_back_not_replaced():
    """ "편하게" on its own scores as unsafe; the sentence it starts does not, and is shown as the model wrote it."""
    assert safety.check_output("편하게").level == "crisis"  # the reason the gateway judges whole sentences
    engine = ScriptedEngine(pieces=["편하게", " 말씀해", " 주세요.", " 천천히", " 이야기해", " 주세요."])
    body = post(client_for(engine), messages=user(CALM)).json()
    assert body["choices"][0]["message"]["content"] == "편하게 말씀해 주세요. 천천히 이야기해 주세요."


def test_a_concern_message_ends_with_the_109_footer_as_the_last_chunk():
    events = sse_events(post(client_for(ScriptedEngine()), messages=user(CONCERN), stream=True).text)
    texts = [c for c in contents(events) if c]
    assert texts[-1] == "\n\n" + safety.CONCERN_FOOTER and "109" in texts[-1]
    footer = next(e for e in events[1:-1] if "footer" in e.get("gonggam", {}))
    assert footer["choices"][0]["delta"]["content"] == texts[-1]
    assert events[-2]["gonggam"]["safety"]["level"] == "concern"


# ---------------------------------------------------------------- bad requests


def too_long_text() -> str:
    return "가" * 8_001


BAD_REQUESTS = [
    ("missing messages", {}, "messages"),
    ("no messages", {"messages": []}, "messages"),
    ("a tool role", {"messages": [{"role": "tool", "content": "x"}, *user(CALM)]}, "messages[0].role"),
    ("an unknown role", {"messages": [{"role": "robot", "content": CALM}]}, "messages[0].role"),
    ("an empty message", {"messages": user("   ")}, "messages[0].content"),
    ("no content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("an image part", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content"),
    ("an over-long message", {"messages": user(too_long_text())}, "messages[0].content"),
    ("an over-long conversation", {"messages": user("마음이 " * 2000) * 13}, "messages"),
    ("ends with the assistant", {"messages": [*user(CALM), {"role": "assistant", "content": "네"}]}, "messages"),
    ("n = 2", {"messages": user(CALM), "n": 2}, "n"),
    ("temperature 3", {"messages": user(CALM), "temperature": 3}, "temperature"),
    ("top_p 0", {"messages": user(CALM), "top_p": 0}, "top_p"),
    ("max_tokens 0", {"messages": user(CALM), "max_tokens": 0}, "max_tokens"),
    ("a negative seed", {"messages": user(CALM), "seed": -1}, "seed"),
    ("stream not a boolean", {"messages": user(CALM), "stream": "maybe"}, "stream"),
    ("messages not a list", {"messages": CALM}, "messages"),
]


@pytest.mark.parametrize(("body", "param"), [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_an_openai_error_naming_the_field(body, param):
    engine = ScriptedEngine()
    response = post(client_for(engine), **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["message"].endswith(".")
    assert too_long_text() not in response.text and "Traceback" not in response.text  # the input is never echoed
    assert engine.calls == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b'{"messages": [', "application/json"), (b"[1, 2]", "application/json"), ("안녕".encode(), "text/plain")],
    ids=["cut-off JSON", "an array", "not JSON"],
)
def test_a_body_that_is_not_a_json_object_is_a_400(content, content_type):
    client = client_for(ScriptedEngine())
    response = client.post("/v1/chat/completions", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_fields_are_ignored():
    messages = [{"role": "user", "content": [{"type": "text", "text": CALM}], "name": "민지"}]
    body = {"messages": messages, "frequency_penalty": 0.3, "stop": ["\n"], "user": "u1", "logprobs": False, "x": 1}
    response = post(client_for(ScriptedEngine()), **body)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


def test_unknown_routes_and_methods_are_openai_errors():
    client = client_for(ScriptedEngine())
    missing, wrong = client.get("/v1/completions"), client.get("/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong.status_code == 405 and set(wrong.json()["error"]) == {"message", "type", "param", "code"}


@pytest.fixture
def stub():
    yield from stub_servers()


@pytest.mark.parametrize("stream", [False, True])
def test_an_engine_failure_is_a_502_with_its_one_sentence(stub, stream):
    failing = Responder(UpstreamBackend.connect(stub(mode="error").url, "m"))
    response = TestClient(create_app(failing)).post(
        "/v1/chat/completions", json={"messages": user(CALM), "stream": stream}
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert "answered 500: CUDA out of memory" in error["message"] and error["code"] == "engine_failure"
    server = stub()
    backend = UpstreamBackend.connect(server.url, "m")
    server.close()  # the server goes away after the gateway started
    down = TestClient(create_app(Responder(backend))).post("/v1/chat/completions", json={"messages": user(CALM)})
    assert down.status_code == 502 and "cannot reach" in down.json()["error"]["message"]


def test_a_bug_is_a_500_with_a_request_id_and_no_text_in_the_log(caplog):
    engine = ScriptedEngine(fail=RuntimeError(f"a message that quotes the user: {PRIVATE}"))
    with caplog.at_level(logging.DEBUG):
        response = post(client_for(engine), messages=user(PRIVATE))
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert response.headers["x-request-id"] in message and "Traceback" not in response.text
    assert PRIVATE not in response.text and PRIVATE not in caplog.text
    assert "RuntimeError" in caplog.text  # the type and the frames are logged, never the exception's text


def test_too_many_turns_at_once_is_a_503(monkeypatch):
    monkeypatch.setattr(serve_app, "MAX_TURNS", 0)
    response = post(client_for(ScriptedEngine()), messages=user(CALM))
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_busy"


# ---------------------------------------------------------------- history that outgrew the context


def conversation(turns: int, length: int = 150) -> list[dict[str, str]]:
    messages = []
    for number in range(turns):
        messages.append(
            {"role": "user", "content": f"{number}번째 이야기: " + "오늘도 마음이 무거웠어요. " * (length // 16)}
        )
        messages.append({"role": "assistant", "content": f"{number}번째 답: 그 마음 이해해요. 더 들려주세요."})
    messages.append({"role": "user", "content": "주말에는 산책을 좀 해 보려고요"})
    return messages


def test_old_turns_are_dropped_to_fit_and_the_latest_message_never_is():
    engine = ScriptedEngine()
    messages = [{"role": "system", "content": "당신은 공감하는 상담사입니다."}, *conversation(8)]
    body = post(client_for(engine), messages=messages, max_tokens=400).json()
    prompt = engine.prompts[0]
    budget = 1024 - 400
    assert len(prompt) <= budget and body["usage"]["prompt_tokens"] == len(prompt)
    assert prompt.startswith("당신은 공감하는 상담사입니다.\n\n### 질문: ")  # the system message stays
    assert prompt.endswith("### 질문: 주말에는 산책을 좀 해 보려고요\n\n### 답변:")
    assert "0번째 이야기" not in prompt and "7번째 이야기" in prompt
    kept = int(prompt.split("### 질문: ")[1].split("번째")[0])
    # The oldest turn kept is the oldest that fits: one more would not.
    wider = [messages[0], *messages[1 + 2 * (kept - 1) :]]
    assert len(render_prompt(wider)) > budget


def test_a_latest_message_that_alone_does_not_fit_is_a_clear_400():
    engine = ScriptedEngine()
    response = post(client_for(engine), messages=user("너무 길게 쓴 이야기. " * 60), max_tokens=600)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "shorten it or lower max_tokens" in error["message"] and engine.calls == []
    assert post(client_for(engine), messages=user(CALM), max_tokens=1024).status_code == 400  # no room at all


def test_the_safety_layer_still_reads_turns_the_model_no_longer_sees():
    """An earlier crisis turn scrolled out of the model's context keeps the reply at concern: the 109 footer stays."""
    messages = [
        *user(CRISIS),
        {"role": "assistant", "content": safety.CRISIS_REPLY},
        *conversation(5)[:-1],
        *user("고마워요. 조금 나아졌어요"),
    ]
    engine = ScriptedEngine()
    body = post(client_for(engine), messages=messages, max_tokens=300).json()
    assert "수면제" not in engine.prompts[0]  # the crisis turn no longer fits the model's context...
    assert body["gonggam"]["safety"]["level"] == "concern"  # ...but the safety layer read it
    assert body["choices"][0]["message"]["content"].endswith(safety.CONCERN_FOOTER)


def test_fit_history_keeps_system_messages_drops_greetings_first_and_counts_the_rendered_prompt():
    messages = [
        {"role": "system", "content": "짧게 답하세요."},
        {"role": "assistant", "content": "안녕하세요, 무엇이든 이야기해 주세요."},
        *conversation(3, length=60),
    ]
    whole = fit_history(messages, len, 10_000)
    assert whole.messages == messages and whole.dropped == 0 and whole.tokens == len(render_prompt(messages))
    fitted = fit_history(messages, len, len(render_prompt([messages[0], *messages[4:]])))
    assert fitted.messages == [messages[0], *messages[4:]] and fitted.dropped == 3
    with pytest.raises(HistoryTooLong, match="shorten it"):
        fit_history(messages, len, 20)
    two_users = [*user("첫 번째 메시지"), *user("두 번째 메시지")]
    assert fit_history(two_users, len, len(render_prompt(two_users[1:]))).messages == two_users[1:]


def test_an_engine_without_a_tokenizer_is_counted_in_utf8_bytes():
    """Byte-level BPE never makes more tokens than bytes: a safe upper bound for an upstream server's count."""

    class Upstream:
        def count_tokens(self, text: str) -> None:
            return None

    count = token_counter(Upstream())
    assert count("마음") == 6 and token_counter(Upstream(), len)("마음") == 2


def test_infer_chat_keeps_to_the_context_the_same_way(stub, monkeypatch, capsys):
    """infer.py's chat loop over an upstream engine (no tokenizer here: UTF-8 bytes, a safe upper bound)."""
    import infer

    server = stub()
    lines = [f"{n}번째 이야기: " + "주말에 친구들이랑 등산을 다녀왔어요. " * 5 for n in range(6)]
    typed = iter([*lines, "너무 긴 이야기 " * 120, "고마워요", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    infer.chat(Responder(UpstreamBackend.connect(server.url, "m")), {})
    prompts = [r["body"]["prompt"] for r in server.completions()]
    assert len(prompts) == 7  # the over-long message was refused and the chat went on
    assert "shorten it or lower max_tokens" in capsys.readouterr().err
    assert all(len(p.encode("utf-8")) <= 1024 - 128 for p in prompts)
    assert "0번째 이야기" in prompts[0] and "0번째 이야기" not in prompts[-1] and "고마워요" in prompts[-1]
    assert "너무 긴 이야기" not in prompts[-1]


# ---------------------------------------------------------------- auth


def test_an_api_key_guards_the_api_but_not_the_page_or_health():
    engine = ScriptedEngine()
    client = client_for(engine, api_key="s3cret-key")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"}):
        refused = client.post("/v1/chat/completions", json={"messages": user(CALM)}, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/models", headers=headers).status_code == 401
    assert engine.calls == []
    allowed = {"Authorization": "Bearer s3cret-key"}
    assert client.post("/v1/chat/completions", json={"messages": user(CALM)}, headers=allowed).status_code == 200
    assert client.get("/v1/models", headers=allowed).status_code == 200
    assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200


def test_serve_refuses_an_open_address_without_a_key_and_a_busy_port_in_one_line(tmp_path):
    exposed = run_cli(ROOT / "serve.py", "--host", "0.0.0.0", cwd=tmp_path, timeout=120)
    unset = run_cli(ROOT / "serve.py", "--api-key-env", "GONGGAM_NO_SUCH_VAR", cwd=tmp_path, timeout=120)
    no_model = run_cli(ROOT / "serve.py", "--port", "0", cwd=tmp_path, timeout=120)
    with running(create_app(Responder(ScriptedEngine()))) as url:
        busy = run_cli(ROOT / "serve.py", "--port", url.rsplit(":", 1)[1], cwd=tmp_path, timeout=120)
    for done, expected in (
        (exposed, "refusing to listen on 0.0.0.0 without --api-key-env"),
        (unset, "GONGGAM_NO_SUCH_VAR is not set"),
        (no_model, "run `make merge`"),
        (busy, "cannot listen on 127.0.0.1"),
    ):
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the web page


def test_the_page_and_its_files_are_served_with_nothing_from_elsewhere():
    client = client_for(ScriptedEngine())
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for number in ("109", "1577-0199", "119", "112"):
        assert number in page.text
    static = ROOT / "gonggam" / "serve" / "static"
    for name in ("index.html", "chat.css", "chat.js"):
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        text = (static / name).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text and "@import" not in text
        for storage in ("localStorage.", "document.cookie", "indexedDB"):
            assert storage not in text  # the conversation stays in the tab's memory


# ---------------------------------------------------------------- a real server: several clients, disconnects


@contextmanager
def running(app: Any) -> Iterator[str]:
    """The app under a real uvicorn on a free 127.0.0.1 port, in a thread of this process."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def stream_reply(url: str, text: str) -> str:
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={"messages": user(text), "stream": True}) as answer:
        events = sse_events("".join(answer.iter_text()))
    return "".join(contents(events))


@pytest.mark.parametrize("thread_safe", [False, True], ids=["in-process engine", "upstream-like engine"])
def test_several_clients_at_once_get_whole_replies_and_an_in_process_engine_one_at_a_time(thread_safe):
    engine = ScriptedEngine(delay=0.01, thread_safe=thread_safe)
    with running(create_app(Responder(engine))) as url, ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: stream_reply(url, f"{CALM} ({i})"), range(8)))
    assert replies == ["".join(CALM_REPLY)] * 8 and engine.closed == 8
    if thread_safe:
        assert engine.most_active > 1  # an upstream server batches: no lock in front of it
    else:
        assert engine.most_active == 1  # transformers and llama.cpp are not thread-safe: never two at once


def test_only_in_process_engines_take_turns(stub):
    assert Gateway(Responder(ScriptedEngine())).serialised  # transformers, llama.cpp: one generation at a time
    assert not Gateway(Responder(UpstreamBackend.connect(stub().url, "m"))).serialised  # the server batches


def test_a_crisis_message_does_not_wait_behind_another_clients_generation():
    engine = ScriptedEngine(pieces=[" 천천히 이야기해 주세요."] * 40, delay=0.05)  # 2 s of generation
    with running(create_app(Responder(engine))) as url, ThreadPoolExecutor(1) as pool:
        busy = pool.submit(stream_reply, url, CALM)
        assert wait_for(lambda: engine.produced > 0)
        started = time.perf_counter()
        crisis = httpx.post(f"{url}/v1/chat/completions", json={"messages": user(CRISIS)}, timeout=30).json()
        waited = time.perf_counter() - started
        assert not busy.done()  # the other reply is still being generated
        busy.result()
    assert crisis["choices"][0]["message"]["content"] == safety.CRISIS_REPLY and waited < 1.0


def test_the_engine_goes_to_waiting_turns_in_arrival_order_and_a_departed_one_loses_its_place():
    lock, order = FairLock(), []
    stops = [threading.Event() for _ in range(4)]
    assert lock.acquire(threading.Event())  # the engine is busy

    def turn(number: int) -> None:
        if lock.acquire(stops[number]):
            order.append(number)
            lock.release()

    threads = []
    for number in range(4):
        threads.append(threading.Thread(target=turn, args=(number,)))
        threads[-1].start()
        time.sleep(0.05)  # arrive one after another
    stops[2].set()  # the third client leaves before its turn
    time.sleep(0.2)
    lock.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 3]


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_client_that_disconnects_stops_its_generation_and_a_queued_one_never_starts():
    pieces = [" 천천히", " 이야기해", " 주세요."] * 400
    engine = ScriptedEngine(pieces=pieces, delay=0.02)  # 24 s if nobody stopped it
    with running(create_app(Responder(engine))) as url:
        body = {"messages": user(CALM), "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as first:
            lines = first.iter_lines()
            assert next(line for line in lines if "천천히" in line)  # the reply is streaming
            # A second client queues behind the first (one generation at a time), then gives up.
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{url}/v1/chat/completions", json=body, timeout=0.5)
            time.sleep(0.6)  # the server notices within its poll interval (0.25 s)
        # The first client closed its connection mid-reply.
        assert wait_for(lambda: engine.closed == 1)
        produced = engine.produced
        time.sleep(0.5)
    assert produced < 400 and engine.produced == produced  # stopped, and stays stopped
    assert engine.engine_calls() == ["stream"]  # the queued request left before its turn and never reached it


# ---------------------------------------------------------------- privacy


def test_no_message_or_reply_text_reaches_the_log(caplog):
    engine = ScriptedEngine()
    with caplog.at_level(logging.DEBUG):
        client = client_for(engine)
        post(client, messages=user(PRIVATE))
        post(client, messages=user(PRIVATE), stream=True)
        post(client, messages=user(PRIVATE + too_long_text()))
        post(client, messages=[*user(PRIVATE), {"role": "assistant", "content": PRIVATE}])
        post(client, messages=user(CRISIS))
    lines = [r.getMessage() for r in caplog.records if r.name == "gonggam.serve"]
    assert len(lines) == 5 and all(line.startswith("request=") for line in lines)
    assert "safety=none" in lines[0] and "safety=crisis" in lines[-1] and "status=400" in lines[2]
    for secret in (PRIVATE, "비밀", CRISIS, "".join(CALM_REPLY), safety.CRISIS_REPLY[:20]):
        assert secret not in caplog.text
    assert not list(Path.cwd().glob("*.jsonl"))  # nothing written where the server runs
