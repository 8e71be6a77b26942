"""Run a project command as a user does, paused at one point: its output is fully staged and about to replace the
earlier output. Lets a test send SIGINT/SIGTERM at exactly that moment, however loaded the machine is.

    python tests/pause_before_commit.py MARKER -m data_prep --input ... --output ...
    python tests/pause_before_commit.py MARKER merge_adapter.py --adapter ... --output ...

The pause is where gonggam.files.output_directory is about to hold signals and move the staged files into place;
MARKER is written when the pause begins. Nothing else of the command changes.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path
from typing import Any

import gonggam.files as files

marker = Path(sys.argv[1])
command = sys.argv[2:]
real_deferral = files._signals_deferred


def pause_then_defer(*args: Any, **kwargs: Any) -> Any:
    marker.write_text("staged\n")
    time.sleep(300)  # the test's signal ends this
    return real_deferral(*args, **kwargs)


files._signals_deferred = pause_then_defer
if command[0] == "-m":
    sys.argv = [command[1], *command[2:]]
    runpy.run_module(command[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = command
    runpy.run_path(command[0], run_name="__main__")
