"""Atomic file output, used by every writer in the project (reid and tracking): a file is
written under a temporary name beside its final path and renamed when complete, so a crash
or Ctrl-C never leaves half a file where a reader expects a whole one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def part_path(path: str | Path) -> Path:
    """The temporary name of ``path`` while it is being written: hidden, same folder (so the
    final rename is atomic), same suffix (so tools that look at it still know the format)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.part{path.suffix}")


def publish(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temporary file (or folder) into place in one step."""
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(p) as tmp:`` write to ``tmp``; it becomes ``p`` only if the block
    finishes, and is removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_path(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, obj, indent: int = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent))
