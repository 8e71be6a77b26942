"""The xlsx sheets (2021 최종 / 2021 원시 / 2022 원천) and their CSV / TSV exports.

Columns are found by their header, whatever their position: 사람문장N, 시스템응답N or 시스템문장N,
감정_대분류, 감정_소분류, 상황키워드, 연령, 성별. Any other column (번호, value, an unnamed index,
신체질환) is ignored. The sheets carry labels, not codes; labels are mapped back to codes here.

Every sheet of a workbook is searched: a sheet with dialogue columns but no 감정_대분류 (a scratch copy, a
summary) is skipped, and only a workbook without any usable sheet is an error, which names the sheets.

A CSV/TSV row holding bytes that decoded in neither UTF-8 nor CP949 (kept as lone surrogates by the reader)
becomes a ``Malformed`` that carries its physical line numbers; the rest of the file is read as usual.

A sheet has no person id, so each row is its own split group: the random split can then not separate
a person's dialogues, which is the best that can be done without one (pass --validation to control it).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from data_prep.codes import (
    AGES,
    EMOTIONS,
    GENDERS,
    SITUATIONS,
    age_code,
    canonical_major,
    emotion_code,
    gender_code,
    label_key,
    situation_code,
)
from data_prep.errors import DataError
from data_prep.records import Dialogue, Malformed, build_messages, clean_text

HEADER_SEARCH_ROWS = 10
EXPECTED_COLUMNS = "사람문장1, 시스템응답1 (or 시스템문장1) and 감정_대분류"
# What errors="surrogateescape" turns an undecodable byte into; decoded text never holds these otherwise.
UNDECODABLE = re.compile("[\udc80-\udcff]")
UNDECODABLE_DETAIL = "row holds bytes that are neither UTF-8 nor CP949"

_USER_COLUMN = re.compile(r"사람문장(\d+)")
_SYSTEM_COLUMN = re.compile(r"시스템(?:응답|문장)(\d+)")
_META_COLUMNS = {
    "감정대분류": "major",
    "감정소분류": "minor",
    "상황키워드": "situation",
    "연령": "age",
    "성별": "gender",
}


@dataclass
class Columns:
    """Where each field sits in a row (0-based); turns are (user, system) column pairs in turn order."""

    turns: list[tuple[int | None, int | None]]
    meta: dict[str, int] = field(default_factory=dict)


def has_dialogue_header(text: str) -> bool:
    """A cheap content check for text files: does the head mention the first user column?"""
    return "사람문장1" in label_key(text[:8192])


def columns_from_header(row: Sequence[Any]) -> Columns | None:
    """The column layout if this row is a dialogue header (it has 사람문장1), else None."""
    users: dict[int, int] = {}
    systems: dict[int, int] = {}
    meta: dict[str, int] = {}
    for index, cell in enumerate(row):
        key = label_key(str(cell)) if cell is not None else ""
        if match := _USER_COLUMN.fullmatch(key):
            users.setdefault(int(match[1]), index)
        elif match := _SYSTEM_COLUMN.fullmatch(key):
            systems.setdefault(int(match[1]), index)
        elif key in _META_COLUMNS:
            meta.setdefault(_META_COLUMNS[key], index)
    if 1 not in users:
        return None
    numbers = sorted(set(users) | set(systems))
    return Columns(turns=[(users.get(n), systems.get(n)) for n in numbers], meta=meta)


def read_xlsx(data: bytes, source: str, shown: str) -> Iterator[Dialogue]:
    """Every sheet of a workbook whose header has the dialogue and 감정_대분류 columns; DataError if none has."""
    import openpyxl  # lazily: a JSON-only run never pays for it

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises a zoo of types for a damaged workbook
        raise DataError(
            f"{shown} could not be opened as an xlsx workbook ({type(err).__name__}); "
            "re-download it or export the sheet as CSV."
        ) from err
    try:
        found = False
        unlabelled: list[str] = []  # sheets with dialogue columns but no 감정_대분류
        several = len(workbook.worksheets) > 1
        for sheet in workbook.worksheets:
            # The sheet title is in the ids only when there are several sheets: one-sheet ids stay as they were.
            prefix = f"{source}:{sheet.title}" if several else source
            rows = sheet.iter_rows(values_only=True)
            located = _locate_header(rows)
            if located is None:
                continue
            header_number, columns = located
            if "major" not in columns.meta:
                unlabelled.append(sheet.title)
                continue
            found = True
            yield from sheet_dialogues(rows, columns, header_number + 1, source, prefix)
        if not found:
            raise _no_usable_sheet(shown, [sheet.title for sheet in workbook.worksheets], unlabelled)
    finally:
        workbook.close()


def _no_usable_sheet(shown: str, titles: list[str], unlabelled: list[str]) -> DataError:
    if unlabelled:
        which = f"sheet {_quoted(unlabelled)} has" if len(unlabelled) == 1 else f"sheets {_quoted(unlabelled)} have"
        return DataError(
            f"{shown}: {which} 사람문장1 but no 감정_대분류 column; "
            f"expected a sheet with {EXPECTED_COLUMNS}, as in the AIHub workbooks."
        )
    return DataError(
        f"{shown} has no sheet with a header row holding {EXPECTED_COLUMNS} (searched {_quoted(titles)}); "
        "pass the AIHub 감성 대화 workbook (2021 최종/원시 or 2022 원천) or its CSV export."
    )


def _quoted(titles: list[str]) -> str:
    return ", ".join(f"'{title}'" for title in titles)


def read_delimited(text: str, source: str, shown: str) -> Iterator[Dialogue | Malformed]:
    """A CSV or TSV export (the delimiter is whichever of tab and comma the header line uses more).

    A row whose lines hold undecodable bytes is a Malformed naming those lines; ids count rows, not lines."""
    header = header_line(text)
    delimiter = "\t" if header.count("\t") > header.count(",") else ","
    lines = physical_lines(text)
    rows = csv.reader(lines, delimiter=delimiter)
    located = _locate_header(rows)
    if located is None:
        raise DataError(
            f"{shown} has no header row holding {EXPECTED_COLUMNS} in its first {HEADER_SEARCH_ROWS} lines; "
            "export the AIHub sheet with its header row."
        )
    header_number, columns = located
    if "major" not in columns.meta:
        raise DataError(
            f"{shown} has dialogue columns but no 감정_대분류 column; "
            f"expected {EXPECTED_COLUMNS}, as in the AIHub sheets."
        )
    last_line = rows.line_num
    for number, row in enumerate(rows, start=header_number + 1):
        # line_num is the last physical line read: a quoted cell may have carried the row over several.
        first_line, last_line = last_line + 1, rows.line_num
        undecodable = undecodable_lines(lines, first_line, last_line)
        if undecodable:
            yield Malformed(source, f"{source}:{undecodable[0]}", UNDECODABLE_DETAIL, tuple(undecodable))
        elif (dialogue := row_dialogue(row, columns, number, source, source)) is not None:
            yield dialogue


def physical_lines(text: str) -> list[str]:
    """The lines as the csv module reads them (split at \\n, \\r\\n or \\r, endings kept): a text editor's lines."""
    return io.StringIO(text, newline="").readlines()


def undecodable_lines(lines: Sequence[str], first: int = 1, last: int | None = None) -> list[int]:
    """The 1-based numbers of the lines (of first..last) that hold an undecodable byte."""
    last = len(lines) if last is None else last
    return [number for number in range(first, last + 1) if UNDECODABLE.search(lines[number - 1])]


def header_line(text: str) -> str:
    """The first line mentioning 사람문장1 (else the first line) among the first 8 KiB of a text export."""
    # Text cells hold commas freely; the header line's separators are the reliable count.
    lines = text[:8192].splitlines()
    return next((line for line in lines if "사람문장1" in label_key(line)), lines[0] if lines else "")


def _locate_header(rows: Iterator[Sequence[Any]]) -> tuple[int, Columns] | None:
    """Consume rows up to the header: its 1-based row number and layout, or None if the first
    HEADER_SEARCH_ROWS rows hold none. Whether the layout has a 감정_대분류 column is the caller's call."""
    for number, row in enumerate(rows, start=1):
        columns = columns_from_header(row)
        if columns is not None:
            return number, columns
        if number >= HEADER_SEARCH_ROWS:
            return None
    return None


def sheet_dialogues(
    rows: Iterable[Sequence[Any]], columns: Columns, first_number: int, source: str, id_prefix: str
) -> Iterator[Dialogue]:
    """One Dialogue per non-blank row; ids are PREFIX:ROW with the row number as a spreadsheet shows it."""
    for number, row in enumerate(rows, start=first_number):
        dialogue = row_dialogue(row, columns, number, source, id_prefix)
        if dialogue is not None:
            yield dialogue


def row_dialogue(row: Sequence[Any], columns: Columns, number: int, source: str, id_prefix: str) -> Dialogue | None:
    """The Dialogue of row ``number`` (its id is PREFIX:NUMBER), or None for a blank row."""
    if not any(cell is not None and str(cell).strip() for cell in row):
        return None
    meta = columns.meta
    turns = [(_cell(row, user), _cell(row, system)) for user, system in columns.turns]
    messages, truncated = build_messages(turns)
    row_id = f"{id_prefix}:{number}"
    return Dialogue(
        id=row_id,
        messages=messages,
        emotion=emotion_from_labels(_cell(row, meta.get("major")), _cell(row, meta.get("minor"))),
        situation=_situation(_cell(row, meta.get("situation"))),
        persona={
            "age": _canonical(AGES, age_code, _cell(row, meta.get("age"))),
            "gender": _canonical(GENDERS, gender_code, _cell(row, meta.get("gender"))),
        },
        source=source,
        group=row_id,
        truncated=truncated,
    )


def emotion_from_labels(major: str, minor: str) -> dict[str, str | None]:
    """The output emotion for a sheet's (감정_대분류, 감정_소분류); unknown labels are kept, code null."""
    major, minor = clean_text(major), clean_text(minor)
    code = emotion_code(major, minor)
    if code is not None:
        canonical_major_label, fine = EMOTIONS[code]
        return {"code": code, "major": canonical_major_label, "minor": fine}
    return {"code": None, "major": canonical_major(major) or major, "minor": minor or None}


def _situation(label: str) -> dict[str, str | None]:
    label = clean_text(label)
    code = situation_code(label)
    return {"code": code, "label": SITUATIONS[code] if code else (label or None)}


def _canonical(table: dict[str, str], lookup: Any, label: str) -> str | None:
    label = clean_text(label)
    code = lookup(label)
    return table[code] if code else (label or None)


def _cell(row: Sequence[Any], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    value = row[index]
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)
