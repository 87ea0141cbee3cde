#!/usr/bin/env bash
# The static checks CI runs beside the tests: ruff over the whole tree (each part with its own
# pyproject.toml settings: the wrapper is linted for Python 3.9, the CLI for 3.11), and mypy over
# both packages. The wrapper is type-checked twice: with its dependencies' types, and for the oldest
# Python it runs on (3.9) without site-packages, whose newer releases use 3.10+ syntax.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

.venv/bin/ruff check .
.venv/bin/python -m mypy racetrack_builder
.venv/bin/python -m mypy base-images/python3/fatman_wrapper
.venv/bin/python -m mypy --python-version 3.9 --no-site-packages base-images/python3/fatman_wrapper
# The install step's script runs on the job's Python (3.9 and newer), with the standard library only.
.venv/bin/python -m mypy --python-version 3.9 --no-site-packages base-images/build-tools/racetrack_install.py
