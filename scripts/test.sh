#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Real data is read from $MCREID_SHARED
# (default ../shared); tests that need it skip with the reason when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MCREID_SHARED=${MCREID_SHARED:-$(cd .. && pwd)/shared}
export YOLO_OFFLINE=1
.venv/bin/ruff check .  # style is part of the build: ruff.toml
.venv/bin/python -m pytest -q "$@"
