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
    # Called the way training calls it: with the collator's cu_seq_lens_q/k and max_length_q/k, which is what sends
    # sdpa_varlen down its per-dialogue branch.
    assert {"cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"} <= set(batch)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        packed = model(**inputs, use_cache=False).logits[0]
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


def collated(processed, tokenizer, n: int = 4) -> tuple[list[dict], dict]:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [
        {"input_ids": tokenizer.apply_chat_template(d, return_dict=True)["input_ids"]} for d in dialogues(processed, n)
    ]
    return rows, DataCollatorForLanguageModeling(pad_token_id=2, padding_free=True)(rows)


@pytest.mark.parametrize("attn_implementation", ["sdpa_varlen", "sdpa", "eager"])
def test_a_training_step_on_a_pack_has_the_loss_of_the_dialogues_alone(
    processed, tiny_model, tokenizer, attn_implementation
):
    """The loss training sees on a packed batch (model in train mode, labels from trl's collator) equals the
    token-weighted loss of the same dialogues run one by one."""
    from gonggam.modeling import load_base

    model = load_base(str(tiny_model), dtype="float32", attn_implementation=attn_implementation)
    model.train()
    for module in model.modules():  # dropout off, everything else as in training
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    rows, batch = collated(processed, tokenizer)
    packed_loss = model(**batch, use_cache=False).loss
    total, tokens = 0.0, 0
    for row in rows:
        ids = torch.tensor([row["input_ids"]])
        total += model(input_ids=ids, labels=ids, use_cache=False).loss.item() * (ids.shape[1] - 1)
        tokens += ids.shape[1] - 1
    assert packed_loss.item() == pytest.approx(total / tokens, rel=1e-4)


def test_a_varlen_attention_that_could_see_the_future_fails_the_packed_check(
    processed, tiny_model, tokenizer, monkeypatch
):
    """The packed-logits check can fail on the real path: sdpa_varlen without its causal mask is caught."""
    import gonggam.attention as attention
    from gonggam.modeling import load_base

    real = attention.scaled_dot_product_attention
    monkeypatch.setattr(
        attention, "scaled_dot_product_attention", lambda *a, **k: real(*a, **{**k, "is_causal": False})
    )
    model = load_base(str(tiny_model), dtype="float32", attn_implementation="sdpa_varlen").eval()
    rows, batch = collated(processed, tokenizer, 2)
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[0]
    monkeypatch.setattr(attention, "scaled_dot_product_attention", real)
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([rows[0]["input_ids"]]), use_cache=False).logits[0]  # plain sdpa path
    assert (packed[: alone.shape[0]] - alone).abs().max() > 1e-3
