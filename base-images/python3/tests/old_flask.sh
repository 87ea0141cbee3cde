#!/usr/bin/env bash
# Run the wrapper's whole test suite against old versions of its dependencies, as a job that pins
# its own Flask/Werkzeug (shadowing the wrapper venv's) would run it.
#
#   bash base-images/python3/tests/old_flask.sh                 # Flask 2.0.3 + Werkzeug 2.0.3 and the
#                                                               # oldest gunicorn/prometheus/swagger-ui
#   PINS="flask==2.2.5 werkzeug==2.2.3" bash base-images/python3/tests/old_flask.sh
#
# The virtualenv lives in $VENV (default /tmp/fatman-wrapper-old-flask) and is reused between runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${VENV:-/tmp/fatman-wrapper-old-flask}"
pins="${PINS:-flask==2.0.3 werkzeug==2.0.3 gunicorn==20.1.0 prometheus-client==0.12.0 swagger-ui-bundle==0.0.9}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# The wrapper with its dependencies first, then the pins on top (PINS may name only some packages).
"$venv/bin/pip" install -q -e "$repo/base-images/python3" pytest requests numpy pydantic selenium
# shellcheck disable=SC2086 # word splitting of the pins is intended
"$venv/bin/pip" install -q $pins
"$venv/bin/python" -c 'import flask, werkzeug; from importlib.metadata import version as v; print("testing with Flask", v("flask"), "Werkzeug", v("werkzeug"))'
cd "$repo"
exec "$venv/bin/python" -m pytest base-images/python3/tests -p no:cacheprovider "$@"
