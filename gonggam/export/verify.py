"""Proof, on every export, that llama.cpp reads prompts as the model was trained to: the HF tokenizer's token ids.

The file names its pre-tokenizer `gpt-2` (convert.TOKENIZER_PRE); were the real model's tokenizer to split text
differently, llama.cpp would feed it prompts it never saw, with no error anywhere. Checking here stops the export
with one sentence instead, before any file is kept.
"""

from __future__ import annotations

from pathlib import Path

from gonggam.errors import UserError
from gonggam.export.quantize import llama_cpp_module, quiet_llama

# Counselling-style Korean with what byte-level BPE splits differently when its regex is wrong: jamo (ㅠㅠ, ㅋㅋ),
# emoji (one with a variation selector), English words, digits, runs of spaces, tabs and newlines.
PROBES = [
    "요즘 잠이 안 와서 새벽까지 폰만 봐ㅠㅠ",
    "상담 선생님께 말씀드리기가 좀 망설여져요.",
    "동생이 내 말을 안 들어 😤 진짜 답답해!!",
    "팀장님이 feedback 을 너무 늦게 줘서 overtime 했어요",
    "2시간 30분 기다렸는데 결국 취소됐대 ㅋㅋ…",
    "  처음엔 괜찮았는데\n\n   갑자기\t눈물이 났어  \n",
    "고마워 ❤️ 덕분에 마음이 좀 놓였어",
]
CONVERSATION = [
    {"role": "user", "content": "시험 결과가 나왔는데 생각보다 낮아."},
    {"role": "assistant", "content": "기대했던 것보다 낮아서 많이 실망하셨겠어요."},
    {"role": "user", "content": "응, 다음엔 더 잘하고 싶어."},
]


def check_tokenizer(gguf_path: Path, model_dir: Path) -> int:
    """Raise UserError unless llama.cpp tokenises every probe (and a rendered chat) exactly as the model's tokenizer.

    Returns how many texts were compared.
    """
    from gonggam.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    texts = [*PROBES, tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)]
    with quiet_llama():
        llama = llama_cpp_module().Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        for text in texts:
            expected = tokenizer(text, add_special_tokens=False)["input_ids"]
            got = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if got != expected:
                at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
                raise UserError(
                    f"llama.cpp splits {text!r} into other tokens than the model's tokenizer (from token "
                    f"{at if at is not None else min(len(got), len(expected))}): its tokenizer is not GPT-2's "
                    "byte-level BPE, so the GGUF file would misread prompts; nothing was written."
                )
    finally:
        llama.close()
    return len(texts)
