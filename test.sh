#!/usr/bin/env bash
# One command: set up (venv + install) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q -e '.[dev]'
python -m pytest -q "$@"
