"""What training and inference must agree on: the chat template, the special-token ids, generation defaults.

One source of truth per fact: every script imports these rather than restating them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BASE_MODEL_ID = "beomi/KoAlpaca-Polyglot-5.8B"

# Polyglot-ko's tokenizer has <|endoftext|> at id 2 as both EOS and pad, while the model's config.json says
# eos_token_id 0. A model whose config says 0 never stops at the token it was trained to end replies with.
EOS_TOKEN = "<|endoftext|>"
EOS_TOKEN_ID = 2
# Polyglot replaces personal data in its pre-training text with placeholders (<|acc|>, <|tel|>, <|rrn|>); they
# and its other <|...|> tokens leak into samples and must never be shown.
SPECIAL_TOKEN = re.compile(r"<\|[a-z0-9_]+\|>")
TURN_MARKER = "###"

CHAT_TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")

# Sampling defaults of the seed recipe (temperature sampling, no_repeat_ngram_size 6). Saved with every adapter
# and merged model as generation_config.json, and read back by infer.py and eval.py.
GENERATION_DEFAULTS: dict[str, Any] = {
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.9,
    "no_repeat_ngram_size": 6,
    "max_new_tokens": 128,
    "eos_token_id": EOS_TOKEN_ID,
    "pad_token_id": EOS_TOKEN_ID,
    "bos_token_id": EOS_TOKEN_ID,
}


def chat_template() -> str:
    return CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")


def render_prompt(messages: list[dict[str, str]]) -> str:
    """The exact prompt text for a conversation, rendered by transformers' own template renderer without a
    tokenizer: the GGUF and upstream backends send these bytes, so every engine sees what training saw."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        [messages], chat_template=chat_template(), add_generation_prompt=True, eos_token=EOS_TOKEN
    )
    return rendered[0]


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give a Polyglot tokenizer the project's template, EOS/pad 2, and no token_type_ids.

    The Polyglot tokenizer returns token_type_ids, which GPT-NeoX's generate() rejects.
    """
    tokenizer.chat_template = chat_template()
    tokenizer.eos_token = EOS_TOKEN
    tokenizer.pad_token = EOS_TOKEN
    if tokenizer.eos_token_id != EOS_TOKEN_ID:
        raise ValueError(
            f"the tokenizer maps {EOS_TOKEN} to id {tokenizer.eos_token_id}, not {EOS_TOKEN_ID}: "
            "this is not a Polyglot-ko tokenizer; pass a Polyglot-based model."
        )
    tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n != "token_type_ids"]
    return tokenizer


def prepare_model_config(model: Any) -> Any:
    """Set EOS/pad to 2 in the model config and its generation config, with the project's sampling defaults."""
    from transformers import GenerationConfig

    model.config.eos_token_id = EOS_TOKEN_ID
    model.config.pad_token_id = EOS_TOKEN_ID
    model.config.bos_token_id = EOS_TOKEN_ID
    model.generation_config = GenerationConfig(**GENERATION_DEFAULTS)
    return model


def clean_reply(text: str) -> str:
    """Cut a generated reply at the next turn marker and drop Polyglot's PII placeholders."""
    text = text.split(EOS_TOKEN, 1)[0]
    text = text.split(TURN_MARKER, 1)[0]
    text = SPECIAL_TOKEN.sub("", text).replace("\ufffd", "")  # placeholders, and bytes cut mid-character
    return " ".join(text.split())
