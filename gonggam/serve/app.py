"""The FastAPI app: OpenAI's /v1/chat/completions in front of the Responder, /v1/models, /healthz, and the web chat.

Privacy: no conversation is written anywhere. The log holds one line per request (an id, the route, the status,
timings, the safety level and why the reply stopped) and never a message, a reply or an error text that could
quote one; uvicorn's own access log is off because it would log query strings.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import secrets
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonggam import safety
from gonggam.errors import UserError
from gonggam.generation import Reply, Responder
from gonggam.history import Counter, HistoryTooLong
from gonggam.serve.engine import Gateway, Item, Turn, TurnStopped
from gonggam.serve.schemas import FINISH_REASONS, ChatRequest, Completion, error_body, usage

log = logging.getLogger("gonggam.serve")

DISCONNECT_POLL_S = 0.25  # how soon a departed client's generation stops when no piece is being written
MAX_TURNS = 64  # turns queued or running at once; more is a 503, not an unbounded pile of threads
STATIC = resources.files("gonggam.serve") / "static"
KNOWN_ROUTES = ("/", "/healthz", "/v1/models", "/v1/chat/completions")
# The page's own files only: nothing from another origin can load, even if the page were changed to ask.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class ApiError(Exception):
    """An OpenAI-style error answer: status, one sentence, and the OpenAI type/param/code."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.body = status, error_body(message, type, param, code)

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=headers)


@functools.cache
def version() -> str:
    try:
        return metadata.version("gonggam")
    except metadata.PackageNotFoundError:  # a checkout that was never pip-installed: read pyproject.toml
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def model_name(responder: Responder) -> str:
    """The id /v1/models lists: the model folder's or GGUF file's name, or what the upstream server serves."""
    backend = responder.backend
    if backend.name == "upstream":
        return str(backend.model)
    if backend.name == "llama.cpp":
        return Path(backend.path).stem
    source = getattr(getattr(backend, "model", None), "name_or_path", "") or "gonggam"
    return Path(str(source)).name or str(source)


def create_app(
    responder: Responder,
    api_key: str | None = None,
    model: str | None = None,
    tokenizer: Counter | None = None,
) -> FastAPI:
    """The gateway over one loaded Responder; `api_key` guards /v1/* (the page and /healthz stay open)."""
    gateway = Gateway(responder, tokenizer)
    served = model or model_name(responder)
    turns: set[Turn] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for turn in list(turns):  # shutting down: no generation outlives the server
            turn.stop.set()

    app = FastAPI(
        title="gonggam", version=version(), docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.add_middleware(RequestLog, turns=turns)
    install_error_handlers(app)

    def authorise(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send Authorization: Bearer KEY.", code="invalid_api_key")

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        backend = responder.backend
        return {"status": "ok", "model_loaded": True, "backend": backend.name, "model": served, "version": version()}

    @app.get("/v1/models")
    def models(request: Request) -> dict[str, Any]:
        authorise(request)
        return {"object": "list", "data": [{"id": served, "object": "model", "created": 0, "owned_by": "gonggam"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request):
        authorise(request)
        if len(turns) >= MAX_TURNS:
            raise ApiError(503, "the server is busy: try again in a moment.", "server_error", code="server_busy")
        turn = Turn(gateway, body.conversation(), body.overrides(), body.reply_tokens())
        request.state.turn = turn
        turns.add(turn)
        turn.start()
        first = await turn.wait(turn.started, request.is_disconnected, DISCONNECT_POLL_S)
        if first is None:
            return JSONResponse(error_body("the client went away."), status_code=499)
        if first.kind == "error":
            raise _as_api_error(first.value, request)
        answer = Completion(request.state.request_id, served)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = sse(turn, answer, request, include_usage)
            return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)
        done = await turn.wait(_until_done(turn), request.is_disconnected, DISCONNECT_POLL_S)
        if done is None:
            return JSONResponse(error_body("the client went away."), status_code=499)
        if done.kind == "error":
            raise _as_api_error(done.value, request)
        reply: Reply = done.value
        request.state.reply = reply
        return answer.whole(reply.response, FINISH_REASONS[reply.stopped_by], _usage(turn, reply), _extra(reply))

    return app


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _until_done(turn: Turn) -> Item:
    while True:
        item = await turn.queue.get()
        if item.kind != "piece":
            return item


def _usage(turn: Turn, reply: Reply) -> dict[str, int]:
    asked = turn.fitted is not None and reply.safety["level"] != "crisis"  # a crisis message never reaches the model
    return usage(turn.fitted.tokens if asked else 0, reply.new_tokens)


def _extra(reply: Reply) -> dict[str, Any]:
    """The field OpenAI clients ignore: the safety level and reasons, why the reply stopped, and the engine."""
    return {"gonggam": {"safety": reply.safety, "stopped_by": reply.stopped_by, "engine": reply.engine}}


def _piece_extra(piece: str, shown: str) -> dict[str, Any] | None:
    """Marks the pieces the web page shows differently: the crisis reply (a card) and the concern footer.

    Responder.stream writes the crisis reply as one piece, after a newline when it replaces text already shown
    (a reply that failed the output check mid-stream): `replaced` tells a client to drop that text.
    """
    if piece.lstrip("\n") == safety.CRISIS_REPLY:
        return {"gonggam": {"safety": {"level": "crisis"}, "replaced": bool(shown)}}
    if piece.strip() == safety.CONCERN_FOOTER:
        return {"gonggam": {"footer": True}}
    return None


def _data(payload: dict[str, Any] | str) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n"


async def sse(turn: Turn, answer: Completion, request: Request, include_usage: bool) -> AsyncIterator[str]:
    """The turn as OpenAI's chunks, each written as soon as the safety layer passed it, then data: [DONE]."""
    shown = ""
    try:
        yield _data(answer.chunk({"role": "assistant", "content": ""}))
        while True:
            item = await turn.wait(turn.queue.get(), request.is_disconnected, DISCONNECT_POLL_S)
            if item is None:
                return
            if item.kind == "piece":
                yield _data(answer.chunk({"content": item.value}, extra=_piece_extra(item.value, shown)))
                shown += item.value
            elif item.kind == "done":
                reply: Reply = item.value
                request.state.reply = reply
                yield _data(answer.chunk({}, FINISH_REASONS[reply.stopped_by], _extra(reply)))
                if include_usage:
                    yield _data(answer.usage_chunk(_usage(turn, reply)))
                yield _data("[DONE]")
                return
            else:  # the engine failed mid-reply: OpenAI's clients raise on an error event
                error = _as_api_error(item.value, request)
                request.state.status = error.status
                yield _data(error.body)
                return
    finally:
        turn.stop.set()


def _as_api_error(error: BaseException, request: Request) -> ApiError:
    """An exception as the client sees it: one sentence for what it can act on, an id for everything else."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, TurnStopped):
        return ApiError(503, "the request was stopped before the model was free.", "server_error", code="stopped")
    if isinstance(error, HistoryTooLong):
        return ApiError(400, str(error), param="messages", code="context_length_exceeded")
    if isinstance(error, UserError):  # the engine failed (an upstream server down, timing out, answering garbage)
        return ApiError(502, str(error), "upstream_error", code="engine_failure")
    request_id = getattr(request.state, "request_id", "?")
    _log_failure(request_id, error)
    return ApiError(500, f"internal error (request {request_id}): see the server's log.", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_error(error).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
        message = {404: "no such route: see /v1/models, /v1/chat/completions, /healthz and /."}.get(
            error.status_code, str(error.detail)
        )
        return ApiError(error.status_code, message, code=code).response()

    async def failed(request: Request, error: Exception) -> JSONResponse:
        api_error = _as_api_error(error, request)
        request.state.status = api_error.status
        headers = {"WWW-Authenticate": "Bearer"} if api_error.status == 401 else None
        return api_error.response(headers)

    app.add_exception_handler(ApiError, failed)
    app.add_exception_handler(UserError, failed)


def _validation_error(error: RequestValidationError) -> ApiError:
    """The first problem, named by its field as OpenAI names it (messages[1].role); the input is never echoed."""
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "the body is not valid JSON: send a JSON object.", code="invalid_json")
    location = [part for part in first["loc"] if part != "body"]
    param = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".") or None
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "this field is required"
    return ApiError(400, f"{param or 'body'}: {message}.", param=param, code="invalid_value")


class RequestLog:
    """One log line per request (id, route, status, timings, safety level), an X-Request-Id header, and a 500 JSON
    answer for anything that escaped the handlers. It also stops the request's turn when the exchange ends,
    however it ends."""

    def __init__(self, app: ASGIApp, turns: set[Turn]):
        self.app = app
        self.turns = turns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started, status = time.perf_counter(), [0]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:  # the client left mid-stream, or a bug the handlers did not catch
            if not isinstance(error, ClientDisconnect | OSError):
                _log_failure(request_id, error)
            if not status[0]:
                status[0] = 500
                body = json.dumps(error_body(f"internal error (request {request_id}).", "server_error")).encode()
                headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            state["failure"] = type(error).__name__
        finally:
            turn = state.get("turn")
            if turn is not None:
                turn.stop.set()
                self.turns.discard(turn)
            log.info(_log_line(scope, state, status[0], started))


def _log_failure(request_id: str, error: BaseException) -> None:
    """The exception's type and frames only: its message could quote the conversation."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("request %s failed: %s\n%s", request_id, type(error).__name__, frames.rstrip())


def _log_line(scope: Scope, state: dict[str, Any], status: int, started: float) -> str:
    path = scope.get("path", "")
    route = path if path in KNOWN_ROUTES or path.startswith("/static/") else "(other)"
    fields = [
        f"request={state['request_id']}",
        f"{scope.get('method', '')} {route}",
        f"status={state.get('status') or status}",
    ]
    fields.append(f"ms={(time.perf_counter() - started) * 1000:.1f}")
    turn: Turn | None = state.get("turn")
    if turn is not None:
        if turn.engine_at is not None:
            fields.append(f"queue_ms={(turn.engine_at - turn.created) * 1000:.1f}")
        if turn.started.done() and not turn.started.cancelled():
            fields.append(f"first_ms={(turn.started.result().at - turn.created) * 1000:.1f}")
        if turn.fitted is not None:
            fields.append(f"prompt_tokens={turn.fitted.tokens} dropped={turn.fitted.dropped}")
    reply: Reply | None = state.get("reply")
    if reply is not None:
        fields.append(f"safety={reply.safety['level']} stopped_by={reply.stopped_by} tokens={reply.new_tokens}")
    if "failure" in state:
        fields.append(f"failure={state['failure']}")
    return " ".join(fields)
