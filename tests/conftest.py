"""Session fixtures: the shipped sample corpus processed once, and the tiny Polyglot-shaped model built once.

Everything here is real: the data_prep CLI, a BPE tokenizer trained on the corpus, a GPT-NeoX on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TRAIN = ROOT / "data" / "sample" / "sample_Training.json"
SAMPLE_VALIDATION = ROOT / "data" / "sample" / "sample_Validation.json"

# The Hub cannot be reached here; say so up front instead of letting libraries try and time out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_cli(
    *args: str | Path,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: int = 600,
    input: str | None = None,
):
    """Run a project command the way a user does, with the project's interpreter."""
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        input=input,
    )


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A project-shaped working directory (data/processed, models/, adapters/) where commands run as a user's."""
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="session")
def processed(workdir) -> Path:
    """data/processed for the shipped sample: train.jsonl, validation.jsonl, stats.json."""
    out = workdir / "data" / "processed"
    done = run_cli(
        "-m",
        "data_prep",
        "--input",
        SAMPLE_TRAIN,
        "--validation",
        SAMPLE_VALIDATION,
        "--output",
        out,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def tiny_model(processed, workdir) -> Path:
    from gonggam.tiny import build_tiny

    return build_tiny(processed / "train.jsonl", workdir / "models" / "tiny-polyglot")


def train(workdir: Path, *overrides: str, env: dict[str, str] | None = None, launcher: tuple[str, ...] = ()):
    """train_lora.py with configs/tiny-cpu.yaml, run from the project-shaped workdir."""
    return run_cli(
        *launcher,
        ROOT / "train_lora.py",
        "--config",
        ROOT / "configs" / "tiny-cpu.yaml",
        *overrides,
        cwd=workdir,
        env=env,
    )


@pytest.fixture(scope="session")
def trained_adapter(workdir, tiny_model) -> Path:
    """The demo's training run, unchanged: 4-bit QLoRA of the tiny model on the sample, on the CPU."""
    done = train(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "adapters" / "tiny-cpu"


@pytest.fixture(scope="session")
def merged(workdir, trained_adapter) -> object:
    out = workdir / "merged" / "tiny-cpu"
    done = run_cli(
        ROOT / "merge_adapter.py", "--adapter", trained_adapter, "--output", out, "--dtype", "float32", cwd=workdir
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "largest logit difference" in done.stderr
    return out


@pytest.fixture(scope="session")
def gguf_exports(workdir, merged) -> dict[str, Path]:
    """export_gguf.py run once on the merged tiny model: f32 (exact greedy comparisons), f16, q8_0 and q4_k_m."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: `make test` installs it")
    out = workdir / "exports" / "tiny-cpu"
    quants = ["f32", "f16", "q8_0", "q4_k_m"]
    done = run_cli(ROOT / "export_gguf.py", "--model", merged, "--output", out, "--quant", *quants, cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return {quant: out / f"tiny-cpu-{quant}.gguf" for quant in quants}


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from gonggam.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model))
