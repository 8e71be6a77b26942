"""The model card (README.md) written with every adapter and merged model.

It states the prompt format, usage, hyperparameters, results, limits, and Korea's crisis lines; it holds no
corpus text (AIHub data may not be redistributed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from gonggam.chat import GENERATION_DEFAULTS

LICENSE = "apache-2.0"
TAGS = ["korean", "empathetic-dialogue", "counseling", "lora", "qlora", "gpt-neox", "trl", "sft"]


def front_matter(base_model: str, kind: Literal["adapter", "merged"]) -> str:
    header: dict[str, Any] = {
        "base_model": base_model,
        "language": ["ko"],
        "license": LICENSE,
        "pipeline_tag": "text-generation",
        "tags": TAGS if kind == "adapter" else [*TAGS, "merged"],
    }
    if kind == "adapter":
        header["library_name"] = "peft"
    else:
        header["library_name"] = "transformers"
    return "---\n" + yaml.safe_dump(header, allow_unicode=True, sort_keys=False) + "---\n"


def usage(kind: Literal["adapter", "merged"]) -> str:
    load = (
        "from peft import AutoPeftModelForCausalLM\n"
        'model = AutoPeftModelForCausalLM.from_pretrained("REPO_ID", dtype="auto", device_map="auto")\n'
        'tokenizer = AutoTokenizer.from_pretrained("REPO_ID")'
        if kind == "adapter"
        else 'model = AutoModelForCausalLM.from_pretrained("REPO_ID", dtype="auto", device_map="auto")\n'
        'tokenizer = AutoTokenizer.from_pretrained("REPO_ID")'
    )
    return f"""```python
from transformers import AutoModelForCausalLM, AutoTokenizer
{load}
messages = [{{"role": "user", "content": "오늘 시험 망쳐서 우울해"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True, return_token_type_ids=False).to(model.device)
output = model.generate(**inputs)  # generation_config.json: temperature 0.7, EOS id 2
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```
"""


def table(rows: dict[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def render_card(
    base_model: str,
    kind: Literal["adapter", "merged"],
    hyperparameters: dict[str, Any],
    results: dict[str, Any],
) -> str:
    what = "LoRA adapter" if kind == "adapter" else "merged model (LoRA folded into the base)"
    return f"""{front_matter(base_model, kind)}
# gonggam (공감): an empathetic Korean counselling {what}

Fine-tuned from [`{base_model}`](https://huggingface.co/{base_model}) with the gonggam pipeline (trl
`SFTTrainer`, LoRA/QLoRA) on the AIHub 감성 대화 말뭉치 (emotional dialogue corpus). The training data is not
included and may not be redistributed: get it from AIHub (dataset 86, aihub.or.kr).

## Prompt format

KoAlpaca's format, shipped as `chat_template.jinja` (use `apply_chat_template`):

```
### 질문: {{user}}

### 답변: {{assistant}}<|endoftext|>
```

Turns are joined by a blank line; `<|endoftext|>` (id 2) ends each reply and is both EOS and pad.

## Usage

{usage(kind)}
The project's `infer.py` adds the safety layer described below; plain `generate()` does not.

## Training hyperparameters

{table(hyperparameters)}

## Results

{table(results)}

## Limits

- The model imitates short counselling replies; it is not a therapist and can be wrong, generic or repetitive.
- The training corpus contains statements of suicidal thoughts answered with ordinary replies. Never serve
  this model without a safety layer in front of it (gonggam's `infer.py` has one).
- Sampling defaults: {
        ", ".join(
            f"{k}={v}"
            for k, v in GENERATION_DEFAULTS.items()
            if k.endswith("_size") or k in ("temperature", "top_p", "max_new_tokens")
        )
    }.

## 도움이 필요하신가요? (Crisis lines in Korea)

- 자살예방상담전화 **109** (24시간)
- 문자 상담 **마들랜** (109로 문자)
- 응급 상황: **119** / **112**
"""


def write_card(
    directory: Path,
    base_model: str,
    kind: Literal["adapter", "merged"],
    hyperparameters: dict[str, Any],
    results: dict[str, Any],
) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(render_card(base_model, kind, hyperparameters, results), encoding="utf-8")
    return path


def card_metadata(directory: Path) -> dict[str, Any]:
    """The YAML header of a card, for the checks before a push."""
    text = (Path(directory) / "README.md").read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text.split("---\n", 2)[1]) or {}


def training_hyperparameters(training_args: Any, model_args: Any) -> dict[str, Any]:
    quant = "4-bit NF4 (double quant)" if model_args.load_in_4bit else "8-bit" if model_args.load_in_8bit else "none"
    return {
        "quantisation": quant,
        "LoRA r / alpha / dropout": f"{model_args.lora_r} / {model_args.lora_alpha} / {model_args.lora_dropout}",
        "LoRA targets": json.dumps(model_args.lora_target_modules),
        "learning rate": training_args.learning_rate,
        "scheduler": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
        "epochs": training_args.num_train_epochs,
        "batch per device x accumulation": (
            f"{training_args.per_device_train_batch_size} x {training_args.gradient_accumulation_steps}"
        ),
        "max_length / packing": f"{training_args.max_length} / {training_args.packing}",
        "loss": "assistant tokens + EOS only" if training_args.assistant_only_loss else "all tokens",
    }
