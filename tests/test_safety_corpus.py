"""The team-written safety corpus (data/safety/) and the classifiers trained from it.

The test split is frozen: its checksums are the ones written in data/safety/README.md before the detector was
built. `make safety-model` must rebuild the shipped model files byte for byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gonggam.safety import corpus
from gonggam.safety.classifier import CONTEXT_MODEL, MESSAGE_MODEL, REPLY_MODEL, LinearModel
from gonggam.safety.corpus import CorpusError

ROOT = corpus.ROOT
README = corpus.SAFETY_DATA / "README.md"


def all_messages() -> list[corpus.Example]:
    return [e for split in corpus.SPLITS for e in corpus.messages(split)]


def test_the_test_split_is_the_frozen_one():
    written = dict(re.findall(r"^([0-9a-f]{64})  (\S+)$", README.read_text(encoding="utf-8"), flags=re.M))
    found = {
        f"{kind}/test.{ext}": corpus.file_digest(corpus.SAFETY_DATA / kind / f"test.{ext}")
        for kind, ext in (("messages", "tsv"), ("conversations", "jsonl"), ("replies", "tsv"))
    }
    assert {name: digest for digest, name in written.items()} == found


def test_the_corpus_is_as_large_and_as_broad_as_the_policy_needs():
    messages = all_messages()
    labels = Counter(e.label for e in messages)
    assert len(messages) >= 3000 and labels["crisis"] >= 1200 and labels["concern"] >= 600 and labels["none"] >= 1200
    crisis_categories = {e.category for e in messages if e.label == "crisis"}
    assert len(crisis_categories) >= 10
    assert {"third_party", "past_resolved", "bereavement", "negated"} <= {e.category for e in messages}
    conversations = [c for split in corpus.SPLITS for c in corpus.conversations(split)]
    assert len(conversations) >= 300 and all(2 <= len(c.turns) <= 5 for c in conversations)
    assert any(t["role"] == "assistant" for c in conversations for t in c.turns)
    replies = [r for split in corpus.SPLITS for r in corpus.replies(split)]
    assert len(replies) >= 600


def test_splits_are_by_family_and_the_test_split_is_at_least_a_fifth():
    for reader in (corpus.messages, corpus.replies, corpus.conversations):
        families = {split: {item.family for item in reader(split)} for split in corpus.SPLITS}
        assert not families["train"] & families["test"] and not families["dev"] & families["test"]
        assert not families["train"] & families["dev"]
        sizes = {split: len(reader(split)) for split in corpus.SPLITS}
        assert sizes["test"] >= 0.2 * sum(sizes.values()), reader.__name__
        assert all(corpus.split_of(item.family) == split for split in corpus.SPLITS for item in reader(split))


def test_training_only_data_never_shares_a_family_with_the_test_split():
    test_families = {e.family for e in corpus.messages("test")} | {e.family for e in corpus.replies("test")}
    for path in sorted((corpus.SAFETY_DATA / "train_extra").glob("*.tsv")):
        assert not {e.family for e in corpus.read_examples(path)} & test_families, path.name


def test_harmful_example_replies_carry_no_numbers():
    """The replies that stand for harmful output are harmful in form only: no doses, heights or counts."""
    unsafe = [r for split in corpus.SPLITS for r in corpus.replies(split) if r.label == "crisis"]
    assert unsafe and not [r.text for r in unsafe if re.search(r"\d", r.text)]


def test_a_broken_corpus_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(
        "family\tlabel\tcategory\ttext\nx1\tcrisis\tslang\t죽고 싶어\nx2\tmaybe\tslang\t뭐지\n", encoding="utf-8"
    )
    with pytest.raises(CorpusError, match=r"bad.tsv line 3: label 'maybe'"):
        corpus.read_examples(path)


def test_extra_labels_skip_and_count_malformed_lines(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text(
        "label\ttext\ncrisis\t다 놓고 싶다 진짜로\nnone\t퇴근하고 싶다\nbroken line\n\nconcern\t\n", encoding="utf-8"
    )
    examples, skipped = corpus.read_extra(path)
    assert [e.label for e in examples] == ["crisis", "none"] and skipped == [4, 6]
    empty = tmp_path / "empty.tsv"
    empty.write_text("nothing useful\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no line of the form label<TAB>text"):
        corpus.read_extra(empty)


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    output = tmp_path_factory.mktemp("safety-model")
    done = subprocess.run(
        [sys.executable, "-m", "gonggam.safety.train", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return output


def test_make_safety_model_reproduces_the_shipped_files_byte_for_byte(retrained):
    for shipped in (MESSAGE_MODEL, REPLY_MODEL, CONTEXT_MODEL):
        assert (retrained / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name


def test_thresholds_and_regularisation_were_chosen_on_dev(retrained):
    model = LinearModel.load(retrained / MESSAGE_MODEL.name)
    sweep = model.info["selection"]
    assert len(sweep) > 1 and model.info["C"] in [s["C"] for s in sweep]
    chosen = next(
        s for s in sweep if s["C"] == model.info["C"] and s["scope_threshold"] == model.heads["scope"].threshold
    )
    assert model.heads["crisis"].threshold == chosen["crisis_threshold"]
    assert chosen["dev_crisis_recall"] >= 0.98


def first_lines(source: Path, target: Path, lines: int) -> None:
    text = source.read_text(encoding="utf-8").splitlines()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(text[:lines]) + "\n", encoding="utf-8")


def small_corpus(root: Path) -> Path:
    """A slice of data/safety (whole files' first lines of each label, so whole families stay together) for a quick
    training run."""
    for kind, sizes in (("messages", {"train": 200, "dev": 70}), ("replies", {"train": 100, "dev": 40})):
        for split, lines in sizes.items():
            first_of_each_label(corpus.SAFETY_DATA / kind / f"{split}.tsv", root / kind / f"{split}.tsv", lines)
    for split in ("train", "dev"):
        first_lines(
            corpus.SAFETY_DATA / "conversations" / f"{split}.jsonl", root / "conversations" / f"{split}.jsonl", 80
        )
    for path in sorted((corpus.SAFETY_DATA / "context").glob("*.tsv")):
        first_of_each_label(path, root / "context" / path.name, 100)
    return root


def first_of_each_label(source: Path, target: Path, lines: int) -> None:
    """The first lines of each label (the files are sorted by family, and a family keeps to one label)."""
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    by_label = [[row for row in rows if row.split("\t")[1] == label] for label in ("crisis", "concern", "none")]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([header, *(row for part in by_label for row in part[:lines])]) + "\n", encoding="utf-8")


def train(data: Path, output: Path, *extra: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gonggam.safety.train", "--data", str(data), "--output", str(output)]
    return subprocess.run(
        command + (["--extra", *map(str, extra)] if extra else []), cwd=ROOT, capture_output=True, text=True
    )


def test_extra_labels_change_the_model_and_bad_input_exits_2(tmp_path):
    """On a slice of the corpus (the full one is trained once, by the reproduction test above)."""
    data = small_corpus(tmp_path / "data")
    extra = tmp_path / "mine.tsv"
    extra.write_text(
        "crisis\t오늘따라 바다가 나를 부르는 것 같아\nnone\t바다 보러 가고 싶다 휴가 언제 오냐\nbad\n", encoding="utf-8"
    )
    plain, done = train(data, tmp_path / "plain"), train(data, tmp_path / "out", extra)
    assert plain.returncode == 0 and done.returncode == 0, (plain.stderr + done.stderr)[-3000:]
    assert "skipped 1 malformed line(s): line 3" in done.stderr
    model = LinearModel.load(tmp_path / "out" / MESSAGE_MODEL.name)
    assert model.info["extra_examples"] == 2 and model.info["extra_files"] == ["mine.tsv"]
    mine = (tmp_path / "out" / MESSAGE_MODEL.name).read_bytes()
    assert mine != (tmp_path / "plain" / MESSAGE_MODEL.name).read_bytes()
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "gonggam.safety.train",
            "--extra",
            str(tmp_path / "nope.tsv"),
            "--output",
            str(tmp_path / "never"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "nope.tsv" in missing.stderr
    assert not (tmp_path / "never").exists()


def test_a_corpus_without_one_of_a_heads_classes_exits_2_before_writing_anything(tmp_path):
    data = small_corpus(tmp_path / "data")
    train_split = data / "messages" / "train.tsv"
    header, *rows = train_split.read_text(encoding="utf-8").splitlines()
    kept = [row for row in rows if row.split("\t")[1] != "concern"]  # the scope head learns concern against crisis
    train_split.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    done = train(data, tmp_path / "never")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "error: a classifier head needs training examples of both its classes; the data has only one."
    )
    assert not (tmp_path / "never").exists()


def test_no_training_text_is_also_a_held_out_text():
    held_out = {e.text for split in ("dev", "test") for e in corpus.messages(split) + corpus.replies(split)}
    training = [e.text for split in ["train"] for e in corpus.messages(split) + corpus.replies(split)]
    training += [
        e.text for path in (corpus.SAFETY_DATA / "train_extra").glob("*.tsv") for e in corpus.read_examples(path)
    ]
    assert not held_out & set(training)
    # The context heads learn from conversation turns: none of theirs is a turn of a dev or test conversation.
    held_out_turns = {t["content"] for split in ("dev", "test") for c in corpus.conversations(split) for t in c.turns}
    turns = {e.text for path in (corpus.SAFETY_DATA / "context").glob("*.tsv") for e in corpus.read_examples(path)}
    assert turns and not held_out_turns & turns

    # Whole training conversations: none is a held-out one, and none of their user turns longer than a short answer
    # (응, 아니요 ㅋㅋ: anyone's) is a held-out turn; assistant turns (오늘 하루는 어떠셨어요?) are stock phrases.
    def said(c: corpus.Conversation) -> tuple[tuple[str, str], ...]:
        return tuple((t["role"], t["content"]) for t in c.turns)

    held_out_conversations = {said(c) for split in ("dev", "test") for c in corpus.conversations(split)}
    written = [c for path in (corpus.SAFETY_DATA / "context").glob("*.jsonl") for c in corpus.read_conversations(path)]
    user_turns = [t["content"] for c in written for t in c.turns if t["role"] == "user"]
    long_turns = {text for text in user_turns if len("".join(text.split())) >= 10}
    assert written and not held_out_conversations & {said(c) for c in written}
    assert not held_out_turns & long_turns


def test_the_turns_of_ordinary_conversations_train_the_message_classifier_as_none():
    """Every user turn of an ordinary conversation and the turns before the last of a benign-context one (its last
    turn is `none` only in its context) are training messages labelled `none`."""
    from gonggam.safety.train import everyday_turns

    def conversation(category: str, label: str, *texts: str) -> corpus.Conversation:
        turns = []
        for i, text in enumerate(texts):
            turns += [{"role": "user", "content": text}] + (
                [{"role": "assistant", "content": "그러셨군요."}] * (i < len(texts) - 1)
            )
        return corpus.Conversation(f"x-{category}", label, category, tuple(turns))

    found = everyday_turns(
        [
            conversation("ordinary", "none", "장 보고 왔어", "강아지 입양할까 봐요"),
            conversation("benign_context", "none", "캠핑 가요", "번개탄 몇 개 사요?"),
            conversation("escalation", "crisis", "힘들어", "오늘 끝낼 거야"),
        ]
    )
    assert [(e.label, e.text) for e in found] == [
        ("none", "장 보고 왔어"),
        ("none", "강아지 입양할까 봐요"),
        ("none", "캠핑 가요"),
    ]
