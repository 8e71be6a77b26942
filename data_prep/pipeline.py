"""read → normalise → validate → dedupe → split → write, as one call: ``prepare``.

Everything is read into memory before anything is written (the full corpus is ~60k dialogues), so a
bad input fails before the output directory exists; the output is written into a temporary directory
next to it and renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from data_prep.errors import DataError
from data_prep.readers import read_any, resolve_input
from data_prep.records import Dialogue, Malformed
from data_prep.report import write_report
from data_prep.split import split_dialogues
from data_prep.stats import Lengths, Tally, build_stats

# Inputs smaller than this finish before a progress bar would tell anyone anything.
PROGRESS_MIN_BYTES = 5_000_000
OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "stats.json", "report.png")

PathLike = str | os.PathLike[str]


def prepare(
    inputs: Sequence[PathLike],
    output: PathLike,
    validation: Sequence[PathLike] | None = None,
    val_ratio: float = 0.05,
    seed: int = 42,
    expand_prefixes: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Turn AIHub files into ``output/{train,validation}.jsonl``, ``stats.json`` and ``report.png``.

    With ``validation`` those files are the validation split (a dialogue also found in ``inputs`` is
    dropped from train as ``leakage``); without it, ``val_ratio`` of the dialogues are drawn, whole
    persons at a time and stratified by major emotion. Returns the stats; raises DataError.
    """
    if not 0 <= val_ratio < 1:
        raise DataError(f"--val-ratio must be at least 0 and below 1, got {val_ratio}; 0.05 is the default.")
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    if isinstance(validation, str | os.PathLike):
        validation = [validation]
    output = Path(output)
    _check_output(output)
    train_paths = [resolve_input(path) for path in inputs]
    validation_paths = [resolve_input(path) for path in validation or []]
    if not train_paths:
        raise DataError("no --input file given; pass at least one AIHub .json, .xlsx, .csv or .zip file.")

    tally = Tally()
    held_out = collect(validation_paths, tally, leak_keys=frozenset(), quiet=quiet)
    held_out_keys = frozenset(dialogue_key(d) for d in held_out)
    pool = collect(train_paths, tally, leak_keys=held_out_keys, quiet=quiet)
    if validation_paths:
        train, valid = pool, held_out
    else:
        train, valid = split_dialogues(pool, val_ratio, seed)

    splits = {"train": train, "validation": valid}
    lines = {name: _line_count(dialogues, expand_prefixes) for name, dialogues in splits.items()}
    settings = {
        "val_ratio": None if validation_paths else val_ratio,
        "seed": None if validation_paths else seed,
        "expand_prefixes": expand_prefixes,
        "validation_files": bool(validation_paths),
    }
    stats, lengths = build_stats(tally, splits, lines, settings)
    _publish(output, splits, stats, lengths, expand_prefixes)
    return stats


def collect(paths: Iterable[Path], tally: Tally, leak_keys: frozenset[tuple[str, ...]], quiet: bool) -> list[Dialogue]:
    """The usable, first-seen dialogues of some files; every other record is tallied by drop reason."""
    seen: set[tuple[str, ...]] = set()
    kept: list[Dialogue] = []
    for path in paths:
        before = sum(tally.files.values())
        for item in _progress(read_any(path), path, quiet):
            tally.read_one(item.source)
            if isinstance(item, Malformed):
                tally.drop("malformed")
                tally.malformed[item.detail] += 1
                continue
            if not item.messages:
                tally.drop("no_complete_turn")
                continue
            key = dialogue_key(item)
            if key in leak_keys:
                tally.drop("leakage")
            elif key in seen:
                tally.drop("duplicate")
            else:
                seen.add(key)
                tally.truncated += item.truncated
                kept.append(item)
        if sum(tally.files.values()) == before:
            tally.files.setdefault(unicodedata.normalize("NFC", path.name), 0)
    return kept


def dialogue_key(dialogue: Dialogue) -> tuple[str, ...]:
    """What makes two dialogues the same: their normalised messages (roles alternate, so text suffices)."""
    return tuple(message["content"] for message in dialogue.messages)


def summary(stats: dict[str, Any], output: PathLike) -> str:
    """The few lines printed at the end of a run."""
    dropped = ", ".join(f"{reason} {count:,}" for reason, count in stats["dropped"].items() if count) or "none"
    splits = ", ".join(f"{name} {count:,}" for name, count in stats["splits"].items())
    return (
        f"read {stats['read']:,} records, kept {stats['kept']:,} dialogues (dropped: {dropped})\n"
        f"splits: {splits}\n"
        f"wrote {Path(output)}/{{{','.join(OUTPUT_FILES)}}}"
    )


def _progress(items: Iterator[Dialogue | Malformed], path: Path, quiet: bool) -> Iterator[Dialogue | Malformed]:
    if quiet or path.stat().st_size < PROGRESS_MIN_BYTES:
        return items
    from tqdm import tqdm  # lazily, like every optional cost

    # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
    return tqdm(items, desc=path.name, unit=" dialogues", disable=None, mininterval=0.5)


def _line_count(dialogues: Sequence[Dialogue], expand_prefixes: bool) -> int:
    return sum(len(d.messages) // 2 for d in dialogues) if expand_prefixes else len(dialogues)


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise DataError(f"--output {output} is a file; pass a directory path.")
    if output.is_dir() and any(output.iterdir()) and not (output / "stats.json").is_file():
        # Replacing the directory deletes it: only ever do that to an earlier output of this tool.
        raise DataError(
            f"--output {output} already holds files that data_prep did not write; "
            "choose a new directory or empty this one."
        )


def _publish(
    output: Path,
    splits: dict[str, list[Dialogue]],
    stats: dict[str, Any],
    lengths: Lengths,
    expand_prefixes: bool,
) -> None:
    """Write everything into a sibling temporary directory, then rename it into place."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's private 0700 would outlive the rename
    except OSError as err:
        raise DataError(f"could not create {output} ({err.strerror}); check the path and its permissions.") from err
    try:
        for name, dialogues in splits.items():
            _write_jsonl(staging / f"{name}.jsonl", dialogues, expand_prefixes)
        (staging / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        write_report(staging / "report.png", stats, lengths)
        _swap_into_place(staging, output)
    except OSError as err:
        raise DataError(f"could not write {output} ({err.strerror}); check free space and permissions.") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_jsonl(path: Path, dialogues: Sequence[Dialogue], expand_prefixes: bool) -> None:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for dialogue in dialogues:
            for record in dialogue.prefixes() if expand_prefixes else (dialogue.to_json(),):
                handle.write(encode(record))
                handle.write("\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_into_place(staging: Path, output: Path) -> None:
    if not output.exists():
        os.replace(staging, output)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    os.replace(output, retired / output.name)
    os.replace(staging, output)
    shutil.rmtree(retired, ignore_errors=True)
