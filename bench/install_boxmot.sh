#!/usr/bin/env bash
# BoxMOT (AGPL) for the tracking benchmark only. Its declared dependencies would pull another
# torch build, so it goes in without them, plus the one module it imports that we lack.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q --no-deps boxmot==25.0.0 rich markdown-it-py mdurl pygments
