"""data_prep: every input layout, every kind of dirt, every error path, the split and the synth generator.

All corpus text here is written for these tests (the AIHub text may not be redistributed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import statistics
import subprocess
import sys
import unicodedata
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from data_prep import DataError, codes, prepare, read_any
from data_prep.records import Dialogue, Malformed
from data_prep.synth import Pools, generate, load_pools, write_corpus

ROOT = Path(__file__).resolve().parents[1]

# Written for these tests: short counselling-style lines, numbered so that every dialogue is distinct.
TOPICS = ["회사 일", "시험 준비", "친구 관계", "이사 문제", "건강 검진", "부모님 걱정", "용돈 문제", "동아리 활동"]


def user_line(n: int) -> str:
    return f"{TOPICS[n % len(TOPICS)]} 때문에 요즘 마음이 복잡해. ({n})"


def system_line(n: int) -> str:
    return f"{TOPICS[n % len(TOPICS)]} 때문에 마음이 복잡하시군요. 어떤 점이 가장 힘드세요? ({n})"


def turns_for(n: int, count: int = 3) -> list[tuple[str, str]]:
    return [(user_line(10 * n + t), system_line(10 * n + t)) for t in range(count)]


def record(
    person: int,
    talk: int,
    turns: list[tuple[str, str]],
    code: str = "E31",
    situation: list[str] | None = None,
    human: list[str] | None = None,
) -> dict[str, Any]:
    """A record in the 2022 labeling JSON schema; turns beyond those given are ""."""
    content = {}
    for n in range(1, 4):
        user, system = turns[n - 1] if n <= len(turns) else ("", "")
        content[f"HS{n:02d}"], content[f"SS{n:02d}"] = user, system
    situation = situation or ["S06", "D02"]
    human = human or ["A02", "G02"]
    pid = f"Pro_{person:05d}"
    return {
        "profile": {
            "persona-id": pid,
            "persona": {"persona-id": f"{human[0]}_{human[1]}_C01", "human": human, "computer": ["C01"]},
            "emotion": {"emotion-id": f"{situation[0]}_{situation[1]}_{code}", "type": code, "situation": situation},
        },
        "talk": {"id": {"profile-id": pid, "talk-id": f"{pid}_{talk:05d}"}, "content": content},
    }


def write_json(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def turn_columns(count: int, system: str) -> list[str]:
    return [name for n in range(1, count + 1) for name in (f"사람문장{n}", f"{system}{n}")]


META = ["연령", "성별", "상황키워드", "신체질환", "감정_대분류", "감정_소분류"]
LAYOUTS: dict[str, list[str | None]] = {
    "2021_final": ["번호", *META, *turn_columns(4, "시스템응답")],
    "2021_raw": ["번호", "value", *META, *turn_columns(3, "시스템응답")],
    "2022_source": [None, *META, *turn_columns(3, "시스템문장")],
}


def sheet_row(header: list[str | None], number: int, turns: list[tuple[str, str]], **labels: str) -> list[Any]:
    values: dict[str | None, Any] = {
        None: number,
        "번호": number,
        "value": "원시",
        "연령": labels.get("age", "청년"),
        "성별": labels.get("gender", "여성"),
        "상황키워드": labels.get("situation", "진로,취업,직장"),
        "신체질환": "만성질환 무",
        "감정_대분류": labels.get("major", "불안"),
        "감정_소분류": labels.get("minor", "두려운"),
    }
    for n, (user, system) in enumerate(turns, start=1):
        values[f"사람문장{n}"] = user
        values[f"시스템응답{n}"] = values[f"시스템문장{n}"] = system
    return [values.get(column) for column in header]


def xlsx_bytes(header: list[Any], rows: list[list[Any]], title: str = "Sheet1") -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(header: list[Any], rows: list[list[Any]], delimiter: str = ",") -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["" if cell is None else cell for cell in header])
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return buffer.getvalue()


def read_all(path: Path) -> list[Dialogue | Malformed]:
    return list(read_any(path))


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "data_prep", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(autouse=True)
def _quick_report(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Skip drawing report.png (0.3 s a call) except in the tests that look at it."""
    if "report" not in request.node.name:
        monkeypatch.setattr("data_prep.pipeline.write_report", lambda *args: False)


# ---------------------------------------------------------------- the code tables


def test_code_tables_hold_the_corpus_codes() -> None:
    assert codes.MAJORS == ("분노", "슬픔", "불안", "상처", "당황", "기쁨")
    assert len(codes.EMOTIONS) == 60
    assert codes.EMOTIONS["E45"] == ("상처", "가난한, 불우한")
    assert codes.EMOTIONS["E10"] == ("분노", "분노")
    assert all(codes.major_of(code) == codes.MAJORS[int(code[1]) - 1] for code in codes.EMOTIONS)
    assert codes.major_of("E99") is None and codes.major_of(None) is None
    assert codes.AGES["A02"] == "청년" and codes.GENDERS["G02"] == "여성"
    assert codes.DISEASES == {"D01": "만성질환 유", "D02": "만성질환 무"}
    assert len(codes.SITUATIONS) == 13
    assert codes.SITUATIONS["S12"] == "대인관계(노년)" and codes.SITUATIONS["S13"] == "재정"


@pytest.mark.parametrize(
    ("major", "minor", "code"),
    [
        ("상처", "고립된", "E43"),
        ("당황", "고립된", "E51"),
        ("불안", "혼란스러운", "E34"),
        ("당황", "혼란스러운", "E59"),
        ("", "고립된", None),  # ambiguous without its major
        ("불안 ", " 스트레스받는", "E32"),
        ("상처", "가난한,불우한", "E45"),
        ("상처", "가난한, 불우한", "E45"),
        ("분노", "구역질나는", "E17"),
        ("분노", "", "E10"),
        ("슬픔", "툴툴대는", None),  # contradicts its major
        ("", "툴툴대는", "E11"),
        ("당황", "고립된(당황한)", "E51"),
        (unicodedata.normalize("NFD", "기쁨"), unicodedata.normalize("NFD", "신이 난"), "E68"),
        ("무감정", "", None),
    ],
)
def test_emotion_code_from_labels(major: str, minor: str, code: str | None) -> None:
    assert codes.emotion_code(major, minor) == code


def test_label_lookups_ignore_spacing_and_commas() -> None:
    assert codes.situation_code("진로, 취업, 직장") == "S06"
    assert codes.situation_code("대인관계(부부,자녀)") == "S07"
    assert codes.situation_code("직장,업무 스트레스") == "S10"
    assert codes.situation_code("우주 여행") is None
    assert codes.age_code(" 노년 ") == "A04" and codes.gender_code("남성") == "G01"
    assert codes.disease_code("만성질환유") == "D01"
    assert codes.canonical_major("불안 ") == "불안" and codes.canonical_major("불안함") is None


# ---------------------------------------------------------------- the 2022 JSON


def test_json_record_becomes_one_dialogue(tmp_path: Path) -> None:
    path = write_json(tmp_path / "train.json", [record(7, 3, turns_for(1, 3), code="E59", human=["A04", "G01"])])
    [dialogue] = read_all(path)
    assert isinstance(dialogue, Dialogue)
    assert dialogue.id == "Pro_00007_00003"
    assert dialogue.group == "Pro_00007"  # the person, not the A04_G01_C01 category
    assert dialogue.source == "train.json"
    assert [m["role"] for m in dialogue.messages] == ["user", "assistant"] * 3
    assert dialogue.messages[0]["content"] == user_line(10)
    assert dialogue.emotion == {"code": "E59", "major": "당황", "minor": "혼란스러운"}
    assert dialogue.situation == {"code": "S06", "label": "진로,취업,직장"}
    assert dialogue.persona == {"age": "노년", "gender": "남성"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_json_in_any_encoding_the_exports_use(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "enc.json"
    path.write_bytes(json.dumps([record(1, 1, turns_for(4))], ensure_ascii=False).encode(encoding))
    [dialogue] = read_all(path)
    assert dialogue.messages[0]["content"] == user_line(40)


def test_turn_rules(tmp_path: Path) -> None:
    u, s = user_line, system_line
    records = [
        record(1, 1, [(u(1), s(1)), (u(2), s(2))]),  # the usual two-turn dialogue, third turn ""
        record(2, 1, [(u(3), s(3)), (u(4), "")]),  # a user line with no reply is dropped
        record(3, 1, [(u(5), s(5)), ("", s(6)), (u(7), s(7))]),  # no user line: the dialogue ends there
        record(4, 1, [(u(8), ""), (u(9), s(9))]),  # nothing complete before the gap
        record(5, 1, [("  ", " "), ("", "")]),
    ]
    dialogues = read_all(write_json(tmp_path / "t.json", records))
    assert [len(d.messages) for d in dialogues] == [4, 2, 2, 0, 0]
    assert [d.truncated for d in dialogues] == [False, True, True, True, False]
    assert dialogues[2].messages[-1] == {"role": "assistant", "content": s(5)}

    stats = prepare([tmp_path / "t.json"], tmp_path / "out", val_ratio=0, quiet=True)
    assert stats["dropped"]["no_complete_turn"] == 2
    assert stats["turns"] == {"1": 2, "2": 1}
    assert stats["truncated"] == 2


def test_text_is_nfc_stripped_and_collapsed(tmp_path: Path) -> None:
    user = unicodedata.normalize("NFD", "  시험이   코앞인데\t공부가\n안 돼.  ")
    [dialogue] = read_all(write_json(tmp_path / "nfd.json", [record(1, 1, [(user, " 걱정이 많으시겠어요. ")])]))
    assert dialogue.messages[0]["content"] == "시험이 코앞인데 공부가 안 돼."
    assert dialogue.messages[1]["content"] == "걱정이 많으시겠어요."
    assert unicodedata.is_normalized("NFC", dialogue.messages[0]["content"])


def test_unknown_json_codes_are_kept_not_dropped(tmp_path: Path) -> None:
    path = write_json(tmp_path / "odd.json", [record(1, 1, turns_for(1), code="E99", situation=["S77", "D02"])])
    [dialogue] = read_all(path)
    assert dialogue.emotion == {"code": None, "major": "E99", "minor": None}
    assert dialogue.situation == {"code": None, "label": "S77"}
    assert len(dialogue.messages) == 6


def test_malformed_records_are_skipped_and_counted(tmp_path: Path) -> None:
    good = record(1, 1, turns_for(1))
    no_talk = {"profile": good["profile"]}
    content_not_dict = json.loads(json.dumps(good))
    content_not_dict["talk"]["content"] = ["어제", "오늘"]
    number_text = json.loads(json.dumps(good))
    number_text["talk"]["content"]["HS01"] = 42
    type_not_str = json.loads(json.dumps(good))
    type_not_str["profile"]["emotion"]["type"] = ["E31"]
    path = write_json(
        tmp_path / "dirty.json", [good, "문자열", 3, no_talk, content_not_dict, number_text, type_not_str]
    )

    items = read_all(path)
    assert [type(item).__name__ for item in items] == ["Dialogue"] + ["Malformed"] * 6
    assert items[1].where == "dirty.json:2"

    stats = prepare([path], tmp_path / "out", val_ratio=0, quiet=True)
    assert stats["read"] == 7 and stats["kept"] == 1 and stats["dropped"]["malformed"] == 6
    assert stats["malformed_detail"]["missing key 'talk'"] == 1
    assert stats["malformed_detail"]["'content' is a list, expected dict"] == 1
    assert stats["malformed_detail"]["talk.content.HS01 is a int, expected str"] == 1


# ---------------------------------------------------------------- the sheets


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_xlsx_layout(tmp_path: Path, layout: str) -> None:
    header = LAYOUTS[layout]
    turns = 4 if layout == "2021_final" else 3
    rows = [
        sheet_row(header, 1, turns_for(1, turns), major="상처", minor="고립된"),
        sheet_row(header, 2, turns_for(2, 2), major="당황", minor="고립된", age="노년", gender="남성"),
        [None] * len(header),  # trailing blank rows are not records
    ]
    path = tmp_path / f"{layout}.xlsx"
    path.write_bytes(xlsx_bytes(header, rows))
    first, second = read_all(path)
    assert first.id == f"{layout}.xlsx:2" and second.id == f"{layout}.xlsx:3"
    assert len(first.messages) == 2 * turns and len(second.messages) == 4
    assert first.messages[-1]["content"] == system_line(10 + turns - 1)
    assert first.emotion == {"code": "E43", "major": "상처", "minor": "고립된"}
    assert second.emotion == {"code": "E51", "major": "당황", "minor": "고립된"}
    assert first.situation == {"code": "S06", "label": "진로,취업,직장"}
    assert second.persona == {"age": "노년", "gender": "남성"}
    assert first.group != second.group


def test_xlsx_dirt_headers_labels_and_cells(tmp_path: Path) -> None:
    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731
    header: list[Any] = [" 번호", nfd("연령 "), "성별", " 상황키워드", "감정_대분류 ", nfd("감정_소분류"), "메모"]
    header += [" 사람문장1", "시스템응답1 ", nfd("사람문장2"), nfd("시스템응답2")]
    row = [1, "청년 ", " 여성", "연애, 결혼, 출산", "불안 ", " 혼란스러운 ", "무시되는 열"]
    row += [f"  {nfd(user_line(1))}  ", system_line(1), user_line(2), f"{system_line(2)}\n"]
    path = tmp_path / "dirty.xlsx"
    path.write_bytes(xlsx_bytes(header, [row]))
    [dialogue] = read_all(path)
    assert dialogue.emotion == {"code": "E34", "major": "불안", "minor": "혼란스러운"}
    assert dialogue.situation == {"code": "S05", "label": "연애,결혼,출산"}
    assert dialogue.persona == {"age": "청년", "gender": "여성"}
    assert [m["content"] for m in dialogue.messages] == [user_line(1), system_line(1), user_line(2), system_line(2)]


def test_unknown_sheet_labels_are_kept_with_null_codes(tmp_path: Path) -> None:
    header = LAYOUTS["2022_source"]
    row = sheet_row(header, 0, turns_for(1), major="무덤덤 ", minor="", situation="우주 여행", age="미상")
    path = tmp_path / "unknown.csv"
    path.write_text(csv_text(header, [row]), encoding="utf-8")
    [dialogue] = read_all(path)
    assert dialogue.emotion == {"code": None, "major": "무덤덤", "minor": None}
    assert dialogue.situation == {"code": None, "label": "우주 여행"}
    assert dialogue.persona["age"] == "미상"


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("utf-8", ","), ("cp949", ","), ("utf-8", "\t"), ("cp949", "\t"), ("utf-16", "\t")],
)
def test_csv_and_tsv_exports(tmp_path: Path, encoding: str, delimiter: str) -> None:
    header = LAYOUTS["2021_raw"]
    rows = [
        sheet_row(
            header,
            1,
            [(user_line(1), "가난하다는 말, 그 말이 아프게 들렸군요."), *turns_for(2, 1)],
            major="상처",
            minor="가난한, 불우한",
            situation="재정,은퇴,노후준비",
        ),
        sheet_row(header, 2, turns_for(3, 3), major="당황", minor="혼란스러운", situation="대인관계(부부, 자녀)"),
    ]
    path = tmp_path / ("export.tsv" if delimiter == "\t" else "export.csv")
    path.write_bytes(csv_text(header, rows, delimiter).encode(encoding))
    first, second = read_all(path)
    assert first.emotion == {"code": "E45", "major": "상처", "minor": "가난한, 불우한"}
    assert first.messages[1]["content"] == "가난하다는 말, 그 말이 아프게 들렸군요."
    assert first.situation["code"] == "S08" and second.situation["code"] == "S07"
    assert second.emotion["code"] == "E59" and len(second.messages) == 6
    assert second.id == f"{path.name}:3"


def test_the_same_dialogue_in_json_and_csv_is_one_dialogue(tmp_path: Path) -> None:
    turns = turns_for(5, 2)
    json_path = write_json(tmp_path / "a.json", [record(1, 1, turns)])
    header = LAYOUTS["2022_source"]
    padded = [(f" {user} ", unicodedata.normalize("NFD", system)) for user, system in turns]
    csv_path = tmp_path / "b.csv"
    csv_path.write_text(csv_text(header, [sheet_row(header, 0, padded)]), encoding="utf-8-sig")
    stats = prepare([json_path, csv_path], tmp_path / "out", val_ratio=0, quiet=True)
    assert stats["kept"] == 1 and stats["dropped"]["duplicate"] == 1
    assert stats["files"] == {"a.json": 1, "b.csv": 1}


# ---------------------------------------------------------------- zips and file names


def _zip_with_legacy_name(members: dict[str, bytes], legacy: dict[str, bytes]) -> bytes:
    """A zip whose `legacy` members have cp949 names without the UTF-8 flag, as Windows tools write them."""
    placeholders = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
        for number, (name, payload) in enumerate(legacy.items()):
            raw = name.encode("cp949")
            placeholder = f"{number}".encode().ljust(len(raw), b"_")
            placeholders[placeholder] = raw
            archive.writestr(placeholder.decode(), payload)
    data = buffer.getvalue()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder) == 2  # local header and central directory
        data = data.replace(placeholder, raw)
    return data


def test_zip_of_json_and_xlsx_detected_by_content(tmp_path: Path) -> None:
    json_name = unicodedata.normalize("NFD", "라벨링데이터/감성대화_Training.json")
    xlsx_name = "원천데이터/감성대화_원천.xlsx"
    header = LAYOUTS["2022_source"]
    data = _zip_with_legacy_name(
        {
            json_name: json.dumps([record(1, 1, turns_for(1)), record(1, 2, turns_for(2))]).encode(),
            "manual.pdf": b"%PDF-1.4 not a corpus",
            "__MACOSX/._x": b"\x00\x05\x16\x07",
        },
        {xlsx_name: xlsx_bytes(header, [sheet_row(header, 0, turns_for(3))])},
    )
    path = tmp_path / "018.감성대화.zip"
    path.write_bytes(data)
    dialogues = read_all(path)
    assert [d.source for d in dialogues] == [
        f"018.감성대화.zip!{unicodedata.normalize('NFC', json_name)}",
        f"018.감성대화.zip!{unicodedata.normalize('NFC', json_name)}",
        f"018.감성대화.zip!{xlsx_name}",
    ]
    assert dialogues[2].id == f"018.감성대화.zip!{xlsx_name}:2"
    assert [len(d.messages) for d in dialogues] == [6, 6, 6]


def test_nfd_file_name_found_by_its_nfc_spelling(tmp_path: Path) -> None:
    name = "감성대화말뭉치(최종데이터)_Training.json"
    write_json(tmp_path / unicodedata.normalize("NFD", name), [record(1, 1, turns_for(1))])
    [dialogue] = read_all(tmp_path / unicodedata.normalize("NFC", name))
    assert dialogue.source == unicodedata.normalize("NFC", name)


# ---------------------------------------------------------------- dedupe, leakage, stats


def _dirty_corpus(tmp_path: Path) -> tuple[Path, Path]:
    train = [record(p, t, turns_for(10 * p + t), code=c) for p, c in enumerate(["E31", "E12", "E64"]) for t in range(4)]
    train.append(record(9, 1, turns_for(0)))  # duplicate of person 0, talk 0
    train.append(record(9, 2, turns_for(100)))  # also in validation: leakage
    train.append(record(9, 3, [(user_line(1), "")]))  # no complete turn
    train.append({"talk": "깨진 레코드"})  # malformed
    validation = [record(50, 1, turns_for(100)), record(51, 1, turns_for(101)), record(51, 2, turns_for(101))]
    return write_json(tmp_path / "train.json", train), write_json(tmp_path / "valid.json", validation)


def test_leakage_stays_in_validation_and_stats_add_up(tmp_path: Path) -> None:
    train_path, valid_path = _dirty_corpus(tmp_path)
    out = tmp_path / "out"
    stats = prepare([train_path], out, validation=[valid_path], quiet=True)
    assert stats["read"] == 16 + 3
    assert stats["dropped"] == {"malformed": 1, "no_complete_turn": 1, "duplicate": 2, "leakage": 1}
    assert stats["read"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["splits"] == {"train": 12, "validation": 2}
    assert stats["files"] == {"valid.json": 3, "train.json": 16}

    train, valid = jsonl(out / "train.jsonl"), jsonl(out / "validation.jsonl")
    assert len(train) == 12 and len(valid) == 2
    train_texts = {tuple(m["content"] for m in d["messages"]) for d in train}
    valid_texts = {tuple(m["content"] for m in d["messages"]) for d in valid}
    assert not train_texts & valid_texts
    assert "Pro_00009_00002" not in {d["id"] for d in train}
    assert json.loads((out / "stats.json").read_text(encoding="utf-8")) == stats


def test_stats_describe_what_was_kept(tmp_path: Path) -> None:
    train_path, valid_path = _dirty_corpus(tmp_path)
    out = tmp_path / "out"
    stats = prepare([train_path], out, validation=[valid_path], quiet=True)
    assert stats["emotion_major"] == {"분노": 4, "불안": 6, "기쁨": 4}
    assert stats["emotion_major_by_split"]["validation"] == {"불안": 2}
    assert stats["turns"] == {"3": 14}
    kept = jsonl(out / "train.jsonl") + jsonl(out / "validation.jsonl")
    for role in ("user", "assistant"):
        lengths = sorted(len(m["content"]) for d in kept for m in d["messages"] if m["role"] == role)
        assert len(lengths) == 42
        assert stats["chars"][role] == {
            "mean": round(statistics.mean(lengths), 2),
            "median": statistics.median(lengths),
            "p95": lengths[math.ceil(0.95 * 42) - 1],
            "max": max(lengths),
        }


def test_output_record_schema(tmp_path: Path) -> None:
    path = write_json(tmp_path / "one.json", [record(1, 1, turns_for(1, 2), code="E45", human=["A01", "G01"])])
    prepare([path], tmp_path / "out", val_ratio=0, quiet=True)
    line = (tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8")
    assert "\\u" not in line and line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {
        "id": "Pro_00001_00001",
        "messages": [
            {"role": "user", "content": user_line(10)},
            {"role": "assistant", "content": system_line(10)},
            {"role": "user", "content": user_line(11)},
            {"role": "assistant", "content": system_line(11)},
        ],
        "emotion": {"code": "E45", "major": "상처", "minor": "가난한, 불우한"},
        "situation": {"code": "S06", "label": "진로,취업,직장"},
        "persona": {"age": "청소년", "gender": "남성"},
        "source": "one.json",
    }


def test_expand_prefixes_writes_one_sample_per_assistant_turn(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", [record(1, 1, turns_for(1, 3)), record(2, 1, turns_for(2, 2))])
    stats = prepare([path], tmp_path / "out", val_ratio=0, expand_prefixes=True, quiet=True)
    samples = jsonl(tmp_path / "out" / "train.jsonl")
    assert [s["id"] for s in samples] == [
        "Pro_00001_00001#1", "Pro_00001_00001#2", "Pro_00001_00001#3", "Pro_00002_00001#1", "Pro_00002_00001#2",
    ]  # fmt: skip
    assert [len(s["messages"]) for s in samples] == [2, 4, 6, 2, 4]
    assert samples[1]["messages"] == samples[2]["messages"][:4]
    assert all(s["messages"][-1]["role"] == "assistant" for s in samples)
    assert stats["kept"] == 2 and stats["lines"] == {"train": 5, "validation": 0}


# ---------------------------------------------------------------- the random split


def _persona_corpus(tmp_path: Path, persons: int = 600) -> Path:
    rng = random.Random(3)
    majors = ["E11", "E24", "E31", "E42", "E56", "E63"]
    weights = [1, 2, 3, 4, 5, 6]  # unequal strata, as in the corpus
    records = []
    for person in range(persons):
        code = rng.choices(majors, weights)[0]
        records += [record(person, t, turns_for(10 * person + t, 2), code=code) for t in range(rng.randint(1, 4))]
    return write_json(tmp_path / "persons.json", records)


def test_split_keeps_persons_whole_and_strata_balanced(tmp_path: Path) -> None:
    path = _persona_corpus(tmp_path)
    stats = prepare([path], tmp_path / "out", val_ratio=0.2, seed=7, quiet=True)
    train, valid = jsonl(tmp_path / "out" / "train.jsonl"), jsonl(tmp_path / "out" / "validation.jsonl")
    person = lambda d: d["id"].rsplit("_", 1)[0]  # noqa: E731
    assert not {person(d) for d in train} & {person(d) for d in valid}
    assert len(train) + len(valid) == stats["kept"]
    assert abs(len(valid) / stats["kept"] - 0.2) < 0.01
    by_split = stats["emotion_major_by_split"]
    for major, total in stats["emotion_major"].items():
        assert abs(by_split["validation"].get(major, 0) / total - 0.2) < 0.05, major


def test_split_is_deterministic_per_seed_and_changes_with_it(tmp_path: Path) -> None:
    path = _persona_corpus(tmp_path, persons=200)
    first = prepare([path], tmp_path / "a", seed=1, quiet=True)
    prepare([path], tmp_path / "b", seed=1, quiet=True)
    prepare([path], tmp_path / "c", seed=2, quiet=True)
    for name in ("train.jsonl", "validation.jsonl", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "validation.jsonl").read_bytes() != (tmp_path / "c" / "validation.jsonl").read_bytes()
    assert first["splits"]["validation"] > 0


def test_small_corpus_of_large_groups_still_gets_its_validation_share(tmp_path: Path) -> None:
    # Five strata of three persons with three talks: no stratum's own share (0.9) fits one person,
    # but the corpus's (0.1 x 45 = 4.5) does.
    codes_by_person = ["E13", "E21", "E39", "E47", "E55"] * 3
    records = [record(p, t, turns_for(10 * p + t), code=c) for p, c in enumerate(codes_by_person) for t in range(3)]
    stats = prepare([write_json(tmp_path / "small.json", records)], tmp_path / "out", val_ratio=0.1, quiet=True)
    assert stats["splits"]["validation"] in (3, 6)


def test_val_ratio_zero_puts_everything_in_train(tmp_path: Path) -> None:
    path = _persona_corpus(tmp_path, persons=50)
    stats = prepare([path], tmp_path / "out", val_ratio=0, quiet=True)
    assert stats["splits"] == {"train": stats["kept"], "validation": 0}
    assert (tmp_path / "out" / "validation.jsonl").read_bytes() == b""


def test_bad_val_ratio_is_a_data_error(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", [record(1, 1, turns_for(1))])
    with pytest.raises(DataError, match="--val-ratio"):
        prepare([path], tmp_path / "out", val_ratio=1.0)


# ---------------------------------------------------------------- output directory


def test_output_is_replaced_only_after_success(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", [record(1, 1, turns_for(1)), record(2, 1, turns_for(2))])
    out = tmp_path / "out"
    prepare([path], out, val_ratio=0, quiet=True)
    before = (out / "train.jsonl").read_bytes()
    with pytest.raises(DataError):
        prepare([path, tmp_path / "missing.json"], out, val_ratio=0, quiet=True)
    assert (out / "train.jsonl").read_bytes() == before

    write_json(path, [record(3, 1, turns_for(3))])
    prepare([path], out, val_ratio=0, quiet=True)
    assert [d["id"] for d in jsonl(out / "train.jsonl")] == ["Pro_00003_00001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.json"]  # no staging left behind


def test_refuses_to_replace_a_directory_it_did_not_write(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", [record(1, 1, turns_for(1))])
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="did not write"):
        prepare([path], tmp_path / "precious", quiet=True)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------- the command line


def test_cli_writes_everything_and_a_report(tmp_path: Path) -> None:
    train_path, valid_path = _dirty_corpus(tmp_path)
    out = tmp_path / "nested" / "out"
    result = run_cli("--input", str(train_path), "--validation", str(valid_path), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "Glyph" not in result.stderr and "Traceback" not in result.stderr
    assert "read 19 records, kept 14 dialogues" in result.stdout and "leakage 1" in result.stdout
    assert str(out) in result.stdout
    written = ["report.png", "stats.json", "train.jsonl", "validation.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == [".gonggam-output.json", *written]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "report.png").stat().st_size > 20_000

    quiet = run_cli("--input", str(train_path), "--output", str(out), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_report_draws_without_warnings(tmp_path: Path) -> None:
    import matplotlib.figure  # noqa: F401  imported first: only warnings from drawing are under test

    from data_prep.report import write_report
    from data_prep.stats import Lengths

    stats = {
        "kept": 3,
        "read": 4,
        "turns": {"2": 1, "3": 2},
        "emotion_major_by_split": {"train": {"불안": 2, "무덤덤": 1}, "validation": {"기쁨": 1}},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert write_report(tmp_path / "r.png", stats, Lengths(user=[10, 20, 31], assistant=[40, 41]))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def _error_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (input path, a phrase its message must hold)."""
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('[{"profile": ', encoding="utf-8")
    no_records = write_json(tmp_path / "numbers.json", [1, 2, 3])
    text = tmp_path / "notes.txt"
    text.write_text("이 파일은 말뭉치가 아닙니다.\n", encoding="utf-8")
    other_csv = tmp_path / "other.csv"
    other_csv.write_text("이름,나이\n철수,20\n", encoding="utf-8")
    no_major = tmp_path / "no_major.xlsx"
    no_major.write_bytes(xlsx_bytes(["사람문장1", "시스템응답1"], [[user_line(1), system_line(1)]]))
    no_header = tmp_path / "no_header.xlsx"
    no_header.write_bytes(xlsx_bytes(["이름", "나이"], [["철수", 20]]))
    old_xls = tmp_path / "old.xls"
    old_xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    empty_zip = tmp_path / "images.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8\xff\xe0 jpeg")
    (tmp_path / "folder").mkdir()
    return {
        "missing": (tmp_path / "없는파일.json", "does not exist"),
        "directory": (tmp_path / "folder", "is a directory"),
        "invalid json": (bad_json, "not valid JSON"),
        "json without records": (no_records, "no dialogue records"),
        "unrecognised text": (text, "not a recognised corpus file"),
        "csv without dialogue columns": (other_csv, "not a recognised corpus file"),
        "sheet without 감정_대분류": (no_major, "no 감정_대분류 column"),
        "sheet without dialogue columns": (no_header, "no sheet with a header row"),
        "old xls": (old_xls, "save it as .xlsx"),
        "zip without corpus": (empty_zip, "holds no corpus file"),
    }


def test_cli_errors_are_one_sentence_exit_2_and_no_output(tmp_path: Path) -> None:
    good = write_json(tmp_path / "good.json", [record(1, 1, turns_for(1))])
    for name, (path, phrase) in _error_inputs(tmp_path).items():
        out = tmp_path / "out"
        result = run_cli("--input", str(good), str(path), "--output", str(out))
        assert result.returncode == 2, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert path.name in lines[0] and phrase in lines[0], (name, lines[0])
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert not out.exists(), name
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], name


def test_cli_bad_flag_exits_2(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", [record(1, 1, turns_for(1))])
    result = run_cli("--input", str(path), "--output", str(tmp_path / "out"), "--val-ratio", "1.5")
    assert result.returncode == 2 and "--val-ratio" in result.stderr and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the synthetic corpus


def _sample(tmp_path: Path) -> Path:
    combos = [("E12", "S01", "A01"), ("E24", "S05", "A02"), ("E37", "S06", "A03"), ("E44", "S09", "A04")]
    combos += [("E53", "S04", "A02"), ("E61", "S12", "A04")]
    records = [
        record(i, 1, turns_for(i, 3 if i % 3 else 2), code=code, situation=[situation, "D02"], human=[age, "G01"])
        for i, (code, situation, age) in enumerate(combos * 5)
    ]
    return write_json(tmp_path / "sample.json", records)


def test_synth_corpus_has_the_real_shape(tmp_path: Path) -> None:
    pools = load_pools(_sample(tmp_path))
    records = generate(pools, 2000, seed=5)
    assert len(records) == 2000
    turns = Counter(sum(1 for n in (1, 2, 3) if r["talk"]["content"][f"HS{n:02d}"]) for r in records)
    assert set(turns) == {2, 3}
    assert abs(turns[3] / 2000 - 0.81) < 0.03
    assert all(r["talk"]["content"]["SS03"] == "" for r in records if not r["talk"]["content"]["HS03"])
    talk_ids = [r["talk"]["id"]["talk-id"] for r in records]
    assert len(set(talk_ids)) == 2000
    persons = Counter(r["profile"]["persona-id"] for r in records)
    assert 1 < sum(persons.values()) / len(persons) < 6
    known = {(code, situation, age) for code, situation, age, *_ in _profile_codes(_sample_records(tmp_path))}
    for r in records:
        emotion = r["profile"]["emotion"]
        assert emotion["emotion-id"] == f"{emotion['situation'][0]}_{emotion['situation'][1]}_{emotion['type']}"
        assert (emotion["type"], emotion["situation"][0], r["profile"]["persona"]["human"][0]) in known
        assert r["talk"]["id"]["talk-id"].startswith(r["profile"]["persona-id"])
    by_person: dict[str, set[str]] = {}
    for r in records:
        by_person.setdefault(r["profile"]["persona-id"], set()).add(r["profile"]["emotion"]["type"])
    assert all(len(types) == 1 for types in by_person.values())  # a person keeps one profile


def _sample_records(tmp_path: Path) -> list[dict[str, Any]]:
    return json.loads((tmp_path / "sample.json").read_text(encoding="utf-8"))


def _profile_codes(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (r["profile"]["emotion"]["type"], r["profile"]["emotion"]["situation"][0], r["profile"]["persona"]["human"][0])
        for r in records
    ]


def test_synth_is_deterministic_and_readable_by_the_pipeline(tmp_path: Path) -> None:
    pools: Pools = load_pools(_sample(tmp_path))
    write_corpus(generate(pools, 500, seed=9), tmp_path / "a.json")
    write_corpus(generate(pools, 500, seed=9), tmp_path / "b.json")
    write_corpus(generate(pools, 500, seed=10), tmp_path / "c.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()
    items = read_all(tmp_path / "a.json")
    assert len(items) == 500 and all(isinstance(d, Dialogue) and len(d.messages) in (4, 6) for d in items)
    assert all(d.emotion["code"] is not None and d.situation["code"] is not None for d in items)


def test_synth_cli(tmp_path: Path) -> None:
    sample = _sample(tmp_path)
    out = tmp_path / "synth.json"
    command = [sys.executable, "-m", "data_prep.synth", "--dialogues", "300", "--seed", "1"]
    result = subprocess.run(
        [*command, "--output", str(out), "--sample", str(sample)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out.read_text(encoding="utf-8"))) == 300
    missing = subprocess.run(
        [*command, "--output", str(out), "--sample", str(tmp_path / "none.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "none.json" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_import_chain_stays_light() -> None:
    """No pandas, openpyxl, matplotlib or tqdm is imported before a run needs it."""
    heavy = ("pandas", "openpyxl", "matplotlib", "tqdm")
    probe = f"import sys, data_prep.__main__; print(sorted(set({heavy!r}) & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("failing", ["second_jsonl", "report"])
def test_a_failure_while_writing_keeps_the_old_output_byte_for_byte(tmp_path: Path, monkeypatch, failing) -> None:
    """The failure comes after the first file is written (not while reading): nothing of the new run may show."""
    import data_prep.pipeline as pipeline

    path = write_json(tmp_path / "x.json", [record(i, 1, turns_for(i)) for i in range(1, 7)])
    out = tmp_path / "out"
    prepare([path], out, val_ratio=0.5, quiet=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_json(path, [record(i, 1, turns_for(i)) for i in range(7, 13)])  # a run that would change every file

    if failing == "second_jsonl":
        real, written = pipeline._write_jsonl, []

        def write_then_fail(target, *args, **kwargs):
            if written:
                raise OSError(28, "No space left on device")
            written.append(target)
            return real(target, *args, **kwargs)

        monkeypatch.setattr(pipeline, "_write_jsonl", write_then_fail)
    else:

        def no_space(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pipeline, "write_report", no_space)
    with pytest.raises(DataError, match="could not write"):
        prepare([path], out, val_ratio=0.5, quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.json"]  # no staging folder left anywhere
