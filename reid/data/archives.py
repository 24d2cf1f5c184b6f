"""Use Market-1501 straight from its release archives: extract once into a cache folder."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from reid.io import publish

MARKET_ARCHIVES = ("market1501_train.tar.gz", "market1501_query_gallery.tar.gz")


def cache_dir() -> Path:
    return Path(os.environ.get("MCREID_CACHE", Path.home() / ".cache" / "mcreid"))


def resolve_data_root(root: str | Path) -> Path:
    """A folder holding the .tar.gz archives is extracted (atomically, once) and the extracted
    folder returned; any other folder is returned unchanged."""
    root = Path(root)
    archives = [root / a for a in MARKET_ARCHIVES]
    if not root.is_dir() or not all(a.is_file() for a in archives):
        return root
    stamp = "-".join(str(int(a.stat().st_mtime)) + "_" + str(a.stat().st_size) for a in archives)
    target = cache_dir() / f"market1501-{stamp}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        for archive in archives:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        try:
            publish(tmp, target)
        except OSError:
            if not target.is_dir():  # else another process extracted it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
