"""Checks an adapter folder must pass before it goes to the Hugging Face Hub, and the upload itself.

The AIHub corpus may not be redistributed, and a machine's paths have no business on the Hub: only the
adapter's own files are uploaded, after they are checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gonggam.card import card_metadata

# The only files an adapter repo needs. Checkpoints, training_args.bin (a pickle holding local paths), W&B
# runs and any data file stay behind.
UPLOADED = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "README.md",
    "train_results.json",
    "run_config.yaml",
    "loss.png",
)
DATA_SUFFIXES = {".jsonl", ".csv", ".tsv", ".xlsx", ".xls", ".zip", ".parquet", ".arrow", ".txt"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MACHINE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
# Keys of the AIHub schema and of the processed corpus: their presence means dialogue text came along.
CORPUS_MARKERS = ('"HS01"', '"SS01"', '"talk-id"', "사람문장", "시스템응답", '"messages": [')


@dataclass
class Plan:
    folder: Path
    files: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def machine_paths(path: Path) -> list[str]:
    if path.suffix == ".json":
        values = json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix in (".yaml", ".yml"):
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        return []
    return [s for s in strings_in(values) if MACHINE_PATH.match(s)]


def adapter_loads(folder: Path) -> str | None:
    """The adapter's config parses and its weights are LoRA matrices of the configured rank; else the problem."""
    from peft import PeftConfig
    from safetensors import safe_open

    try:
        config = PeftConfig.from_pretrained(folder)
        with safe_open(folder / "adapter_model.safetensors", framework="pt") as weights:
            shapes = {name: weights.get_slice(name).get_shape() for name in weights.keys()}  # noqa: SIM118
    except Exception as error:  # any failure to parse means the Hub copy would not load either
        return f"the adapter does not load ({type(error).__name__}: {str(error)[:100]})"
    if not shapes:
        return "adapter_model.safetensors holds no tensors"
    for name, shape in shapes.items():
        if ("lora_A" in name and shape[0] != config.r) or ("lora_B" in name and shape[1] != config.r):
            return f"tensor {name} has shape {shape}, not rank {config.r}"
    return None


def plan_upload(folder: Path) -> Plan:
    plan = Plan(folder)
    if not (folder / "adapter_config.json").is_file():
        plan.problems.append(f"{folder} holds no adapter_config.json: pass an adapters/RUN folder from train_lora.py")
        return plan
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        (plan.files if name in UPLOADED else plan.left_behind).append(name)
        # Checked on every file, not only the uploaded ones: a corpus or sample dump copied into an adapter folder
        # is one renamed file or one widened allow-list away from the Hub.
        if path.suffix.lower() in DATA_SUFFIXES:
            plan.problems.append(f"{name} is a data file in the adapter folder: move it out before pushing")
    for name in plan.files:
        path = folder / name
        for found in machine_paths(path):
            plan.problems.append(f"{name} contains the machine path {found!r}")
        if path.suffix in (".json", ".md", ".yaml", ".jinja") and name not in ("tokenizer.json",):
            text = path.read_text(encoding="utf-8")
            markers = [m for m in CORPUS_MARKERS if m in text]
            if markers:
                plan.problems.append(f"{name} looks like it holds corpus dialogues ({markers[0]})")
    base = card_metadata(folder).get("base_model") if (folder / "README.md").is_file() else None
    if not base or not HUB_ID.match(str(base)) or Path(str(base)).exists():
        plan.problems.append(f"the card's base_model is {base!r}, not a Hub id like beomi/KoAlpaca-Polyglot-5.8B")
    problem = adapter_loads(folder)
    if problem:
        plan.problems.append(problem)
    return plan


def push(plan: Plan, repo_id: str, private: bool, revision: str, token: str, api: Any = None) -> str:
    """Create the repo if needed and upload the planned files in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(plan.folder),
        repo_id=repo_id,
        repo_type="model",
        revision=revision,
        allow_patterns=plan.files,
        commit_message="Upload gonggam LoRA adapter",
    )
    return str(getattr(info, "commit_url", info))
