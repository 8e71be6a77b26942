"""Read any AIHub input, recognised by its content rather than its name (names may arrive NFD or
cp437-mangled out of a zip): the 2022 JSON, the xlsx sheets, CSV/TSV exports, and zips holding them.

``read_any(path)`` yields a ``Dialogue`` per record, or a ``Malformed`` note for a record that could not
be used; a file that cannot be used at all raises ``DataError`` with one sentence saying why.

``group_inputs(paths)`` turns the paths given on the command line into ``Input`` s: one per file, except
that the parts of a split AIHub download (``X.zip.part0``, ``X.zip.part1``, ...: plain byte splits that
``cat`` joins) given together are one Input, read as the archive ``X.zip`` they join into. Parts are
recognised by that name, the one place where a name matters: nothing in a part's bytes says its number.

A CSV/TSV export with a few bytes that are neither UTF-8 nor CP949 is still read: those bytes are kept as
lone surrogates (errors="surrogateescape") and ``sheets.read_delimited`` skips the rows holding them. A file
where more than ``MAX_UNDECODABLE_SHARE`` of the lines, or the header line, do not decode is refused.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from data_prep import aihub_json, sheets
from data_prep.errors import DataError
from data_prep.records import Dialogue, Malformed

EXPECTED_INPUT = (
    "the AIHub 감성 대화 JSON (a top-level array of dialogue records), an xlsx sheet or CSV/TSV export "
    "with 사람문장1 / 시스템응답1 columns, or a .zip holding them"
)
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TEXT_ENCODINGS = ("utf-8-sig", "cp949")
# Archive clutter that is never a corpus file.
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = (".DS_Store", "Thumbs.db")
_SPLIT_PART = re.compile(r"(?P<archive>.+\.zip)\.part(?P<number>\d+)", re.IGNORECASE)
# More undecodable lines than this share means another encoding, not a few damaged bytes.
MAX_UNDECODABLE_SHARE = 0.10


@dataclass(frozen=True)
class Input:
    """One thing to read: a file, or the parts of a split zip, read joined as one archive."""

    paths: tuple[Path, ...]  # a split zip's parts in number order
    name: str  # the records' source: the file's NFC name, or the joined archive's (X.zip)
    shown: str  # how messages name it
    split: bool = False

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.paths)


def group_inputs(paths: Iterable[str | Path]) -> list[Input]:
    """The Inputs behind some paths, in the order given; a split zip sits where its first-given part was.

    DataError for a path that is not a file, a part given twice, or a gap in a split zip's part numbers
    (a missing last part only shows when the joined bytes are read, see ``read_input``)."""
    slots: list[Input | Path] = []  # a Path stands for the split archive of that (joined) name
    parts: dict[Path, dict[int, Path]] = {}
    for path in map(resolve_input, paths):
        name = unicodedata.normalize("NFC", path.name)
        match = _SPLIT_PART.fullmatch(name)
        if match is None:
            slots.append(Input((path,), name, str(path)))
            continue
        joined, number = path.parent / match["archive"], int(match["number"])
        if joined not in parts:
            parts[joined] = {}
            slots.append(joined)
        if number in parts[joined]:
            raise DataError(
                f"part {number} of {joined.name} was given twice ({parts[joined][number]}, {path}); "
                "pass each part once."
            )
        parts[joined][number] = path
    return [slot if isinstance(slot, Input) else _split_archive(slot, parts[slot]) for slot in slots]


def _split_archive(joined: Path, parts: dict[int, Path]) -> Input:
    numbers = sorted(parts)
    # AIHub numbers parts from 0, other splitters from 1; a missing part0 shows when the joined bytes are read.
    first = 1 if numbers[0] == 1 else 0
    missing = [f"{joined.name}.part{n}" for n in range(first, numbers[-1]) if n not in parts]
    if missing and len(numbers) > 1:
        every = " ".join(f"{joined.name}.part{n}" for n in range(first, numbers[-1] + 1))
        raise DataError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from the split archive "
            f"{joined} (given: {', '.join(parts[n].name for n in numbers)}); pass every part together, "
            f"or join them with `cat {every} > {joined.name}`."
        )
    return Input(tuple(parts[n] for n in numbers), joined.name, str(joined), split=True)


def read_input(given: Input) -> Iterator[Dialogue | Malformed]:
    """Every record of one Input (a zip yields the records of each corpus file inside it)."""
    data = b"".join(_read_file(path) for path in given.paths)
    if not given.split:
        yield from read_bytes(data, given.name, given.shown)
        return
    if not _is_whole_zip(data):
        raise _broken_split(given)
    yield from _read_zip(data, given.name, given.shown)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"{path} could not be read ({err.strerror}); check its permissions.") from err


def _is_whole_zip(data: bytes) -> bool:
    # The central directory at the end says where each member starts: a missing last part loses the
    # directory, a missing first or middle part moves the members away from where it says they are.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
    except zipfile.BadZipFile:
        return False
    return all(offset >= 0 and data[offset : offset + 4] == b"PK\x03\x04" for offset in offsets)


def _broken_split(given: Input) -> DataError:
    join = f"join them with `cat {given.name}.part0 {given.name}.part1 ... > {given.name}`"
    if len(given.paths) == 1:
        return DataError(
            f"{given.paths[0]} is one part of a split zip archive, not a whole zip; "
            f"pass all parts of {given.name} together, or {join}."
        )
    return DataError(
        f"{given.shown} joined from {', '.join(path.name for path in given.paths)} is not a whole zip archive "
        f"(a part is missing or damaged); pass every part together, or {join}."
    )


def resolve_input(path: str | Path) -> Path:
    """The existing file behind a path, trying its NFC and NFD spellings; DataError otherwise."""
    path = Path(path)
    for candidate in (path, *(Path(unicodedata.normalize(form, str(path))) for form in ("NFC", "NFD"))):
        if candidate.is_file():
            return candidate
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass the files inside it ({EXPECTED_INPUT}).")
    raise DataError(f"{path} does not exist; pass the path of {EXPECTED_INPUT}.")


def read_any(path: str | Path) -> Iterator[Dialogue | Malformed]:
    """Every record of one input file (a zip yields the records of each corpus file inside it)."""
    for given in group_inputs([path]):
        yield from read_input(given)


def read_bytes(data: bytes, source: str, shown: str) -> Iterator[Dialogue | Malformed]:
    """Records of one file's bytes. ``source`` goes into the records; ``shown`` names it in errors."""
    kind = sniff(data)
    if kind == "json":
        yield from _read_json(data, source, shown)
    elif kind == "xlsx":
        yield from sheets.read_xlsx(data, source, shown)
    elif kind == "zip":
        yield from _read_zip(data, source, shown)
    elif kind == "table":
        yield from sheets.read_delimited(_decode_table(data, shown), source, shown)
    elif kind == "xls":
        raise DataError(f"{shown} is an old binary .xls workbook; open it and save it as .xlsx or CSV.")
    elif not data:
        raise DataError(f"{shown} is empty; expected {EXPECTED_INPUT}.")
    else:
        raise DataError(f"{shown} is not a recognised corpus file; expected {EXPECTED_INPUT}.")


def sniff(data: bytes) -> str | None:
    """'json', 'xlsx', 'zip', 'table' (CSV/TSV with a dialogue header), 'xls', or None."""
    if data.startswith(b"PK"):
        return "xlsx" if _is_xlsx(data) else "zip"
    if data.startswith(_OLE2_MAGIC):
        return "xls"
    stripped = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"[", b"{"):
        return "json"
    if sheets.has_dialogue_header(_decode_head(data[:65536])):
        return "table"
    return None


def _is_xlsx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return False
    return "xl/workbook.xml" in names


def _decode_head(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    # A stray bad byte must not hide the header, so decode leniently and take the encoding that fits best
    # (UTF-8 on a tie, as for a clean file). final=False: the head may end inside a multibyte character.
    decoded = [
        codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(head, final=False)
        for encoding in _TEXT_ENCODINGS
    ]
    return min(decoded, key=lambda text: len(sheets.UNDECODABLE.findall(text)))


def _decode_table(data: bytes, shown: str) -> str:
    """A CSV/TSV export's text: strict UTF-8 (with or without BOM), strict CP949, else whichever of the two
    leaves fewer lines undecodable, their bad bytes kept as lone surrogates for the reader to skip."""
    try:
        return _decode(data, shown)
    except DataError:
        pass
    decoded = [data.decode(encoding, errors="surrogateescape") for encoding in _TEXT_ENCODINGS]
    text = min(decoded, key=lambda text: len(sheets.undecodable_lines(sheets.physical_lines(text))))
    lines = sheets.physical_lines(text)
    undecodable = len(sheets.undecodable_lines(lines))
    nonblank = sum(1 for line in lines if line.strip())
    if undecodable > MAX_UNDECODABLE_SHARE * nonblank or sheets.UNDECODABLE.search(sheets.header_line(text)):
        raise DataError(
            f"{shown} is neither UTF-8 nor CP949 text on {undecodable} of {nonblank} lines; re-export it as UTF-8 CSV."
        )
    return text


def _decode(data: bytes, shown: str) -> str:
    # Excel's "Unicode text" export is UTF-16 TSV; its other exports are UTF-8 (with BOM) or CP949.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    for encoding in _TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{shown} is neither UTF-8 nor CP949 text; re-export it as UTF-8 CSV.")


def _read_json(data: bytes, source: str, shown: str) -> Iterator[Dialogue | Malformed]:
    try:
        corpus = json.loads(data)
    except UnicodeDecodeError:
        corpus = _parse_json(_decode(data, shown), shown)
    except json.JSONDecodeError as err:
        raise _invalid_json(shown, err) from err
    if not aihub_json.looks_like_corpus(corpus):
        raise DataError(
            f"{shown} is JSON but holds no dialogue records (objects with 'profile' and 'talk'); "
            "expected the AIHub 감성 대화 labeling JSON."
        )
    yield from aihub_json.dialogues(corpus, source)


def _parse_json(text: str, shown: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _invalid_json(shown, err) from err


def _invalid_json(shown: str, err: json.JSONDecodeError) -> DataError:
    # Some messages already end in "at" ("Unterminated string starting at"): add it only where missing.
    where = f"line {err.lineno}, column {err.colno}"
    problem = f"{err.msg} {where}" if err.msg.endswith(" at") else f"{err.msg} at {where}"
    return DataError(f"{shown} is not valid JSON ({problem}); re-download or re-extract it.")


def _read_zip(data: bytes, source: str, shown: str) -> Iterator[Dialogue | Malformed]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise DataError(f"{shown} is a damaged zip archive; download it again.") from err
    found = False
    with archive:
        for info in archive.infolist():
            member = member_name(info)
            if info.is_dir() or member.startswith(_JUNK_PREFIXES) or member.rsplit("/", 1)[-1] in _JUNK_NAMES:
                continue
            payload = _read_member(archive, info, f"{shown}!{member}")
            if sniff(payload) is None:
                continue  # manuals, images and the like ride along in the AIHub archives
            found = True
            yield from read_bytes(payload, f"{source}!{member}", f"{shown}!{member}")
    if not found:
        raise DataError(f"{shown} holds no corpus file; expected it to contain {EXPECTED_INPUT}.")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> bytes:
    try:
        return archive.read(info)
    except RuntimeError as err:  # zipfile's word for an encrypted member
        raise DataError(f"{shown} is password-protected; extract it yourself and pass the file.") from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{shown} could not be extracted ({err}); download the archive again.") from err


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's real name: zip tools that do not flag UTF-8 names leave zipfile decoding them as cp437."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            raw = None
        for encoding in ("utf-8", "cp949") if raw is not None else ():
            try:
                name = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return unicodedata.normalize("NFC", name)
