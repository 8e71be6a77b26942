"""Evaluation of a model (merged, or base + adapter) on processed dialogues: what eval.py computes and writes.

Three parts, each usable alone:

- teacher-forced loss / perplexity on the assistant tokens only, masked exactly as in training (the chat
  template's {% generation %} blocks: each reply and its EOS), overall and per major emotion;
- generated replies (one item per assistant turn: the history up to that user turn → the reference reply),
  answered through `Responder.reply_batch` so that eval sees the same prompts, stopping and safety layer as
  infer.py, scored with chrF / BLEU and reply statistics;
- the safety layer on the frozen test split of data/safety/ (no model needed).

The report directory (metrics.json, report.md, metrics.png, samples.jsonl) is staged in a temporary
directory next to the target and renamed into place, so a failed run never leaves half a report.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gonggam.files import check_output, output_directory
from gonggam.modeling import UserError

ROOT = Path(__file__).resolve().parents[1]
IGNORE = -100
REPEAT_N = 3  # a reply that says the same three words twice is looping, not empathising
DATA_NOTICE = (
    "AIHub 감성 대화 말뭉치 text may not be redistributed: this report and samples.jsonl (which quotes the "
    "corpus) stay on this machine; reports/ is git-ignored. Never commit, upload or share them."
)


# ---------------------------------------------------------------------------------------------------
# Data


def read_dialogues(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Processed dialogues (data_prep's JSONL), the first `limit` of them; a malformed line is a UserError."""
    if not path.is_file():
        raise UserError(f"the data file {path} does not exist: run `make data` first.")
    dialogues = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            messages = record["messages"]
            ok = isinstance(messages, list) and all(
                m["role"] in ("user", "assistant") and isinstance(m["content"], str) for m in messages
            )
        except (json.JSONDecodeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise UserError(
                f"{path}:{number} is not a processed dialogue with 'messages': rebuild it with `make data`."
            )
        dialogues.append(record)
        if limit is not None and len(dialogues) >= limit:
            break
    if not dialogues:
        raise UserError(f"{path} holds no dialogues: run `make data` on the corpus first.")
    return dialogues


def major_of(record: dict[str, Any]) -> str:
    return (record.get("emotion") or {}).get("major") or "unknown"


def turn_items(dialogues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per assistant turn that follows a user turn: history up to that user turn → reference reply."""
    items = []
    for record in dialogues:
        messages = record["messages"]
        for i, message in enumerate(messages):
            if message["role"] == "assistant" and i > 0 and messages[i - 1]["role"] == "user":
                items.append(
                    {
                        "id": record.get("id"),
                        "turn": i,
                        "emotion": major_of(record),
                        "history": messages[:i],
                        "reference": message["content"],
                    }
                )
    return items


# ---------------------------------------------------------------------------------------------------
# Teacher-forced loss


def supervised_tokens(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and the template's assistant mask (1 on each reply and its EOS), as training renders them."""
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    return ids[:max_length], mask[:max_length]


def batch_nll(model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int) -> list[tuple[float, int]]:
    """(summed NLL, supervised token count) per row; rows padded on the right so positions stay 0..n-1."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    supervised = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (ids, mask) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention[r, : len(ids)] = 1
        supervised[r, : len(mask)] = torch.tensor(mask, dtype=torch.bool)
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), use_cache=False).logits
    # The usual shift: the logits at position t predict token t+1, so token t+1 counts if it is supervised.
    targets = supervised[:, 1:].to(device)
    picked = logits[:, :-1][targets].float()  # (supervised tokens, vocab): only these need fp32
    nll = torch.nn.functional.cross_entropy(picked, input_ids[:, 1:].to(device)[targets], reduction="none")
    row_of = targets.nonzero()[:, 0]
    sums = torch.zeros(len(rows), device=device).index_add_(0, row_of, nll)
    counts = targets.sum(dim=1)
    return [(float(s), int(c)) for s, c in zip(sums.tolist(), counts.tolist(), strict=True)]


def perplexity(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


def summarise_loss(nll: float, tokens: int, dialogues: int) -> dict[str, Any]:
    """Token-weighted mean NLL, as training's eval loss averages over tokens, not over dialogues."""
    loss = nll / tokens if tokens else float("nan")
    return {"loss": loss, "perplexity": perplexity(loss), "tokens": tokens, "dialogues": dialogues}


def teacher_forced(
    model: Any, tokenizer: Any, dialogues: list[dict[str, Any]], batch_size: int = 16, progress: bool = True
) -> dict[str, Any]:
    """Assistant-only loss and perplexity, overall and per major emotion."""
    from tqdm import tqdm

    from data_prep.codes import MAJOR_ENGLISH

    max_length = min(getattr(model.config, "max_position_embeddings", 2048), 2048)
    pad_id = tokenizer.pad_token_id
    rows = [supervised_tokens(tokenizer, record["messages"], max_length) for record in dialogues]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # similar lengths share a batch: less padding
    per_row: dict[int, tuple[float, int]] = {}
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="teacher-forced", unit="batch", disable=not progress, file=sys.stderr):
        per_row.update(zip(batch, batch_nll(model, [rows[i] for i in batch], pad_id), strict=True))
    totals: dict[str, list[float]] = {}
    for i, record in enumerate(dialogues):
        nll, tokens = per_row[i]
        entry = totals.setdefault(major_of(record), [0.0, 0, 0])
        entry[0] += nll
        entry[1] += tokens
        entry[2] += 1
    per_emotion = {
        major: {**summarise_loss(*values), "english": MAJOR_ENGLISH.get(major, major)}
        for major, values in sorted(totals.items(), key=lambda kv: _major_rank(kv[0]))
    }
    overall = summarise_loss(sum(v[0] for v in per_row.values()), sum(v[1] for v in per_row.values()), len(rows))
    return {**overall, "per_emotion": per_emotion}


def _major_rank(major: str) -> int:
    from data_prep.codes import MAJORS

    return MAJORS.index(major) if major in MAJORS else len(MAJORS)


# ---------------------------------------------------------------------------------------------------
# Reply statistics (pure functions on strings)


def char_units(text: str) -> list[str]:
    """Characters without whitespace: Korean syllables are the natural unit, spacing is inconsistent."""
    return [c for c in text if not c.isspace()]


def word_units(text: str) -> list[str]:
    return text.split()


def ngrams(units: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]


def distinct_n(texts: Iterable[str], n: int, unit: Callable[[str], list[str]] = char_units) -> float:
    """Corpus-level distinct-n: unique n-grams / all n-grams over every text (0.0 when there are none)."""
    grams = [g for text in texts for g in ngrams(unit(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def has_repeated_ngram(text: str, n: int = REPEAT_N) -> bool:
    """Whether some whitespace-word n-gram occurs twice or more in the text."""
    return any(count > 1 for count in Counter(ngrams(word_units(text), n)).values())


def ends_with_question(text: str) -> bool:
    return text.rstrip().endswith(("?", "？"))


def share(flags: Iterable[bool]) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def text_statistics(texts: list[str]) -> dict[str, float]:
    return {
        "distinct_1_char": distinct_n(texts, 1, char_units),
        "distinct_2_char": distinct_n(texts, 2, char_units),
        "distinct_1_word": distinct_n(texts, 1, word_units),
        "distinct_2_word": distinct_n(texts, 2, word_units),
        "mean_length_chars": sum(map(len, texts)) / len(texts) if texts else 0.0,
        "repeated_word_3gram_rate": share(has_repeated_ngram(t) for t in texts),
        "question_rate": share(ends_with_question(t) for t in texts),
    }


def overlap_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """chrF (character 6-grams, whitespace ignored) and BLEU over characters: no Korean word segmenter needed."""
    import sacrebleu

    if not hypotheses:
        return {"chrf": 0.0, "bleu": 0.0}
    return {
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references], tokenize="char").score,
    }


# ---------------------------------------------------------------------------------------------------
# Generation


def model_text(reply: Any) -> str:
    """The model's own words: the safety layer's 109 footer (added on `concern`) is not the model's."""
    from gonggam.safety import CONCERN_FOOTER

    return reply.response.removesuffix(f"\n\n{CONCERN_FOOTER}")


def generate_replies(
    responder: Any, items: list[dict[str, Any]], batch_size: int, overrides: dict[str, Any], progress: bool = True
) -> list[Any]:
    """Replies in item order; prompts batched by length so left padding stays short."""
    from tqdm import tqdm

    order = sorted(range(len(items)), key=lambda i: sum(len(m["content"]) for m in items[i]["history"]))
    replies: dict[int, Any] = {}
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="generating", unit="batch", disable=not progress, file=sys.stderr):
        answers = responder.reply_batch([items[i]["history"] for i in batch], **overrides)
        replies.update(zip(batch, answers, strict=True))
    return [replies[i] for i in range(len(items))]


def generation_metrics(items: list[dict[str, Any]], replies: list[Any]) -> dict[str, Any]:
    """Scores over the replies the model wrote; those the safety layer replaced are counted, not scored."""
    answered = [(item, reply) for item, reply in zip(items, replies, strict=True) if reply.stopped_by != "safety"]
    hypotheses = [model_text(reply) for _, reply in answered]
    references = [item["reference"] for item, _ in answered]
    return {
        "items": len(items),
        "answered": len(answered),
        "safety_replaced_rate": share(r.stopped_by == "safety" for r in replies),
        **overlap_scores(hypotheses, references),
        "eos_rate": share(reply.stopped_by == "eos" for _, reply in answered),
        "mean_new_tokens": sum(r.new_tokens for _, r in answered) / len(answered) if answered else 0.0,
        **text_statistics(hypotheses),
        # The same statistics of the corpus replies: what a model that talks like the data would score.
        "reference": text_statistics([item["reference"] for item in items]),
    }


def sample_records(items: list[dict[str, Any]], replies: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": item["id"],
            "turn": item["turn"],
            "emotion": item["emotion"],
            **reply.as_json(),
            "reference": item["reference"],
        }
        for item, reply in zip(items, replies, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------
# The safety layer on the frozen test split (no model)


def safety_metrics() -> dict[str, Any]:
    """The safety layer on the frozen test split of data/safety/ (the figures bench/safety.py records); no model.

    Only counts and rates: no message text goes into a report.
    """
    from gonggam.safety import SafetyModelError
    from gonggam.safety.corpus import CorpusError
    from gonggam.safety.evaluate import evaluate

    try:
        found = evaluate("test")
    except (CorpusError, OSError, SafetyModelError) as error:
        print(f"warning: the safety layer was not evaluated: {error}", file=sys.stderr)
        return {"available": False, "reason": str(error)}
    messages = found["messages"]
    return {
        "available": True,
        "split": "data/safety test",
        "messages": messages["n"],
        "crisis_recall": messages["crisis_recall"],
        "false_crisis_rate": messages["false_crisis_rate"],
        "concern_agreement": messages["concern_agreement"],
        "conversation_accuracy": found["conversations"]["accuracy"],
        "output_check_recall": found["output_check"]["recall"],
        "output_check_false_positive_rate": found["output_check"]["false_positive_rate"],
        "categories": messages["categories"],
    }


# ---------------------------------------------------------------------------------------------------
# One model end to end


def display_name(model: str | None, adapter: str | None) -> str:
    """adapters/RUN → RUN; merged/RUN or a Hub id owner/NAME → its last part."""
    source = adapter or model or "merged"
    return Path(source.rstrip("/")).name or "model"


def evaluate_model(
    model: str | None,
    adapter: str | None,
    dialogues: list[dict[str, Any]],
    *,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    greedy: bool = False,
    seed: int = 0,
    dtype: str = "auto",
    load_in_4bit: bool = False,
    generate: bool = True,
    progress: bool = True,
    engine: Any = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """metrics and sample records of one model on the dialogues.

    `engine`: eval.py's parsed flags when they name --gguf or --upstream; such an engine only generates, so the
    teacher-forced loss (which needs the model's logits in process) is reported as not measured.
    """
    from transformers import set_seed

    from gonggam.generation import Responder

    started = time.perf_counter()
    in_process = engine is None or not (engine.gguf or engine.upstream)
    responder = Responder.load(model, adapter, dtype, load_in_4bit) if in_process else Responder.from_args(engine)
    overrides = {"max_new_tokens": max_new_tokens, "do_sample": False if greedy else None}
    if in_process:
        check_vocabulary(responder, model, adapter)
        project_generation_config(responder.model)
        dtype_name = str(next(responder.model.parameters()).dtype).removeprefix("torch.")
        forced = teacher_forced(responder.model, responder.tokenizer, dialogues, batch_size, progress)
    else:
        overrides["seed"] = seed
        dtype_name, forced = None, not_measured_teacher_forced(responder.backend.name)
    config = responder.sampling()
    metrics: dict[str, Any] = {
        "name": display_name(model, adapter) if in_process else Path(engine.gguf or engine.upstream).name,
        "model": model,
        "adapter": adapter,
        "engine": responder.backend.name,
        "dtype": dtype_name,
        "load_in_4bit": load_in_4bit,
        "teacher_forced": forced,
    }
    samples: list[dict[str, Any]] = []
    if generate:
        items = turn_items(dialogues)
        set_seed(seed)  # right before sampling, so the replies depend on the seed only (and the batch size)
        replies = generate_replies(responder, items, batch_size, overrides, progress)
        metrics["generation"] = generation_metrics(items, replies)
        metrics["generation"]["settings"] = {
            "seed": seed,
            "do_sample": not greedy and bool(config.do_sample),
            "temperature": config.temperature,
            "top_p": config.top_p,
            "no_repeat_ngram_size": config.no_repeat_ngram_size,
            "max_new_tokens": max_new_tokens or config.max_new_tokens,
            "not_applied_by_engine": responder.backend.unsupported(config),
            "batch_size": batch_size,
        }
        samples = sample_records(items, replies)
    metrics["runtime_s"] = round(time.perf_counter() - started, 2)
    if in_process:
        release(responder)
    return metrics, samples


def not_measured_teacher_forced(backend: str) -> dict[str, Any]:
    return {
        "loss": None,
        "perplexity": None,
        "per_emotion": {},
        "not_measured": f"the {backend} backend gives no logits of the reference replies; pass --model for the loss",
    }


def project_generation_config(model: Any) -> Any:
    """The model's generation config, or the project's defaults when it is a bare base's own.

    A base's generation_config.json (EOS 0, no sampling) was not written by this project: a --compare of base
    vs adapter would otherwise be greedy on one side and sampled on the other.
    """
    from transformers import GenerationConfig

    from gonggam.chat import EOS_TOKEN_ID, GENERATION_DEFAULTS

    if model.generation_config.eos_token_id != EOS_TOKEN_ID:
        model.generation_config = GenerationConfig(**GENERATION_DEFAULTS)
    return model.generation_config


def check_vocabulary(responder: Any, model: str | None, adapter: str | None) -> None:
    """A tokenizer larger than the embedding means the adapter's tokenizer belongs to another base."""
    rows = responder.model.get_input_embeddings().num_embeddings
    if len(responder.tokenizer) > rows:
        raise UserError(
            f"the tokenizer of {adapter or model} has {len(responder.tokenizer)} tokens but the model's embedding "
            f"only {rows}: the adapter was trained on another base; pass that base with --model."
        )


def release(responder: Any) -> None:
    """Free the model before a --compare model loads: two 5.8B models rarely fit on one GPU."""
    import gc

    import torch

    del responder.backend.model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_compare(other: str) -> tuple[str, str | None, str | None]:
    """--compare OTHER: ('report', path) for a directory with metrics.json, an adapter, or a model."""
    path = Path(other)
    if (path / "metrics.json").is_file():
        return "report", str(path), None
    if (path / "adapter_config.json").is_file():
        return "model", None, other
    return "model", other, None


# ---------------------------------------------------------------------------------------------------
# Writing the report


COMMAND = "eval.py"
REPORT_FILES = ("metrics.json", "samples.jsonl", "metrics.png", "report.md")


def write_report(output: Path, metrics: dict[str, Any], samples: list[dict[str, Any]]) -> Path:
    """metrics.json, report.md, metrics.png, samples.jsonl, staged and moved into place only when all are written."""
    with output_directory(output, COMMAND, legacy=REPORT_FILES) as staging:
        (staging / "metrics.json").write_text(
            json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        lines = [json.dumps(s, ensure_ascii=False) for s in samples]
        (staging / "samples.jsonl").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        plot_metrics(metrics, staging / "metrics.png")
        (staging / "report.md").write_text(render_markdown(metrics), encoding="utf-8")
    return output


def models_of(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [metrics, metrics["compare"]] if metrics.get("compare") else [metrics]


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, float | None]]:
    """(label, value) for the summary table, in display order; None where the model was not measured."""
    tf, gen, safety = metrics["teacher_forced"], metrics.get("generation") or {}, metrics.get("safety") or {}
    rows: list[tuple[str, float | None]] = [
        ("loss (assistant tokens)", tf["loss"]),
        ("perplexity", tf["perplexity"]),
    ]
    rows += [(f"loss: {e['english']}", e["loss"]) for e in tf["per_emotion"].values()]
    rows += [
        (label, gen.get(key))
        for label, key in (
            ("chrF", "chrf"),
            ("BLEU (char)", "bleu"),
            ("EOS rate", "eos_rate"),
            ("mean length (chars)", "mean_length_chars"),
            ("distinct-1 (chars)", "distinct_1_char"),
            ("distinct-2 (chars)", "distinct_2_char"),
            ("distinct-1 (words)", "distinct_1_word"),
            ("distinct-2 (words)", "distinct_2_word"),
            ("repeated word 3-gram rate", "repeated_word_3gram_rate"),
            ("question rate", "question_rate"),
            ("safety-replaced rate", "safety_replaced_rate"),
        )
    ]
    rows += [
        ("crisis recall (safety test split)", safety.get("crisis_recall")),
        ("false-crisis rate", safety.get("false_crisis_rate")),
        ("conversation accuracy", safety.get("conversation_accuracy")),
        ("output-check recall", safety.get("output_check_recall")),
    ]
    return rows


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def summary_table(metrics: dict[str, Any]) -> str:
    """A Markdown table: one column per model, and with --compare a difference column."""
    models = models_of(metrics)
    names = [m["name"] for m in models]
    header = ["metric", *names]
    if len(models) == 2:
        header.append(f"Δ ({names[0]} − {names[1]})")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    columns = [dict(metric_rows(m)) for m in models]
    for label, _ in metric_rows(metrics):
        values = [c.get(label) for c in columns]
        cells = [label, *map(_cell, values)]
        if len(models) == 2:
            a, b = values
            cells.append(_cell(a - b) if a is not None and b is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(metrics: dict[str, Any]) -> str:
    data, gen = metrics["data"], metrics.get("generation") or {}
    settings = gen.get("settings", {})
    described = ", ".join(
        f"{m['name']} ({m.get('adapter') or m.get('model') or 'newest merged'})" for m in models_of(metrics)
    )
    parts = [
        f"# Evaluation: {' vs '.join(m['name'] for m in models_of(metrics))}",
        f"> {DATA_NOTICE}",
        f"Models: {described}. Data: `{data['path']}`, {data['dialogues']} dialogues, {data['turns']} reply turns.",
        summary_table(metrics),
        "![metrics](metrics.png)",
        "## Definitions",
        "- **loss**: mean cross-entropy per supervised token (each reply and its EOS, the template's "
        "`{% generation %}` mask, as in training), token-weighted over dialogues; perplexity = exp(loss). "
        "Per emotion: the same over the dialogues of that major emotion.",
        f"- **generation**: one item per assistant turn (history up to that user turn → reference reply), "
        f"answered through the safety layer; sampling={settings.get('do_sample')}, "
        f"temperature={settings.get('temperature')}, top_p={settings.get('top_p')}, "
        f"max_new_tokens={settings.get('max_new_tokens')}, seed={settings.get('seed')}. Replies the safety layer "
        "replaced are counted in the safety-replaced rate and left out of every other generation metric; the "
        "109 footer it appends on `concern` is removed before scoring.",
        "- **chrF**: sacrebleu corpus chrF (character 6-grams, whitespace ignored). **BLEU**: sacrebleu corpus "
        'BLEU with `tokenize="char"` (no Korean word segmenter needed).',
        "- **distinct-n**: unique / all n-grams over all replies; chars = characters without whitespace, words = "
        "whitespace-separated words. **repeated word 3-gram rate**: share of replies in which some 3 words "
        "occur twice. **question rate**: share of replies ending with `?`. **EOS rate**: share of replies that "
        "ended by EOS rather than the length cap.",
        "- **safety**: the safety layer (`gonggam.safety`) on the frozen test split of the team-written corpus in "
        "data/safety/ (crisis recall, false-crisis rate on non-crisis messages, conversation accuracy, output-check "
        "recall); no model involved, the same figures as bench/safety.py.",
    ]
    reference = gen.get("reference")
    if reference:
        rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in reference.items())
        parts.append(f"## The reference replies (the corpus), same statistics\n\n| metric | value |\n|---|---|\n{rows}")
    safety = metrics.get("safety") or {}
    if not safety.get("available", False):
        parts.append(f"**Safety layer not evaluated**: {safety.get('reason', 'unknown')}")
    return "\n\n".join(parts) + "\n"


def plot_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """Per-emotion loss bars and the generation rates, one bar colour per model (English labels only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = models_of(metrics)
    majors = list(dict.fromkeys(k for m in models for k in m["teacher_forced"]["per_emotion"]))
    rates = (
        ("chrF/100", "chrf", 0.01),
        ("BLEU/100", "bleu", 0.01),
        ("EOS", "eos_rate", 1),
        ("question", "question_rate", 1),
        ("repeat 3g", "repeated_word_3gram_rate", 1),
        ("dist-1 ch", "distinct_1_char", 1),
        ("dist-2 ch", "distinct_2_char", 1),
        ("dist-2 w", "distinct_2_word", 1),
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        per_emotion = model["teacher_forced"]["per_emotion"]
        losses = [per_emotion[m]["loss"] if m in per_emotion else 0.0 for m in majors]
        offsets = [i + (k - (len(models) - 1) / 2) * width for i in range(len(majors))]
        left.bar(offsets, losses, width, label=model["name"])
        gen = model.get("generation") or {}
        values = [(gen.get(key) or 0.0) * scale for _, key, scale in rates]
        offsets = [i + (k - (len(models) - 1) / 2) * width for i in range(len(rates))]
        right.bar(offsets, values, width, label=model["name"])
    english = {m: models[0]["teacher_forced"]["per_emotion"].get(m, {}).get("english", m) for m in majors}
    left.set_xticks(range(len(majors)), [english[m] for m in majors], rotation=20)
    left.set_ylabel("assistant-token loss")
    left.set_title("teacher-forced loss by major emotion")
    right.set_xticks(range(len(rates)), [label for label, _, _ in rates], rotation=30)
    right.set_ylim(0, 1)
    right.set_title("generated replies")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(metrics: dict[str, Any], stream: Any = sys.stdout) -> None:
    """The main rows of the summary table, as plain text."""
    keep = (
        "loss (assistant tokens)",
        "perplexity",
        "chrF",
        "BLEU (char)",
        "EOS rate",
        "mean length (chars)",
        "question rate",
        "crisis recall (safety test split)",
        "false-crisis rate",
    )
    models = models_of(metrics)
    columns = [dict(metric_rows(m)) for m in models]
    print(f"{'metric':<26}" + "".join(f"{m['name'][:18]:>20}" for m in models), file=stream)
    for label in keep:
        print(f"{label:<26}" + "".join(f"{_cell(c.get(label)):>20}" for c in columns), file=stream)


# ---------------------------------------------------------------------------------------------------
# What eval.py calls


def run_evaluation(
    data: Path,
    model: str | None,
    adapter: str | None,
    output: Path | None = None,
    compare: str | None = None,
    limit: int | None = None,
    engine: Any = None,
    **options: Any,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate, optionally compare, write the report directory; returns (report directory, metrics)."""
    if output is not None:
        check_output(output, COMMAND, legacy=REPORT_FILES)  # before the model runs, not after
    dialogues = read_dialogues(data, limit)
    metrics, samples = evaluate_model(model, adapter, dialogues, engine=engine, **options)
    safety = safety_metrics()  # after the model loaded: a missing model fails at once, not after the test split
    metrics["data"] = {
        "path": str(data),
        "dialogues": len(dialogues),
        "turns": len(turn_items(dialogues)),
        "limit": limit,
    }
    metrics["safety"] = safety
    if compare:
        kind, other_model, other_adapter = resolve_compare(compare)
        if kind == "report":
            other = json.loads((Path(other_model) / "metrics.json").read_text(encoding="utf-8"))
            other.pop("compare", None)
        else:
            other, _ = evaluate_model(other_model, other_adapter, dialogues, **options)
            other["data"], other["safety"] = metrics["data"], safety
        if other["name"] == metrics["name"]:  # merged/RUN vs adapters/RUN: the columns need different names
            other["name"] = compare
        metrics["compare"] = other
    output = output or Path("reports") / re.sub(r"[^\w.-]+", "_", metrics["name"])
    return write_report(output, metrics, samples), metrics
