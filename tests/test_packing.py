"""Padding-free packing must not let packed dialogues see each other: packed logits == each dialogue alone."""

from __future__ import annotations

import json

import pytest
import torch


def dialogues(processed, n: int = 4) -> list[list[dict]]:
    lines = (processed / "train.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line)["messages"] for line in lines]


@pytest.mark.parametrize("attn_implementation", ["sdpa_varlen", "sdpa", "eager"])
@pytest.mark.parametrize("load_in_4bit", [False, True])
def test_packed_logits_equal_unpacked(processed, tiny_model, tokenizer, attn_implementation, load_in_4bit):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from gonggam.modeling import disable_cpu_4bit_repacking, load_base

    model = load_base(
        str(tiny_model), dtype="float32", attn_implementation=attn_implementation, load_in_4bit=load_in_4bit
    )
    if load_in_4bit:
        disable_cpu_4bit_repacking(model)
    model.eval()
    rows = [
        {"input_ids": tokenizer.apply_chat_template(d, return_dict=True)["input_ids"]} for d in dialogues(processed)
    ]
    # trl's padding-free collator: one row, position_ids restarting at each dialogue, no attention mask.
    batch = DataCollatorForLanguageModeling(pad_token_id=2, padding_free=True)(rows)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        start = 0
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            alone = model(input_ids=ids, use_cache=False).logits[0]
            end = start + ids.shape[1]
            torch.testing.assert_close(packed[start:end], alone, atol=2e-4, rtol=1e-3)
            start = end


def test_packing_without_position_reset_would_bleed(processed, tiny_model, tokenizer):
    """The check above can fail: with positions running on, later dialogues see earlier ones."""
    from gonggam.modeling import load_base

    model = load_base(str(tiny_model), dtype="float32", attn_implementation="sdpa").eval()
    rows = [tokenizer.apply_chat_template(d, return_dict=True)["input_ids"] for d in dialogues(processed, 2)]
    joined = torch.tensor([rows[0] + rows[1]])
    with torch.no_grad():
        packed = model(input_ids=joined, use_cache=False).logits[0, len(rows[0]) :]
        alone = model(input_ids=torch.tensor([rows[1]]), use_cache=False).logits[0]
    assert (packed - alone).abs().max() > 1e-3
