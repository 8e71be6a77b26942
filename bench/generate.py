"""Generation speed: base + LoRA adapter (unmerged PeftModel) against the merged model, batch 1 and 16.

    .venv/bin/python bench/generate.py                                  # CPU, tiny model, fp32
    python bench/generate.py --shape polyglot-5.8b                      # CUDA: Polyglot-5.8B's shape in bf16
    .venv/bin/python bench/generate.py --gguf                           # transformers fp32 vs GGUF in llama.cpp

--gguf instead compares engines at batch 1 on the merged model: transformers against the GGUF files export_gguf.py
makes of it (f16, q8_0, q4_k_m) in llama.cpp, same prompt token ids, same number of greedy tokens, with the file
sizes (bench/results/generate_gguf_SHAPE.json).

The adapter is r 16 on the four projections with random non-zero B (its values do not change the speed).
Every reply is exactly --max-new-tokens long (min_new_tokens = max_new_tokens, so EOS cannot end one early),
greedy, from prompts of the synthetic corpus rendered by the chat template as infer.py renders them. One
warm-up generation, then the median of --runs. Bar: merged >= 1.3x the new tokens/s of base + adapter at
batch 1 (an unmerged adapter adds two small matmuls and a kernel launch per projection per token).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    DIALOGUES,
    ROOT,
    bar_chart,
    build_model,
    processed,
    record,
    synchronize,
    synthetic_corpus,
    write_json,
)

TARGETS = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
BAR = 1.3


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = args.work or Path(tempfile.gettempdir()) / f"gonggam-bench-{args.shape}"
    corpus = synthetic_corpus(Path(tempfile.gettempdir()) / f"gonggam-synth-{DIALOGUES}-seed0.json")
    data = processed(corpus, work / "processed")
    model_dir = build_model(args.shape, data / "train.jsonl", work / "model")
    adapter = random_adapter(model_dir, work / "adapter", args.dtype)
    prompts = first_turns(data / "validation.jsonl", max(args.batches))
    if args.gguf:
        return compare_gguf(args, argv, work, model_dir, adapter, prompts[0])

    rows = []
    for variant in ("base + adapter", "merged"):
        responder = load(variant, model_dir, adapter, args.dtype)
        for batch in args.batches:
            timing = time_generation(responder, prompts[:batch], args.max_new_tokens, args.runs)
            rows.append({"model": variant, "batch": batch, **timing})
            print(f"{variant:15} batch {batch:2}: {timing['new_tokens_per_s']:9,.1f} new tokens/s", flush=True)
        del responder
    results = record(
        f"generation speed, base + adapter vs merged ({args.shape})",
        ["bench/generate.py", *(argv if argv is not None else sys.argv[1:])],
        shape=args.shape,
        dtype=args.dtype,
        max_new_tokens=args.max_new_tokens,
        runs=args.runs,
        adapter={"r": 16, "alpha": 32, "target_modules": TARGETS, "init": "random non-zero B"},
        rows=rows,
        speedup=speedups(rows),
    )
    results["bar"] = {"merged_vs_adapter_batch_1": BAR, "met": results["speedup"].get("1", 0) >= BAR}
    print_table(results)
    write_results(
        args.results or ROOT / "bench" / "results" / f"generate_{args.shape}.json",
        results,
        [f"{r['model']}, batch {r['batch']}" for r in rows],
        f"generation, {args.shape} {args.dtype}, {args.max_new_tokens} new tokens per reply",
    )
    return 0 if results["bar"]["met"] else 1


def write_results(path: Path, results: dict, labels: list[str], title: str) -> None:
    """The JSON record and, beside it, the bar chart of each row's new tokens per second."""
    write_json(path, results)
    bar_chart(
        path.with_suffix(".png"), labels, [r["new_tokens_per_s"] for r in results["rows"]], "new tokens / s", title
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=["tiny", "polyglot-5.8b"], default="tiny")
    parser.add_argument("--work", type=Path, help="where the processed corpus, model and adapter are built (cached)")
    parser.add_argument("--dtype", default=None, help="default: float32 on the CPU, bfloat16 on a GPU")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--results", type=Path, help="JSON path (default bench/results/generate_SHAPE.json)")
    parser.add_argument("--gguf", action="store_true", help="transformers vs GGUF f16/q8_0/q4_k_m in llama.cpp")
    args = parser.parse_args(argv)
    if args.dtype is None:
        import torch

        args.dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    return args


def random_adapter(model_dir: Path, output: Path, dtype: str) -> Path:
    """A saved r-16 LoRA adapter whose B is random, so that the unmerged path really computes something."""
    if (output / "adapter_config.json").is_file():
        return output
    import torch
    from peft import LoraConfig, get_peft_model

    from gonggam.modeling import load_base

    torch.manual_seed(0)
    model = load_base(str(model_dir), dtype=dtype, device_map=None)
    config = LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.02)
    peft_model.save_pretrained(output)
    return output


def first_turns(path: Path, count: int) -> list[list[dict[str, str]]]:
    """The first user turn of the first dialogues: a chat's opening message, as infer.py --prompt sends it."""
    conversations = []
    for line in path.read_text(encoding="utf-8").splitlines()[:count]:
        first = json.loads(line)["messages"][0]
        conversations.append([{"role": "user", "content": first["content"]}])
    return conversations


def load(variant: str, model_dir: Path, adapter: Path, dtype: str) -> Any:
    """gonggam's loaders: base + PeftModel as infer.py --adapter does, or the adapter merged into the base."""
    import torch
    from peft import PeftModel

    from gonggam.backends.hf import TransformersBackend
    from gonggam.modeling import load_base, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else None
    model = PeftModel.from_pretrained(load_base(str(model_dir), dtype=dtype, device_map=device), adapter)
    if variant == "merged":
        model = model.merge_and_unload()
    return TransformersBackend(model, load_tokenizer(str(model_dir)))


def time_generation(responder: Any, conversations: list, max_new_tokens: int, runs: int) -> dict[str, Any]:
    import torch

    from gonggam.chat import EOS_TOKEN_ID, render_prompt

    inputs = responder.encode([render_prompt(c) for c in conversations])
    settings = dict(
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,  # EOS is suppressed: every variant generates the same number of tokens
        do_sample=False,
        eos_token_id=EOS_TOKEN_ID,
        pad_token_id=EOS_TOKEN_ID,
    )
    seconds = []
    with torch.inference_mode():
        for run in range(runs + 1):
            synchronize()
            start = time.perf_counter()
            output = responder.model.generate(**inputs, **settings)
            synchronize()
            if run:  # the first run warms up kernels and allocators
                seconds.append(time.perf_counter() - start)
    new = output.shape[1] - inputs["input_ids"].shape[1]
    assert new == max_new_tokens, f"generated {new} tokens, expected {max_new_tokens}"
    median = statistics.median(seconds)
    batch = len(conversations)
    return {
        "prompt_tokens": int(inputs["attention_mask"].sum()),
        "median_s": round(median, 4),
        "replies_per_s": batch / median,
        "new_tokens_per_s": batch * max_new_tokens / median,
    }


def speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Merged over base + adapter, new tokens/s, by batch size."""
    by = {(r["model"], r["batch"]): r["new_tokens_per_s"] for r in rows}
    return {
        str(batch): by[("merged", batch)] / by[("base + adapter", batch)]
        for (_model, batch) in by
        if ("merged", batch) in by and ("base + adapter", batch) in by
    }


def print_table(results: dict[str, Any]) -> None:
    runs = results["runs"]
    print(f"\n{results['shape']} {results['dtype']}, {results['max_new_tokens']} new tokens, median of {runs}")
    print(f"{'model':16} {'batch':>5} {'replies/s':>10} {'new tok/s':>10}")
    for row in results["rows"]:
        print(f"{row['model']:16} {row['batch']:5} {row['replies_per_s']:10.2f} {row['new_tokens_per_s']:10,.1f}")
    for batch, ratio in results["speedup"].items():
        print(f"merged / base + adapter at batch {batch}: {ratio:.2f}x")
    print(f"bar: merged >= {BAR}x at batch 1: {'met' if results['bar']['met'] else 'NOT met'}")


# --- --gguf: the merged model in transformers against its GGUF files in llama.cpp, batch 1 ---

GGUF_QUANTS = ["f16", "q8_0", "q4_k_m"]


def compare_gguf(
    args: argparse.Namespace, argv: list[str] | None, work: Path, model_dir: Path, adapter: Path, conversation: list
) -> int:
    from gonggam.modeling import load_tokenizer

    merged = merged_folder(model_dir, adapter, work / "merged", args.dtype)
    files = gguf_files(merged, work / "gguf")
    ids = load_tokenizer(str(merged)).apply_chat_template(conversation, add_generation_prompt=True, return_dict=True)
    ids = ids["input_ids"]
    weights = sum(path.stat().st_size for path in merged.glob("*.safetensors"))
    rows = [{"engine": "transformers", "weights": f"safetensors {args.dtype}", "file_bytes": weights}]
    rows[0].update(time_transformers(merged, ids, args.max_new_tokens, args.runs, args.dtype))
    print(f"transformers {args.dtype}: {rows[0]['new_tokens_per_s']:9,.1f} new tokens/s", flush=True)
    for quant, path in files.items():
        row = {"engine": "llama.cpp", "weights": f"GGUF {quant}", "file_bytes": path.stat().st_size}
        row.update(time_llama(path, ids, args.max_new_tokens, args.runs))
        rows.append(row)
        print(f"llama.cpp {quant:6}: {row['new_tokens_per_s']:9,.1f} new tokens/s", flush=True)
    for row in rows:
        row["speed_vs_transformers"] = row["new_tokens_per_s"] / rows[0]["new_tokens_per_s"]
        row["size_vs_transformers"] = row["file_bytes"] / rows[0]["file_bytes"]
    results = record(
        f"generation speed at batch 1, transformers vs llama.cpp GGUF ({args.shape})",
        ["bench/generate.py", *(argv if argv is not None else sys.argv[1:])],
        shape=args.shape,
        max_new_tokens=args.max_new_tokens,
        runs=args.runs,
        prompt_tokens=len(ids),
        threads={"torch": _torch_threads(), "llama.cpp": os.cpu_count()},
        llama_cpp_python=_version("llama-cpp-python"),
        gguf=_version("gguf"),
        rows=rows,
    )
    print_gguf_table(results)
    write_results(
        args.results or ROOT / "bench" / "results" / f"generate_gguf_{args.shape}.json",
        results,
        [f"{r['engine']}, {r['weights']} ({r['file_bytes'] / 1e6:.2f} MB)" for r in rows],
        f"generation at batch 1, {args.shape}, {args.max_new_tokens} greedy tokens, CPU threads {os.cpu_count()}",
    )
    return 0


def merged_folder(model_dir: Path, adapter: Path, output: Path, dtype: str) -> Path:
    """The random adapter folded into the base and saved as `make merge` saves it (cached)."""
    if (output / "config.json").is_file():
        return output
    from peft import PeftModel

    from gonggam.modeling import load_base, load_tokenizer

    model = PeftModel.from_pretrained(load_base(str(model_dir), dtype=dtype, device_map=None), adapter)
    model.merge_and_unload().save_pretrained(output)
    load_tokenizer(str(model_dir)).save_pretrained(output)
    return output


def gguf_files(merged: Path, output: Path) -> dict[str, Path]:
    """export_gguf.py's own pipeline on the merged folder (cached)."""
    from gonggam.export.pipeline import export, make_plan

    plan = make_plan(merged, output, GGUF_QUANTS, "bench")
    if all(plan.file(output, quant).is_file() for quant in GGUF_QUANTS):
        return {quant: plan.file(output, quant) for quant in GGUF_QUANTS}
    return export(plan, progress=False)


def median_seconds(run: Any, runs: int) -> float:
    """One warm-up call, then the median of `runs` timed calls."""
    seconds = []
    for attempt in range(runs + 1):
        synchronize()
        start = time.perf_counter()
        run()
        synchronize()
        if attempt:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def time_transformers(merged: Path, ids: list[int], new_tokens: int, runs: int, dtype: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from gonggam.chat import EOS_TOKEN_ID
    from gonggam.modeling import resolve_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=resolve_dtype(dtype)).to(device).eval()
    inputs = torch.tensor([ids], device=device)
    settings = dict(
        attention_mask=torch.ones_like(inputs),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,  # EOS suppressed: every engine decodes the same number of tokens
        do_sample=False,
        no_repeat_ngram_size=0,  # no processors: llama.cpp runs none here either
        eos_token_id=EOS_TOKEN_ID,
        pad_token_id=EOS_TOKEN_ID,
    )
    with torch.inference_mode():
        seconds = median_seconds(lambda: model.generate(inputs, **settings), runs)
    return {"median_s": round(seconds, 4), "new_tokens_per_s": new_tokens / seconds}


def time_llama(path: Path, ids: list[int], new_tokens: int, runs: int) -> dict[str, Any]:
    """llama-cpp-python's greedy generate() from the same token ids; its KV cache is cleared before every run."""
    from llama_cpp import Llama

    from gonggam.export.quantize import quiet_llama

    with quiet_llama():
        llm = Llama(model_path=str(path), n_ctx=1024, n_threads=os.cpu_count(), verbose=False)

    def run() -> None:
        llm.reset()  # otherwise generate() reuses the cached prompt and skips its evaluation
        tokens = llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True)
        for count, _token in enumerate(tokens, start=1):
            if count == new_tokens:
                break

    try:
        seconds = median_seconds(run, runs)
    finally:
        llm.close()
    return {"median_s": round(seconds, 4), "new_tokens_per_s": new_tokens / seconds}


def print_gguf_table(results: dict[str, Any]) -> None:
    print(f"\n{results['shape']}, batch 1, {results['max_new_tokens']} new tokens, median of {results['runs']}")
    print(f"{'engine':13} {'weights':20} {'MB':>8} {'new tok/s':>10} {'speed':>7} {'size':>6}")
    for row in results["rows"]:
        print(
            f"{row['engine']:13} {row['weights']:20} {row['file_bytes'] / 1e6:8.2f} {row['new_tokens_per_s']:10,.1f} "
            f"{row['speed_vs_transformers']:6.2f}x {row['size_vs_transformers']:5.2f}x"
        )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
