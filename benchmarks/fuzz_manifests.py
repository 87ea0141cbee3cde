"""Manifest fuzzing, full run: 10,000+ generated manifests through validation and rendering.

Four generators (tests/manifest_fuzz.py): the valid manifest with one field mutated, hostile strings
in every field at once, accepted values full of shell and Dockerfile metacharacters, and random
YAML. Every case must end as a refusal (ManifestError or RenderError) or as a Dockerfile whose
instructions are exactly the template's, every value quoted and reading back as itself.

    .venv/bin/python benchmarks/fuzz_manifests.py --cases 12000 [--json out.json]

Prints the counts per generator and in total; exits 1 on any traceback or injection.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import manifest_fuzz as fuzz  # noqa: E402 - needs tests/ on the path
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

GENERATORS: dict[str, st.SearchStrategy[str]] = {
    "one field mutated": fuzz.one_field_mutated(),
    "hostile strings everywhere": fuzz.hostile_everywhere(),
    "metacharacters in accepted values": fuzz.values_near_valid(),
    "random YAML": fuzz.random_yaml(),
}
KEEP_FAILURES = 5


def run(name: str, strategy: st.SearchStrategy[str], cases: int, workdir: Path) -> dict[str, Any]:
    """Run ``cases`` generated cases; count verdicts, tracebacks and injections, keep a few examples."""
    counts: collections.Counter[str] = collections.Counter()
    failures: list[dict[str, str]] = []

    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(text=strategy)
    def one(text: str) -> None:
        try:
            counts[fuzz.check_case(text, workdir).verdict] += 1
        except AssertionError as exc:
            counts["injections"] += 1
            kept = {"kind": "injection", "text": text, "error": str(exc)[:2000]}
        except Exception:  # noqa: BLE001 - any other exception is exactly what we count
            counts["tracebacks"] += 1
            kept = {"kind": "traceback", "text": text, "error": traceback.format_exc()[-2000:]}
        else:
            return
        if len(failures) < KEEP_FAILURES:
            failures.append(kept)

    started = time.monotonic()
    one()
    counts["cases"] = sum(v for k, v in counts.items() if k != "cases")
    return {"generator": name, "seconds": round(time.monotonic() - started, 1), **counts,
            "failures": failures}


def _line(name: str, counts: Any) -> str:
    seconds = f"  {counts['seconds']} s" if "seconds" in counts else ""
    return (f"{name:36} {counts.get('cases', 0):6} cases  accepted {counts.get('accepted', 0):5}  "
            f"rejected {counts.get('rejected by manifest', 0):5} (+{counts.get('rejected by render', 0)} "
            f"by render)  tracebacks {counts.get('tracebacks', 0)}  injections "
            f"{counts.get('injections', 0)}{seconds}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12000, help="total cases, split over the generators")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    per = max(1, args.cases // len(GENERATORS))
    results = []
    with tempfile.TemporaryDirectory(prefix="fuzz-manifests-") as tmp:
        for name, strategy in GENERATORS.items():
            result = run(name, strategy, per, Path(tmp))
            results.append(result)
            print(_line(name, result), flush=True)
    total: collections.Counter[str] = collections.Counter()
    for result in results:
        total.update({k: v for k, v in result.items() if isinstance(v, int)})
    print(_line("total", total))
    for result in results:
        for failure in result["failures"]:
            print(f"\n--- {failure['kind']} ({result['generator']}):")
            print(f"{failure['text']!r}\n{failure['error']}")
    if args.json:
        args.json.write_text(json.dumps({"generators": results, "total": dict(total)}, indent=2))
    return 1 if total["tracebacks"] or total["injections"] else 0


if __name__ == "__main__":
    sys.exit(main())
