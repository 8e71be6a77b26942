"""read → normalise → validate → dedupe → split → write, as one call: ``prepare``.

Everything is read into memory before anything is written (the full corpus is ~60k dialogues), so a
bad input fails before the output directory exists; the output goes through ``gonggam.files``, which
replaces only files an earlier data_prep run wrote and only once everything is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from data_prep.errors import DataError
from data_prep.readers import Input, group_inputs, read_input
from data_prep.records import Dialogue, Malformed
from data_prep.report import write_report
from data_prep.split import split_dialogues
from data_prep.stats import Lengths, Tally, build_stats
from gonggam.files import OutputError, check_output, output_directory

# Inputs smaller than this finish before a progress bar would tell anyone anything.
PROGRESS_MIN_BYTES = 5_000_000
OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "stats.json", "report.png")
COMMAND = "data_prep"

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
    # The parts of a split zip are one input each side, wherever they sit among the other paths.
    train_inputs = group_inputs(inputs)
    validation_inputs = group_inputs(validation or [])
    if not train_inputs:
        raise DataError("no --input file given; pass at least one AIHub .json, .xlsx, .csv or .zip file.")
    _check_disjoint(train_inputs, validation_inputs)

    tally = Tally()
    held_out = collect(validation_inputs, tally, leak_keys=frozenset(), quiet=quiet)
    held_out_keys = frozenset(dialogue_key(d) for d in held_out)
    pool = collect(train_inputs, tally, leak_keys=held_out_keys, quiet=quiet)
    if validation_inputs:
        train, valid = pool, held_out
    else:
        train, valid = split_dialogues(pool, val_ratio, seed)

    splits = {"train": train, "validation": valid}
    lines = {name: _line_count(dialogues, expand_prefixes) for name, dialogues in splits.items()}
    settings = {
        "val_ratio": None if validation_inputs else val_ratio,
        "seed": None if validation_inputs else seed,
        "expand_prefixes": expand_prefixes,
        "validation_files": bool(validation_inputs),
    }
    stats, lengths = build_stats(tally, splits, lines, settings)
    _publish(output, splits, stats, lengths, expand_prefixes)
    return stats


def collect(
    inputs: Iterable[Input], tally: Tally, leak_keys: frozenset[tuple[str, ...]], quiet: bool
) -> list[Dialogue]:
    """The usable, first-seen dialogues of some inputs; every other record is tallied by drop reason.

    Of dialogues with the same messages (``dialogue_key``) the first seen wins: inputs in the order given
    (a split zip where its first part was given), then records in file order. A later copy is dropped as
    ``duplicate``, and also counted in ``tally.label_conflicts`` when its labels differ from the kept
    copy's: no copy is more likely right than another, so the order the user gave decides, but not silently.
    """
    first_seen: dict[tuple[str, ...], Dialogue] = {}
    kept: list[Dialogue] = []
    for given in inputs:
        before = sum(tally.files.values())
        for item in _progress(read_input(given), given, quiet):
            tally.read_one(item.source)
            if isinstance(item, Malformed):
                tally.drop_malformed(item)
                continue
            if not item.messages:
                tally.drop("no_complete_turn")
                continue
            key = dialogue_key(item)
            if key in leak_keys:
                tally.drop("leakage")
            elif key in first_seen:
                tally.drop("duplicate")
                if _labels(item) != _labels(first_seen[key]):
                    tally.label_conflicts += 1
            else:
                first_seen[key] = item
                tally.truncated += item.truncated
                kept.append(item)
        if sum(tally.files.values()) == before:
            tally.files.setdefault(given.name, 0)
    return kept


def dialogue_key(dialogue: Dialogue) -> tuple[str, ...]:
    """What makes two dialogues the same: their normalised messages (roles alternate, so text suffices)."""
    return tuple(message["content"] for message in dialogue.messages)


def _labels(dialogue: Dialogue) -> tuple[dict[str, str | None], ...]:
    return dialogue.emotion, dialogue.situation, dialogue.persona


def _check_disjoint(train: Sequence[Input], validation: Sequence[Input]) -> None:
    """One file on both sides would make all of train leakage: an empty train.jsonl, and no error."""
    train_paths = [path for given in train for path in given.paths]
    for valid_path in (path for given in validation for path in given.paths):
        for train_path in train_paths:
            if not os.path.samefile(train_path, valid_path):
                continue
            problem = (
                f"{train_path} was given as both --input and --validation"
                if train_path == valid_path
                else f"{train_path} (--input) and {valid_path} (--validation) are the same file"
            )
            raise DataError(f"{problem}; pass the Training file as --input and the Validation file as --validation.")


def summary(stats: dict[str, Any], output: PathLike) -> str:
    """The few lines printed at the end of a run."""
    dropped = ", ".join(f"{reason} {count:,}" for reason, count in stats["dropped"].items() if count) or "none"
    splits = ", ".join(f"{name} {count:,}" for name, count in stats["splits"].items())
    return "\n".join(
        [
            f"read {stats['read']:,} records, kept {stats['kept']:,} dialogues (dropped: {dropped})",
            *_dirt_notes(stats),
            f"splits: {splits}",
            f"wrote {Path(output)}/{{{','.join(OUTPUT_FILES)}}}",
        ]
    )


def _dirt_notes(stats: dict[str, Any]) -> list[str]:
    """Summary lines for the dirt a user should look at in stats.json (none for a clean corpus)."""
    notes = []
    if undecodable := stats.get("undecodable_lines"):
        lines = sum(len(numbers) for numbers in undecodable.values())
        notes.append(
            f"undecodable lines: {lines:,} in {', '.join(undecodable)} held bytes that are neither UTF-8 nor "
            "CP949; their rows were dropped as malformed (stats.json: undecodable_lines)"
        )
    if conflicts := stats.get("duplicate_label_conflict"):
        notes.append(
            f"label conflicts: {conflicts:,} duplicates had other labels than the first copy, which was kept "
            "(stats.json: duplicate_label_conflict)"
        )
    return notes


def _progress(items: Iterator[Dialogue | Malformed], given: Input, quiet: bool) -> Iterator[Dialogue | Malformed]:
    if quiet or given.size < PROGRESS_MIN_BYTES:
        return items
    from tqdm import tqdm  # lazily, like every optional cost

    # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
    return tqdm(items, desc=given.name, unit=" dialogues", disable=None, mininterval=0.5)


def _line_count(dialogues: Sequence[Dialogue], expand_prefixes: bool) -> int:
    return sum(len(d.messages) // 2 for d in dialogues) if expand_prefixes else len(dialogues)


def _check_output(output: Path) -> None:
    try:
        check_output(output, COMMAND, legacy=OUTPUT_FILES)
    except OutputError as err:
        raise DataError(str(err)) from err


def _publish(
    output: Path,
    splits: dict[str, list[Dialogue]],
    stats: dict[str, Any],
    lengths: Lengths,
    expand_prefixes: bool,
) -> None:
    """Write everything into a staging folder that replaces this command's earlier files only when complete."""
    try:
        with output_directory(output, COMMAND, legacy=OUTPUT_FILES) as staging:
            for name, dialogues in splits.items():
                _write_jsonl(staging / f"{name}.jsonl", dialogues, expand_prefixes)
            (staging / "stats.json").write_text(
                json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            write_report(staging / "report.png", stats, lengths)
    except OutputError as err:
        raise DataError(str(err)) from err
    except OSError as err:
        raise DataError(f"could not write {output} ({err.strerror}); check free space and permissions.") from err


def _write_jsonl(path: Path, dialogues: Sequence[Dialogue], expand_prefixes: bool) -> None:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for dialogue in dialogues:
            for record in dialogue.prefixes() if expand_prefixes else (dialogue.to_json(),):
                handle.write(encode(record))
                handle.write("\n")
