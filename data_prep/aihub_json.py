"""The 2022 labeling JSON: a top-level array of ``{"profile": ..., "talk": ...}`` records.

Codes are kept as the corpus wrote them and their labels looked up in ``codes``. The split group is
``profile["persona-id"]`` (``Pro_03802``), one person; ``profile.persona["persona-id"]``
(``A02_G01_C01``) looks similar but is only the age/gender/computer category, shared by thousands.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_prep.codes import AGES, EMOTIONS, GENDERS, SITUATIONS
from data_prep.records import Dialogue, Malformed, build_messages, clean_text

# Turn keys in order; the corpus has three turns, but nothing here depends on that.
_TURN_KEYS = [(f"HS{n:02d}", f"SS{n:02d}") for n in range(1, 100)]


class RecordError(ValueError):
    """A record with a missing key or a value of the wrong type."""


def looks_like_corpus(corpus: Any) -> bool:
    """True for a top-level array holding at least one object with the record's two keys (or an empty one)."""
    if isinstance(corpus, dict):
        return "talk" in corpus and "profile" in corpus
    if not isinstance(corpus, list):
        return False
    return not corpus or any(isinstance(item, dict) and "talk" in item and "profile" in item for item in corpus)


def dialogues(corpus: Any, source: str) -> Iterator[Dialogue | Malformed]:
    """One Dialogue per record of a parsed corpus (a lone record object counts as a corpus of one)."""
    items = [corpus] if isinstance(corpus, dict) else corpus
    for position, item in enumerate(items, start=1):
        try:
            yield dialogue_from_record(item, position, source)
        except RecordError as err:
            yield Malformed(source, f"{source}:{position}", str(err))


def dialogue_from_record(item: Any, position: int, source: str) -> Dialogue:
    """A Dialogue from one record; raises RecordError for a missing key or a wrong type."""
    if not isinstance(item, dict):
        raise RecordError(f"record is a {type(item).__name__}, not an object")
    profile = _get(item, "profile", dict)
    talk = _get(item, "talk", dict)
    emotion = _get(profile, "emotion", dict)
    ids = _get(talk, "id", dict, required=False) or {}
    talk_id = _get(ids, "talk-id", str, required=False) or f"{source}:{position}"
    person = _get(profile, "persona-id", str, required=False) or _get(ids, "profile-id", str, required=False)
    persona = _get(profile, "persona", dict, required=False) or {}
    messages, truncated = build_messages(_turns(_get(talk, "content", dict)))
    return Dialogue(
        id=talk_id,
        messages=messages,
        emotion=_emotion(_get(emotion, "type", str)),
        situation=_situation(_get(emotion, "situation", list, required=False) or []),
        persona=_persona(_get(persona, "human", list, required=False) or []),
        source=source,
        group=person or talk_id,
        truncated=truncated,
    )


def _get(obj: dict[str, Any], key: str, kind: type, required: bool = True) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing key {key!r}")
        return None
    if not isinstance(value, kind):
        raise RecordError(f"{key!r} is a {type(value).__name__}, expected {kind.__name__}")
    return value


def _turns(content: dict[str, Any]) -> list[tuple[str, str]]:
    turns = []
    for user_key, system_key in _TURN_KEYS:
        if user_key not in content and system_key not in content:
            break
        turns.append((_text(content, user_key), _text(content, system_key)))
    if not turns:
        raise RecordError("talk.content has no HS01/SS01")
    return turns


def _text(content: dict[str, Any], key: str) -> str:
    # null is read as a missing turn, like "" (the corpus's own spelling of one).
    value = content.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"talk.content.{key} is a {type(value).__name__}, expected str")
    return value


def _emotion(type_code: str) -> dict[str, str | None]:
    code = type_code.strip().upper()
    if code in EMOTIONS:
        major, minor = EMOTIONS[code]
        return {"code": code, "major": major, "minor": minor}
    return {"code": None, "major": clean_text(type_code), "minor": None}


def _situation(codes: list[Any]) -> dict[str, str | None]:
    # Written as [S-code, D-code]; pick the S-code wherever it sits.
    for code in codes:
        if isinstance(code, str) and code.strip().upper() in SITUATIONS:
            return {"code": code.strip().upper(), "label": SITUATIONS[code.strip().upper()]}
    unknown = next((c for c in codes if isinstance(c, str) and c.strip().upper().startswith("S")), None)
    return {"code": None, "label": clean_text(unknown) if unknown else None}


def _persona(human: list[Any]) -> dict[str, str | None]:
    age = human[0] if human and isinstance(human[0], str) else None
    gender = human[1] if len(human) > 1 and isinstance(human[1], str) else None
    return {"age": _label(AGES, age), "gender": _label(GENDERS, gender)}


def _label(table: dict[str, str], code: str | None) -> str | None:
    if not code:
        return None
    return table.get(code.strip().upper()) or clean_text(code) or None
