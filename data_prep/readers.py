"""Read any AIHub input, recognised by its content rather than its name (names may arrive NFD or
cp437-mangled out of a zip): the 2022 JSON, the xlsx sheets, CSV/TSV exports, and zips holding them.

``read_any(path)`` yields a ``Dialogue`` per record, or a ``Malformed`` note for a record that could not
be used; a file that cannot be used at all raises ``DataError`` with one sentence saying why.
"""

from __future__ import annotations

import codecs
import io
import json
import unicodedata
import zipfile
from collections.abc import Iterator
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
    path = resolve_input(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path} could not be read ({err.strerror}); check its permissions.") from err
    source = unicodedata.normalize("NFC", path.name)
    yield from read_bytes(data, source, str(path))


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
        yield from sheets.read_delimited(_decode(data, shown), source, shown)
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
    head = _decode_head(data[:65536])
    if head is not None and sheets.has_dialogue_header(head):
        return "table"
    return None


def _is_xlsx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return False
    return "xl/workbook.xml" in names


def _decode_head(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    for encoding in _TEXT_ENCODINGS:
        try:
            # final=False: the head may end inside a multibyte character.
            return codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
    return None


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
    return DataError(
        f"{shown} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); re-download or re-extract it."
    )


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
