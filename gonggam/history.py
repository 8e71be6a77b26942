"""Which turns of a conversation the model is shown: the newest ones that fit its context, never without the latest.

Polyglot-ko is served with a 1,024-token context (gonggam.backends.llama.CONTEXT_TOKENS), and the reply needs room
too, so a long chat cannot be sent whole. The rule, the same for serve.py and `infer.py --chat`:

- the budget is the context minus the reply's `max_tokens`; tokens are counted on the rendered prompt
  (gonggam.chat.render_prompt), the exact text the engine reads, with the engine's own tokenizer;
- whole turns are dropped from the oldest (a turn is a user message and the replies after it); leading system
  messages stay, since an instruction that silently vanished would change the answers without a word;
- the latest user message is never dropped: when it does not fit on its own, that is `HistoryTooLong`, a clear
  error for the caller, never a silently cut message.

The safety layer still reads the whole conversation (Responder.stream's `model_messages`): an earlier crisis turn
keeps the 109 line in view even after it has scrolled out of the model's context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gonggam.backends.llama import CONTEXT_TOKENS
from gonggam.chat import render_prompt
from gonggam.errors import UserError

Message = dict[str, str]
Counter = Callable[[str], int]


class HistoryTooLong(UserError):
    """The latest message (with any system message) does not fit the context with the reply budget."""

    def __init__(self, tokens: int, budget: int):
        self.tokens, self.budget = tokens, budget
        super().__init__(
            f"the latest message takes {tokens} tokens of the prompt but only {budget} fit "
            f"({CONTEXT_TOKENS}-token context minus the reply's max_tokens): shorten it or lower max_tokens."
        )


@dataclass(frozen=True)
class Fitted:
    messages: list[Message]  # what the model is shown
    tokens: int  # the rendered prompt's tokens, by the counter used
    dropped: int  # messages left out, oldest first


def token_counter(backend: Any, tokenizer: Counter | None = None) -> Counter:
    """The backend's own count, else `tokenizer`, else UTF-8 bytes.

    An upstream server's tokenizer is not here (its count_tokens is None). Polyglot's tokenizer is a byte-level
    BPE, where every token covers at least one byte, so the byte count is a safe upper bound: the history never
    overflows the server's context, at the price of keeping fewer turns (Korean takes 3 bytes a syllable). serve.py's
    --upstream-tokenizer gives the exact count instead.
    """

    def count(text: str) -> int:
        counted = backend.count_tokens(text)
        if counted is not None:
            return counted
        return tokenizer(text) if tokenizer is not None else len(text.encode("utf-8"))

    return count


def reply_budget(max_new_tokens: int) -> int:
    """Prompt tokens left once the reply's own tokens are set aside."""
    return CONTEXT_TOKENS - max_new_tokens


def _split(messages: list[Message]) -> tuple[list[Message], list[list[Message]]]:
    """Leading system messages, then turns: each starts at a user message (a greeting before it is a turn too)."""
    head_length = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    turns: list[list[Message]] = []
    for message in messages[head_length:]:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return messages[:head_length], turns


def fit_history(messages: list[Message], count_tokens: Counter, budget: int) -> Fitted:
    """The newest whole turns whose rendered prompt takes at most `budget` tokens (see the module's rule)."""
    head, turns = _split(messages)
    if not turns:
        raise ValueError("a conversation to answer needs a user message")

    def exact(start: int) -> tuple[list[Message], int]:
        kept = head + [m for turn in turns[start:] for m in turn]
        return kept, count_tokens(render_prompt(kept))

    # A first guess from each turn counted on its own, newest first: the work stays bounded by what can fit, not by
    # how long the conversation has grown. Each turn alone carries its own answer prompt, so the guess runs high.
    start = len(turns) - 1
    guess = count_tokens(render_prompt(head + turns[start]))
    while start > 0:
        more = count_tokens(render_prompt(turns[start - 1]))
        if guess + more > budget:
            break
        guess, start = guess + more, start - 1
    kept, tokens = exact(start)
    while tokens > budget:  # the guess was low after all: drop more
        if start == len(turns) - 1:
            raise HistoryTooLong(tokens, budget)
        start += 1
        kept, tokens = exact(start)
    while start > 0:  # the guess was high: take back older turns while they still fit
        wider, wider_tokens = exact(start - 1)
        if wider_tokens > budget:
            break
        kept, tokens, start = wider, wider_tokens, start - 1
    return Fitted(kept, tokens, len(messages) - len(kept))


def fit_for_reply(messages: list[Message], count_tokens: Counter, budget: int) -> Fitted:
    """fit_history, except that a crisis message is answered whatever its length: the crisis reply needs no model,
    and a person in crisis must never get "too long" instead of 109."""
    try:
        return fit_history(messages, count_tokens, budget)
    except HistoryTooLong:
        from gonggam import safety

        if safety.assess_conversation(messages).level == "crisis":
            return Fitted(messages, 0, 0)
        raise
