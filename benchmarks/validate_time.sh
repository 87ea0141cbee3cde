#!/usr/bin/env bash
# Wall time of `racetrack-build validate MANIFEST`, next to `python -c pass` measured in the same
# hyperfine invocation (so a slow or busy machine shows in the reference too).
#
#   benchmarks/validate_time.sh [MANIFEST] [BUDGET_SECONDS]
#
# MANIFEST defaults to the full sample manifest of the unit tests; BUDGET_SECONDS to 0.4 (the
# issue's limit). Exits 1 when the mean time of validate is over the budget. Needs hyperfine
# (Debian: apt-get install -y hyperfine) and the project's venv (.venv, or $PYTHON).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="${1:-$root/tests/unit/manifests/valid/full.yaml}"
budget="${2:-0.4}"
python="${PYTHON:-$root/.venv/bin/python}"
cli="$(dirname "$python")/racetrack-build"
runs="${RUNS:-30}"

command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install -y hyperfine)" >&2; exit 2; }
[ -x "$cli" ] || { echo "no racetrack-build next to $python (pip install -e . in the venv)" >&2; exit 2; }
# The command must succeed, or we would be timing an error path.
"$cli" validate "$manifest" >/dev/null

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# -N: no intermediate shell, so the figures are the processes' own.
hyperfine -N --warmup 5 --runs "$runs" --export-json "$out/times.json" --export-markdown "$out/times.md" \
    --command-name "python -c pass (reference)" "$python -c pass" \
    --command-name "load_manifest (library only)" \
    "$python -c \"from racetrack_builder.manifest import load_manifest; load_manifest('$manifest')\"" \
    --command-name "racetrack-build validate" "$cli validate $manifest"

cat "$out/times.md"

"$python" - "$out/times.json" "$budget" <<'EOF'
import json
import sys

results = json.load(open(sys.argv[1]))["results"]
budget = float(sys.argv[2])
by_name = {r["command"]: r for r in results}
validate = by_name["racetrack-build validate"]
reference = by_name["python -c pass (reference)"]
print(f"validate: mean {validate['mean']:.3f} s, median {validate['median']:.3f} s, "
      f"min {validate['min']:.3f} s; python -c pass: mean {reference['mean']:.3f} s; budget {budget} s")
sys.exit(0 if validate["mean"] <= budget else 1)
EOF
