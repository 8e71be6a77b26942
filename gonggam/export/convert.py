"""A merged GPT-NeoX folder -> one f32 or f16 GGUF file for llama.cpp's `gptneox` architecture.

Why the project writes the file itself, with the `gguf` package (llama.cpp's own writer library, pinned in
requirements-llama.txt), instead of running llama.cpp's convert_hf_to_gguf.py from the pinned source distribution:
- that converter (llama-cpp-python 0.3.36's vendor/llama.cpp) stops with KeyError 'rotary_pct' on every merged model
  of this project, because transformers 5 saves GPT-NeoX's rotary fraction as rope_parameters.partial_rotary_factor;
- it refuses Polyglot's tokenizer (an unknown pre-tokenizer hash) unless patched, and leaves llama.cpp free to
  prepend a BOS token that the project's prompts never have;
- it lives only in the 76 MB source archive, which an offline machine (and the offline tests) cannot fetch.
GPT-NeoX needs a dozen tensor kinds and one re-ordering; the mapping below follows the converter's GPTNeoXModel
(conversion/gptneox.py) and gguf's own tensor-name map, and tests/test_gguf.py checks the result against
transformers token by token. Tensors are streamed one at a time, so the 5.8B model never sits twice in memory.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from gonggam.chat import EOS_TOKEN_ID, GENERATION_DEFAULTS, chat_template
from gonggam.errors import UserError

ARCHITECTURE = "GPTNeoXForCausalLM"
# Byte-level BPE with GPT-2's split regex: what Polyglot-ko (and the tiny model) use. verify.py proves it on the file.
TOKENIZER_PRE = "gpt-2"
FLOAT_TYPES = ("f32", "f16")
# Buffers older GPT-NeoX checkpoints saved next to the weights; llama.cpp recomputes them.
SKIPPED = re.compile(r"\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$")
QKV = re.compile(r"\.attention\.query_key_value\.(weight|bias)$")
# transformers' own values for the settings generation_config.json leaves unset, which generate() then applies.
TRANSFORMERS_DEFAULTS = {"top_k": 50, "repetition_penalty": 1.0}
# transformers' order of sampling steps, in llama.cpp's sampler names (general.sampling.sequence, ';'-separated).
SAMPLING_SEQUENCE = "temperature;top_k;top_p"
GENERATION_KEYS = (
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "max_new_tokens",
)
# transformers' {% generation %} marks the trained tokens. The pinned llama.cpp and llama-cpp-python skip it, but
# plain Jinja2 and older GGUF readers reject the unknown tag; `if true` keeps its whitespace control, so the text
# renders byte for byte the same everywhere.
GENERATION_TAG = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")
JINJA_COMMENT = re.compile(r"(\{#.*?#\})", re.DOTALL)


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the GGUF file: where it comes from and how it is written."""

    source: str  # the Hugging Face name
    shard: Path
    name: str  # the GGUF name
    shape: tuple[int, ...]
    dtype: Any  # numpy dtype as written

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def check_model(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, or a UserError saying what to pass instead."""
    if not model_dir.is_dir():
        raise UserError(f"{model_dir} does not exist: make a merged model with `make merge` and pass its folder.")
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        adapter = (model_dir / "adapter_config.json").is_file()
        what = "it is a LoRA adapter: merge it with `make merge` first" if adapter else "not a model folder"
        raise UserError(f"{model_dir} holds no config.json ({what}): pass a merged model folder (merged/RUN).")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    architectures = config.get("architectures") or [config.get("model_type", "unknown")]
    if ARCHITECTURE not in architectures:
        raise UserError(
            f"{model_dir} is a {', '.join(architectures)} model, not {ARCHITECTURE}: export_gguf.py converts only "
            "GPT-NeoX (Polyglot-ko) models such as the ones `make merge` writes."
        )
    if not weight_files(model_dir):
        raise UserError(f"{model_dir} holds no *.safetensors weights: pass a merged model saved by `make merge`.")
    if not (model_dir / "tokenizer.json").is_file():
        raise UserError(f"{model_dir} holds no tokenizer.json: pass a merged model saved by `make merge`.")
    return config


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.safetensors"))


def tensor_plans(model_dir: Path, config: dict[str, Any], ftype: str) -> list[TensorPlan]:
    """Every tensor the file will hold, in shard order, with its GGUF name, shape and type."""
    import gguf
    from safetensors import safe_open

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPTNEOX, config["num_hidden_layers"])
    plans = []
    for shard in weight_files(model_dir):
        with safe_open(shard, framework="pt") as weights:
            for source in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if SKIPPED.search(source):
                    continue
                name = names.get_name(source, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise UserError(
                        f"{model_dir} has a tensor {source} that llama.cpp's gptneox has no place for: "
                        "export a plain GPT-NeoX merged model."
                    )
                shape = tuple(weights.get_slice(source).get_shape())
                plans.append(TensorPlan(source, shard, name, shape, storage_type(name, shape, ftype)))
    return plans


def storage_type(name: str, shape: tuple[int, ...], ftype: str) -> Any:
    """f16 files keep norms and biases in f32, as llama.cpp's converter does: they are tiny and precision-bound."""
    if ftype == "f16" and len(shape) >= 2 and not name.endswith("_norm.weight"):
        return np.float16
    return np.float32


def parameter_count(model_dir: Path) -> int:
    """Parameters in the weight files, read from the safetensors headers only."""
    from safetensors import safe_open

    total = 0
    for shard in weight_files(model_dir):
        try:
            with safe_open(shard, framework="pt") as weights:
                names = [name for name in weights.keys() if not SKIPPED.search(name)]  # noqa: SIM118 (not a mapping)
                total += sum(math.prod(weights.get_slice(name).get_shape()) for name in names)
        except Exception as error:  # safetensors raises its own error type for a damaged or truncated header
            raise UserError(f"{shard} cannot be read ({error}): merge the model again with `make merge`.") from error
    return total


def to_llama_layout(tensor: Any, source: str, config: dict[str, Any]) -> Any:
    """HF's fused QKV is per head [heads, (q, k, v), head_dim]; llama.cpp's gptneox slices it as [q; k; v] blocks."""
    if not QKV.search(source):
        return tensor
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    grouped = tensor.reshape(heads, 3, hidden // heads, *tensor.shape[1:])
    return grouped.transpose(0, 1).reshape(tensor.shape)


def rotary_dimensions(config: dict[str, Any]) -> int:
    """How many of each head's dimensions are rotated; transformers 5 moved rotary_pct into rope_parameters."""
    rope = config.get("rope_parameters") or {}
    fraction = config.get("rotary_pct", rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0)))
    return int(fraction * (config["hidden_size"] // config["num_attention_heads"]))


def rope_base(config: dict[str, Any]) -> float:
    rope = config.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise UserError(
            f"the model uses {rope['rope_type']} rope scaling, which this exporter does not write: "
            "export a model with plain rotary embeddings (Polyglot-ko's)."
        )
    return float(config.get("rotary_emb_base", rope.get("rope_theta", config.get("rope_theta", 10000.0))))


@dataclass(frozen=True)
class Vocabulary:
    tokens: list[str]
    types: list[int]
    merges: list[str]


def vocabulary(model_dir: Path, rows: int) -> Vocabulary:
    """Tokens as the byte-level strings of tokenizer.json, padded to the embedding's rows as the converter does."""
    import gguf
    from tokenizers import Tokenizer

    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if data.get("model", {}).get("type") != "BPE":
        raise UserError(f"{model_dir}/tokenizer.json is not a BPE tokenizer: only Polyglot-ko's byte-level BPE exports")
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids = tokenizer.get_vocab(with_added_tokens=True)
    added = tokenizer.get_added_tokens_decoder()
    if max(ids.values()) >= rows:
        raise UserError(f"{model_dir}'s tokenizer has ids beyond the model's {rows} embedding rows: re-save the model.")
    by_id = {index: token for token, index in ids.items()}
    tokens, types = [], []
    for index in range(rows):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")  # rows the model pads its vocabulary with (30080 for 30003 tokens)
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[index])
        if index not in added:
            types.append(gguf.TokenType.NORMAL)
        else:
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    return Vocabulary(tokens, types, merges)


def generation_defaults(model_dir: Path) -> dict[str, Any]:
    """What transformers' generate() applies for this model: generation_config.json over the library's defaults."""
    path = model_dir / "generation_config.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    values = {**TRANSFORMERS_DEFAULTS, **GENERATION_DEFAULTS, **{k: v for k, v in saved.items() if v is not None}}
    return {key: values[key] for key in GENERATION_KEYS if key in values}


def portable_chat_template() -> str:
    """The project's template (as infer.py renders it) without transformers-only tags; its comments stay as written."""
    parts = JINJA_COMMENT.split(chat_template())  # odd items are the comments
    return "".join(part if i % 2 else GENERATION_TAG.sub(_if_true, part) for i, part in enumerate(parts))


def _if_true(tag: re.Match[str]) -> str:
    return "{%" + tag[1] + (" endif " if tag[2] else " if true ") + tag[3] + "%}"


def add_metadata(writer: Any, model_dir: Path, config: dict[str, Any], ftype: str, name: str) -> None:
    import gguf

    writer.add_name(name)
    writer.add_description(
        "gonggam (공감): an empathetic Korean counselling model. Its safety layer (crisis replies with 109) runs "
        "only when answering through gonggam, not in llama.cpp or Ollama."
    )
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if ftype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_rope_dimension_count(rotary_dimensions(config))
    writer.add_rope_freq_base(rope_base(config))
    writer.add_head_count(config["num_attention_heads"])
    writer.add_parallel_residual(config.get("use_parallel_residual", True))
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    add_tokenizer(writer, model_dir, config["vocab_size"])
    add_generation_defaults(writer, generation_defaults(model_dir))


def add_tokenizer(writer: Any, model_dir: Path, rows: int) -> None:
    vocab = vocabulary(model_dir, rows)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(TOKENIZER_PRE)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    # Polyglot's config says EOS 0; the project ends every reply with <|endoftext|> = 2 (gonggam.chat).
    writer.add_bos_token_id(EOS_TOKEN_ID)
    writer.add_eos_token_id(EOS_TOKEN_ID)
    writer.add_pad_token_id(EOS_TOKEN_ID)
    # The KoAlpaca prompt starts with "### 질문:", no BOS; llama.cpp would otherwise prepend one for this vocabulary.
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(portable_chat_template())


def add_generation_defaults(writer: Any, defaults: dict[str, Any]) -> None:
    """llama.cpp's general.sampling.* keys (llama-cli / llama-server use them as defaults), and all under gonggam.*"""
    # transformers scales by temperature before top-k and top-p; llama.cpp's default chain scales last (so its
    # nucleus would be taken from the unscaled distribution) and adds min_p 0.05, which transformers never applies.
    writer.add_sampling_sequence(SAMPLING_SEQUENCE)
    writer.add_sampling_temp(float(defaults["temperature"]))
    writer.add_sampling_top_k(int(defaults["top_k"]))
    writer.add_sampling_top_p(float(defaults["top_p"]))
    writer.add_sampling_min_p(0.0)
    writer.add_sampling_penalty_repeat(float(defaults["repetition_penalty"]))
    for key, value in defaults.items():
        full = f"gonggam.generation.{key}"
        if isinstance(value, bool):
            writer.add_bool(full, value)
        elif isinstance(value, int):
            writer.add_int32(full, value)
        else:
            writer.add_float32(full, float(value))


def write_gguf(model_dir: Path, path: Path, ftype: str, name: str, progress: bool = True) -> Path:
    """Write `model_dir` as one GGUF file (f32 or f16), streaming tensor by tensor."""
    import gguf

    config = check_model(model_dir)
    plans = tensor_plans(model_dir, config, ftype)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPTNEOX])
    add_metadata(writer, model_dir, config, ftype, name)
    for plan in plans:
        writer.add_tensor_info(plan.name, plan.shape, np.dtype(plan.dtype), plan.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for array in _arrays(plans, config, path.name, progress):
        writer.write_tensor_data(array)
    writer.close()
    return path


def _arrays(plans: list[TensorPlan], config: dict[str, Any], label: str, progress: bool) -> Iterator[np.ndarray]:
    """Each planned tensor as the array to write, in plan order, one shard open at a time."""
    import torch
    from safetensors import safe_open
    from tqdm import tqdm

    total = sum(plan.nbytes for plan in plans)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"  {label}", file=sys.stderr, disable=not progress) as bar:
        for shard, group in groupby(plans, key=lambda plan: plan.shard):
            with safe_open(shard, framework="pt") as weights:
                for plan in group:
                    tensor = to_llama_layout(weights.get_tensor(plan.source), plan.source, config)
                    array = np.ascontiguousarray(tensor.to(torch.float32).numpy().astype(plan.dtype, copy=False))
                    bar.update(array.nbytes)
                    yield array
