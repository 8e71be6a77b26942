"""data_prep's input defects, each run as a user runs it: ``python -m data_prep`` on files in tmp_path.

Same file on both sides, undecodable CSV lines, split zip downloads, workbooks whose first sheet is not the
corpus, duplicates with disagreeing labels, and the wording of a JSON syntax error.
All corpus text here is written for these tests (the AIHub text may not be redistributed).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_data_prep import LAYOUTS, csv_text, jsonl, record, run_cli, sheet_row, turns_for, write_json

# Stands for a byte that is neither UTF-8 nor CP949 until the text is encoded (then it becomes 0xFF).
BAD = "~BAD~"


def run_ok(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run the command into tmp_path/out; the stats it wrote and its stdout."""
    out = tmp_path / "out"
    result = run_cli(*args, "--output", str(out), "--val-ratio", "0")
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["read"] == stats["kept"] + sum(stats["dropped"].values())
    return stats, result.stdout


def run_error(tmp_path: Path, *args: str) -> str:
    """Run the command expecting a user error: exit 2, one sentence on stderr, no output. The sentence."""
    out = tmp_path / "out"
    result = run_cli(*args, "--output", str(out))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    assert not out.exists()
    return lines[0]


# ---------------------------------------------------------------- 1. one file as --input and --validation


@pytest.mark.parametrize("link", ["same path", "symlink", "hard link"])
def test_one_file_as_input_and_validation_is_refused(tmp_path: Path, link: str) -> None:
    training = write_json(tmp_path / "Training.json", [record(1, 1, turns_for(1)), record(2, 1, turns_for(2))])
    validation = training
    if link == "symlink":
        validation = tmp_path / "Validation.json"
        validation.symlink_to(training)
    elif link == "hard link":
        validation = tmp_path / "Validation.json"
        os.link(training, validation)
    message = run_error(tmp_path, "--input", str(training), "--validation", str(validation))
    assert "--input" in message and "--validation" in message and str(training) in message
    assert "pass the Training file as --input" in message


# ---------------------------------------------------------------- 2. undecodable bytes in a CSV


def _dirty_csv(encoding: str) -> bytes:
    """A CSV export with a bad byte in row 2 (inside a quoted cell's second line) and in row 4.

    Lines: 1 header, 2-3 row 2 (its reply spans two lines), 4 row 3, 5 row 4, 6 row 5, then 20 clean rows.
    """
    header = LAYOUTS["2022_source"]
    rows = [
        sheet_row(header, 0, [(turns_for(1)[0][0], f"첫 줄로 답합니다.\n둘째 줄{BAD}로 이어 갑니다.")]),
        sheet_row(header, 1, turns_for(2)),
        sheet_row(header, 2, [(f"회사에서 {BAD}혼이 났어요.", "많이 속상하셨겠어요.")]),
        sheet_row(header, 3, turns_for(3)),
        *(sheet_row(header, n, turns_for(n)) for n in range(10, 30)),  # keeps the bad lines under 10%
    ]
    return csv_text(header, rows).encode(encoding).replace(BAD.encode(), b"\xff")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_undecodable_csv_lines_are_skipped_and_counted(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "dirty.csv"
    path.write_bytes(_dirty_csv(encoding))
    stats, stdout = run_ok(tmp_path, "--input", str(path))
    assert stats["undecodable_lines"] == {"dirty.csv": [3, 5]}
    assert stats["read"] == 24 and stats["kept"] == 22 and stats["dropped"]["malformed"] == 2
    assert stats["malformed_detail"] == {"row holds bytes that are neither UTF-8 nor CP949": 2}
    kept = jsonl(tmp_path / "out" / "train.jsonl")
    assert [d["id"] for d in kept][:2] == ["dirty.csv:3", "dirty.csv:5"]  # spreadsheet rows, as before
    assert "undecodable lines: 2 in dirty.csv" in stdout


def test_undecodable_byte_in_the_first_row_does_not_hide_the_file(tmp_path: Path) -> None:
    header = LAYOUTS["2021_raw"]
    rows = [sheet_row(header, 1, [(f"{BAD}잠이 안 와요.", "걱정이 많으신가 봐요.")])]
    rows += [sheet_row(header, n, turns_for(n)) for n in range(4, 14)]
    path = tmp_path / "head.csv"
    path.write_bytes(csv_text(header, rows).encode("utf-8").replace(BAD.encode(), b"\xff"))
    stats, _ = run_ok(tmp_path, "--input", str(path))
    assert stats["undecodable_lines"] == {"head.csv": [2]}
    assert stats["kept"] == 10


@pytest.mark.parametrize("where", ["many rows", "header"])
def test_mostly_undecodable_csv_is_refused(tmp_path: Path, where: str) -> None:
    header: list[Any] = list(LAYOUTS["2022_source"])
    rows = [sheet_row(header, n, turns_for(n)) for n in range(1, 6)]
    if where == "many rows":
        rows[1][-1] = rows[3][-1] = f"그랬군요{BAD}."
    else:
        header[1] = f"연령{BAD}"
    path = tmp_path / "broken.csv"
    path.write_bytes(csv_text(header, rows).encode("utf-8").replace(BAD.encode(), b"\xff"))
    message = run_error(tmp_path, "--input", str(path))
    bad = 2 if where == "many rows" else 1
    assert message.endswith(f"{path} is neither UTF-8 nor CP949 text on {bad} of 6 lines; re-export it as UTF-8 CSV.")


# ---------------------------------------------------------------- 3. split zip downloads


def _split_zip(tmp_path: Path, parts: int = 3) -> list[Path]:
    """감성대화.zip (one JSON member, stored) cut into byte parts 감성대화.zip.part0, .part1, ..."""
    corpus = json.dumps([record(p, 1, turns_for(p)) for p in range(1, 31)], ensure_ascii=False).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("라벨링데이터/Training.json", corpus)
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    paths = []
    for number in range(parts):
        path = tmp_path / f"감성대화.zip.part{number}"
        path.write_bytes(data[number * size : (number + 1) * size])
        paths.append(path)
    return paths


@pytest.mark.parametrize("side", ["--input", "--validation"])
def test_split_zip_parts_are_read_as_one_archive(tmp_path: Path, side: str) -> None:
    part0, part1, part2 = _split_zip(tmp_path)
    other = write_json(tmp_path / "other.json", [record(99, 1, turns_for(99))])
    if side == "--input":
        args = ["--input", str(part2), str(other), str(part0), str(part1)]
    else:
        args = ["--input", str(other), "--validation", str(part1), str(part2), str(part0)]
    stats, _ = run_ok(tmp_path, *args)
    member = "감성대화.zip!라벨링데이터/Training.json"
    assert stats["files"] == {member: 30, "other.json": 1}
    assert stats["kept"] == 31 and stats["dropped"]["malformed"] == 0
    split = "train" if side == "--input" else "validation"
    sources = {d["source"] for d in jsonl(tmp_path / "out" / f"{split}.jsonl")}
    assert member in sources


def test_split_zip_with_a_gap_names_the_missing_part(tmp_path: Path) -> None:
    part0, _, part2 = _split_zip(tmp_path)
    message = run_error(tmp_path, "--input", str(part2), str(part0))
    assert "감성대화.zip.part1 is missing" in message
    assert "`cat 감성대화.zip.part0 감성대화.zip.part1 감성대화.zip.part2 > 감성대화.zip`" in message


@pytest.mark.parametrize("given", [(0, 1), (1, 2)], ids=["last part missing", "first part missing"])
def test_split_zip_missing_an_end_is_not_a_whole_zip(tmp_path: Path, given: tuple[int, int]) -> None:
    parts = _split_zip(tmp_path)
    message = run_error(tmp_path, "--input", *(str(parts[n]) for n in given))
    assert f"감성대화.zip.part{given[0]}, 감성대화.zip.part{given[1]} is not a whole zip archive" in message
    assert "`cat 감성대화.zip.part0 감성대화.zip.part1 ... > 감성대화.zip`" in message


def test_split_zip_part_given_alone_asks_for_all_parts(tmp_path: Path) -> None:
    part0 = _split_zip(tmp_path)[0]
    message = run_error(tmp_path, "--input", str(part0))
    assert f"{part0} is one part of a split zip archive" in message
    assert "pass all parts of 감성대화.zip together" in message


# ---------------------------------------------------------------- 4. workbooks with several sheets


def workbook(path: Path, sheets: dict[str, tuple[list[Any], list[list[Any]]]]) -> Path:
    """An xlsx file with one sheet per (title: (header, rows)), in that order."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, (header, rows) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_workbook_sheet_without_labels_is_skipped_for_one_with_them(tmp_path: Path) -> None:
    header = LAYOUTS["2021_final"]
    notes = (["사람문장1", "시스템응답1"], [["메모로 적은 질문이에요.", "메모로 적은 답이에요."]])
    data = ([*header], [sheet_row(header, n, turns_for(n, 4)) for n in (1, 2)])
    path = workbook(tmp_path / "book.xlsx", {"메모": notes, "최종": data})
    stats, _ = run_ok(tmp_path, "--input", str(path))
    assert stats["kept"] == 2
    assert [d["id"] for d in jsonl(tmp_path / "out" / "train.jsonl")] == ["book.xlsx:최종:2", "book.xlsx:최종:3"]


def test_workbook_without_a_usable_sheet_names_its_sheets(tmp_path: Path) -> None:
    unlabelled = (["사람문장1", "시스템응답1"], [["질문이에요.", "답이에요."]])
    no_header = (["이름", "나이"], [["하늘", 20]])
    one = workbook(tmp_path / "one.xlsx", {"Sheet1": unlabelled, "목록": no_header})
    message = run_error(tmp_path, "--input", str(one))
    assert f"{one}: sheet 'Sheet1' has 사람문장1 but no 감정_대분류 column;" in message

    none = workbook(tmp_path / "none.xlsx", {"목록": no_header, "요약": no_header})
    message = run_error(tmp_path, "--input", str(none))
    assert "no sheet with a header row" in message and "(searched '목록', '요약')" in message


# ---------------------------------------------------------------- 5. duplicates whose labels disagree


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_duplicate_label_conflicts_are_counted_and_first_seen_wins(tmp_path: Path, order: tuple[str, str]) -> None:
    turns = turns_for(7)
    files = {
        "a": write_json(tmp_path / "a.json", [record(1, 1, turns, code="E31")]),
        "b": write_json(
            tmp_path / "b.json",
            [
                record(2, 1, turns, code="E12"),  # another emotion
                record(3, 1, turns, code="E12"),  # the labels of the one before it
                record(4, 1, turns, code="E12", human=["A04", "G01"]),  # another persona
                record(5, 1, turns, code="E12", situation=["S01", "D02"]),  # another situation
            ],
        ),
    }
    stats, stdout = run_ok(tmp_path, "--input", *(str(files[name]) for name in order))
    [kept] = jsonl(tmp_path / "out" / "train.jsonl")
    assert stats["kept"] == 1 and stats["dropped"]["duplicate"] == 4
    if order == ("a", "b"):
        assert kept["id"] == "Pro_00001_00001" and kept["emotion"]["code"] == "E31"
        assert stats["duplicate_label_conflict"] == 4
    else:
        assert kept["id"] == "Pro_00002_00001" and kept["emotion"]["code"] == "E12"
        assert stats["duplicate_label_conflict"] == 3  # persona, situation, and a.json's emotion
    assert f"label conflicts: {stats['duplicate_label_conflict']} duplicates" in stdout


# ---------------------------------------------------------------- 6. JSON syntax errors read naturally


def test_unterminated_json_string_message_reads_naturally(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"profile": "잘린 문자열', encoding="utf-8")
    message = run_error(tmp_path, "--input", str(path))
    assert "(Unterminated string starting at line 1, column 14);" in message
    assert "at at" not in message
