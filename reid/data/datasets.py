"""Dataset readers: each turns a folder into lists of (path, person id, camera id) records.

Readers only list files; decoding happens once, in :mod:`reid.data.images`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetError(ValueError):
    """A dataset folder that cannot be read as asked; the message says what to do."""


@dataclass(frozen=True)
class Record:
    path: str
    pid: int
    camid: int


@dataclass
class ReidDataset:
    train: list[Record]
    query: list[Record]
    gallery: list[Record]

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})


def _relabel(records: list[Record]) -> list[Record]:
    """Map person ids to 0..N-1 so they can index a classifier."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, mapping[r.pid], r.camid) for r in records]


# Market-1501 names look like 0002_c1s1_000451_03.jpg; id 1488 has some *.jpg.jpg files.
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d)s\d_\d+_\d+\.jpg(\.jpg)?$")
MARKET_SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MARKET_COUNTS = {"train": (12936, 751), "query": (3368, 750), "gallery": (15913, 751)}


def find_market_root(root: str | Path) -> Path:
    """Accept either the Market-1501 folder itself or a folder that contains it."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(
            f"data root {root} does not exist; download Market-1501 and extract it there "
            "(see data/README.md)"
        )
    if (root / "bounding_box_train").is_dir() or (root / "query").is_dir():
        return root
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "query").is_dir():
            return child
    raise DatasetError(
        f"{root} is not a Market-1501 folder: expected bounding_box_train/, query/ and "
        "bounding_box_test/ in it or in one sub-folder (see data/README.md)"
    )


def _read_market_split(folder: Path, split: str) -> list[Record]:
    if not folder.is_dir():
        raise DatasetError(
            f"Market-1501 folder {folder.parent} has no {folder.name}/; the archive was "
            "extracted only in part — extract all of it (see data/README.md)"
        )
    records = []
    for path in sorted(folder.iterdir()):
        m = _MARKET_NAME.match(path.name)
        if m is None:
            continue  # Thumbs.db and the like
        pid, camid = int(m.group(1)), int(m.group(2)) - 1
        if pid == -1:
            continue  # junk boxes are never part of a split
        if split == "train" and pid == 0:
            continue
        records.append(Record(str(path), pid, camid))
    if not records:
        raise DatasetError(f"{folder} holds no Market-1501 image "
                           "(names like 0002_c1s1_000451_03.jpg)")
    return records


def market1501(root: str | Path, splits: tuple[str, ...] = ("train", "query", "gallery"),
               strict: bool = True) -> ReidDataset:
    """Read the official Market-1501 layout.

    ``strict`` checks the official image counts, so a partial copy fails loudly instead of
    producing numbers that cannot be compared with anyone else's.
    """
    base = find_market_root(root)
    parts: dict[str, list[Record]] = {"train": [], "query": [], "gallery": []}
    for split in splits:
        parts[split] = _read_market_split(base / MARKET_SPLITS[split], split)
        if strict:
            want_images, want_ids = MARKET_COUNTS[split]
            got_images, got_ids = len(parts[split]), len({r.pid for r in parts[split]})
            if (got_images, got_ids) != (want_images, want_ids):
                raise DatasetError(
                    f"{base / MARKET_SPLITS[split]} has {got_images} images of {got_ids} ids; "
                    f"the official release has {want_images} of {want_ids}. Re-extract the "
                    "archive, or pass strict=False for a deliberate subset"
                )
    return ReidDataset(_relabel(parts["train"]), parts["query"], parts["gallery"])


def image_folder(root: str | Path) -> list[Record]:
    """A user's own data: ``<root>/<person_id>/<camera>_*.jpg``.

    The camera is the part of the file name before the first underscore; any string works.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    cameras: dict[str, int] = {}
    records = []
    for pid_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not pid_dir.name.lstrip("-").isdigit():
            raise DatasetError(
                f"{pid_dir}: person folders must be named by an integer id "
                "(<root>/<person_id>/<camera>_<anything>.jpg)"
            )
        for path in sorted(pid_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if "_" not in path.stem:
                raise DatasetError(
                    f"{path}: file names must start with the camera name and an underscore, "
                    "e.g. cam2_000123.jpg"
                )
            cam = cameras.setdefault(path.stem.split("_", 1)[0], len(cameras))
            records.append(Record(str(path), int(pid_dir.name), cam))
    if not records:
        raise DatasetError(f"{root} holds no images in <person_id>/<camera>_*.jpg form")
    return records


def csv_records(csv_path: str | Path) -> list[Record]:
    """A CSV with the header ``path,pid,camid``; relative paths start at the CSV's folder."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"CSV file {csv_path} does not exist")
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "pid", "camid"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{csv_path} lacks the column(s) {sorted(missing)}; "
                               "the header must be path,pid,camid")
        records = []
        for line, row in enumerate(reader, start=2):
            try:
                path = Path(row["path"])
                path = path if path.is_absolute() else csv_path.parent / path
                records.append(Record(str(path), int(row["pid"]), int(row["camid"])))
            except ValueError as e:
                raise DatasetError(f"{csv_path}:{line}: pid and camid must be integers") from e
    if not records:
        raise DatasetError(f"{csv_path} lists no images")
    return records


def build_dataset(name: str, root: str | Path, strict: bool = True) -> ReidDataset:
    """``market1501`` or ``folder``/``csv`` (training data only: no query/gallery)."""
    if name == "market1501":
        return market1501(root, strict=strict)
    if name == "folder":
        return ReidDataset(_relabel(image_folder(root)), [], [])
    if name == "csv":
        return ReidDataset(_relabel(csv_records(root)), [], [])
    raise DatasetError(f"unknown dataset {name!r}; choose market1501, folder or csv")
