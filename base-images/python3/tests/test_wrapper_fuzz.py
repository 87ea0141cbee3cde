"""HTTP fuzzing of the real server with schemathesis, driven by the job's own /openapi.json.

For every operation the document declares, schemathesis sends generated valid and invalid bodies;
each answer must match the document (status codes, JSON bodies, content types), and a 500 is only
allowed when it is the job's own exception (logged by the wrapper as "raised"), never a failure of
the wrapper itself ("unexpected error answering").
"""

from __future__ import annotations

import json

import pytest

# The last schemathesis for Python 3.9 lacks positive_data_acceptance: the test extras install it on
# Python 3.10+ only, so on 3.9 the fuzzing is left to the other Pythons.
schemathesis = pytest.importorskip(
    "schemathesis", reason="pip install -e 'base-images/python3[test]' (schemathesis needs Python 3.10+)"
)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, positive_data_acceptance  # noqa: E402
from wrapper_server import running_server  # noqa: E402
from wrapper_support import job_path  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 200  # per operation (fewer where the schema allows fewer): about 15 s in all

# What a job's own exceptions are, per scenario (their 500s are the documented behaviour).
JOB_EXCEPTIONS = {
    "adder": {"EncodingError"},  # x * y may overflow to inf, which JSON cannot carry
    "typed_validation": set(),
    "auxiliary": {"ValueError", "ZeroDivisionError", "EncodingError"},
}


# OpenAPI 3.0 cannot give each position of a Tuple[int, str] its own type (no prefixItems), so
# the document accepts ["a", "b"], which the argument check rightly refuses with 400.
LOOSER_THAN_CHECK = {"typed_validation"}


def fuzz_operation(
    operation, base_url: str, allowed: set[str], tried: dict[str, int], excluded: list
) -> None:
    """Send up to MAX_EXAMPLES generated requests to one operation, checking every answer."""
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a failure here is reproducible
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        tried[label] = tried.get(label, 0) + 1
        response = case.call(base_url=base_url, timeout=10)
        if response.status_code >= 500:
            body = json.loads(response.content)
            assert response.status_code == 500, (label, case.body, body)
            assert body["type"] in allowed, (label, case.body, body)
        case.validate_response(response, excluded_checks=excluded)

    fuzz()


@pytest.mark.parametrize("job", sorted(JOB_EXCEPTIONS))
def test_fuzz_every_operation_against_its_schema(job, tmp_path):
    log = tmp_path / "server.log"
    tried: dict[str, int] = {}
    with running_server(job_path(job), env={"FATMAN_WORKERS": "1"}, log_path=log) as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert any(op.path == "/api/v1/perform" for op in operations)
        for operation in operations:
            excluded = [not_a_server_error]  # judged above: only the job's own exceptions may 500
            if job in LOOSER_THAN_CHECK:
                excluded.append(positive_data_acceptance)
            fuzz_operation(operation, server.url, JOB_EXCEPTIONS[job], tried, excluded)
    text = log.read_text()
    assert "unexpected error answering" not in text, text[-3000:]
    assert "Traceback" not in text or JOB_EXCEPTIONS[job], text[-3000:]
    assert sum(tried.values()) >= len(tried) * 5, tried
    print(f"{job}: {sum(tried.values())} requests over {len(tried)} operations")
