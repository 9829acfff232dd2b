#!/usr/bin/env bash
# One command: set up everything (system packages, .venv + install) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup_system.sh   # FFmpeg, GStreamer's RTSP server, Chromium, Mosquitto (Debian)
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q -e '.[dev]'
python -m pytest -q "$@"
