"""Writing an output directory without ever losing a file the command did not write.

Every command that writes a folder (data_prep, train_lora.py's adapter, merge_adapter.py, eval.py, the tiny
model, export_gguf.py) goes through ``output_directory``:

- the files are written into a staging folder first, so a failure, Ctrl-C or SIGTERM leaves the earlier output as
  it was and no staging folder behind;
- a manifest (``.gonggam-output.json``) lists what the command wrote; a later run replaces only those files, and
  refuses with one sentence when the folder holds anything else (the raw corpus, notes, another tool's output);
- a symbolic link is followed: the files land in its target and the link stays;
- where the folder itself cannot be swapped (a mount point such as a container volume, a parent the user may not
  write, or a folder that also holds a training run's checkpoints) the files are replaced one at a time inside it,
  and the command says so, since that is not atomic as a whole.

The standard library has atomic renames but no "replace my files, keep yours" for folders; hence this module.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gonggam.errors import UserError

MANIFEST = ".gonggam-output.json"
STAGING_PREFIX = ".gonggam-staging-"
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


class OutputError(UserError):
    """An output directory that cannot be written without losing someone's files."""


@dataclass(frozen=True)
class Output:
    """Where a command's files go, and which of the entries already there it wrote earlier."""

    given: Path  # as the user typed it (shown in messages)
    target: Path  # the real folder: a symbolic link's target
    command: str
    owned: tuple[str, ...]  # top-level entries an earlier run of this command wrote
    in_place: bool  # replace the files inside the folder instead of swapping the folder
    reason: str  # why in place, for the note printed afterwards

    @property
    def exists(self) -> bool:
        return self.target.is_dir()


def check_output(
    output: str | os.PathLike[str],
    command: str,
    *,
    keep: Sequence[str] = (),
    legacy: Sequence[str] = (),
    in_place: bool = False,
    overwrite: bool = True,
) -> Output:
    """Decide how `output` will be written, or raise OutputError; call it before any long work.

    keep: glob patterns of entries the command leaves where they are (a training run's checkpoint-N folders).
    legacy: glob patterns of what versions before the manifest wrote; a folder holding only those is ours.
    overwrite: False makes an earlier output of this command an error too (merge_adapter.py without --overwrite).
    """
    given = Path(output)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    if target.exists() and not target.is_dir():
        raise OutputError(f"{given} is a file, not a folder: pass a directory path as the output.")
    owned = _owned_entries(given, target, command, keep, legacy)
    if owned and not overwrite:
        raise OutputError(f"{given} already holds an earlier output of {command}: pass --overwrite to replace it.")
    reason = ""
    if target.is_dir():
        if in_place or any(_matches(name, keep) for name in os.listdir(target)):
            reason = "it also holds files this command keeps (checkpoints)"
        elif is_mount_point(target):
            reason = "it is a mount point"
        elif not os.access(target.parent, os.W_OK | os.X_OK):
            reason = f"its parent folder {target.parent} is not writable"
    return Output(given, target, command, tuple(owned), bool(reason), reason)


@contextmanager
def output_directory(
    output: str | os.PathLike[str],
    command: str,
    *,
    keep: Sequence[str] = (),
    legacy: Sequence[str] = (),
    in_place: bool = False,
    overwrite: bool = True,
) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends normally its files become `output`'s.

    On any exception (Ctrl-C and, under `interrupts_unwind`, SIGTERM included) the staging folder is removed and
    `output` is untouched. SIGINT and SIGTERM are held back while the files are moved into place.
    """
    plan = check_output(output, command, keep=keep, legacy=legacy, in_place=in_place, overwrite=overwrite)
    staging = _make_staging(plan)
    try:
        yield staging
        # The folder may have changed during a long run: check again right before replacing anything.
        plan = check_output(output, command, keep=keep, legacy=legacy, in_place=in_place, overwrite=overwrite)
        with _signals_deferred():
            if plan.in_place:
                _replace_files(plan, staging)
            else:
                _swap_folder(plan, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if plan.in_place:
        print(
            f"note: {plan.given}: {plan.reason}, so its files were replaced one at a time, not the folder at once.",
            file=sys.stderr,
        )


def is_mount_point(path: Path) -> bool:
    """os.path.ismount, plus bind mounts of a folder on the same file system, which it cannot see (Linux)."""
    if os.path.ismount(path):
        return True
    try:
        table = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    real = os.path.realpath(path)
    # Field 5 is the mount point, with space, tab, newline and backslash written as octal escapes.
    fields = (line.split(" ") for line in table.splitlines())
    points = {_OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), f[4]) for f in fields if len(f) > 4}
    return real in points


def written_files(folder: Path) -> list[str]:
    """Every file under `folder`, as sorted relative POSIX paths (what a manifest lists)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _owned_entries(given: Path, target: Path, command: str, keep: Sequence[str], legacy: Sequence[str]) -> list[str]:
    if not target.is_dir():
        return []
    entries = [name for name in sorted(os.listdir(target)) if not _matches(name, keep)]
    manifest = _read_manifest(target)
    if manifest is not None:
        writer, files = manifest
        if writer != command:
            raise OutputError(
                f"{given} holds the output of {writer}, not of {command}: choose another folder for this output."
            )
        ours = {name.split("/", 1)[0] for name in files} | {MANIFEST}
    else:
        ours = set(entries) if legacy and all(_matches(name, legacy) for name in entries) else set()
    # A staging folder left by a run that was killed outright (SIGKILL, power loss) is ours to clear.
    ours |= {name for name in entries if name.startswith(STAGING_PREFIX)}
    foreign = [name for name in entries if name not in ours]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(
            f"{given} holds files that {command} did not write ({shown}); move them out or choose another output "
            "folder (nothing was changed)."
        )
    return [name for name in entries if name in ours]


def _read_manifest(target: Path) -> tuple[str, list[str]] | None:
    path = target / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["written_by"]), [str(name) for name in data["files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OutputError(
            f"{path} is damaged ({type(err).__name__}); delete it only if the folder holds nothing of yours."
        ) from err


def _write_manifest(folder: Path, command: str, files: list[str]) -> None:
    temporary = folder / f"{MANIFEST}.tmp"
    temporary.write_text(json.dumps({"written_by": command, "files": files}, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, folder / MANIFEST)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _make_staging(plan: Output) -> Path:
    home = plan.target if plan.in_place else plan.target.parent
    prefix = STAGING_PREFIX if plan.in_place else f"{STAGING_PREFIX}{plan.target.name}-"
    try:
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=home))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's private 0700 would outlive the rename
    except OSError as err:
        raise OutputError(
            f"could not create {plan.given} ({err.strerror}); check the path and its permissions."
        ) from err
    return staging


def _swap_folder(plan: Output, staging: Path) -> None:
    """Rename the staging folder into place; an earlier output (only our files, checked) goes away after."""
    _write_manifest(staging, plan.command, written_files(staging))
    if not plan.exists:
        os.replace(staging, plan.target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{plan.target.name}-old-", dir=plan.target.parent))
    os.replace(plan.target, retired / plan.target.name)
    try:
        os.replace(staging, plan.target)
    except BaseException:
        os.replace(retired / plan.target.name, plan.target)
        retired.rmdir()
        raise
    shutil.rmtree(retired)


def _replace_files(plan: Output, staging: Path) -> None:
    """Move the staging folder's entries into the target one by one (each rename is atomic on its own)."""
    target = plan.target
    new = sorted(os.listdir(staging))
    new_files = written_files(staging)
    old_files = [] if (manifest := _read_manifest(target)) is None else manifest[1]
    # Listing old and new first: a run killed half-way leaves a manifest that still covers every file it owns.
    _write_manifest(target, plan.command, sorted(set(old_files) | set(new_files)))
    retired = staging / ".retired"
    retired.mkdir()
    for name in new:
        if (target / name).is_dir() and not (target / name).is_symlink():
            os.replace(target / name, retired / name)  # a folder cannot be renamed over a non-empty one
        os.replace(staging / name, target / name)
    for name in plan.owned:
        if name not in new and name != MANIFEST and (target / name).exists() and target / name != staging:
            os.replace(target / name, retired / name)
    _write_manifest(target, plan.command, new_files)
    shutil.rmtree(staging)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while files move, so an interruption lands before or after, never halfway."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED_SIGNALS)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
