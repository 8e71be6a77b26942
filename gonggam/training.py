"""The training recipe behind train_lora.py: data, model, trl's SFTTrainer, and what a run leaves behind."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gonggam.chat import EOS_TOKEN
from gonggam.files import check_output, output_directory
from gonggam.modeling import (
    UserError,
    disable_cpu_4bit_repacking,
    hub_id,
    load_base,
    load_config,
    load_tokenizer,
    require_gpu_for,
)

logger = logging.getLogger("gonggam.train")

COMMAND = "train_lora.py"
# The Trainer writes checkpoint-N folders into the output during the run; they stay there for --resume.
KEPT_DURING_TRAINING = ("checkpoint-*",)
# What an adapter folder held before outputs had a manifest.
LEGACY_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "README.md",
    "training_args.bin",
    "tokenizer*",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "run_config.yaml",
    "train_results.json",
    "loss.png",
)


@dataclass
class ScriptArguments:
    """The data paths and what the adapter records about its base (trl's ModelConfig and SFTConfig hold the rest)."""

    train_file: str = field(default="data/processed/train.jsonl", metadata={"help": "JSONL from `make data`."})
    validation_file: str | None = field(
        default="data/processed/validation.jsonl",
        metadata={"help": "JSONL from `make data`; null to skip eval."},
    )
    max_train_dialogues: int | None = field(default=None, metadata={"help": "Use only the first N dialogues."})
    max_eval_dialogues: int | None = field(default=None, metadata={"help": "Evaluate on the first N dialogues."})
    base_model_id: str | None = field(
        default=None,
        metadata={
            "help": "The Hub id recorded in the adapter when model_name_or_path is a local copy of a Hub model "
            "(a machine's path is never published)."
        },
    )


def load_dialogues(script_args: ScriptArguments) -> Any:
    """train/validation DatasetDict with the `messages` column only; trl renders it with the chat template."""
    from datasets import DatasetDict, load_dataset

    files = {"train": script_args.train_file}
    if script_args.validation_file:
        files["validation"] = script_args.validation_file
    for split, path in files.items():
        if not Path(path).is_file():
            raise UserError(f"the {split} file {path} does not exist: run `make data` first.")
    data = load_dataset("json", data_files=files)
    data = DatasetDict({name: split.select_columns(["messages"]) for name, split in data.items()})
    limits = {"train": script_args.max_train_dialogues, "validation": script_args.max_eval_dialogues}
    for name, limit in limits.items():
        if name in data and limit is not None:
            data[name] = data[name].select(range(min(limit, len(data[name]))))
    if len(data["train"]) == 0:
        raise UserError(f"{script_args.train_file} holds no dialogues: run `make data` on the corpus first.")
    return data


def recorded_base(model_args: Any, script_args: ScriptArguments) -> str:
    """What adapter_config.json and the card name as the base: a Hub id, or a path relative to the project."""
    if script_args.base_model_id:
        return script_args.base_model_id
    name = model_args.model_name_or_path
    origin = hub_id(name)
    if origin:
        return origin
    path = Path(name).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError as error:
        raise UserError(
            f"the base {name} is a local directory outside the project: set base_model_id to the Hub id it was "
            "downloaded from, so that no machine path is written into the adapter."
        ) from error


def use_wandb_offline_without_key(training_args: Any) -> None:
    """Log W&B runs offline (to `wandb sync` later) when no API key is set: never block on a login prompt."""
    report_to = training_args.report_to or []
    if "wandb" in report_to and not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
        logger.warning("WANDB_API_KEY is not set: logging the W&B run offline; `wandb sync` it later.")


def build_trainer(script_args: ScriptArguments, training_args: Any, model_args: Any) -> Any:
    import torch
    from trl import SFTTrainer, get_peft_config

    data = load_dialogues(script_args)
    name = model_args.model_name_or_path
    require_gpu_for(load_config(name, model_args.model_revision), name)
    use_wandb_offline_without_key(training_args)

    tokenizer = load_tokenizer(name, model_args.model_revision)
    model = load_base(
        name,
        load_in_4bit=model_args.load_in_4bit,
        load_in_8bit=model_args.load_in_8bit,
        dtype=model_args.dtype,
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
        quant_storage=model_args.bnb_4bit_quant_storage,
    )
    # A KV cache in eval mode would make packed samples attend to each other (the block-diagonal mask is
    # derived from position_ids only when no cache is passed).
    model.config.use_cache = False
    if model_args.load_in_4bit and not torch.cuda.is_available():
        disable_cpu_4bit_repacking(model)

    training_args.eos_token = EOS_TOKEN
    if "validation" not in data:
        training_args.eval_strategy = "no"
    else:
        # The loss before any training is the reference every later eval loss is read against.
        training_args.eval_on_start = True
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data.get("validation"),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    # peft records the path the base was loaded from; publish the Hub id (or a project-relative path) instead.
    for adapter_config in trainer.model.peft_config.values():
        adapter_config.base_model_name_or_path = recorded_base(model_args, script_args)
    return trainer


def train(script_args: ScriptArguments, training_args: Any, model_args: Any) -> dict[str, Any]:
    """Train, evaluate, and write adapters/RUN/ with everything a user or the Hub needs."""
    # Refused now rather than after hours of training: a folder holding files this command did not write.
    check_output(training_args.output_dir, COMMAND, keep=KEPT_DURING_TRAINING, legacy=LEGACY_FILES)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    trainer = build_trainer(script_args, training_args, model_args)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    history = trainer.state.log_history
    evaluated = [row for row in history if "eval_loss" in row]
    if trainer.eval_dataset is not None and (not evaluated or evaluated[-1]["step"] != trainer.state.global_step):
        evaluated.append(trainer.evaluate())

    output = Path(training_args.output_dir)
    results = {
        "train_loss": result.training_loss,
        "initial_eval_loss": evaluated[0]["eval_loss"] if evaluated else None,
        "eval_loss": evaluated[-1]["eval_loss"] if evaluated else None,
        "global_step": trainer.state.global_step,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "train_dialogues": len(trainer.train_dataset) if not training_args.packing else None,
        "world_size": trainer.accelerator.num_processes,
        "log_history": trainer.state.log_history,
    }
    state = trainer.accelerator.state
    # One line per process, so that a multi-process launch can be seen to have really run several.
    print(
        f"[process {state.process_index} of world size {state.num_processes}] "
        f"trained {trainer.state.global_step} steps",
        file=sys.stderr,
        flush=True,
    )
    if trainer.is_world_process_zero():
        # In place: the folder also holds the run's checkpoint-N folders, which stay for resuming.
        # trl writes its own README.md card beside every checkpoint; the check before training refused any other.
        kept = (*KEPT_DURING_TRAINING, "README.md")
        with output_directory(output, COMMAND, keep=kept, legacy=LEGACY_FILES, in_place=True) as staging:
            save_adapter_folder(staging, trainer, results, script_args, training_args, model_args)
    # All processes wait for the save, then close the process group together: a process that left first once left
    # the others hanging in gloo's thread join when their DDP reducer was freed (the two-process test, 1 run in 4).
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    if hasattr(trainer, "end"):
        trainer.end()
    return results


def save_adapter_folder(
    folder: Path, trainer: Any, results: dict[str, Any], script_args: Any, training_args: Any, model_args: Any
) -> None:
    """The adapter, tokenizer, generation defaults, resolved config, results, loss plot and model card."""
    from gonggam.card import training_hyperparameters, write_card
    from gonggam.plots import plot_loss

    trainer.save_model(str(folder))
    trainer.processing_class.save_pretrained(folder)
    trainer.model.generation_config.save_pretrained(folder)
    save_resolved_config(folder / "run_config.yaml", script_args, training_args, model_args)
    (folder / "train_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    plot_loss(trainer.state.log_history, folder / "loss.png")
    write_card(
        folder,
        trainer.model.peft_config["default"].base_model_name_or_path,
        "adapter",
        training_hyperparameters(training_args, model_args),
        {k: v for k, v in results.items() if k != "log_history" and v is not None},
    )


def resolve_checkpoint(value: str | bool | None, output_dir: str) -> str | None:
    """`true` means the newest checkpoint-N in output_dir; a path must exist."""
    from transformers.trainer_utils import get_last_checkpoint

    if value in (None, False, "", "false", "False"):
        return None
    if value in (True, "true", "True"):
        newest = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if newest is None:
            raise UserError(f"there is no checkpoint-N in {output_dir} to resume from: drop --resume_from_checkpoint.")
        return newest
    if not Path(value).is_dir():
        raise UserError(f"the checkpoint {value} does not exist: pass a checkpoint-N directory or `true`.")
    return str(value)


def save_resolved_config(path: Path, *dataclass_args: Any) -> None:
    """Every setting the run used, flat, in the YAML layout that `--config` reads back."""
    import yaml

    resolved: dict[str, Any] = {}
    for args in dataclass_args:
        for item in dataclasses.fields(args):
            value = getattr(args, item.name)
            if item.name.startswith("_") or item.name in resolved:
                continue
            resolved[item.name] = _plain(value)
    path.write_text(yaml.safe_dump(resolved, allow_unicode=True, sort_keys=True), encoding="utf-8")


def _plain(value: Any) -> Any:
    """A YAML-safe copy: enums by value, containers kept, anything else as its string."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return getattr(value, "value", str(value))
