"""Fold a LoRA adapter into an unquantised copy of its base, prove the result, and save it atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from gonggam.files import check_output, output_directory
from gonggam.modeling import UserError, adapter_base, load_base, load_tokenizer

# Prompts the merged model must answer exactly as base + adapter does (logits compared, not text).
CHECK_PROMPTS = [
    [{"role": "user", "content": "오늘 시험 망쳐서 우울해"}],
    [{"role": "user", "content": "엄마한테 혼날 거 같아서 불안해"}],
    [
        {"role": "user", "content": "회사에서 실수를 해서 속상해."},
        {"role": "assistant", "content": "실수 때문에 마음이 무거우시겠어요."},
        {"role": "user", "content": "내일 다시 해 보려고."},
    ],
]
# Largest |merged - unmerged| logit difference allowed, relative to the largest logit: W + BA is rounded once
# more in half precision than the unmerged path computes it.
RELATIVE_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


def logits_on(model: Any, tokenizer: Any) -> list[torch.Tensor]:
    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode():
        for messages in CHECK_PROMPTS:
            ids = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
            outputs.append(model(input_ids=ids.to(device), use_cache=False).logits.float().cpu())
    return outputs


def largest_difference(reference: list[torch.Tensor], merged: list[torch.Tensor]) -> tuple[float, float]:
    absolute = max(float((a - b).abs().max()) for a, b in zip(reference, merged, strict=True))
    scale = max(float(a.abs().max()) for a in reference)
    return absolute, absolute / max(scale, 1e-6)


COMMAND = "merge_adapter.py"
# What merges wrote before outputs had a manifest: such a folder may still be replaced with --overwrite.
LEGACY_FILES = (
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "tokenizer*",
    "special_tokens_map.json",
    "chat_template.jinja",
    "README.md",
)


def check_output_dir(output: Path, overwrite: bool) -> None:
    check_output(output, COMMAND, legacy=LEGACY_FILES, overwrite=overwrite)


def merge_adapter(
    adapter: Path,
    output: Path,
    base: str | None = None,
    dtype: str = "bfloat16",
    max_shard_size: str = "2GB",
    overwrite: bool = False,
) -> dict[str, Any]:
    from peft import PeftModel
    from transformers import GenerationConfig

    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter} holds no adapter_config.json: train one with `make train` first.")
    check_output_dir(output, overwrite)
    base = base or adapter_base(adapter)
    device_map = "cuda" if torch.cuda.is_available() else None
    # Never the 4-bit model: folding BA into dequantised-then-requantised weights would lose the adapter.
    model = load_base(base, dtype=dtype, device_map=device_map)
    torch_dtype = next(model.parameters()).dtype
    model = PeftModel.from_pretrained(model, adapter).eval()
    tokenizer = load_tokenizer(str(adapter))
    reference = logits_on(model, tokenizer)
    merged = model.merge_and_unload()
    absolute, relative = largest_difference(reference, logits_on(merged, tokenizer))
    print(
        f"largest logit difference merged vs base + adapter: {absolute:.3g} ({relative:.2e} of the largest logit)",
        file=sys.stderr,
    )
    tolerance = RELATIVE_TOLERANCE[torch_dtype]
    if relative > tolerance:
        raise UserError(
            f"the merged model disagrees with base + adapter by {relative:.2e} (allowed {tolerance:.0e} in "
            f"{dtype}): nothing was written; check that --base is the model the adapter was trained on."
        )
    merged.config.use_cache = True
    merged.generation_config = GenerationConfig.from_pretrained(adapter)
    save_atomically(merged, tokenizer, output, max_shard_size, base, adapter, overwrite)
    return {"output": str(output), "max_abs_logit_diff": absolute, "relative_diff": relative, "dtype": dtype}


def save_atomically(
    model: Any, tokenizer: Any, output: Path, max_shard_size: str, base: str, adapter: Path, overwrite: bool
) -> None:
    from gonggam.card import write_card

    results_file = adapter / "train_results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    shown = {k: v for k, v in results.items() if isinstance(v, int | float | str)}
    with output_directory(output, COMMAND, legacy=LEGACY_FILES, overwrite=overwrite) as staging:
        model.save_pretrained(staging, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(staging)
        write_card(staging, base, "merged", {"adapter": adapter.name}, shown)
