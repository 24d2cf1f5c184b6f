"""The reid command fails cleanly: a message, exit code 2, no traceback."""

import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "reid.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_missing_weights():
    p = run("eval", "--weights", "/nonexistent/model.pt")
    assert p.returncode == 2
    assert "not found" in p.stderr and "Traceback" not in p.stderr


def test_missing_data_root(tmp_path):
    p = run("eval", "--data-root", str(tmp_path / "nope"))
    assert p.returncode == 2
    assert "does not exist" in p.stderr and "Traceback" not in p.stderr


def test_bad_override():
    p = run("train", "optim.nonsense=3")
    assert p.returncode == 2 and "unknown config key" in p.stderr
