#!/usr/bin/env bash
# Create .venv with mcreid and its pinned dependencies (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
LOG=.venv/setup.log
pip_install() {  # pip's chatter goes to the log; on failure its tail is shown
  .venv/bin/python -m pip install -q "$@" >>"$LOG" 2>&1 ||
    { tail -n 30 "$LOG"; echo "setup failed: pip install $*; full log in $LOG" >&2; exit 1; }
}
: >"$LOG"
echo "installing mcreid and its dependencies into .venv (log: $LOG)"
pip_install --upgrade pip
# torch first, pinned: an unpinned resolve would pull a different multi-GB build.
pip_install torch==2.14.1 torchvision==0.29.1
pip_install -e '.[dev]'
# Optional Debian packages (as root): the tests that need them skip, saying why, without them.
optional_apt() {  # WHAT PACKAGE...
  local what=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $* for $what"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; } ||
      echo "warning: could not install $*; $what will skip"
  else
    echo "note: apt-get install $* (as root) to run $what"
  fi
}
# A real RTSP server for the live-stream tests (tests/test_rtsp.py).
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null ||
  optional_apt "the RTSP tests" python3-gi gir1.2-gst-rtsp-server-1.0 \
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
# A real Redis server for the broker tests (tests/test_broker.py).
command -v redis-server >/dev/null || optional_apt "the broker tests" redis-server
# A headless browser for the track serve tests (tests/test_serve.py).
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } ||
  optional_apt "the track serve tests" chromium chromium-driver
echo "mcreid installed in .venv"
