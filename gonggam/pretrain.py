"""Pre-training of the tiny base on a synthetic corpus: the demo's stand-in for Polyglot's own pre-training.

A LoRA adapter on a randomly initialised base can only learn word salad from 162 dialogues: the real recipe
relies on a base that already writes the language. So `make tiny` first trains the whole tiny GPT-NeoX as a
plain causal LM (loss on every token) on dialogues from `data_prep.synth`, which recombines the shipped
sample's sentences by major emotion, rendered with the project's chat template (each reply ending in EOS).
The model learns whole sentences, the prompt format and where a reply ends, as the real base knows them before
its LoRA stage. What it learns of emotion stays with the sample's own user lines: on messages it has not seen its
replies fit the emotion no better than chance, and a reply is no likelier after a line of its own emotion than after
one of another (bench/demo_conditioning.py; bench/README.md, demo model). It shows the pipeline, not 5.8B quality.

Deterministic for a seed (the corpus, the order of the blocks, the initialisation) on a machine with the same
number of torch threads; another thread count sums in another order and ends a little apart.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_SAMPLE = Path("data/sample/sample_Training.json")
# The loss before and after is measured on other recombinations (the next seed) of the same sentences.
HELD_OUT_DIALOGUES = 200
HELD_OUT_BLOCKS = 32
LOG_EVERY = 25


@dataclass(frozen=True)
class PretrainSettings:
    """One pass over `dialogues` synthetic dialogues, packed into `block_size`-token rows.

    Chosen on 6,000 dialogues (743k tokens) on 2 cores: at the same tokens, more and smaller steps memorise the
    sample's sentences far better (held-out loss 1.71 at 16 rows a step, 0.96 at 4, 0.58 at 2), and 2 rows of
    256 tokens keep the CPU nearly as busy as 16 rows do. 3e-3 beat 5e-3 at 2 rows, 6e-3 beat 3e-3 and 1e-2 at 4.
    """

    dialogues: int
    sample: Path = DEFAULT_SAMPLE
    seed: int = 0
    learning_rate: float = 3e-3
    batch_size: int = 2
    block_size: int = 256
    warmup_steps: int = 20


def synthetic_conversations(sample: Path, dialogues: int, seed: int) -> list[list[dict[str, str]]]:
    """The messages of `dialogues` synthetic dialogues, read through the same code as data_prep's JSON reader."""
    from data_prep.aihub_json import dialogue_from_record
    from data_prep.synth import generate, load_pools

    records = generate(load_pools(sample), dialogues, seed)
    return [dialogue_from_record(record, n, "synth").messages for n, record in enumerate(records, 1)]


def token_blocks(tokenizer: Any, conversations: list[list[dict[str, str]]], block_size: int) -> Any:
    """The rendered dialogues end to end, cut into rows of `block_size` tokens (the tail that does not fill one
    is dropped). Packing wastes no compute on padding; EOS after each reply already separates dialogues."""
    import torch

    from gonggam.chat import chat_template

    texts = tokenizer.apply_chat_template(conversations, chat_template=chat_template(), tokenize=False)
    ids = [token for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for token in row]
    rows = len(ids) // block_size
    if rows == 0:
        raise ValueError(f"{len(conversations)} dialogues give fewer than {block_size} tokens: ask for more.")
    return torch.tensor(ids[: rows * block_size], dtype=torch.long).view(rows, block_size)


def mean_loss(model: Any, blocks: Any, batch_size: int) -> float:
    import torch

    model.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(blocks), batch_size):
            batch = blocks[start : start + batch_size]
            total += float(model(input_ids=batch, labels=batch).loss) * len(batch)
    model.train()
    return total / len(blocks)


def pretrain(model: Any, tokenizer: Any, settings: PretrainSettings) -> dict[str, Any]:
    """Train `model` in place for one pass over the synthetic corpus; returns what happened (for pretraining.json).

    A short plain torch loop rather than transformers' Trainer: the whole run is a minute of one model on one
    in-memory tensor, with nothing to checkpoint, resume, distribute or evaluate on a schedule; the Trainer's
    machinery (an output folder, accelerate, callbacks) would cost seconds of start-up and say less.
    """
    import torch
    from transformers import get_cosine_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    train = token_blocks(
        tokenizer, synthetic_conversations(settings.sample, settings.dialogues, settings.seed), settings.block_size
    )
    held_out = token_blocks(
        tokenizer, synthetic_conversations(settings.sample, HELD_OUT_DIALOGUES, settings.seed + 1), settings.block_size
    )[:HELD_OUT_BLOCKS]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed))
    steps = math.ceil(len(train) / settings.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(settings.warmup_steps, steps // 10), steps)
    initial = mean_loss(model, held_out, settings.batch_size)
    _say(f"pretraining on {settings.dialogues} synthetic dialogues: {train.numel():,} tokens, {steps} steps")
    history = []
    model.train()
    training_started = time.perf_counter()
    for step in range(1, steps + 1):
        batch = train[order[(step - 1) * settings.batch_size : step * settings.batch_size]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        # Clipping keeps the first steps at this learning rate from blowing up the fresh embeddings.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(round(loss.item(), 4))
        if step % LOG_EVERY == 0 or step == steps:
            _progress(step, steps, history, settings.block_size * settings.batch_size * step, training_started)
    model.eval()
    final = mean_loss(model, held_out, settings.batch_size)
    _say(f"pretraining done: held-out loss {initial:.2f} -> {final:.2f} in {time.perf_counter() - started:.0f} s")
    settings_json = {**asdict(settings), "sample": str(settings.sample)}
    return {
        "settings": settings_json,
        "tokens": int(train.numel()),
        "steps": steps,
        "held_out_loss_before": initial,
        "held_out_loss_after": final,
        "train_loss": history,
        "runtime_s": round(time.perf_counter() - started, 1),
    }


def _progress(step: int, steps: int, history: list[float], tokens: int, started: float) -> None:
    recent = history[-LOG_EVERY:]
    elapsed = time.perf_counter() - started
    _say(
        f"pretrain step {step}/{steps}  loss {sum(recent) / len(recent):.3f}  "
        f"{tokens / elapsed:,.0f} tok/s  {elapsed:.0f} s"
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
