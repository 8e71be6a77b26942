"""On a GPU machine: vLLM's greedy tokens equal transformers' on fixed prompts.

`--upstream` trusts the engine behind it to generate what the model would; this checks it for vLLM. Run it in vLLM's
own environment (configs/serving/vllm.sh makes one; vLLM brings torch and transformers), from the project root:

    ~/.venvs/vllm/bin/python bench/vllm_check.py --model merged/RUN                 # the merged model
    ~/.venvs/vllm/bin/python bench/vllm_check.py --shape polyglot-5.8b              # no model at hand: 5.8B shape

Both engines get the same prompt token ids (the project's template, rendered and tokenised once) and decode 32
tokens greedily in float32 (in bf16 the two engines' kernels may round differently and part ways after a near-tie,
which says nothing about the serving path). Writes bench/results/vllm_check.json; exit 1 when any prompt differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gonggam.chat import EOS_TOKEN_ID, render_prompt  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "요즘 회사 일 때문에 너무 지쳐요"}],
    [{"role": "user", "content": "친구가 내 생일을 잊어버려서 서운해 ㅠㅠ"}],
    [
        {"role": "user", "content": "시험 결과가 나왔는데 생각보다 낮아"},
        {"role": "assistant", "content": "기대했던 만큼 나오지 않아 많이 실망하셨겠어요."},
        {"role": "user", "content": "응 다음엔 더 잘하고 싶어"},
    ],
    [{"role": "user", "content": "이사 온 동네가 낯설어서 외로워요. 주말엔 뭘 해야 할지 모르겠어요."}],
]
NEW_TOKENS = 32


def transformers_greedy(model_dir: str, prompts: list[list[int]], dtype: str) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).cuda().eval()
    outputs = []
    with torch.inference_mode():
        for ids in prompts:
            tensor = torch.tensor([ids], device="cuda")
            generated = model.generate(
                tensor, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID
            )
            outputs.append(generated[0, len(ids) :].tolist())
    del model
    torch.cuda.empty_cache()
    return outputs


def vllm_greedy(model_dir: str, prompts: list[list[int]], dtype: str) -> list[list[int]]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    engine = LLM(model=model_dir, dtype=dtype, max_model_len=1024, enforce_eager=True, gpu_memory_utilization=0.6)
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, stop_token_ids=[EOS_TOKEN_ID])
    answers = engine.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompts], params)
    # vLLM drops the stop token from the output; transformers keeps EOS: compare like with like.
    return [list(answer.outputs[0].token_ids) for answer in answers]


def first_difference(a: list[int], b: list[int]) -> int | None:
    a = a[: a.index(EOS_TOKEN_ID)] if EOS_TOKEN_ID in a else a
    b = b[: b.index(EOS_TOKEN_ID)] if EOS_TOKEN_ID in b else b
    for position, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


def model_for(args: argparse.Namespace) -> str:
    if args.model:
        return args.model
    from bench.common import build_model, synthetic_corpus

    work = Path(tempfile.mkdtemp(prefix="vllm-check-"))
    return str(build_model(args.shape, synthetic_corpus(work / "corpus.json"), work / "model"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a merged model directory")
    parser.add_argument("--shape", default="polyglot-5.8b", help="without --model: a random-weight model of this shape")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "vllm_check.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    model_dir = model_for(args)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [tokenizer(render_prompt(c), add_special_tokens=False)["input_ids"] for c in CONVERSATIONS]
    reference = transformers_greedy(model_dir, prompts, args.dtype)
    served = vllm_greedy(model_dir, prompts, args.dtype)
    rows = [
        {"prompt": i, "transformers": r, "vllm": s, "first_difference": first_difference(r, s)}
        for i, (r, s) in enumerate(zip(reference, served, strict=True))
    ]
    import torch
    import vllm

    result = {
        "model": args.model or f"random weights, {args.shape} shape",
        "dtype": args.dtype,
        "device": torch.cuda.get_device_name(),
        "versions": {"vllm": vllm.__version__, "torch": torch.__version__},
        "equal": all(row["first_difference"] is None for row in rows),
        "prompts": rows,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(
            f"prompt {row['prompt']}: "
            + ("equal" if row["first_difference"] is None else f"differs at {row['first_difference']}")
        )
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
