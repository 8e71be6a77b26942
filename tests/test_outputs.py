"""Output folders: a command replaces only what it wrote, follows links, writes into mount points, and an
interrupted run (SIGINT or SIGTERM to the real process) leaves the earlier output and no staging folder.

Everything runs on real folders on disk through the commands as a user runs them; the bind mount is a real one
where the test may mount (root), and simulated through ``os.path.ismount`` otherwise, as the skip says.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_TRAIN, SAMPLE_VALIDATION, run_cli, train

from gonggam.files import MANIFEST, STAGING_PREFIX, OutputError, output_directory


def data_prep(output: Path, *inputs: Path, validation: Path | None = SAMPLE_VALIDATION):
    flags = ["--validation", validation] if validation else []
    return run_cli("-m", "data_prep", "--input", *(inputs or [SAMPLE_TRAIN]), *flags, "--output", output, "--quiet")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(*folders: Path) -> list[str]:
    """Staging folders anywhere under (or beside) these folders."""
    return [str(p) for folder in folders for p in folder.rglob(f"{STAGING_PREFIX}*")]


# ---------------------------------------------------------------- the user's files


def test_a_rerun_never_deletes_the_users_files(tmp_path):
    """The reported loss: run data_prep, copy the input into the output folder, run again with that copy as input."""
    out = tmp_path / "processed"
    assert data_prep(out).returncode == 0
    copy = out / "sample_Training.json"
    shutil.copyfile(SAMPLE_TRAIN, copy)
    (out / "notes.txt").write_text("내 메모", encoding="utf-8")
    before = snapshot(out)

    done = data_prep(out, copy)

    assert done.returncode == 2
    assert "did not write" in done.stderr and "notes.txt" in done.stderr and "sample_Training.json" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert snapshot(out) == before  # the input, the notes and the earlier output, byte for byte
    assert leftovers(tmp_path) == []


def test_a_rerun_replaces_only_its_own_files_and_keeps_a_manifest(tmp_path):
    out = tmp_path / "processed"
    assert data_prep(out).returncode == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest == {
        "written_by": "data_prep",
        "files": ["report.png", "stats.json", "train.jsonl", "validation.jsonl"],
    }
    (out / "train.jsonl").write_text("stale\n")
    assert data_prep(out).returncode == 0
    assert (out / "train.jsonl").read_text() != "stale\n"
    assert sorted(os.listdir(tmp_path)) == ["processed"]


def test_an_output_from_before_the_manifest_is_still_replaced(tmp_path):
    """A folder holding exactly what data_prep always wrote (no manifest yet) is this command's own."""
    out = tmp_path / "processed"
    assert data_prep(out).returncode == 0
    (out / MANIFEST).unlink()
    assert data_prep(out).returncode == 0
    assert (out / MANIFEST).is_file()


def test_another_commands_output_is_refused(tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"written_by": "merge_adapter.py", "files": ["config.json"]}))
    (out / "config.json").write_text("{}")
    done = data_prep(out)
    assert done.returncode == 2 and "holds the output of merge_adapter.py" in done.stderr
    assert sorted(os.listdir(out)) == [MANIFEST, "config.json"]


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    out = tmp_path / "processed"
    out.write_text("mine")
    done = data_prep(out)
    assert done.returncode == 2 and "is a file" in done.stderr and out.read_text() == "mine"


# ---------------------------------------------------------------- links and mount points


def test_a_symlinked_output_receives_the_data_and_the_link_survives(tmp_path):
    target = tmp_path / "big-disk" / "processed"
    target.mkdir(parents=True)
    link = tmp_path / "processed"
    link.symlink_to(target, target_is_directory=True)

    assert data_prep(link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert (target / "train.jsonl").stat().st_size > 0
    assert data_prep(link).returncode == 0  # and again, over its own earlier output
    assert link.is_symlink() and (target / "stats.json").is_file()
    assert leftovers(tmp_path) == []


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    target = tmp_path / "volume" / "processed"
    link = tmp_path / "processed"
    link.symlink_to(target, target_is_directory=True)
    assert data_prep(link).returncode == 0
    assert link.is_symlink() and (target / "validation.jsonl").is_file()


@pytest.fixture
def bind_mount(tmp_path):
    """A real bind mount when this process may mount (root); the test is skipped otherwise, saying why."""
    source, mount = tmp_path / "volume", tmp_path / "mounted"
    source.mkdir()
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({done.stderr.strip() or 'not root'}); the simulated test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_mount_point_output_gets_its_files_replaced_in_place(bind_mount, tmp_path):
    """A container volume cannot be renamed ("Device or resource busy"): its files are replaced one by one."""
    assert data_prep(bind_mount).returncode == 0
    first = snapshot(bind_mount)
    (bind_mount / "train.jsonl").write_text("stale\n")
    done = data_prep(bind_mount)
    assert done.returncode == 0, done.stderr
    assert "mount point" in done.stderr and "one at a time" in done.stderr
    assert snapshot(bind_mount) == first
    assert (tmp_path / "volume" / "train.jsonl").read_bytes() == first["train.jsonl"]
    assert sorted(os.listdir(tmp_path)) == ["mounted", "volume"]  # no hidden folder in the parent
    assert leftovers(tmp_path) == []


def test_a_mount_point_simulated_where_mounting_is_not_allowed(tmp_path, monkeypatch, capsys):
    """The same in-process, with os.path.ismount saying yes, for machines where the test cannot mount."""
    from data_prep import prepare

    out = tmp_path / "volume"
    prepare([SAMPLE_TRAIN], out, validation=[SAMPLE_VALIDATION], quiet=True)
    (out / "mine.txt").write_text("mine")
    with pytest.raises(Exception, match="did not write"):
        prepare([SAMPLE_TRAIN], out, validation=[SAMPLE_VALIDATION], quiet=True)
    (out / "mine.txt").unlink()
    first = snapshot(out)
    (out / "stats.json").write_text("{}")
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == out or real(path))
    monkeypatch.setattr(os, "replace", _refusing_to_move(out, os.replace))
    prepare([SAMPLE_TRAIN], out, validation=[SAMPLE_VALIDATION], quiet=True)
    assert snapshot(out) == first
    assert "mount point" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["volume"] and leftovers(tmp_path) == []


def _refusing_to_move(mount: Path, replace):
    """os.replace as a mount point makes it: the folder itself can be neither renamed away nor renamed onto."""

    def guarded(source, destination):
        if Path(source) == mount or Path(destination) == mount:
            raise OSError(16, "Device or resource busy")
        return replace(source, destination)

    return guarded


# ---------------------------------------------------------------- the routine itself


def test_in_place_replacement_drops_files_the_new_run_no_longer_writes(tmp_path):
    out = tmp_path / "model"
    with output_directory(out, "merge_adapter.py") as staging:
        for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json"):
            (staging / name).write_text(name)
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "optimizer.pt").write_text("resume me")
    with output_directory(out, "merge_adapter.py", keep=("checkpoint-*",)) as staging:
        (staging / "model.safetensors").write_text("one shard")
        (staging / "config.json").write_text("new")
    assert sorted(os.listdir(out)) == [MANIFEST, "checkpoint-5", "config.json", "model.safetensors"]
    assert (out / "checkpoint-5" / "optimizer.pt").read_text() == "resume me"
    assert json.loads((out / MANIFEST).read_text())["files"] == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("in_place", [False, True])
def test_a_failure_inside_the_block_changes_nothing(tmp_path, in_place):
    out = tmp_path / "report"
    with output_directory(out, "eval.py") as staging:
        (staging / "metrics.json").write_text("old")
    before = snapshot(out)
    with pytest.raises(KeyboardInterrupt), output_directory(out, "eval.py", in_place=in_place) as staging:
        (staging / "metrics.json").write_text("new")
        raise KeyboardInterrupt
    assert snapshot(out) == before and leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_files_added_by_the_user_during_a_long_run_stop_the_replacement(tmp_path):
    out = tmp_path / "report"
    with output_directory(out, "eval.py") as staging:
        (staging / "metrics.json").write_text("old")
    with pytest.raises(OutputError, match="did not write"), output_directory(out, "eval.py") as staging:
        (staging / "metrics.json").write_text("new")
        (out / "draft.md").write_text("written meanwhile")
    assert (out / "metrics.json").read_text() == "old" and (out / "draft.md").is_file()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- interrupted commands


def start_paused(marker: Path, *args: str | Path, cwd: Path = ROOT) -> subprocess.Popen:
    """The command, paused once its new output is staged and about to replace the old (tests/pause_before_commit.py)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    pause = ROOT / "tests" / "pause_before_commit.py"
    return subprocess.Popen(
        [sys.executable, pause, marker, *map(str, args)], cwd=cwd, env=environment, stderr=subprocess.PIPE, text=True
    )


def wait_for(marker: Path, process: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never finished staging its output"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_data_prep_while_it_writes_keeps_the_earlier_output(tmp_path, signum):
    out = tmp_path / "processed"
    assert data_prep(out).returncode == 0
    before = snapshot(out)

    marker = tmp_path.parent / f"{tmp_path.name}.staged"
    # Without --validation the split is drawn anew: every file of the output would change.
    process = start_paused(marker, "-m", "data_prep", "--input", SAMPLE_TRAIN, "--output", out, "--quiet")
    wait_for(marker, process)
    assert leftovers(tmp_path)  # the new output is staged beside the old one
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["processed"] and leftovers(tmp_path) == []


def test_interrupting_merge_adapter_while_it_saves_keeps_the_earlier_merge(tmp_path, trained_adapter, workdir):
    out = tmp_path / "merged"
    merge = (ROOT / "merge_adapter.py", "--adapter", trained_adapter, "--output", out, "--dtype", "float32")
    done = run_cli(*merge, "--max-shard-size", "2MB", cwd=workdir)
    assert done.returncode == 0, done.stderr
    before = snapshot(out)

    marker = tmp_path.parent / f"{tmp_path.name}.staged"
    process = start_paused(marker, *merge, "--max-shard-size", "1MB", "--overwrite", cwd=workdir)  # all would change
    wait_for(marker, process)
    assert leftovers(tmp_path)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["merged"] and leftovers(tmp_path) == []


# ---------------------------------------------------------------- every command that writes a folder


def test_training_refuses_a_folder_of_someone_elses_files_before_it_trains(workdir, tiny_model, tmp_path):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "thesis.pdf").write_text("not an adapter")
    done = train(workdir, "--output_dir", str(out))
    assert done.returncode == 2 and "did not write (thesis.pdf)" in done.stderr
    assert "trained" not in done.stderr  # refused before a single step
    assert sorted(os.listdir(out)) == ["thesis.pdf"]


def test_eval_refuses_a_folder_of_someone_elses_files_before_it_runs(tmp_path, processed, tiny_model):
    out = tmp_path / "report"
    out.mkdir()
    (out / "draft.md").write_text("mine")
    done = run_cli("eval.py", "--model", tiny_model, "--data", processed / "validation.jsonl", "--output", out)
    assert done.returncode == 2 and "did not write (draft.md)" in done.stderr
    assert sorted(os.listdir(out)) == ["draft.md"]


def test_the_tiny_model_builder_refuses_too(tmp_path, processed):
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = run_cli("-m", "gonggam.tiny", "--corpus", processed / "train.jsonl", "--output", out)
    assert done.returncode == 2 and "did not write (keep.txt)" in done.stderr
