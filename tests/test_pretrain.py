"""The tiny base's pre-training stage (gonggam/pretrain.py) on a small setting: it runs, lowers the loss, repeats."""

from __future__ import annotations

import json

from conftest import ROOT, run_cli

from gonggam.pretrain import PretrainSettings

SAMPLE = ROOT / "data" / "sample" / "sample_Training.json"
# About 140 optimizer steps of 256 tokens: seconds on 2 cores, enough for the loss to fall far below a random model's.
SMALL = PretrainSettings(dialogues=300, sample=SAMPLE, batch_size=2, block_size=128)


def test_pretraining_runs_and_lowers_the_loss(processed, tmp_path):
    from transformers import AutoModelForCausalLM

    from gonggam.tiny import PRETRAINING_RECORD, build_tiny

    output = build_tiny(processed / "train.jsonl", tmp_path / "tiny", pretraining=SMALL)
    record = json.loads((output / PRETRAINING_RECORD).read_text(encoding="utf-8"))
    assert record["steps"] == len(record["train_loss"]) >= 100
    # A random model over a ~2,000-token vocabulary starts near ln(2048) ≈ 7.6 on the held-out dialogues.
    assert record["held_out_loss_before"] > 6.5
    assert record["held_out_loss_after"] < record["held_out_loss_before"] * 0.6, record
    first, last = record["train_loss"][:10], record["train_loss"][-10:]
    assert sum(last) < sum(first) * 0.6
    assert record["settings"]["dialogues"] == 300 and record["tokens"] > 0
    model = AutoModelForCausalLM.from_pretrained(output)
    assert model.config.eos_token_id == 0  # still the real base's trap for the code that sets EOS to 2


def test_pretraining_is_deterministic_for_a_seed(tokenizer):
    import torch
    from transformers import GPTNeoXForCausalLM

    from gonggam.pretrain import pretrain
    from gonggam.tiny import TINY_SHAPE, neox_config

    few = PretrainSettings(dialogues=40, sample=SAMPLE, batch_size=4, block_size=128, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = GPTNeoXForCausalLM(neox_config(-(-len(tokenizer) // 64) * 64, **TINY_SHAPE))
        runs.append((pretrain(model, tokenizer, few)["train_loss"], model.state_dict()))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) >= 5
    for name, tensor in runs[0][1].items():
        assert torch.equal(tensor, runs[1][1][name]), name


def test_the_builder_names_a_missing_sample_before_writing(processed, tmp_path):
    out = tmp_path / "tiny"
    done = run_cli(
        "-m",
        "gonggam.tiny",
        "--corpus",
        processed / "train.jsonl",
        "--output",
        out,
        "--pretrain-dialogues",
        "50",
        "--pretrain-sample",
        tmp_path / "missing.json",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "missing.json" in done.stderr.strip().splitlines()[-1]
    assert not out.exists()
