"""A full-scale synthetic corpus in the 2022 JSON schema, recombined from the shipped sample's sentences.

    python -m data_prep.synth --dialogues 58268 --seed 0 --output /tmp/synth.json

It exists to run the pipeline and the benchmarks at the real corpus's scale without its text (which may
not be redistributed). Each persona (``Pro_NNNNN``) takes the emotion, situation and age/gender codes of
one sample record, so the codes stay as coherent as the sample's, and has one to six talks, as persons in
the real corpus have several. Sentences are drawn from the sample's user and system lines of the same
major emotion. About 81% of dialogues have three turns and the rest two, with "" for the missing third,
as in the real corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_prep.errors import DataError

DEFAULT_SAMPLE = Path("data/sample/sample_Training.json")
THREE_TURN_SHARE = 0.81
MAX_TALKS_PER_PERSONA = 6
# Below this many lines a major's pool would repeat itself; draw from every major instead.
MIN_POOL = 12


@dataclass
class Pools:
    """What the sample offers: its records' code combinations, and its lines by emotion major digit."""

    profiles: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    user: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    system: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def lines(self, role: str, emotion: str) -> list[str]:
        by_major = self.user if role == "user" else self.system
        pool = by_major.get(emotion[1:2], [])
        return pool if len(pool) >= MIN_POOL else by_major["all"]


def load_pools(sample: Path) -> Pools:
    """Codes and sentences of a sample corpus file; DataError if it has none to offer."""
    try:
        records = json.loads(Path(sample).read_bytes())
    except FileNotFoundError as err:
        raise DataError(f"sample {sample} does not exist; pass --sample with a 2022-schema JSON file.") from err
    except (OSError, ValueError) as err:
        raise DataError(f"sample {sample} could not be read as JSON ({err}); pass a 2022-schema JSON file.") from err
    pools = Pools()
    for record in records if isinstance(records, list) else []:
        _add_record(pools, record)
    if not pools.profiles or not pools.user["all"] or not pools.system["all"]:
        raise DataError(f"sample {sample} holds no usable dialogue records; pass a 2022-schema JSON file.")
    return pools


def _add_record(pools: Pools, record: Any) -> None:
    try:
        emotion = record["profile"]["emotion"]
        code, situation = emotion["type"], list(emotion["situation"])
        human = list(record["profile"]["persona"]["human"])
        content = record["talk"]["content"]
    except (KeyError, TypeError):
        return  # the generator only needs well-formed records; the pipeline tests the others
    pools.profiles.append((code, situation, human))
    for key, text in content.items():
        if not isinstance(text, str) or not text.strip():
            continue
        by_major = pools.user if key.startswith("HS") else pools.system
        by_major[code[1:2]].append(text)
        by_major["all"].append(text)


def generate(pools: Pools, dialogues: int, seed: int) -> list[dict[str, Any]]:
    """``dialogues`` records, deterministic for a seed."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    persona = 0
    while len(records) < dialogues:
        persona += 1
        profile = rng.choice(pools.profiles)
        talks = min(rng.randint(1, MAX_TALKS_PER_PERSONA), dialogues - len(records))
        records.extend(_record(rng, pools, profile, persona, talk) for talk in range(1, talks + 1))
    return records


def _record(
    rng: random.Random, pools: Pools, profile: tuple[str, list[str], list[str]], persona: int, talk: int
) -> dict[str, Any]:
    emotion, situation, human = profile
    person = f"Pro_{persona:05d}"
    turns = 3 if rng.random() < THREE_TURN_SHARE else 2
    users, systems = pools.lines("user", emotion), pools.lines("system", emotion)
    content = {}
    for n in range(1, 4):
        content[f"HS{n:02d}"] = rng.choice(users) if n <= turns else ""
        content[f"SS{n:02d}"] = rng.choice(systems) if n <= turns else ""
    return {
        "profile": {
            "persona-id": person,
            "persona": {"persona-id": "_".join([*human, "C01"]), "human": human, "computer": ["C01"]},
            "emotion": {"emotion-id": "_".join([*situation, emotion]), "type": emotion, "situation": situation},
        },
        "talk": {"id": {"profile-id": person, "talk-id": f"{person}_{talk:05d}"}, "content": content},
    }


def write_corpus(records: list[dict[str, Any]], output: Path) -> None:
    """Written like the AIHub file (one indented array), atomically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(records, file, ensure_ascii=False, indent=2)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # mkstemp's private 0600 would outlive the rename
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, required=True, help="how many dialogues (58268 = full corpus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True, metavar="FILE.json")
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help=f"default {DEFAULT_SAMPLE}")
    args = parser.parse_args(argv)
    if args.dialogues < 1:
        parser.error("--dialogues must be at least 1")
    try:
        write_corpus(generate(load_pools(args.sample), args.dialogues, args.seed), args.output)
    except DataError as err:
        print(f"data_prep.synth: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
