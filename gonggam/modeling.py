"""Loading the base model (4-bit, 8-bit or full precision), attaching an adapter, and merging it.

Every entry point loads through here, so that the tokenizer, EOS and generation settings are always the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gonggam import attention
from gonggam.chat import prepare_model_config, prepare_tokenizer
from gonggam.errors import UserError

attention.register()


def resolve_dtype(name: str | None) -> Any:
    """'auto' picks bf16 on GPUs that have it (fp16 GPT-NeoX attention overflows), fp32 on the CPU."""
    import torch

    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if name not in dtypes:
        raise UserError(f"dtype '{name}' is not one of {', '.join(dtypes)} or auto: pick one of those.")
    return dtypes[name]


def is_local(name_or_path: str) -> bool:
    return Path(name_or_path).expanduser().is_dir()


def hub_id(name_or_path: str) -> str | None:
    """The Hub id a base came from; None for a local directory (whose path must never be published)."""
    if is_local(name_or_path):
        config = Path(name_or_path) / "config.json"
        if config.is_file():
            import json

            origin = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path", "")
            if origin and not Path(origin).is_absolute() and origin.count("/") == 1:
                return origin
        return None
    return name_or_path


def load_config(name_or_path: str, revision: str = "main") -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name_or_path, revision=revision)
    except OSError as error:
        raise UserError(
            f"the base model '{name_or_path}' is neither a local directory nor reachable on the Hugging Face "
            f"Hub ({str(error).splitlines()[0][:120]}): log in with `hf auth login` on a machine with internet "
            "access, or pass a local model directory."
        ) from error


def parameter_count(config: Any) -> int:
    """Parameters of a GPT-NeoX-like config, from its shape alone (no weights needed)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    intermediate = getattr(config, "intermediate_size", 4 * hidden)
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate
    return layers * per_layer + 2 * config.vocab_size * hidden


def require_gpu_for(config: Any, name_or_path: str, limit: int = 1_000_000_000) -> None:
    import torch

    if torch.cuda.is_available() or parameter_count(config) < limit:
        return
    billions = parameter_count(config) / 1e9
    raise UserError(
        f"'{name_or_path}' has about {billions:.1f}B parameters and this machine has no CUDA GPU, so training "
        "would take days: run it on a GPU, or use configs/tiny-cpu.yaml to try the pipeline on the CPU."
    )


def bnb_config(load_in_4bit: bool, load_in_8bit: bool, compute_dtype: Any, quant_storage: str | None = None):
    """NF4 with double quantisation and bf16/fp32 compute (QLoRA), or LLM.int8(); None for full precision."""
    from transformers import BitsAndBytesConfig

    if load_in_4bit:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            # FSDP shards parameters of one dtype: storing the 4-bit weights as the compute dtype lets them.
            bnb_4bit_quant_storage=quant_storage or "uint8",
        )
    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def load_tokenizer(name_or_path: str, revision: str = "main") -> Any:
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(name_or_path, revision=revision))


def device_map_for(quantized: bool) -> Any:
    """Each process puts its whole copy on its own GPU (DDP); quantised weights need a device at load time."""
    import torch

    if not torch.cuda.is_available():
        return None
    from accelerate import PartialState

    return {"": PartialState().local_process_index} if quantized else None


def load_base(
    name_or_path: str,
    *,
    load_in_4bit: bool = False,
    load_in_8bit: bool = False,
    dtype: str | None = "auto",
    attn_implementation: str | None = None,
    revision: str = "main",
    quant_storage: str | None = None,
    device_map: Any = "default",
) -> Any:
    """The base model with EOS 2 and the project's generation config. 4-bit/8-bit only for training/inference."""
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)
    quantization = bnb_config(load_in_4bit, load_in_8bit, torch_dtype, quant_storage)
    if device_map == "default":
        device_map = device_map_for(quantization is not None)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path,
            revision=revision,
            dtype=torch_dtype,
            quantization_config=quantization,
            attn_implementation=attn_implementation,
            device_map=device_map,
        )
    except OSError as error:
        raise UserError(
            f"could not load the base model '{name_or_path}' ({str(error).splitlines()[0][:120]}): log in with "
            "`hf auth login` on a machine with internet access, or pass a local model directory."
        ) from error
    return prepare_model_config(model)


def disable_cpu_4bit_repacking(model: Any) -> int:
    """Keep bitsandbytes' 4-bit CPU layers trainable after an evaluation.

    bitsandbytes 0.50's Linear4bit repacks its weight into an AVX512-BF16 inference layout the first time it
    runs in eval mode without gradients, and never unpacks it for training: the next training step fails with
    "a view of a leaf Variable that requires grad is being used in an in-place operation". Turning the
    optimisation off costs some evaluation speed on the CPU only.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def load_with_adapter(base: str | None, adapter: str, **load_kwargs: Any) -> tuple[Any, Any]:
    """Base + adapter without merging; the tokenizer and template come from the adapter directory."""
    from peft import PeftModel

    adapter_dir = Path(adapter)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise UserError(f"{adapter} holds no adapter_config.json: train one with `make train` first.")
    base = base or adapter_base(adapter_dir)
    model = load_base(base, **load_kwargs)
    model = PeftModel.from_pretrained(model, adapter_dir)
    return model, load_tokenizer(str(adapter_dir))


def adapter_base(adapter_dir: Path) -> str:
    import json

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    return config["base_model_name_or_path"]
