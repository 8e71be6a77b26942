"""The OpenAI chat-completions request this gateway accepts, and the response bodies it writes.

Requests are checked the way OpenAI checks them (every problem is a 400 with the field that caused it); fields this
server does not use (`stop`, `logprobs`, `tools`, `user`, ...) are ignored, as OpenAI-compatible servers do. The
answer carries one extra top-level field, ``gonggam``, that OpenAI clients ignore: the safety level, why the reply
stopped, and the engine.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_MESSAGES = 256
# Far above what fits the model's context (about 1,000 tokens): the token rule (gonggam.history) decides what is
# too long for the model; this only keeps a runaway request from costing seconds of safety analysis.
MAX_MESSAGE_CHARS = 8_000
# The safety layer reads the whole conversation on every turn: a bound on that work (the web chat sends less).
MAX_CONVERSATION_CHARS = 100_000
SEED_LIMIT = 2**32  # numpy's and llama.cpp's seeds are unsigned 32-bit


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # "developer" is OpenAI's newer name for "system"; tool and function turns have no place in this model's prompt.
    role: Literal["system", "developer", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def text_parts_joined(cls, content: Any) -> Any:
        """OpenAI's list form ([{"type": "text", "text": ...}]) as one string; images and audio are not understood."""
        if not isinstance(content, list):
            return content
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise ValueError("content must be a string or a list of text parts: this model reads text only")
        return "".join(part["text"] for part in content)

    @field_validator("content")
    @classmethod
    def not_empty_nor_too_long(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("the message is empty")
        if len(content) > MAX_MESSAGE_CHARS:
            raise ValueError(f"the message is longer than {MAX_MESSAGE_CHARS:,} characters")
        return content

    def plain(self) -> dict[str, str]:
        """The message as the chat template takes it."""
        return {"role": "system" if self.role == "developer" else self.role, "content": self.content}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # one model is served; any name is accepted and the answer names the real one
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name for max_tokens
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT)
    n: int | None = 1

    @field_validator("n")
    @classmethod
    def one_choice(cls, n: int | None) -> int:
        if n not in (None, 1):
            raise ValueError("n must be 1: this server returns one reply per request")
        return 1

    @field_validator("messages")
    @classmethod
    def ends_with_a_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages and messages[-1].role != "user":
            raise ValueError("the conversation must end with a user message, the one to answer")
        if sum(len(m.content) for m in messages) > MAX_CONVERSATION_CHARS:
            raise ValueError(
                f"the conversation is longer than {MAX_CONVERSATION_CHARS:,} characters: send the recent turns"
            )
        return messages

    def conversation(self) -> list[dict[str, str]]:
        return [message.plain() for message in self.messages]

    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def overrides(self) -> dict[str, Any]:
        """Sampling settings for the Responder; temperature 0 means greedy, as in OpenAI's API."""
        return {
            "temperature": self.temperature or None,
            "top_p": self.top_p,
            "max_new_tokens": self.reply_tokens(),
            "seed": self.seed,
            "do_sample": False if self.temperature == 0 else None,
        }


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None):
    """OpenAI's error object; `message` is one sentence and never quotes the user's text."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


FINISH_REASONS = {"eos": "stop", "length": "length", "safety": "content_filter", "client": "stop"}


class Completion:
    """The fields every answer of one request shares (its id, creation time and model name)."""

    def __init__(self, request_id: str, model: str):
        self.id = f"chatcmpl-{request_id}"
        self.created = int(time.time())
        self.model = model

    def _base(self, object: str) -> dict[str, Any]:
        return {"id": self.id, "object": object, "created": self.created, "model": self.model}

    def whole(self, content: str, finish: str, usage: dict[str, int], extra: dict[str, Any]) -> dict[str, Any]:
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None}
        return {
            **self._base("chat.completion"),
            "choices": [{**choice, "finish_reason": finish}],
            "usage": usage,
            **extra,
        }

    def chunk(self, delta: dict[str, str], finish: str | None = None, extra: dict[str, Any] | None = None):
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._base("chat.completion.chunk"), "choices": [choice], **(extra or {})}

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        """stream_options.include_usage: a last chunk with no choices, as OpenAI sends it."""
        return {**self._base("chat.completion.chunk"), "choices": [], "usage": usage}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
