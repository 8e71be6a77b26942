"""merge_adapter.py, infer.py and push_adapter.py as a user runs them, on the tiny model trained for real."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import ROOT, run_cli

from gonggam.generation import ReplyNoRepeatNGram


def test_merged_model_loads_with_plain_transformers(merged):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    files = {p.name for p in merged.iterdir()}
    assert {"config.json", "generation_config.json", "chat_template.jinja", "README.md", "tokenizer.json"} <= files
    assert any(name.endswith(".safetensors") for name in files)
    assert json.loads((merged / "generation_config.json").read_text())["eos_token_id"] == 2
    assert json.loads((merged / "config.json").read_text())["eos_token_id"] == 2
    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    torch.manual_seed(0)
    out = generator([{"role": "user", "content": "오늘 시험 망쳐서 우울해"}], max_new_tokens=12)
    reply = out[0]["generated_text"][-1]
    assert reply["role"] == "assistant" and reply["content"].strip()


def test_merged_equals_base_plus_adapter(workdir, merged, trained_adapter, tiny_model):
    """The saved merge, reloaded, against peft's unmerged base + adapter: same logits, and not the base's."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from gonggam.merge import logits_on
    from gonggam.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(trained_adapter))
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    plain = logits_on(base, tokenizer)
    unmerged = logits_on(PeftModel.from_pretrained(base, trained_adapter).eval(), tokenizer)
    reloaded = logits_on(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval(), tokenizer)
    for a, b, c in zip(unmerged, reloaded, plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        assert (a - c).abs().max() > 1e-2  # the adapter changed something


def test_merge_refuses_existing_output_and_missing_adapter(workdir, trained_adapter, merged, tmp_path):
    done = run_cli(ROOT / "merge_adapter.py", "--adapter", trained_adapter, "--output", merged, cwd=workdir)
    assert done.returncode == 2 and "--overwrite" in done.stderr.strip().splitlines()[-1]
    # A folder without an adapter: one sentence, exit 2, nothing written.
    done = run_cli(ROOT / "merge_adapter.py", "--adapter", tmp_path, "--output", tmp_path / "out", cwd=workdir)
    assert done.returncode == 2 and "make train" in done.stderr and not (tmp_path / "out").exists()


def test_merge_verification_blocks_a_bad_merge(workdir, trained_adapter, tmp_path, monkeypatch):
    """If merging went wrong, nothing is written: simulate a broken merge by corrupting merged weights."""
    import gonggam.merge as merge

    original = merge.logits_on
    calls = []

    def corrupted(model, tokenizer):
        calls.append(1)
        out = original(model, tokenizer)
        return [t + 1.0 for t in out] if len(calls) == 2 else out

    monkeypatch.setattr(merge, "logits_on", corrupted)
    monkeypatch.chdir(workdir)
    with pytest.raises(merge.UserError, match="nothing was written"):
        merge.merge_adapter(trained_adapter, tmp_path / "bad", dtype="float32")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad-*"))


def test_infer_prints_only_the_reply(workdir, merged):
    done = run_cli(
        ROOT / "infer.py", "--model", merged, "--prompt", "오늘 시험 망쳐서 우울해", "--seed", "0", cwd=workdir
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert "###" not in done.stdout and "<|" not in done.stdout


def test_infer_json_and_newest_merged_default(workdir, merged):
    done = run_cli(
        ROOT / "infer.py", "--prompt", "엄마한테 혼날 거 같아서 불안해", "--json", "--seed", "1", cwd=workdir
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert set(record) == {"prompt", "response", "safety", "stopped_by", "new_tokens", "engine"}
    assert record["engine"] == {"backend": "transformers", "unsupported": []}
    assert record["safety"]["level"] == "none" and record["stopped_by"] in ("eos", "length")
    assert 0 < record["new_tokens"] <= 128


def test_infer_crisis_prompt_gets_the_fixed_reply_without_the_model(workdir, merged):
    done = run_cli(ROOT / "infer.py", "--model", merged, "--prompt", "요즘 그냥 죽고 싶어", "--json", cwd=workdir)
    record = json.loads(done.stdout)
    assert record["safety"]["level"] == "crisis" and record["stopped_by"] == "safety"
    assert record["new_tokens"] == 0 and "109" in record["response"] and "1393" not in record["response"]


def test_infer_batch_file_with_adapter(workdir, trained_adapter, tmp_path):
    prompts = tmp_path / "prompts.txt"
    conversation = {
        "messages": [
            {"role": "user", "content": "회사 일이 너무 많아."},
            {"role": "assistant", "content": "많이 바쁘시군요."},
            {"role": "user", "content": "주말에도 일해야 해."},
        ]
    }
    prompts.write_text(
        "오늘 시험 망쳐서 우울해\n사는 게 아무 의미가 없는 것 같아\n"
        + json.dumps(conversation, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "replies.jsonl"
    done = run_cli(
        ROOT / "infer.py",
        "--adapter",
        trained_adapter,
        "--input",
        prompts,
        "--output",
        out,
        "--max-new-tokens",
        "16",
        "--seed",
        "0",
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in records] == [
        "오늘 시험 망쳐서 우울해",
        "사는 게 아무 의미가 없는 것 같아",
        "주말에도 일해야 해.",
    ]
    assert records[1]["safety"]["level"] == "concern" and "109" in records[1]["response"]
    assert all(r["new_tokens"] <= 16 for r in records)


def test_infer_chat_keeps_history_and_streams(workdir, merged):
    done = run_cli(
        ROOT / "infer.py",
        "--model",
        merged,
        "--chat",
        "--max-new-tokens",
        "12",
        "--seed",
        "0",
        cwd=workdir,
        input="오늘 너무 피곤해\n내일은 좀 쉬려고\n\n",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("> ") >= 2


def test_infer_without_a_model_says_how_to_make_one(tmp_path):
    done = run_cli(ROOT / "infer.py", "--prompt", "안녕", cwd=tmp_path)
    assert done.returncode == 2 and "make merge" in done.stderr.strip().splitlines()[-1]


def test_reply_only_no_repeat_leaves_eos_free():
    """transformers' no_repeat_ngram_size bans EOS when the reply's tail repeats the prompt's; ours does not."""
    from transformers import NoRepeatNGramLogitsProcessor

    prompt = [5, 6, 7, 8, 9, 2, 11, 12]  # an earlier reply "5 6 7 8 9" ended with EOS (2)
    reply = [5, 6, 7, 8, 9]  # the new reply ends the same way: EOS must stay possible
    ids = torch.tensor([prompt + reply])
    scores = torch.zeros(1, 20)
    assert NoRepeatNGramLogitsProcessor(6)(ids, scores.clone())[0, 2] == -float("inf")
    assert ReplyNoRepeatNGram(6, len(prompt))(ids, scores.clone())[0, 2] == 0
    looping = torch.tensor([[*prompt, 3, 4, 5, 6, 7, 8, 3, 4, 5, 6, 7]])
    assert ReplyNoRepeatNGram(6, len(prompt))(looping, scores.clone())[0, 8] == -float("inf")


# --- push_adapter.py: real checks; the Hub's API replaced by a recording stand-in (no network here) ---


class StandInHub:
    """Records the calls push_adapter makes on huggingface_hub.HfApi; the real Hub cannot be reached here."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        return "https://huggingface.co/stand-in/commit/0"


@pytest.fixture
def publishable(trained_adapter, tmp_path):
    """The trained adapter as it would be after training the real base: its card names the Hub id."""
    folder = tmp_path / "adapter"
    shutil.copytree(trained_adapter, folder)
    for name in ("README.md", "adapter_config.json", "run_config.yaml"):
        path = folder / name
        path.write_text(
            path.read_text(encoding="utf-8").replace("models/tiny-polyglot", "beomi/KoAlpaca-Polyglot-5.8B")
        )
    return folder


def test_push_dry_run_lists_only_adapter_files(publishable):
    done = run_cli(ROOT / "push_adapter.py", "--adapter", publishable, "--repo-id", "me/gonggam", "--dry-run")
    assert done.returncode == 0, done.stderr
    listed = {line.strip() for line in done.stderr.splitlines() if line.startswith("  ")}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "chat_template.jinja"} <= listed
    assert not any(name.startswith("checkpoint-") or name.endswith(".bin") for name in listed)


def test_push_uploads_one_commit_through_the_api(publishable, monkeypatch):
    import push_adapter

    hub = StandInHub()
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert push_adapter.main(["--adapter", str(publishable), "--repo-id", "me/gonggam", "--private"], api=hub) == 0
    kinds = [call[0] for call in hub.calls]
    assert kinds == ["create_repo", "upload_folder"]
    assert hub.calls[0][2]["private"] is True and hub.calls[0][2]["exist_ok"] is True
    uploaded = hub.calls[1][2]["allow_patterns"]
    assert "adapter_model.safetensors" in uploaded and not any("checkpoint" in f for f in uploaded)


def test_a_successful_push_never_shows_the_token(publishable, monkeypatch, capsys):
    import push_adapter

    hub = StandInHub()
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert push_adapter.main(["--adapter", str(publishable), "--repo-id", "me/gonggam"], api=hub) == 0
    captured = capsys.readouterr()
    assert "stand-in/commit/0" in captured.out + captured.err  # it did report the commit
    assert "hf_secret_token_value" not in captured.out + captured.err
    assert "hf_secret_token_value" not in json.dumps(hub.calls, default=str)


def test_push_never_prints_the_token(publishable, monkeypatch, capsys):
    import push_adapter

    class FailingHub(StandInHub):
        def upload_folder(self, **kwargs):
            raise RuntimeError("401 Unauthorized for token hf_secret_token_value")

    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert push_adapter.main(["--adapter", str(publishable), "--repo-id", "me/gonggam"], api=FailingHub()) == 2
    captured = capsys.readouterr()
    assert "hf_secret_token_value" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("local_base", "base_model"),
        ("machine_path", "machine path"),
        ("corpus", "corpus dialogues"),
        ("broken_weights", "does not load"),
        ("stray_corpus", "train.jsonl is a data file"),
        ("stray_samples", "reports/samples.jsonl is a data file"),
    ],
)
def test_push_checks_refuse_what_must_not_be_published(workdir, publishable, damage, expected):
    if damage == "local_base":  # the tiny model's adapter, pushed from the project where models/tiny-polyglot is
        card = publishable / "README.md"
        card.write_text(
            card.read_text(encoding="utf-8").replace("beomi/KoAlpaca-Polyglot-5.8B", "models/tiny-polyglot")
        )
    elif damage == "machine_path":
        config = publishable / "adapter_config.json"
        data = json.loads(config.read_text())
        data["base_model_name_or_path"] = "/home/me/models/KoAlpaca"
        config.write_text(json.dumps(data))
    elif damage == "corpus":
        (publishable / "README.md").write_text(
            (publishable / "README.md").read_text(encoding="utf-8")
            + '\n{"talk-id": "T1", "HS01": "시험을 망쳤어", "SS01": "속상하시겠어요"}\n',
            encoding="utf-8",
        )
    elif damage == "stray_corpus":  # never uploaded (not on the allow-list), and still refused
        (publishable / "train.jsonl").write_text('{"messages": []}\n', encoding="utf-8")
    elif damage == "stray_samples":
        (publishable / "reports").mkdir()
        (publishable / "reports" / "samples.jsonl").write_text('{"prompt": "p"}\n', encoding="utf-8")
    else:
        (publishable / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    done = run_cli(
        ROOT / "push_adapter.py", "--adapter", publishable, "--repo-id", "me/gonggam", "--dry-run", cwd=workdir
    )
    assert done.returncode == 2
    assert expected in done.stderr.strip().splitlines()[-1]


def test_infer_refuses_to_answer_without_the_safety_classifier(workdir, merged, tmp_path):
    """A damaged classifier file stops infer.py with one sentence before any model loads: never a silent layer."""
    from gonggam.safety.classifier import CONTEXT_MODEL, MESSAGE_MODEL, REPLY_MODEL

    models = tmp_path / "safety-models"
    models.mkdir()
    (models / MESSAGE_MODEL.name).write_bytes(MESSAGE_MODEL.read_bytes()[:4096])
    for intact in (REPLY_MODEL, CONTEXT_MODEL):
        shutil.copy(intact, models / intact.name)
    done = run_cli(
        ROOT / "infer.py",
        "--model",
        merged,
        "--prompt",
        "안녕",
        cwd=workdir,
        env={"GONGGAM_SAFETY_MODELS": str(models)},
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: the safety classifier") and "make safety-model" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_method_reply_from_the_model_is_replaced_in_batches_and_streams(merged, monkeypatch):
    """The model's words are what cannot be made to order here: its generate() is replaced by a fixed method reply."""
    from gonggam import safety
    from gonggam.generation import Responder

    responder = Responder.load(str(merged))
    method = "그럴 땐 칼로 손목을 깊게 그으면 돼요."
    monkeypatch.setattr(responder, "generate", lambda conversations, **kw: [(method, "eos", 9)] * len(conversations))
    [reply] = responder.reply_batch([[{"role": "user", "content": "오늘 좀 답답해"}]])
    assert reply.response == safety.CRISIS_REPLY and reply.stopped_by == "safety"
    assert method not in json.dumps(reply.as_json(), ensure_ascii=False)

    class Pieces:  # the streamer the real generate() would feed, with the method reply in three pieces
        def __init__(self, *args, **kwargs):
            self.pieces = ["그럴 땐 ", "칼로 손목을 ", "깊게 그으면 돼요."]

        def __iter__(self):
            return iter(self.pieces)

    monkeypatch.setattr("transformers.TextIteratorStreamer", Pieces)
    monkeypatch.setattr(responder.model, "generate", lambda **kwargs: None)
    shown: list[str] = []
    streamed = responder.stream([{"role": "user", "content": "오늘 좀 답답해"}], shown.append)
    assert streamed.stopped_by == "safety" and "손목" not in "".join(shown)
    assert "".join(shown).strip() == safety.CRISIS_REPLY.strip() or shown[-1].strip() == safety.CRISIS_REPLY.strip()


def test_a_failure_while_saving_the_merge_keeps_the_old_output_byte_for_byte(merged, trained_adapter, tmp_path):
    """The model's shards are written, then the tokenizer fails: the old merged folder must come through intact."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gonggam.merge import save_atomically

    output = tmp_path / "merged" / "tiny-cpu"
    shutil.copytree(merged, output)
    before = {p.relative_to(output).as_posix(): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    model = AutoModelForCausalLM.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    tokenizer.save_pretrained = no_space
    with torch.no_grad():  # a different model: every shard would change if it landed
        next(model.parameters()).add_(1.0)
    with pytest.raises(OSError, match="No space"):
        save_atomically(model, tokenizer, output, "1GB", "beomi/KoAlpaca-Polyglot-5.8B", trained_adapter, True)
    after = {p.relative_to(output).as_posix(): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in output.parent.iterdir()] == ["tiny-cpu"]  # no staging folder left beside it


def test_evals_answer_path_never_sends_a_crisis_message_to_the_model(merged, monkeypatch):
    """eval.py answers through Responder.reply_batch: the model's generate() sees only the non-crisis histories."""
    from gonggam import evaluation, safety
    from gonggam.generation import Responder

    responder = Responder.load(str(merged))
    seen: list[list[dict]] = []

    def generate(conversations, **kwargs):
        seen.extend(conversations)
        return [("그러셨군요.", "eos", 4)] * len(conversations)

    monkeypatch.setattr(responder, "generate", generate)
    items = [
        {"history": [{"role": "user", "content": "시험 망쳐서 속상해"}]},
        {"history": [{"role": "user", "content": "오늘 밤에 약 다 먹고 끝낼 거야"}]},
    ]
    calm, crisis = evaluation.generate_replies(responder, items, batch_size=2, overrides={}, progress=False)
    assert seen == [items[0]["history"]]
    assert crisis.stopped_by == "safety" and crisis.new_tokens == 0 and crisis.response == safety.CRISIS_REPLY
    assert calm.response == "그러셨군요." and calm.stopped_by == "eos"
