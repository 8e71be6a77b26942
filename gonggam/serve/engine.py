"""One chat turn run in a worker thread, its pieces bridged to the event loop, and the engine lock.

Responder.stream is synchronous (the engines are), so each request gets a thread that runs it and hands every piece
to the request's asyncio queue; the request sets `stop` when its client goes away, and the Responder ends the
generation at the next piece. transformers and llama.cpp keep one model's state in process and are not thread-safe:
their turns take the engine lock one at a time (the tokenizer included, since counting history tokens shares it).
An upstream server batches concurrent requests itself, so its turns run side by side.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gonggam import safety
from gonggam.generation import Reply, Responder
from gonggam.history import Counter, Fitted, fit_for_reply, reply_budget, token_counter

LOCK_POLL_S = 0.05  # how often a turn waiting for the engine checks whether its client is still there


class TurnStopped(Exception):
    """The turn ended before the engine was free: its client went away, or the server is shutting down."""


@dataclass
class Item:
    """What the worker hands the request: a piece of text, the finished Reply, or the error that ended the turn."""

    kind: str  # "piece" | "done" | "error"
    value: Any
    at: float = field(default_factory=time.perf_counter)


class Workers:
    """Reused daemon threads for the turns.

    A new thread per request costs milliseconds (Thread.start waits until the new thread runs, which can take a GIL
    switch interval, 5 ms). concurrent.futures' pool would reuse threads too, but its threads are joined at exit:
    an engine call that hangs (an upstream server that stopped answering) would keep Ctrl-C from ending serve.py.
    """

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # an idle thread is waiting for exactly this task
        self._tasks.put(task)
        if spawn:
            threading.Thread(target=self._work, name="gonggam-turn", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._tasks.get()()
            with self._lock:
                self._idle += 1


class FairLock:
    """The engine, first come first served, to a waiter that can give up its place.

    threading.Lock lets a newly arrived thread overtake one that has waited for seconds: under load some clients
    would wait many times longer than their share. Here each waiter queues, and release hands over to the oldest.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, stop: threading.Event) -> bool:
        """True once the engine is ours; False when `stop` was set first (the place in the queue is given up)."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            mine = threading.Event()
            self._queue.append(mine)
        while not mine.wait(LOCK_POLL_S):
            if stop.is_set():
                with self._mutex:
                    if not mine.is_set():
                        self._queue.remove(mine)
                        return False
                self.release()  # handed over at the last moment: pass it on
                return False
        return True

    def release(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().set()  # still held: ownership goes straight to the oldest waiter
            else:
                self._held = False


class Gateway:
    """The Responder shared by every request, and what the requests need to share it safely."""

    def __init__(self, responder: Responder, tokenizer: Counter | None = None):
        self.responder = responder
        self.count_tokens = token_counter(responder.backend, tokenizer)
        self.serialised = not getattr(responder.backend, "thread_safe", False)
        self.lock = FairLock()
        self.default_reply_tokens = responder.sampling().max_new_tokens
        self.workers = Workers()

    @contextmanager
    def engine(self, stop: threading.Event):
        """The engine to oneself (in-process engines), or None when the client left while waiting for it."""
        if not self.serialised:
            yield True
            return
        if not self.lock.acquire(stop):
            yield False
            return
        try:
            yield True
        finally:
            self.lock.release()


class Turn:
    """One request's reply: started in a thread, read from `queue` on the event loop."""

    def __init__(
        self, gateway: Gateway, messages: list[dict[str, str]], overrides: dict[str, Any], reply_tokens: int | None
    ):
        self.gateway = gateway
        self.messages = messages
        self.overrides = {**overrides, "max_new_tokens": reply_tokens or gateway.default_reply_tokens}
        self.budget = reply_budget(self.overrides["max_new_tokens"])
        self.stop = threading.Event()
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.started: asyncio.Future[Item] = self.loop.create_future()  # the first item: text, or an early end
        self.fitted: Fitted | None = None
        self.created = time.perf_counter()
        self.engine_at: float | None = None  # when the engine was free for this turn (queue wait = this - created)

    def start(self) -> None:
        self.gateway.workers.submit(self._run)

    def _run(self) -> None:
        try:
            reply = self._answer()
        except Exception as error:  # handed to the request, which answers with an OpenAI error (never a traceback)
            self._hand(Item("error", error))
        else:
            self._hand(Item("done", reply))

    def _answer(self) -> Reply:
        # A crisis message is answered without the engine, so it never waits behind other people's generations
        # (without a queue in front of the engine, the Responder's own check is enough).
        if self.gateway.serialised and safety.assess_conversation(self.messages).level == "crisis":
            self.engine_at = time.perf_counter()
            self.fitted = Fitted(self.messages, 0, 0)
            return self.gateway.responder.stream(self.messages, write=self._write)
        with self.gateway.engine(self.stop) as free:
            if not free:
                raise TurnStopped()
            self.engine_at = time.perf_counter()
            self.fitted = fit_for_reply(self.messages, self.gateway.count_tokens, self.budget)
            return self.gateway.responder.stream(
                self.messages,
                write=self._write,
                should_stop=self.stop.is_set,
                model_messages=self.fitted.messages,
                **self.overrides,
            )

    def _write(self, piece: str) -> None:
        if piece:
            self._hand(Item("piece", piece))

    def _hand(self, item: Item) -> None:
        try:
            self.loop.call_soon_threadsafe(self._receive, item)
        except RuntimeError:  # the event loop is gone (the server is shutting down): nobody is left to answer
            self.stop.set()

    def _receive(self, item: Item) -> None:
        self.queue.put_nowait(item)
        if not self.started.done():
            self.started.set_result(item)

    async def wait(self, awaitable: asyncio.Future[Any] | Any, gone: Callable[[], Any], poll: float) -> Any:
        """`awaitable`'s result, or None once `gone()` says the client disconnected (then the turn is stopped)."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=poll)
                if done:
                    return task.result()
                if await gone():
                    self.stop.set()
                    return None
        finally:
            if not task.done():
                task.cancel()
