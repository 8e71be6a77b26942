"""q8_0 / q4_k_m files from the f16 (or f32) GGUF, by llama.cpp's own quantiser through llama-cpp-python's C API.

The quantiser is the one llama-quantize runs, so its per-tensor choices (q4_k_m keeps some tensors at q6_K, and
falls back to q5_0 / q8_0 for rows not divisible by 256, as in the tiny model) are llama.cpp's, not the project's.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gonggam.errors import UserError

QUANT_TYPES = ("q8_0", "q4_k_m")
INSTALL_HINT = "install llama.cpp's bindings with `make gguf` (or `pip install -r requirements-llama.txt`)"
# llama.cpp logs "[  12/ 292] blk.1.attn_qkv.weight - ..." per tensor: the only progress it reports.
_TENSOR_LINE = re.compile(rb"^\[\s*(\d+)/\s*(\d+)\]")
_FALLBACK_NOTICE = b"required fallback quantization"
# ggml_log_level in the pinned llama.cpp (ggml.h): DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5.
GGML_LOG_LEVEL_WARN = 3
GGML_LOG_LEVEL_ERROR = 4


def llama_cpp_module() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise UserError(f"llama-cpp-python is not installed: {INSTALL_HINT}.") from error
    return llama_cpp


def file_type(quant: str) -> int:
    llama_cpp = llama_cpp_module()
    return {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[quant]


def quantize(source: Path, target: Path, quant: str, progress: bool = True) -> Path:
    """Quantise `source` (an f16/f32 GGUF) into `target` with llama.cpp's default parameters for `quant`."""
    llama_cpp = llama_cpp_module()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type(quant)
    params.nthread = os.cpu_count() or 1
    with _tensor_progress(target.name, progress):
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if code != 0:
        raise UserError(f"llama.cpp could not quantise {source.name} to {quant} (code {code}); see its message above.")
    return target


def tensor_types(path: Path) -> Counter[str]:
    """How many tensors of each ggml type a GGUF file holds (to show what the quantiser chose)."""
    import gguf

    return Counter(tensor.tensor_type.name for tensor in gguf.GGUFReader(path).tensors)


@contextmanager
def quiet_llama(on_line: Callable[[int, bytes], None] | None = None) -> Iterator[None]:
    """Route llama.cpp's log to `on_line` (level, text) instead of stderr; its errors are still printed.

    llama-cpp-python's own handler prints every line (model loading, per-tensor chatter) even with verbose=False.
    """
    llama_cpp = llama_cpp_module()

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level == GGML_LOG_LEVEL_ERROR:
            print(text.decode("utf-8", "replace"), end="", file=sys.stderr, flush=True)
        elif on_line is not None:
            on_line(level, text)

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    try:
        yield
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


@contextmanager
def _tensor_progress(label: str, progress: bool) -> Iterator[None]:
    """A tqdm bar fed by llama.cpp's per-tensor log lines, then its one-line fallback notice if it made one."""
    from tqdm import tqdm

    bar = tqdm(unit="tensor", desc=f"  {label}", file=sys.stderr, disable=not progress)
    notices: list[str] = []

    def on_line(level: int, text: bytes) -> None:
        if match := _TENSOR_LINE.match(text):
            bar.total = int(match[2])
            bar.update(int(match[1]) - bar.n)
        elif level == GGML_LOG_LEVEL_WARN and _FALLBACK_NOTICE in text:
            notices.append(text.decode("utf-8", "replace").strip())

    try:
        with quiet_llama(on_line):
            yield
    finally:
        bar.close()
        for notice in notices:  # e.g. the tiny model's 128-wide rows cannot hold q4_K's 256-value blocks
            print(f"  llama.cpp: {notice}", file=sys.stderr)
