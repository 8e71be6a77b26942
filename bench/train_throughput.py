"""Training throughput of three data layouts on the same corpus and model, through trl's SFTTrainer.

    .venv/bin/python bench/train_throughput.py                          # CPU, tiny model: a/b/c + attention sweep
    python bench/train_throughput.py --shape polyglot-5.8b              # CUDA: Polyglot-5.8B's shape, 4/8-bit, bf16

(a) seed: the seed recipe's layout: one sample per assistant turn with its whole history
    (`python -m data_prep --expand-prefixes`), loss on every token, padded batches, no packing;
(b) trl:  trl's defaults: one sample per dialogue, padded batches, no packing, loss on every token;
(c) ours: one sample per dialogue, loss on assistant turns only, bfd packing, padding-free.

Each configuration builds its trainer with gonggam.training.build_trainer (the path train_lora.py takes) and
trains warm-up + timed optimizer steps. A callback synchronises the device and reads the clock at every
step end; a forward pre-hook counts the tokens of each micro-batch the model really sees (non-pad from the
attention mask, or every position of a padding-free row; supervised = labels != -100). The step time is the
median interval between step ends, so data collation is included. An epoch of the full corpus (58,268
dialogues) is projected from the tokens per dialogue of the synthetic full-scale corpus under the benched
tokenizer (and, for (a), the expanded samples per dialogue).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    DIALOGUES,
    ROOT,
    bar_chart,
    build_model,
    matmul_tflops,
    peak_memory_gib,
    processed,
    record,
    reset_peak_memory,
    synchronize,
    synthetic_corpus,
    write_json,
)

PARAMETERS_5_8B = 5.9e9
LORA = dict(
    use_peft=True,
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    lora_target_modules=["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
)


@dataclass
class Setup:
    """One benched configuration: a data layout, the model's precision, and trainer settings."""

    name: str
    layout: str  # "expanded" (seed recipe) or "dialogue"
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def seed_layout(**train: Any) -> dict[str, Any]:
    return dict(packing=False, assistant_only_loss=False, **train)


def packed(max_length: int, batch: int, **train: Any) -> dict[str, Any]:
    return dict(
        packing=True,
        packing_strategy="bfd",
        padding_free=True,
        assistant_only_loss=True,
        max_length=max_length,
        per_device_train_batch_size=batch,
        **train,
    )


def cpu_setups(attentions: list[str], geometries: list[tuple[int, int]]) -> list[Setup]:
    """tiny-cpu.yaml's model (4-bit, fp32 compute); checkpointing off everywhere, as tiny-cpu.yaml has it."""
    model = dict(load_in_4bit=True, use_bnb_nested_quant=True, dtype="float32", attn_implementation="sdpa")
    padded = dict(per_device_train_batch_size=8, max_length=1024, activation_checkpointing=False)
    setups = [
        Setup("a seed layout", "expanded", model, seed_layout(**padded)),
        Setup("b trl defaults", "dialogue", model, seed_layout(**padded)),
    ]
    for attention in attentions:
        for max_length, batch in geometries:
            name = f"c packed {attention} {batch}x{max_length}"
            train = packed(max_length, batch, activation_checkpointing=False)
            setups.append(Setup(name, "dialogue", {**model, "attn_implementation": attention}, train))
    return setups


def gpu_setups() -> list[Setup]:
    """QLoRA as the polyglot configs have it; (a)/(b) keep trl's default checkpointing and batch of 8."""
    # (c) uses the configs' sdpa_varlen (packs split per dialogue); (a)/(b) pad, so plain sdpa is what they get.
    four = dict(load_in_4bit=True, use_bnb_nested_quant=True, dtype="bfloat16", attn_implementation="sdpa")
    eight = dict(load_in_8bit=True, dtype="bfloat16", attn_implementation="sdpa_varlen")
    bf16 = dict(dtype="bfloat16", attn_implementation="sdpa_varlen")
    four_varlen = {**four, "attn_implementation": "sdpa_varlen"}
    checkpointed = dict(activation_checkpointing=True, activation_checkpointing_kwargs={"use_reentrant": False})
    padded = dict(per_device_train_batch_size=8, max_length=1024, **checkpointed)
    return [
        Setup("a seed layout 4-bit", "expanded", four, seed_layout(**padded)),
        Setup("b trl defaults 4-bit", "dialogue", four, seed_layout(**padded)),
        Setup(
            "c lean 4-bit 4x1024 ckpt", "dialogue", four_varlen, packed(1024, 4, **checkpointed), "polyglot-5.8b-qlora"
        ),
        Setup("c lean 8-bit 4x1024 ckpt", "dialogue", eight, packed(1024, 4, **checkpointed), "polyglot-5.8b-8bit"),
        Setup("c fast 4-bit 4x2048", "dialogue", four_varlen, packed(2048, 4, activation_checkpointing=False)),
        Setup("c fast bf16 4x2048", "dialogue", bf16, packed(2048, 4, activation_checkpointing=False)),
    ]


class StepClock:
    """Device-synchronised clock readings at every step end, and the tokens of every forward, by step."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.tokens: list[dict[str, int]] = []

    def callback(self) -> Any:
        from transformers import TrainerCallback

        clock = self

        class Clock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                synchronize()
                reset_peak_memory()

            def on_step_begin(self, args, state, control, **kwargs):
                clock.tokens.append({"positions": 0, "real": 0, "supervised": 0})
                if not clock.ends:
                    synchronize()
                    clock.ends.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kwargs):
                synchronize()
                clock.ends.append(time.perf_counter())

        return Clock()

    def count(self, _module: Any, _args: tuple, kwargs: dict[str, Any]) -> None:
        """Forward pre-hook: a padding-free row has no attention mask and no pad; a padded batch has both."""
        if not self.tokens or "input_ids" not in kwargs:
            return
        ids, mask, labels = kwargs["input_ids"], kwargs.get("attention_mask"), kwargs.get("labels")
        step = self.tokens[-1]
        step["positions"] += ids.numel()
        step["real"] += int(mask.sum()) if mask is not None else ids.numel()
        if labels is not None:
            step["supervised"] += int((labels[..., 1:] != -100).sum())

    def summary(self, warmup: int) -> dict[str, Any]:
        intervals = [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)][warmup:]
        tokens = self.tokens[warmup : warmup + len(intervals)]
        seconds = statistics.median(intervals)
        per_step = {k: statistics.median(t[k] for t in tokens) for k in ("positions", "real", "supervised")}
        # Rates from totals over the timed steps (a step's token count varies); the median step time is shown too.
        total_s = sum(intervals)
        return {
            "timed_steps": len(intervals),
            "median_step_s": round(seconds, 4),
            "tokens_per_step_median": per_step,
            "real_tokens_per_s": sum(t["real"] for t in tokens) / total_s,
            "supervised_tokens_per_s": sum(t["supervised"] for t in tokens) / total_s,
            "positions_per_s": sum(t["positions"] for t in tokens) / total_s,
            "padding_share": 1 - sum(t["real"] for t in tokens) / max(1, sum(t["positions"] for t in tokens)),
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    work = args.work or Path(tempfile.gettempdir()) / f"gonggam-bench-{args.shape}"
    corpus = synthetic_corpus(Path(tempfile.gettempdir()) / f"gonggam-synth-{DIALOGUES}-seed0.json")
    layouts = {
        "dialogue": processed(corpus, work / "processed"),
        "expanded": processed(corpus, work / "processed-expanded", expand_prefixes=True),
    }
    started = time.perf_counter()
    model_dir = build_model(args.shape, layouts["dialogue"] / "train.jsonl", work / "model")
    build_s = time.perf_counter() - started
    corpus_shape = corpus_tokens(model_dir, layouts, args.count_dialogues)
    peak = matmul_tflops()
    if args.shape == "tiny":
        setups = cpu_setups(args.attention, [parse_geometry(g) for g in args.geometry])
    else:
        setups = gpu_setups()
    if args.only:
        setups = [s for s in setups if any(word in s.name for word in args.only)]
    stem = args.results or ROOT / "bench" / "results" / f"train_throughput_{args.shape}.json"
    rows: list[dict[str, Any]] = []
    for setup in setups:
        print(f"--- {setup.name}", flush=True)
        try:
            rows.append(measure(setup, model_dir, layouts, corpus_shape, args, work, peak))
        except Exception as error:  # one configuration that fails (e.g. out of memory) must not lose the others
            print(f"    failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
            rows.append({"name": setup.name, "error": f"{type(error).__name__}: {str(error)[:300]}"})
        free_memory()
        # Written after every configuration, so that a run cut short still leaves what it measured.
        results = record(
            f"SFTTrainer throughput by data layout ({args.shape})",
            ["bench/train_throughput.py", *(argv if argv is not None else sys.argv[1:])],
            shape=args.shape,
            model_build_s=round(build_s, 1),
            corpus=corpus_shape,
            bf16_matmul_tflops=peak,
            warmup_steps=args.warmup,
            timed_steps=args.steps,
            configs=rows,
            ratios=ratios(rows),
        )
        write_json(stem, results)
    print_table(results)
    good = [r for r in rows if "error" not in r]
    bar_chart(
        stem.with_suffix(".png"),
        [r["name"] for r in good],
        [r["real_tokens_per_s"] for r in good],
        "real (non-pad) tokens / s",
        f"SFTTrainer throughput, {args.shape} ({results['device'].get('gpu', results['device']['cpu'])})",
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=["tiny", "polyglot-5.8b"], default="tiny")
    parser.add_argument("--work", type=Path, help="where the processed corpus and the model are built (cached)")
    parser.add_argument("--warmup", type=int, default=3, help="optimizer steps discarded")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps timed")
    parser.add_argument("--train-dialogues", type=int, default=3000, help="dialogues (or samples) trl prepares")
    parser.add_argument("--count-dialogues", type=int, default=5000, help="dialogues tokenised for the projection")
    parser.add_argument("--attention", nargs="+", default=["sdpa", "eager"], help="CPU (c) attention sweep")
    parser.add_argument(
        "--geometry", nargs="+", default=["1x512", "2x512", "4x512", "1x1024"], help="CPU (c) packs: BATCHxLENGTH"
    )
    parser.add_argument("--only", nargs="+", help="run only configurations whose name contains one of these")
    parser.add_argument("--results", type=Path, help="JSON path (default bench/results/train_throughput_SHAPE.json)")
    return parser.parse_args(argv)


def parse_geometry(text: str) -> tuple[int, int]:
    batch, length = text.lower().split("x")
    return int(length), int(batch)


def corpus_tokens(model_dir: Path, layouts: dict[str, Path], limit: int) -> dict[str, Any]:
    """Tokens per sample under the benched tokenizer, and samples per dialogue, for the epoch projection."""
    from gonggam.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    shape: dict[str, Any] = {"dialogues": DIALOGUES, "tokenizer_vocab": len(tokenizer)}
    for layout, directory in layouts.items():
        lines = [
            line for name in ("train.jsonl", "validation.jsonl") for line in _lines(directory / name) if line.strip()
        ]
        sample = [json.loads(line)["messages"] for line in lines[:limit]]
        lengths = [len(ids) for ids in tokenizer.apply_chat_template(sample, tokenize=True)["input_ids"]]
        shape[layout] = {
            "samples": len(lines),
            "tokens_per_sample": statistics.fmean(lengths),
            "max_tokens": max(lengths),
        }
    per_dialogue = shape["expanded"]["samples"] / shape["dialogue"]["samples"]
    shape["expanded"]["samples_per_dialogue"] = per_dialogue
    shape["epoch_tokens"] = {
        "dialogue": DIALOGUES * shape["dialogue"]["tokens_per_sample"],
        "expanded": DIALOGUES * per_dialogue * shape["expanded"]["tokens_per_sample"],
    }
    return shape


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def measure(
    setup: Setup,
    model_dir: Path,
    layouts: dict[str, Path],
    corpus_shape: dict[str, Any],
    args: argparse.Namespace,
    work: Path,
    peak_tflops: float | None,
) -> dict[str, Any]:
    import torch
    from trl import ModelConfig, SFTConfig

    from gonggam.training import ScriptArguments, build_trainer

    cuda = torch.cuda.is_available()
    script_args = ScriptArguments(
        train_file=str(layouts[setup.layout] / "train.jsonl"),
        validation_file=None,
        max_train_dialogues=args.train_dialogues,
        base_model_id="bench/random-init",  # recorded in the adapter config instead of a /tmp path
    )
    model_args = ModelConfig(model_name_or_path=str(model_dir), **LORA, **setup.model)
    training_args = SFTConfig(
        output_dir=str(work / "out"),
        max_steps=args.warmup + args.steps + 1,
        learning_rate=2.0e-4,
        logging_steps=1000,
        save_strategy="no",
        report_to="none",
        seed=0,
        use_cpu=not cuda,
        bf16=cuda,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        dataloader_num_workers=2 if cuda else 0,
        disable_tqdm=True,
        **setup.train,
    )
    trainer = build_trainer(script_args, training_args, model_args)
    clock = StepClock()
    trainer.add_callback(clock.callback())
    hook = trainer.model.register_forward_pre_hook(clock.count, with_kwargs=True)
    trainer.train()
    hook.remove()
    peak = peak_memory_gib()
    row: dict[str, Any] = {
        "name": setup.name,
        "layout": setup.layout,
        "config": setup.note,
        "model": setup.model,
        "train": {k: v for k, v in setup.train.items() if k != "activation_checkpointing_kwargs"},
        **clock.summary(args.warmup),
        "peak_memory_gib": round(peak, 2),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if cuda else "process peak RSS (VmHWM)",
    }
    epoch_tokens = corpus_shape["epoch_tokens"][setup.layout]
    row["epoch_tokens"] = epoch_tokens
    row["epoch_hours"] = epoch_tokens / row["real_tokens_per_s"] / 3600
    if peak_tflops:
        per_token = (6 if setup.train.get("activation_checkpointing") else 4) * PARAMETERS_5_8B
        row["mfu"] = row["real_tokens_per_s"] * per_token / (peak_tflops * 1e12)
    del trainer
    print(json.dumps({k: row[k] for k in ("real_tokens_per_s", "padding_share", "peak_memory_gib", "epoch_hours")}))
    return row


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each (c) against (a) and (b): real tokens/s, and epoch speed (the inverse of the projected epoch time)."""
    good = {r["name"]: r for r in rows if "error" not in r}
    seed = next((r for n, r in good.items() if n.startswith("a ")), None)
    trl = next((r for n, r in good.items() if n.startswith("b ")), None)
    found = {}
    for name, row in good.items():
        if not name.startswith("c "):
            continue
        found[name] = {
            "real_tokens_per_s_vs_trl": row["real_tokens_per_s"] / trl["real_tokens_per_s"] if trl else None,
            "epoch_speed_vs_trl": trl["epoch_hours"] / row["epoch_hours"] if trl else None,
            "epoch_speed_vs_seed": seed["epoch_hours"] / row["epoch_hours"] if seed else None,
        }
    return found


def print_table(results: dict[str, Any]) -> None:
    corpus = results["corpus"]
    print(
        f"\n{results['shape']}: {corpus['dialogue']['tokens_per_sample']:.0f} tokens per dialogue, "
        f"{corpus['expanded']['samples_per_dialogue']:.2f} expanded samples per dialogue of "
        f"{corpus['expanded']['tokens_per_sample']:.0f} tokens; median of {results['timed_steps']} steps after "
        f"{results['warmup_steps']} warm-up"
    )
    header = f"{'config':32} {'real tok/s':>11} {'pad %':>6} {'sup tok/s':>10} {'peak GiB':>9} {'epoch h':>9}"
    print(header + (f" {'MFU':>5}" if results["bf16_matmul_tflops"] else ""))
    for row in results["configs"]:
        if "error" in row:
            print(f"{row['name']:32} failed: {row['error'][:80]}")
            continue
        line = (
            f"{row['name']:32} {row['real_tokens_per_s']:11,.0f} {100 * row['padding_share']:6.1f} "
            f"{row['supervised_tokens_per_s']:10,.0f} {row['peak_memory_gib']:9.2f} {row['epoch_hours']:9.3f}"
        )
        print(line + (f" {100 * row['mfu']:4.1f}%" if "mfu" in row else ""))
    for name, ratio in results["ratios"].items():
        parts = [f"{k} {v:.2f}x" for k, v in ratio.items() if v is not None]
        print(f"{name}: " + ", ".join(parts))
    if results["bf16_matmul_tflops"]:
        print(f"bf16 matmul 8192^3: {results['bf16_matmul_tflops']:.0f} TFLOP/s")


if __name__ == "__main__":
    sys.exit(main())
