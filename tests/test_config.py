"""Tracking settings: default.yaml and the dataclasses agree, keys and values are checked, camera
sites and command-line cameras combine, and the shared folder does not depend on the cwd."""

import re
from dataclasses import fields

import pytest
import yaml

from reid.engine.config import expand_shared, shared_dir
from tests.conftest import ROOT
from tracking.config import (
    DEFAULT_CONFIG,
    SECTIONS,
    DetectorConfig,
    Settings,
    UsageError,
    field_names,
    load_settings,
)
from tracking.multicam import Camera

SITE = ROOT / "configs" / "cameras" / "epfl_terrace.yaml"


def write(tmp_path, text):
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return str(path)


def test_default_yaml_holds_every_field_with_the_dataclass_default():
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert set(raw) == set(SECTIONS) | {"cameras"} == {f.name for f in fields(Settings)}
    for section, cls in SECTIONS.items():
        assert sorted(raw[section]) == sorted(field_names(cls)), section
    settings = load_settings()
    assert "${MCREID_SHARED}" in raw["detector"]["weights"]
    assert settings.detector == DetectorConfig(weights=settings.detector.weights)
    for section, cls in SECTIONS.items():
        if section != "detector":
            assert getattr(settings, section) == cls(), section
    assert settings.cameras == []


def test_every_tracker_field_can_be_overridden():
    settings = load_settings(overrides=["tracker.memory_score=0.5", "tracker.min_hits=3",
                                        "tracker.max_lost_s=1e9", "tracker.fill_gaps=false"])
    t = settings.tracker
    assert (t.memory_score, t.min_hits, t.max_lost_s, t.fill_gaps) == (0.5, 3, 1e9, False)
    assert isinstance(t.max_lost_s, float) and isinstance(t.min_hits, int)


def test_sources_section_sets_the_reconnect_policy():
    sources = load_settings(overrides=["sources.give_up_s=30", "sources.queue_size=2"]).sources
    assert sources.give_up_s == 30.0 and isinstance(sources.give_up_s, float)
    assert sources.queue_size == 2 and sources.policy().give_up_s == 30.0


def test_typo_names_the_nearest_key():
    with pytest.raises(UsageError, match=re.escape(
            "unknown key tracker.max_lots; did you mean 'max_lost_s'?")):
        load_settings(overrides=["tracker.max_lots=3"])


@pytest.mark.parametrize("override, message", [
    ("tracker.min_hits=two", "tracker.min_hits='two' is not valid: expected int"),
    ("tracker.min_hits=2.5", "tracker.min_hits=2.5 is not valid: expected int"),
    ("reid.enabled=maybe", "reid.enabled='maybe' is not valid: expected bool"),
    ("sources.give_up_s=soon", "sources.give_up_s='soon' is not valid: expected float or null"),
    ("detector.imgsz=[640]", "detector.imgsz=[640] is not valid: expected int"),
    ("detector.stride=0", "detector.stride=0 must be a whole number >= 1"),
    ("tracker=3", "must look like section.key=value"),
])
def test_bad_values_fail_in_one_line(override, message):
    with pytest.raises(UsageError, match=re.escape(message)) as error:
        load_settings(overrides=[override])
    assert "\n" not in str(error.value)


def test_site_config_reads_cameras_and_identity():
    settings = load_settings(str(SITE))
    cameras = settings.cameras
    assert [c.name for c in cameras] == ["c0", "c1"]
    assert "${MCREID_SHARED}" not in cameras[0].source
    assert cameras[0].homography.shape == (3, 3)
    assert settings.identity.overlapping == {frozenset(("c0", "c1"))}
    assert settings.identity.ground_gate == 40 and settings.identity.min_crops == 5
    assert settings.tracker.max_lost_s == 2.0  # defaults still apply under a site


@pytest.mark.parametrize("text, message", [
    ("cameras:\n  - name: a\n    sorce: x.mp4\n", "did you mean 'source'"),
    ("cameras:\n  - {name: a, source: x.mp4}\n  - {name: a, source: y.mp4}\n", "used twice"),
    ("camera:\n  - {name: a, source: x.mp4}\n", "did you mean 'cameras'"),
    ("tracker:\n  max_lots_s: 3\n", "did you mean 'max_lost_s'"),
    ("cameras:\n  - {name: a, source: x.mp4, homography: [[1, 0], [0, 1]]}\n", "3 x 3"),
    ("cameras:\n  - {name: a}\n", "needs both name: and source:"),
    ("cameras:\n  - {name: a, source: x.mp4, offset_s: soon}\n", "expected float"),
    ("cameras:\n  - {name: a, source: x.mp4, homography: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}\n",
     "identity.ground_gate is not set"),
    ("identity:\n  transit: [{from: a, to: b}]\n", "identity.transit entries look like"),
])
def test_bad_site_configs_name_the_problem(tmp_path, text, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        load_settings(write(tmp_path, text))


def test_command_line_cameras_join_the_site():
    settings = load_settings(str(SITE), cameras=[Camera("door", "rtsp://10.0.0.5/stream")])
    assert [c.name for c in settings.cameras] == ["c0", "c1", "door"]
    assert settings.identity.overlapping == {frozenset(("c0", "c1"))}
    with pytest.raises(UsageError, match="'c1' is used twice"):
        load_settings(str(SITE), cameras=[Camera("c1", "x.mp4")])


def test_overlapping_views_makes_one_group_of_all_cameras():
    cameras = [Camera(n, f"{n}.mp4") for n in ("a", "b", "c")]
    identity = load_settings(cameras=cameras, overlapping_views=True).identity
    assert identity.overlapping == {frozenset(p) for p in (("a", "b"), ("a", "c"), ("b", "c"))}
    assert load_settings(cameras=cameras).identity.overlapping == set()


def test_identity_names_unknown_camera_with_a_hint(tmp_path):
    path = write(tmp_path, "identity:\n  overlapping: [[dor, hall]]\n"
                           "  transit: [{from: door, to: hall, min_s: 0, max_s: 60}]\n")
    cameras = [Camera("door", "d.mp4"), Camera("hall", "h.mp4")]
    with pytest.raises(UsageError, match=re.escape(
            "camera 'dor' is not among the cameras ['door', 'hall']; did you mean 'door'?")):
        load_settings(path, cameras=cameras)
    path = write(tmp_path, "identity:\n  transit: [{from: door, to: hall, min_s: 0, max_s: 60}]\n")
    assert load_settings(path, cameras=cameras).identity.transit == {("door", "hall"): (0, 60)}


def test_several_cameras_need_reid():
    cameras = [Camera("a", "a.mp4"), Camera("b", "b.mp4")]
    with pytest.raises(UsageError, match="several cameras need re-ID"):
        load_settings(overrides=["reid.enabled=false"], cameras=cameras)


def test_shared_folder_is_beside_the_checkout_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MCREID_SHARED", raising=False)
    monkeypatch.chdir(tmp_path)
    beside = str(ROOT.parent / "shared")
    assert shared_dir() == beside
    assert expand_shared({"a": ["${MCREID_SHARED}/x"]}) == {"a": [f"{beside}/x"]}
    assert load_settings().detector.weights.startswith(beside + "/weights/")
    monkeypatch.setenv("MCREID_SHARED", str(tmp_path))
    assert load_settings().detector.weights.startswith(f"{tmp_path}/weights/")
