"""eval.py for real: the tiny base + trained adapter on the CPU, compared with the bare base, and its helpers."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import ROOT, run_cli

from data_prep.codes import MAJORS
from gonggam import evaluation
from gonggam.modeling import UserError

LIMIT = 8  # the first 8 validation dialogues: two major emotions, 24 reply turns


@pytest.fixture(scope="module")
def report(workdir, processed, trained_adapter, tiny_model):
    """One run of the command with --compare, shared by the checks below."""
    output = workdir / "reports" / "eval-test"
    done = run_cli(
        ROOT / "eval.py",
        "--adapter", trained_adapter,
        "--data", processed / "validation.jsonl",
        "--limit", LIMIT,
        "--max-new-tokens", 16,
        "--compare", tiny_model,
        "--output", output,
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return output, json.loads((output / "metrics.json").read_text(encoding="utf-8")), done


def first_dialogues(processed, n=LIMIT):
    lines = (processed / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def test_metrics_fields_and_ranges(report, processed):
    _, metrics, done = report
    tf = metrics["teacher_forced"]
    assert tf["loss"] > 0
    assert tf["perplexity"] == pytest.approx(math.exp(tf["loss"]), rel=1e-6)
    majors = {d["emotion"]["major"] for d in first_dialogues(processed)}
    assert set(tf["per_emotion"]) == majors and majors <= set(MAJORS)
    for entry in tf["per_emotion"].values():
        assert entry["loss"] > 0 and entry["tokens"] > 0 and entry["english"].isascii()
    assert sum(e["tokens"] for e in tf["per_emotion"].values()) == tf["tokens"]

    gen = metrics["generation"]
    turns = sum(m["role"] == "assistant" for d in first_dialogues(processed) for m in d["messages"])
    assert gen["items"] == turns == metrics["data"]["turns"]
    rates = ("eos_rate", "question_rate", "repeated_word_3gram_rate", "safety_replaced_rate")
    distinct = ("distinct_1_char", "distinct_2_char", "distinct_1_word", "distinct_2_word")
    for key in rates + distinct:
        assert 0.0 <= gen[key] <= 1.0, key
    assert 0.0 <= gen["chrf"] <= 100.0 and 0.0 <= gen["bleu"] <= 100.0
    assert gen["mean_length_chars"] > 0 and 0 < gen["mean_new_tokens"] <= 16
    assert gen["settings"]["max_new_tokens"] == 16 and gen["settings"]["seed"] == 0

    safety = metrics["safety"]
    from gonggam.safety.evaluate import evaluate

    layer = evaluate("test")  # eval.py's safety section is the frozen test split, the figures bench/safety.py records
    assert safety["available"] and safety["split"] == "data/safety test"
    assert safety["crisis_recall"] == layer["messages"]["crisis_recall"]
    assert safety["false_crisis_rate"] == layer["messages"]["false_crisis_rate"]
    assert safety["conversation_accuracy"] == layer["conversations"]["accuracy"]
    assert safety["messages"] == layer["messages"]["n"] > 800

    assert metrics["compare"]["name"] == "tiny-polyglot" and metrics["name"] == "tiny-cpu"
    assert "chrF" in done.stdout and "tiny-cpu" in done.stdout  # the short summary table


def test_samples_are_one_per_turn(report):
    output, metrics, _ = report
    samples = [json.loads(line) for line in (output / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) == metrics["generation"]["items"]
    assert {"id", "turn", "emotion", "prompt", "response", "reference", "stopped_by"} <= set(samples[0])
    assert all(s["stopped_by"] in ("eos", "length", "safety") for s in samples)


def test_loss_is_the_assistant_tokens_only_computed_by_hand(report, processed, trained_adapter, workdir, monkeypatch):
    """The command's loss equals a hand computation with the template's mask, and differs from all tokens."""
    from gonggam.modeling import load_with_adapter

    monkeypatch.chdir(workdir)  # the adapter names its base relative to the project
    model, tokenizer = load_with_adapter(None, str(trained_adapter), dtype="float32", device_map=None)
    model.eval()
    nll_sum, count, all_sum, all_count = 0.0, 0, 0.0, 0
    for record in first_dialogues(processed):
        encoded = tokenizer.apply_chat_template(record["messages"], return_dict=True, return_assistant_tokens_mask=True)
        ids = torch.tensor([encoded["input_ids"]])
        mask = torch.tensor(encoded["assistant_masks"], dtype=torch.bool)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
        token_nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
        nll_sum += float(token_nll[mask[1:]].sum())
        count += int(mask[1:].sum())
        all_sum += float(token_nll.sum())
        all_count += token_nll.numel()
        # Every reply ends with a supervised EOS: the model must learn to stop.
        eos_positions = [i for i, t in enumerate(encoded["input_ids"]) if t == 2]
        assert eos_positions and all(encoded["assistant_masks"][i] == 1 for i in eos_positions)
    _, metrics, _ = report
    assert metrics["teacher_forced"]["tokens"] == count
    assert metrics["teacher_forced"]["loss"] == pytest.approx(nll_sum / count, rel=1e-4)
    assert abs(all_sum / all_count - nll_sum / count) > 0.05


def test_compare_report_is_side_by_side(report):
    output, metrics, _ = report
    text = (output / "report.md").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| metric"))
    assert "tiny-cpu" in header and "tiny-polyglot" in header and "Δ" in header
    loss_row = next(line for line in text.splitlines() if line.startswith("| loss (assistant tokens)"))
    cells = [c.strip() for c in loss_row.strip("|").split("|")]
    ours, theirs = metrics["teacher_forced"]["loss"], metrics["compare"]["teacher_forced"]["loss"]
    assert float(cells[3]) == pytest.approx(ours - theirs, rel=1e-3)
    assert "may not be redistributed" in text
    assert (output / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_data_is_one_line_and_exit_2(workdir):
    output = workdir / "reports" / "never"
    done = run_cli(ROOT / "eval.py", "--data", "data/processed/nope.jsonl", "--output", output, cwd=workdir)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "make data" in lines[0], done.stderr
    assert not output.exists()


def test_missing_model_exits_2(workdir, processed):
    output = workdir / "reports" / "nomodel"
    done = run_cli(
        ROOT / "eval.py", "--model", workdir / "models" / "absent", "--data", processed / "validation.jsonl",
        "--output", output, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and not output.exists()


def test_bad_record_fails_before_writing(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "안녕"}]}\n{"nope": 1}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl:2 .*make data"):
        evaluation.read_dialogues(data)


def test_report_is_written_atomically(tmp_path, monkeypatch):
    """A failure while writing leaves neither a partial report nor a staging directory; an old report survives."""
    metrics = {
        "name": "m",
        "data": {"path": "x", "dialogues": 1, "turns": 1},
        "teacher_forced": {"loss": 1.0, "perplexity": math.e, "per_emotion": {}},
        "safety": {"available": False, "reason": "test"},
    }
    output = tmp_path / "reports" / "m"
    evaluation.write_report(output, metrics, [])
    assert sorted(p.name for p in output.iterdir()) == [
        ".gonggam-output.json",
        "metrics.json",
        "metrics.png",
        "report.md",
        "samples.jsonl",
    ]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    before = {p.name: p.read_bytes() for p in output.iterdir()}
    monkeypatch.setattr(evaluation, "render_markdown", broken)  # fails after metrics.json is written
    with pytest.raises(RuntimeError):
        evaluation.write_report(output, {**metrics, "name": "changed"}, [])
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    with pytest.raises(RuntimeError):
        evaluation.write_report(tmp_path / "reports" / "fresh", metrics, [])
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["m"]


def test_distinct_and_repetition_helpers():
    assert evaluation.distinct_n(["가나 가나"], 1) == pytest.approx(2 / 4)  # chars, spaces dropped: 가 나 가 나
    assert evaluation.distinct_n(["가나 가나"], 2) == pytest.approx(2 / 3)  # 가나 나가 가나
    assert evaluation.distinct_n(["a b", "a c"], 1, evaluation.word_units) == pytest.approx(3 / 4)
    assert evaluation.distinct_n(["a b c", "a b d"], 2, evaluation.word_units) == pytest.approx(3 / 4)
    assert evaluation.distinct_n([""], 2) == 0.0
    assert evaluation.has_repeated_ngram("정말 힘드셨겠어요 정말 힘드셨겠어요 정말 힘드셨겠어요")
    assert not evaluation.has_repeated_ngram("정말 힘드셨겠어요 정말 힘드셨겠어요")  # a 3-gram occurs once only
    assert not evaluation.has_repeated_ngram("많이 속상하셨겠어요. 어떤 일이 있었나요?")
    stats = evaluation.text_statistics(["괜찮으세요?", "그랬군요.", "a b c a b c"])
    assert stats["question_rate"] == pytest.approx(1 / 3)
    assert stats["repeated_word_3gram_rate"] == pytest.approx(1 / 3)
    assert stats["mean_length_chars"] == pytest.approx((6 + 5 + 11) / 3)


def test_generation_metrics_on_hand_made_replies_with_known_answers():
    """Every generation metric on replies whose answers are known: stopped by EOS, by length, by the safety layer."""
    from gonggam.generation import Reply
    from gonggam.safety import CONCERN_FOOTER, CRISIS_REPLY

    def reply(text: str, stopped_by: str, tokens: int) -> Reply:
        return Reply(prompt="p", response=text, safety={"level": "none"}, stopped_by=stopped_by, new_tokens=tokens)

    items = [{"reference": ref} for ref in ("괜찮아요", "힘드셨죠?", "그랬군요", "어떡해요")]
    replies = [
        reply("괜찮아요", "eos", 4),  # stopped by EOS, equal to its reference
        reply(f"힘드셨죠?\n\n{CONCERN_FOOTER}", "eos", 6),  # the 109 footer is the layer's, not the model's
        reply("그랬군요 그랬군요 그랬군요 그랬군요", "length", 16),  # cut by the length cap, repeats a 3-gram
        reply(CRISIS_REPLY, "safety", 0),  # replaced: counted, never scored
    ]
    metrics = evaluation.generation_metrics(items, replies)
    assert metrics["items"] == 4 and metrics["answered"] == 3
    assert metrics["safety_replaced_rate"] == pytest.approx(1 / 4)
    assert metrics["eos_rate"] == pytest.approx(2 / 3)  # the length-capped reply did not stop
    assert metrics["mean_new_tokens"] == pytest.approx((4 + 6 + 16) / 3)
    assert metrics["question_rate"] == pytest.approx(1 / 3)  # 힘드셨죠? once the footer is removed
    assert metrics["repeated_word_3gram_rate"] == pytest.approx(1 / 3)
    assert metrics["distinct_1_word"] == pytest.approx(3 / 6)  # 괜찮아요 힘드셨죠? 그랬군요 x4: 3 unique of 6
    assert metrics["mean_length_chars"] == pytest.approx((4 + 5 + 19) / 3)
    perfect = evaluation.generation_metrics(items[:1], replies[:1])
    assert perfect["chrf"] == pytest.approx(100.0) and perfect["bleu"] == pytest.approx(100.0)
    assert evaluation.generation_metrics(items[3:], replies[3:])["eos_rate"] == 0.0  # nothing answered
