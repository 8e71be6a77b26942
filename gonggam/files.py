"""Writing a whole output directory so that a failed run leaves nothing half-written."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(output: Path) -> Iterator[Path]:
    """Yield a staging directory beside `output`; it replaces `output` on success and vanishes on any error."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; an output directory is an ordinary one
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
