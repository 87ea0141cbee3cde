#!/usr/bin/env bash
# The static checks CI runs beside the tests: ruff over the whole tree (each part with its own
# pyproject.toml settings: the wrapper is linted for Python 3.9, the CLI for 3.11), and mypy over
# both packages, the wrapper against the oldest Python it supports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

.venv/bin/ruff check .
.venv/bin/python -m mypy racetrack_builder
.venv/bin/python -m mypy --python-version 3.9 base-images/python3/fatman_wrapper
