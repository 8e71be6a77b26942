"""What the training and generation benches share: the corpus, the models they build, the result record."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIALOGUES = 58_268  # 51,628 Training + 6,640 Validation in the 2022 release
SHAPES = ("tiny", "polyglot-5.8b")
PACKAGES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "datasets", "accelerate", "tokenizers")


def synthetic_corpus(path: Path, seed: int = 0) -> Path:
    """The full-scale synthetic corpus in the AIHub schema (cached: it takes seconds)."""
    if not path.is_file():
        command = [sys.executable, "-m", "data_prep.synth", "--dialogues", str(DIALOGUES), "--seed", str(seed)]
        subprocess.run([*command, "--output", str(path)], cwd=ROOT, check=True)
    return path


def processed(corpus: Path, output: Path, expand_prefixes: bool = False) -> Path:
    """`python -m data_prep` on the corpus, as a user runs it; returns the directory with train.jsonl."""
    if not (output / "train.jsonl").is_file():
        command = [sys.executable, "-m", "data_prep", "--input", str(corpus), "--output", str(output), "--quiet"]
        subprocess.run(command + (["--expand-prefixes"] if expand_prefixes else []), cwd=ROOT, check=True)
    return output


def build_model(shape: str, corpus: Path, output: Path, vocab_size: int = 30_000) -> Path:
    """A model directory that loads like the real base: the tiny one, or Polyglot-5.8B's shape in bf16.

    No weights can be downloaded, and speed and memory do not depend on their values: the 5.8B shape is
    random-initialised straight on the GPU (minutes less than on the CPU) and saved, then loaded back through
    gonggam.modeling.load_base like the real model. Its tokenizer is a BPE trained on the corpus, so token
    counts per dialogue differ somewhat from Polyglot's own tokenizer.
    """
    if (output / "config.json").is_file():
        return output
    if shape == "tiny":
        from gonggam.tiny import build_tiny

        return build_tiny(corpus, output)
    import torch
    from transformers import GPTNeoXForCausalLM

    from gonggam.tiny import POLYGLOT_5_8B_SHAPE, corpus_texts, neox_config, train_tokenizer

    tokenizer = train_tokenizer(corpus_texts(corpus), vocab_size)
    shape = {k: v for k, v in POLYGLOT_5_8B_SHAPE.items() if k != "vocab_size"}
    config = neox_config(POLYGLOT_5_8B_SHAPE["vocab_size"], **shape)
    config.dtype = "bfloat16"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = GPTNeoXForCausalLM(config).to(torch.bfloat16)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return output


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    """CUDA: the allocator's peak; CPU: the process's peak RSS (VmHWM), which Linux resets on `5 > clear_refs`."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def matmul_tflops(size: int = 8192, repeats: int = 20) -> float | None:
    """The bf16 matrix rate this GPU really reaches (the MFU denominator); None on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize()
    seconds = (time.perf_counter() - start) / repeats
    del a, b
    torch.cuda.empty_cache()
    return 2 * size**3 / seconds / 1e12


def device() -> dict[str, Any]:
    import torch

    found: dict[str, Any] = {"platform": platform.platform(), "cores": os.cpu_count()}
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if "model name" in line), platform.processor())
    found["cpu"] = cpu
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        found["gpu"] = props.name
        found["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return found


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def record(benchmark: str, command: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *command]),
        "device": device(),
        "versions": versions(),
        **fields,
    }


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    print(f"wrote {path}")


def bar_chart(path: Path, labels: list[str], values: list[float], ylabel: str, title: str) -> Path:
    """One horizontal bar per configuration, its value written at the bar's end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5))
    bars = ax.barh(labels[::-1], values[::-1], color="tab:blue")
    ax.bar_label(bars, fmt="%.0f", padding=3)
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
