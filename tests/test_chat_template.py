"""The chat template: assistant-only labels with the EOS that ends each reply, train/inference prefix, EOS 2."""

from __future__ import annotations

import json

import pytest
import torch

from gonggam.chat import EOS_TOKEN, EOS_TOKEN_ID, chat_template, clean_reply

DIALOGUE = [
    {"role": "user", "content": "오늘 시험을 완전히 망쳐서 너무 우울해."},
    {"role": "assistant", "content": "시험 때문에 많이 속상하셨겠어요. 어떤 과목이었나요?"},
    {"role": "user", "content": "수학인데 열심히 준비했거든."},
    {"role": "assistant", "content": "열심히 준비한 만큼 더 아쉬우시겠어요."},
    {"role": "user", "content": "다음에는 오답 노트를 써 볼까 해."},
    {"role": "assistant", "content": "좋은 방법이에요. 응원할게요!"},
]


def test_template_renders_koalpaca_format(tokenizer):
    text = tokenizer.apply_chat_template(DIALOGUE[:2], tokenize=False)
    assert text == f"### 질문: {DIALOGUE[0]['content']}\n\n### 답변: {DIALOGUE[1]['content']}{EOS_TOKEN}"
    with_prompt = tokenizer.apply_chat_template(DIALOGUE[:3], tokenize=False, add_generation_prompt=True)
    assert with_prompt.endswith(f"{EOS_TOKEN}\n\n### 질문: {DIALOGUE[2]['content']}\n\n### 답변:")


def test_prompt_tokens_are_a_prefix_of_the_conversation(tokenizer):
    whole = tokenizer.apply_chat_template(DIALOGUE, tokenize=True, return_dict=True)["input_ids"]
    for user_turn in (0, 2, 4):
        prompt = tokenizer.apply_chat_template(
            DIALOGUE[: user_turn + 1], tokenize=True, add_generation_prompt=True, return_dict=True
        )["input_ids"]
        assert whole[: len(prompt)] == prompt, f"prompt up to turn {user_turn} is not a prefix"


def labelled_spans(input_ids: list[int], labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label == -100:
            if current:
                spans.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return [*spans, current] if current else spans


def test_labels_are_exactly_the_replies_and_their_eos(tiny_model, tokenizer, tmp_path):
    """Through trl's own preparation and collator, as training sees them."""
    from trl import SFTConfig, SFTTrainer

    from gonggam.modeling import load_base

    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"messages": DIALOGUE}, ensure_ascii=False) + "\n", encoding="utf-8")
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(data), split="train")
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        assistant_only_loss=True,
        use_cpu=True,
        report_to="none",
        packing=False,
        eos_token=EOS_TOKEN,
    )
    trainer = SFTTrainer(
        model=load_base(str(tiny_model), dtype="float32"),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    spans = labelled_spans(ids, labels)
    replies = [m["content"] for m in DIALOGUE if m["role"] == "assistant"]
    assert [tokenizer.decode(span) for span in spans] == [f" {reply}{EOS_TOKEN}" for reply in replies]
    assert all(span[-1] == EOS_TOKEN_ID for span in spans)
    unlabelled = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab == -100])
    assert "### 질문:" in unlabelled and "### 답변:" in unlabelled
    for user in (m["content"] for m in DIALOGUE if m["role"] == "user"):
        assert user in unlabelled


def test_eos_is_2_in_tokenizer_model_and_generation_config(tiny_model, tokenizer):
    from gonggam.modeling import load_base

    model = load_base(str(tiny_model), dtype="float32")
    assert json.loads((tiny_model / "config.json").read_text())["eos_token_id"] == 0  # the real base's trap
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == EOS_TOKEN_ID
    assert model.config.eos_token_id == EOS_TOKEN_ID
    assert model.generation_config.eos_token_id == EOS_TOKEN_ID


def test_no_token_type_ids_reach_generate(tiny_model, tokenizer):
    from transformers import AutoTokenizer

    from gonggam.modeling import load_base

    model = load_base(str(tiny_model), dtype="float32")
    raw = AutoTokenizer.from_pretrained(tiny_model)
    assert "token_type_ids" in raw("안녕"), "the tiny tokenizer should reproduce Polyglot's token_type_ids"
    with pytest.raises(ValueError, match="token_type_ids"):
        model.generate(**raw("안녕", return_tensors="pt"), max_new_tokens=2)
    inputs = tokenizer.apply_chat_template(
        DIALOGUE[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert "token_type_ids" not in inputs
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=4)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_template_file_is_the_one_attached(tokenizer):
    assert tokenizer.chat_template == chat_template()
    assert "{% generation %}" in chat_template().replace("{%- generation -%}", "{% generation %}")


def test_clean_reply_cuts_markers_and_placeholders():
    assert clean_reply(" 많이 힘드셨겠어요.<|tel|> 괜찮아요\n\n### 질문: 또") == "많이 힘드셨겠어요. 괜찮아요"
