"""export_gguf.py's steps: plan and disk check, float conversion, tokenizer proof, quantisation, Modelfiles.

Everything is written into a staging folder through gonggam.files.output_directory, so a failure or Ctrl-C leaves
the earlier export as it was, and a folder holding anyone else's files is refused before any work.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gonggam.errors import UserError
from gonggam.export import convert, ollama, quantize, verify
from gonggam.files import check_output, output_directory

COMMAND = "export_gguf.py"
QUANTS = ("f32", "f16", "q8_0", "q4_k_m")
DEFAULT_QUANTS = ("f16", "q8_0", "q4_k_m")
# Bytes per parameter of each file: the 5.8B (5.88B) model's f16 file is ~11.8 GB, as big as its bf16 safetensors.
BYTES_PER_PARAMETER = {"f32": 4.0, "f16": 2.0, "q8_0": 1.06, "q4_k_m": 0.6}


@dataclass(frozen=True)
class Plan:
    model: Path
    output: Path
    name: str
    quants: tuple[str, ...]  # what the user keeps
    parameters: int

    @property
    def floats(self) -> tuple[str, ...]:
        """The float files to convert: those asked for, or f16 alone as the quantiser's input."""
        asked = tuple(q for q in self.quants if q in convert.FLOAT_TYPES)
        return asked or ("f16",)

    @property
    def quantised(self) -> tuple[str, ...]:
        return tuple(q for q in self.quants if q in quantize.QUANT_TYPES)

    @property
    def needed_bytes(self) -> int:
        return int(sum(BYTES_PER_PARAMETER[q] for q in {*self.floats, *self.quantised}) * self.parameters)

    def file(self, folder: Path, quant: str) -> Path:
        return folder / f"{self.name}-{quant}.gguf"


def make_plan(model: Path, output: Path, quants: list[str], name: str | None = None) -> Plan:
    """Check the model, the output folder and the optional packages before any long work (UserError if wrong)."""
    convert.check_model(model)
    quantize.llama_cpp_module()
    try:
        import gguf  # noqa: F401  (the writer, from requirements-llama.txt like llama-cpp-python)
    except ImportError as error:
        raise UserError(f"the gguf package is not installed: {quantize.INSTALL_HINT}.") from error
    check_output(output, COMMAND)
    chosen = tuple(q for q in QUANTS if q in quants)
    return Plan(model, output, name or output.resolve().name, chosen, convert.parameter_count(model))


def check_disk(plan: Plan) -> None:
    """Print the estimate, and refuse when the output's file system has less free space than it."""
    place = _existing_parent(plan.output)
    free = shutil.disk_usage(place).free
    parts = ", ".join(f"{q} {_size(BYTES_PER_PARAMETER[q] * plan.parameters)}" for q in (*plan.floats, *plan.quantised))
    print(
        f"{plan.model}: {_count(plan.parameters)} parameters; the export needs about {_size(plan.needed_bytes)} "
        f"({parts}) in {place}, which has {_size(free)} free.",
        file=sys.stderr,
    )
    if free < plan.needed_bytes:
        raise UserError(
            f"{place} has {_size(free)} free but the export needs about {_size(plan.needed_bytes)}: free some "
            "space or pass an --output on a larger disk (nothing was written)."
        )


def export(plan: Plan, progress: bool = True) -> dict[str, Path]:
    """Write every file of the plan into plan.output; returns {quant: final path}."""
    steps = len(plan.floats) + 1 + len(plan.quantised) + 1
    step = _Steps(steps)
    defaults = convert.generation_defaults(plan.model)
    with output_directory(plan.output, COMMAND) as staging:
        for quant in plan.floats:
            step(f"converting {plan.model} to {plan.file(staging, quant).name}")
            convert.write_gguf(plan.model, plan.file(staging, quant), quant, plan.name, progress)
        source = plan.file(staging, plan.floats[0])
        step("checking llama.cpp's tokenisation against the model's tokenizer")
        compared = verify.check_tokenizer(source, plan.model)
        print(f"  {compared} texts tokenised identically", file=sys.stderr)
        for quant in plan.quantised:
            step(f"quantising {source.name} to {quant} with llama.cpp")
            quantize.quantize(source, plan.file(staging, quant), quant, progress)
        for quant in plan.floats:
            if quant not in plan.quants:
                plan.file(staging, quant).unlink()  # only the quantiser's input
        step("writing the Ollama Modelfiles")
        for quant in plan.quants:
            gguf_name = plan.file(staging, quant).name
            modelfile = staging / gguf_name.replace(".gguf", ".Modelfile")
            modelfile.write_text(ollama.modelfile(gguf_name, defaults), encoding="utf-8")
    return {quant: plan.file(plan.output, quant) for quant in plan.quants}


def summary(files: dict[str, Path]) -> str:
    """One line per file: size and the tensor types llama.cpp chose (q4_k_m mixes several)."""
    lines = []
    for path in files.values():
        types = ", ".join(f"{count} {name}" for name, count in quantize.tensor_types(path).most_common())
        lines.append(f"{path}  {_size(path.stat().st_size)}  ({types})")
    return "\n".join(lines)


class _Steps:
    """Numbered progress lines on stderr, with the time each step took."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def __call__(self, text: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(f"[{self.done}/{self.total}] {text} (at {elapsed:.0f} s)", file=sys.stderr, flush=True)


def _existing_parent(output: Path) -> Path:
    """The folder whose file system will hold the files: the output's (real) parent, or its nearest ancestor."""
    place = Path(os.path.realpath(output)).parent
    while not place.exists():
        place = place.parent
    return place


def _count(parameters: int) -> str:
    return f"{parameters / 1e9:.3g}B" if parameters >= 1e9 else f"{parameters / 1e6:.3g}M"


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} TB"
