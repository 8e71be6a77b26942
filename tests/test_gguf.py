"""export_gguf.py on the merged tiny model: real llama.cpp reading real files, against transformers and the template.

llama.cpp's gptneox graph computes GELU with the tanh approximation through an fp16 table, where GPT-NeoX in
transformers uses the exact erf form: logits differ by a few thousandths even in an f32 file, so greedy decoding
may part ways where transformers' two best tokens are that close. The greedy tests allow exactly that, nowhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from gonggam.chat import EOS_TOKEN, EOS_TOKEN_ID

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: `make test` installs it")

from gonggam.export import convert, ollama  # noqa: E402  (needs the optional gguf package too)
from gonggam.export.quantize import quiet_llama  # noqa: E402

# Written for these tests: 반말, 존댓말, emoji, jamo, English, digits, runs of spaces, tabs and newlines.
PROBES = [
    "나 오늘 진짜 너무 힘들었어",
    "제가 요즘 회사 일 때문에 많이 지쳐 있어요.",
    "엄마랑 또 싸웠어 😭😭 왜 맨날 이럴까",
    "ㅠㅠ 아무도 내 맘을 몰라 ㅜㅜ",
    "시험 끝나면 같이 movie 보러 가기로 했는데 cancel 됐어",
    "   띄어쓰기가    여러 번  들어간   문장",
    "첫 줄\n둘째 줄\n\n\n넷째 줄\t탭 뒤",
    "3월 14일에 1,500원짜리 커피를 2잔 샀어요!",
    "🙂",
    "",
]
CONVERSATIONS = [
    [{"role": "user", "content": "요즘 밤마다 잠이 안 와요."}],
    [{"role": "user", "content": "친구가 내 생일을 잊어버렸어 😢"}],
    [
        {"role": "user", "content": "발표를 망쳐서 창피해."},
        {"role": "assistant", "content": "많이 긴장하셨군요. 어떤 부분이 제일 아쉬웠어요?"},
        {"role": "user", "content": "질문에 하나도 대답을 못 했어."},
    ],
    [
        {"role": "system", "content": "당신은 따뜻하게 공감하는 상담사입니다."},
        {"role": "user", "content": "이사 온 동네에 아는 사람이 없어서 외로워요."},
    ],
    [
        {"role": "user", "content": "동생이랑 말다툼했어."},
        {"role": "assistant", "content": "속상하셨겠어요."},
        {"role": "user", "content": "근데 내가 먼저 심한 말을 했어."},
        {"role": "assistant", "content": "마음에 걸리시는군요."},
        {"role": "user", "content": "내일 사과해 볼게. 고마워 :)"},
    ],
]
NEW_TOKENS = 32
# transformers' top-two logit gap below which llama.cpp may pick the other token (see the module docstring).
NEAR_TIE = 0.05


@pytest.fixture(scope="module")
def hf_tokenizer(merged):
    from gonggam.modeling import load_tokenizer

    return load_tokenizer(str(merged))


@pytest.fixture(scope="module")
def hf_model(merged):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()


def load_gguf(path: Path, **kwargs) -> llama_cpp.Llama:
    with quiet_llama():
        return llama_cpp.Llama(model_path=str(path), n_threads=2, verbose=False, seed=0, **kwargs)


@pytest.fixture(scope="module")
def vocab_only(gguf_exports):
    llama = load_gguf(gguf_exports["f16"], vocab_only=True)
    yield llama
    llama.close()


def prompt_ids(tokenizer, conversation) -> list[int]:
    return tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_dict=True)["input_ids"]


# --- tokenisation ---


@pytest.mark.parametrize("text", PROBES)
def test_llama_cpp_tokenises_korean_like_the_hf_tokenizer(vocab_only, hf_tokenizer, text):
    expected = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    for special in (True, False):
        assert vocab_only.tokenize(text.encode(), add_bos=False, special=special) == expected
    assert vocab_only.detokenize(expected).decode("utf-8") == text


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=lambda c: f"{len(c)}-messages")
def test_llama_cpp_tokenises_rendered_chats_like_the_hf_tokenizer(vocab_only, hf_tokenizer, conversation):
    whole = [*conversation, {"role": "assistant", "content": "그러셨군요. 이야기해 줘서 고마워요."}]
    for messages, prompt in ((conversation, True), (whole, False)):  # the second holds <|endoftext|> mid-text
        text = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        expected = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert vocab_only.tokenize(text.encode(), add_bos=False, special=True) == expected
    assert EOS_TOKEN_ID in expected


# --- generation ---


def hf_greedy(model, ids: list[int]) -> tuple[list[int], list[float]]:
    """transformers' greedy tokens (no repetition processors, EOS does not stop) and each step's top-two gap."""
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            no_repeat_ngram_size=0,
            repetition_penalty=1.0,
            eos_token_id=None,
            pad_token_id=EOS_TOKEN_ID,
            output_logits=True,
            return_dict_in_generate=True,
        )
    gaps = [float(step[0].topk(2).values.diff().abs()) for step in out.logits]
    return out.sequences[0, len(ids) :].tolist(), gaps


def llama_greedy(llama: llama_cpp.Llama, ids: list[int]) -> list[int]:
    llama.reset()
    tokens = []
    for token in llama.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        tokens.append(token)
        if len(tokens) == NEW_TOKENS:
            return tokens
    return tokens


def agreeing_prefix(expected: list[int], got: list[int], gaps: list[float]) -> int:
    """How many tokens agree; a disagreement is only allowed where transformers' choice was a near-tie."""
    for step, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            assert gaps[step] < NEAR_TIE, f"llama.cpp chose {have} over {want} at step {step} (gap {gaps[step]:.3f})"
            return step
    return len(expected)


@pytest.mark.parametrize("quant", ["f32", "f16"])
def test_greedy_tokens_from_the_gguf_equal_transformers(gguf_exports, hf_model, hf_tokenizer, quant):
    # An f32 KV cache for the f32 file: llama.cpp's default f16 cache would add its own rounding.
    cache = {"type_k": 0, "type_v": 0} if quant == "f32" else {}
    llama = load_gguf(gguf_exports[quant], n_ctx=512, **cache)
    try:
        agreed = []
        for conversation in CONVERSATIONS:
            ids = prompt_ids(hf_tokenizer, conversation)
            expected, gaps = hf_greedy(hf_model, ids)
            got = llama_greedy(llama, ids)
            assert len(got) == NEW_TOKENS
            agreed.append(agreeing_prefix(expected, got, gaps))
    finally:
        llama.close()
    assert sum(n == NEW_TOKENS for n in agreed) >= len(CONVERSATIONS) - 1, agreed


def test_gguf_logits_match_transformers_teacher_forced(gguf_exports, hf_model, hf_tokenizer):
    """The same sequence through both: every position's logits within a few thousandths (the GELU difference)."""
    conversation = [*CONVERSATIONS[2], {"role": "assistant", "content": "괜찮아요. 다음엔 더 잘하실 거예요."}]
    ids = hf_tokenizer.apply_chat_template(conversation, return_dict=True)["input_ids"]
    with torch.inference_mode():
        expected = hf_model(torch.tensor([ids])).logits[0].numpy()
    llama = load_gguf(gguf_exports["f32"], n_ctx=512, logits_all=True, type_k=0, type_v=0)
    try:
        llama.eval(ids)
        got = np.array(llama.scores[: llama.n_tokens])
    finally:
        llama.close()
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_q8_0_loads_and_agrees_on_the_first_token(gguf_exports, hf_model, hf_tokenizer):
    llama = load_gguf(gguf_exports["q8_0"], n_ctx=512)
    try:
        for conversation in CONVERSATIONS:
            ids = prompt_ids(hf_tokenizer, conversation)
            expected, gaps = hf_greedy(hf_model, ids)
            first = llama_greedy(llama, ids)[:1]
            assert first == expected[:1] or gaps[0] < NEAR_TIE
    finally:
        llama.close()


def test_q4_k_m_loads_and_generates(gguf_exports, hf_tokenizer):
    """The tiny model's 128-wide rows cannot hold q4_K's 256-value blocks: llama.cpp falls back for those."""
    from gonggam.export.quantize import tensor_types

    types = tensor_types(gguf_exports["q4_k_m"])
    assert "Q4_K" in types and "Q5_0" in types  # the fallback, as llama.cpp's log says
    llama = load_gguf(gguf_exports["q4_k_m"], n_ctx=512)
    try:
        assert len(llama_greedy(llama, prompt_ids(hf_tokenizer, CONVERSATIONS[0]))) == NEW_TOKENS
    finally:
        llama.close()


# --- metadata, chat template, Modelfile ---


def metadata(path: Path) -> dict:
    """Every field but the vocabulary arrays."""
    import gguf

    arrays = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}
    return {name: field.contents() for name, field in gguf.GGUFReader(path).fields.items() if name not in arrays}


def test_metadata_holds_the_template_eos_and_generation_defaults(gguf_exports):
    for quant, path in gguf_exports.items():
        fields = metadata(path)
        assert fields["general.architecture"] == "gptneox", quant
        assert fields["tokenizer.ggml.eos_token_id"] == EOS_TOKEN_ID
        assert fields["tokenizer.ggml.add_bos_token"] is False
        assert fields["tokenizer.ggml.pre"] == "gpt-2" and fields["tokenizer.ggml.model"] == "gpt2"
        assert fields["tokenizer.chat_template"] == convert.portable_chat_template()
        code = convert.JINJA_COMMENT.sub("", fields["tokenizer.chat_template"])
        assert "### 질문: " in code and not convert.GENERATION_TAG.search(code)  # plain Jinja2 can read it
        assert fields["general.sampling.temp"] == pytest.approx(0.7)
        assert fields["general.sampling.top_p"] == pytest.approx(0.9)
        assert fields["general.sampling.top_k"] == 50 and fields["general.sampling.min_p"] == 0.0
        assert fields["general.sampling.sequence"] == "temperature;top_k;top_p"  # transformers' order
        assert fields["gonggam.generation.temperature"] == pytest.approx(0.7)
        assert fields["gonggam.generation.no_repeat_ngram_size"] == 6
        assert fields["gonggam.generation.max_new_tokens"] == 128


def test_llama_cpp_reads_eos_and_stops_there(gguf_exports):
    llama = load_gguf(gguf_exports["f16"], vocab_only=True)
    try:
        assert llama.token_eos() == EOS_TOKEN_ID
        assert llama._model.add_bos_token() is False  # the KoAlpaca prompt has no BOS
    finally:
        llama.close()


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=lambda c: f"{len(c)}-messages")
def test_the_files_template_renders_like_the_hf_template(gguf_exports, hf_tokenizer, conversation):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = metadata(gguf_exports["q8_0"])["tokenizer.chat_template"]
    rendered = Jinja2ChatFormatter(template, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN)(messages=conversation).prompt
    assert rendered == hf_tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def test_a_modelfile_sits_beside_each_file(gguf_exports):
    for quant, path in gguf_exports.items():
        text = path.with_suffix(".Modelfile").read_text(encoding="utf-8")
        assert f"FROM ./{path.name}\n" in text, quant
        assert 'PARAMETER stop "<|endoftext|>"' in text and 'PARAMETER stop "###"' in text
        assert "PARAMETER temperature 0.7\n" in text
        assert ollama.GO_TEMPLATE in text
    manifest = json.loads((path.parent / ".gonggam-output.json").read_text())
    assert manifest["written_by"] == "export_gguf.py"


GO_RENDER = """package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func main() {
	source, _ := os.ReadFile(os.Args[1])
	tmpl := template.Must(template.New("modelfile").Parse(string(source)))
	var conversations [][]Message
	if err := json.NewDecoder(os.Stdin).Decode(&conversations); err != nil {
		panic(err)
	}
	rendered := []string{}
	for _, messages := range conversations {
		var out strings.Builder
		if err := tmpl.Execute(&out, map[string]any{"Messages": messages}); err != nil {
			panic(err)
		}
		rendered = append(rendered, out.String())
	}
	json.NewEncoder(os.Stdout).Encode(rendered)
}
"""


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed (Ollama renders TEMPLATE with Go)")
def test_the_modelfile_template_renders_like_the_hf_template_in_go(gguf_exports, hf_tokenizer, tmp_path):
    """Ollama's TEMPLATE is Go text/template: render it with Go itself, as Ollama does, and compare."""
    text = gguf_exports["q8_0"].with_suffix(".Modelfile").read_text(encoding="utf-8")
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    (tmp_path / "template.txt").write_text(template, encoding="utf-8")
    (tmp_path / "render.go").write_text(GO_RENDER, encoding="utf-8")
    done = subprocess.run(
        ["go", "run", "render.go", "template.txt"],
        cwd=tmp_path,
        input=json.dumps(CONVERSATIONS, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GO111MODULE": "off"},
    )
    assert done.returncode == 0, done.stderr
    expected = [hf_tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CONVERSATIONS]
    assert json.loads(done.stdout) == expected


# --- the command's refusals ---


def one_line_error(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_missing_model_folder_is_one_sentence_and_exit_2(tmp_path):
    done = run_cli(ROOT / "export_gguf.py", "--model", tmp_path / "nope", "--output", tmp_path / "out", cwd=tmp_path)
    assert "make merge" in one_line_error(done)
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_not_gpt_neox_is_refused(tmp_path, merged):
    model = tmp_path / "llama"
    shutil.copytree(merged, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}))
    done = run_cli(ROOT / "export_gguf.py", "--model", model, "--output", tmp_path / "out", cwd=tmp_path)
    assert "LlamaForCausalLM" in one_line_error(done) and "GPTNeoXForCausalLM" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_output_folder_with_someone_elses_files_is_refused(tmp_path, merged):
    out = tmp_path / "exports"
    out.mkdir()
    (out / "메모.txt").write_text("내 메모", encoding="utf-8")
    done = run_cli(ROOT / "export_gguf.py", "--model", merged, "--output", out, "--quant", "f16", cwd=tmp_path)
    assert "did not write" in one_line_error(done)
    assert [p.name for p in out.iterdir()] == ["메모.txt"]


def test_too_little_disk_space_is_refused_before_writing(tmp_path, merged, monkeypatch, capsys):
    import export_gguf
    from gonggam.export import pipeline

    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9, free=1000))
    assert export_gguf.main(["--model", str(merged), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "1 KB free" in err.splitlines()[-1]
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_tokenizer_llama_cpp_would_split_differently_stops_the_export(tmp_path, merged, monkeypatch, capsys):
    """Label the file with another pre-tokenizer (DeepSeek-LLM's cuts the space off Hangul words): it must be caught."""
    import export_gguf

    monkeypatch.setattr(convert, "TOKENIZER_PRE", "deepseek-llm")
    assert export_gguf.main(["--model", str(merged), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "splits" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []
