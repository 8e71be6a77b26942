"""How fast is `python -m data_prep` at the real corpus's scale, against the floor of any Python tool?

    .venv/bin/python bench/data_prep.py                      # 3 runs each, writes bench/results/data_prep.json
    .venv/bin/python bench/data_prep.py --corpus /tmp/x.json --runs 5

The corpus is the synthetic 58,268-dialogue one (``python -m data_prep.synth``, recombined from the shipped
sample), generated once and cached (delete the cached file after changing the sample). Each run is a fresh
subprocess, timed wall-clock from spawn to exit (interpreter start included), with its own peak RSS from
wait4. The floor is a subprocess that only does ``json.load`` of the same file and writes as many JSONL lines
as the CLI wrote. The bar: CLI median at most 10 s, at most 4x the floor, peak RSS under 1 GB.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIALOGUES = 58_268  # 51,628 Training + 6,640 Validation in the 2022 release
BAR = {"wall_s": 10.0, "ratio_to_floor": 4.0, "peak_rss_mb": 1024.0}

FLOOR = """
import json, sys
records = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for record in records[: int(sys.argv[3])]:
        out.write(json.dumps(record, ensure_ascii=False) + "\\n")
"""

# Draws report.png once in-process and prints the seconds it took, the matplotlib import included.
REPORT = """
import json, sys, time
from pathlib import Path
from data_prep.stats import Lengths
out = Path(sys.argv[1])
stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
lengths = Lengths([], [])
for name in ("train.jsonl", "validation.jsonl"):
    for line in (out / name).read_text(encoding="utf-8").splitlines():
        for message in json.loads(line)["messages"]:
            (lengths.user if message["role"] == "user" else lengths.assistant).append(len(message["content"]))
start = time.perf_counter()
from data_prep.report import write_report
write_report(Path(sys.argv[2]), stats, lengths)
print(time.perf_counter() - start)
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    default = Path(tempfile.gettempdir()) / f"gonggam-synth-{DIALOGUES}-seed{args.seed}.json"
    corpus = ensure_corpus(args.corpus or default, args.sample, args.seed)
    work = Path(tempfile.mkdtemp(prefix="gonggam-bench-"))
    try:
        results = measure(corpus, work, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.results}")
    return 0 if results["bar"]["met"] else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="cached corpus (default: a file under the temp dir, per seed)")
    parser.add_argument("--sample", type=Path, default=ROOT / "data" / "sample" / "sample_Training.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "data_prep.json")
    return parser.parse_args(argv)


def ensure_corpus(path: Path, sample: Path, seed: int) -> Path:
    """The cached synthetic corpus, generated on first use."""
    if path.is_file():
        return path
    command = [sys.executable, "-m", "data_prep.synth", "--dialogues", str(DIALOGUES), "--seed", str(seed)]
    subprocess.run([*command, "--output", str(path), "--sample", str(sample)], cwd=ROOT, check=True)
    return path


def timed(command: list[str]) -> dict[str, float]:
    """Wall seconds and peak RSS (MB) of one child process; raises if it fails."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the maximum over all children so far.
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{command} failed: {errors.read().decode(errors='replace')}")
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def measure(corpus: Path, work: Path, runs: int) -> dict[str, Any]:
    out = work / "out"
    cli = [sys.executable, "-m", "data_prep", "--input", str(corpus), "--output", str(out), "--quiet"]
    cli_runs = [timed(cli) for _ in range(runs)]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    lines = sum(stats["lines"].values())
    floor = [sys.executable, "-c", FLOOR, str(corpus), str(work / "floor.jsonl"), str(lines)]
    floor_runs = [timed(floor) for _ in range(runs)]
    expand_runs = [timed([*cli, "--expand-prefixes"]) for _ in range(runs)]
    report = [sys.executable, "-c", REPORT, str(out), str(work / "report.png")]
    report_s = float(subprocess.run(report, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    import_s = timed([sys.executable, "-c", "import data_prep.__main__"])["wall_s"]

    cli_wall = statistics.median(r["wall_s"] for r in cli_runs)
    floor_wall = statistics.median(r["wall_s"] for r in floor_runs)
    cli_rss = max(r["peak_rss_mb"] for r in cli_runs)
    ratio = round(cli_wall / floor_wall, 2)
    return {
        "benchmark": "data_prep CLI on a full-scale synthetic corpus vs json.load + JSONL write floor",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": device(),
        "versions": versions(),
        "command": " ".join(["python", "-m", "data_prep", "--input", "CORPUS", "--output", "OUT", "--quiet"]),
        "floor_command": "python -c 'json.load(CORPUS); write N JSONL lines (json.dumps, ensure_ascii=False)'",
        "corpus": {
            "path": str(corpus),
            "bytes": corpus.stat().st_size,
            "dialogues": stats["read"],
            "kept": stats["kept"],
            "jsonl_lines": lines,
        },
        "runs": runs,
        "cli": {"median_wall_s": cli_wall, "max_peak_rss_mb": cli_rss, "runs": cli_runs},
        "floor": {"median_wall_s": floor_wall, "runs": floor_runs},
        "cli_expand_prefixes": {
            "median_wall_s": statistics.median(r["wall_s"] for r in expand_runs),
            "runs": expand_runs,
        },
        "ratio_to_floor": ratio,
        "breakdown_s": {"interpreter_and_imports": import_s, "report_png_incl_matplotlib_import": round(report_s, 3)},
        "bar": {
            **BAR,
            "met": cli_wall <= BAR["wall_s"] and ratio <= BAR["ratio_to_floor"] and cli_rss < BAR["peak_rss_mb"],
        },
    }


def device() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform()}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("openpyxl", "matplotlib", "numpy", "tqdm"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("python -m data_prep", results["cli"]["median_wall_s"], results["cli"]["max_peak_rss_mb"]),
        ("  --expand-prefixes", results["cli_expand_prefixes"]["median_wall_s"], None),
        ("floor (json.load + write)", results["floor"]["median_wall_s"], None),
    ]
    corpus = results["corpus"]
    print(f"{corpus['dialogues']:,} dialogues, {corpus['bytes'] / 1e6:.1f} MB, median of {results['runs']} runs")
    print(f"{'':28} {'wall s':>8} {'peak RSS MB':>12}")
    for name, wall, rss in rows:
        print(f"{name:28} {wall:8.2f} {'' if rss is None else f'{rss:.0f}':>12}")
    bar = results["bar"]
    print(
        f"ratio to floor {results['ratio_to_floor']:.2f}x (bar <= {bar['ratio_to_floor']}x, <= {bar['wall_s']} s, "
        f"< {bar['peak_rss_mb']:.0f} MB): {'met' if bar['met'] else 'NOT met'}"
    )
    breakdown = results["breakdown_s"]
    print(
        f"of which: interpreter + imports {breakdown['interpreter_and_imports']:.2f} s, "
        f"report.png {breakdown['report_png_incl_matplotlib_import']:.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
