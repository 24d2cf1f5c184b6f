import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCREID_SHARED", ROOT.parent / "shared")).resolve()
os.environ["MCREID_SHARED"] = str(SHARED)


def need_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder; set MCREID_SHARED)")
    return path


@pytest.fixture(scope="session")
def market_root(tmp_path_factory) -> Path:
    """The real Market-1501, extracted once per test session into a temp folder."""
    from reid.data.archives import resolve_data_root

    archives = need_shared("data", "market1501")
    os.environ.setdefault("MCREID_CACHE", str(tmp_path_factory.mktemp("cache")))
    return resolve_data_root(archives)


@pytest.fixture(scope="session")
def market(market_root):
    from reid.data import market1501

    return market1501(market_root)


@pytest.fixture(scope="session")
def tud_run(tmp_path_factory):
    """A small real run shared by the search and serve tests: TUD-Campus's first 30 frames
    tracked with the real detector and re-ID model (--events, annotated video, contact
    sheets with --gallery), then indexed. Returns the run folder and the source video."""
    from tracking.cli import main

    video = need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")
    need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    out = tmp_path_factory.mktemp("run") / "tud"
    assert main(["run", "--source", str(video), "--output", str(out), "--events", "--gallery",
                 "--max-frames", "30"]) == 0
    assert main(["index", str(out)]) == 0
    return out, video
