"""Our handling of the engine's build stream: steps, failures, tags. The engine itself is faked here
(the integration suite builds on a real one)."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests

from racetrack_builder.engine import DockerEngine
from racetrack_builder.errors import AuthenticationRefused, BuildFailed, EngineUnreachable, UsageError
from tests.reporter import Recorded


class FakeAPI:
    def __init__(self, chunks: list[dict[str, Any]], *, raise_midway: Exception | None = None) -> None:
        self.chunks = chunks
        self.raise_midway = raise_midway
        self.build_kwargs: dict[str, Any] = {}

    def build(self, **kwargs: Any):
        self.build_kwargs = kwargs
        yield from self.chunks
        if self.raise_midway:
            raise self.raise_midway

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return {"Id": "sha256:" + "ab" * 32, "Size": 123_000_000}

    def push(self, repository: str, tag: str, stream: bool, decode: bool):
        yield {"status": "Pushing", "id": "abc"}
        yield {"error": "unauthorized: authentication required"}


class FakeClient:
    def __init__(self, api: FakeAPI) -> None:
        self.api = api


def _engine(api: FakeAPI) -> DockerEngine:
    return DockerEngine(client=FakeClient(api))


def test_steps_and_log_lines_reach_the_reporter(tmp_path: Path, reported: Recorded) -> None:
    api = FakeAPI(
        [
            {"stream": "Step 1/2 : FROM racetrack/python3:latest\n"},
            {"stream": " ---> 1234\n"},
            {"stream": "Step 2/2 : RUN pip install x\n"},
            {"stream": "\x1b[1mCollecting x\x1b[0m\n"},
            {"aux": {"ID": "sha256:" + "ab" * 32}},
            {"stream": "Successfully built abababab\n"},
        ]
    )
    image = _engine(api).build(tmp_path, tag="adder:0.0.1", buildargs={"T": "v"}, network="host")
    steps, logs = reported.steps, reported.logs
    assert steps == [(1, 2, "FROM racetrack/python3:latest"), (2, 2, "RUN pip install x")]
    assert "Collecting x" in logs  # ANSI codes stripped
    assert image.ref == "adder:0.0.1" and image.size == 123_000_000
    assert api.build_kwargs["buildargs"] == {"T": "v"} and api.build_kwargs["network_mode"] == "host"
    assert api.build_kwargs["pull"] is False and api.build_kwargs["forcerm"] is True


def test_a_failing_step_is_named_with_the_tail_of_its_output(tmp_path: Path) -> None:
    api = FakeAPI(
        [
            {"stream": "Step 3/9 : RUN set -eu; apt-get update; apt-get install -y nosuchpkg\n"},
            {"stream": "E: Unable to locate package nosuchpkg\n"},
            {
                "error": "The command '/bin/sh -c ...' returned a non-zero code: 100",
                "errorDetail": {
                    "code": 100,
                    "message": "The command '/bin/sh -c ...' returned a non-zero code: 100",
                },
            },
        ]
    )
    with pytest.raises(BuildFailed) as exc:
        _engine(api).build(tmp_path, tag="t:1")
    err = exc.value
    assert err.exit_code == 1
    assert "system dependency could not be found" in err.message
    assert "E: Unable to locate package nosuchpkg" in err.log_tail
    assert "system_dependencies" in (err.hint or "")


def test_an_engine_that_stops_answering_midway_is_an_environment_failure(tmp_path: Path) -> None:
    api = FakeAPI(
        [{"stream": "Step 1/2 : FROM x\n"}],
        raise_midway=requests.exceptions.ConnectionError("Connection aborted"),
    )
    with pytest.raises(EngineUnreachable, match="stopped answering during build") as exc:
        _engine(api).build(tmp_path, tag="t:1")
    assert exc.value.exit_code == 3


def test_refused_push_is_an_authentication_failure() -> None:
    with pytest.raises(AuthenticationRefused, match="docker login"):
        _engine(FakeAPI([])).push("127.0.0.1:5000/adder:0.0.1")


def test_no_engine_is_exit_3_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    # docker-py leaks the socket of its failed version probe inside its own constructor (nothing
    # of ours holds it); collect it here so its ResourceWarning does not surface in a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(EngineUnreachable) as exc:
            DockerEngine().connect()
        code, message = exc.value.exit_code, str(exc.value)
        del exc  # the error's cause holds the frames holding the socket
        gc.collect()
    assert code == 3 and "DOCKER_HOST" in message


def _fail_with(tmp_path: Path, instruction: str, output: list[str]) -> Exception:
    api = FakeAPI(
        [
            {"stream": f"Step 4/11 : {instruction}\n"},
            *({"stream": line + "\n"} for line in output),
            {"error": "returned a non-zero code: 1"},
        ]
    )
    with pytest.raises(Exception) as exc:
        _engine(api).build(tmp_path, tag="t:1")
    return exc.value


PIP_STEP = "RUN set -eu; pip install --prefix /build/prefix -r r.txt; PYTHONPATH=x pip check"


def test_tls_interception_points_to_ca_cert(tmp_path: Path) -> None:
    err = _fail_with(
        tmp_path, PIP_STEP, ["SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED]"]
    )
    assert isinstance(err, BuildFailed) and "--ca-cert" in (err.hint or "")


def test_refused_index_credentials_are_an_authentication_failure(tmp_path: Path) -> None:
    err = _fail_with(
        tmp_path, PIP_STEP, ["ERROR: 401 Client Error: Unauthorized for url: http://127.0.0.1:1/simple/x/"]
    )
    assert isinstance(err, AuthenticationRefused) and err.exit_code == 3
    assert "secret_build_env_file" in str(err)


def test_a_git_server_refusing_a_requirements_token_is_an_authentication_failure(tmp_path: Path) -> None:
    """A wrong token in secret_build_env_file for a git+https requirement (found by a new user)."""
    err = _fail_with(tmp_path, PIP_STEP, [
        "  Running command git clone --filter=blob:none --quiet 'http://***:****@127.0.0.1:8766/lib.git'",
        "  fatal: Authentication failed for 'http://127.0.0.1:8766/lib.git/'",
        "  error: subprocess-exited-with-error",
    ])
    assert isinstance(err, AuthenticationRefused) and err.exit_code == 3
    assert "git server refused the build's credentials" in err.message
    assert "secret_build_env_file" in str(err)


def test_running_a_missing_image_names_the_fix_instead_of_pulling(tmp_path: Path) -> None:
    class NoImages(FakeAPI):
        def inspect_image(self, ref: str) -> dict[str, Any]:
            import docker.errors

            raise docker.errors.ImageNotFound(f"No such image: {ref}")

    engine = _engine(NoImages([]))
    with pytest.raises(UsageError, match="no image adder:9 on the engine") as exc:
        engine.run("adder:9", environment={}, name="racetrack-test-missing")
    assert exc.value.exit_code == 2 and "racetrack-build MANIFEST" in str(exc.value)


def test_a_missing_shared_library_names_the_debian_package(tmp_path: Path) -> None:
    err = _fail_with(
        tmp_path,
        'RUN ["python", "-m", "fatman_wrapper", "check", "job.py", "--no-server"]',
        ["OSError: libgomp.so.1: cannot open shared object file: No such file or directory"],
    )
    assert "needs the system library libgomp.so.1" in err.message
    assert err.hint == "add libgomp1 to system_dependencies"  # type: ignore[attr-defined]


CHECK = 'RUN ["python", "-m", "fatman_wrapper", "check", "job.py", "--no-server"]'


def test_the_checks_own_lines_give_the_headline_and_the_fix(tmp_path: Path) -> None:
    imported = _fail_with(tmp_path, CHECK, [
        "Error: a line the job printed at import",
        "SyntaxError: expected ':'",
        "Error: importing the entrypoint 'job.py' failed: SyntaxError: expected ':' (job.py, line 2)",
        "To fix: fix the syntax error at job.py:2",
    ])
    assert imported.message.startswith("the job cannot be imported inside the image: importing the "
                                       "entrypoint 'job.py' failed: SyntaxError")
    assert imported.hint == "fix the syntax error at job.py:2"
    shaped = _fail_with(tmp_path, CHECK, [
        "Error: several entrypoint classes found in job: A, B",
        "To fix: choose one with python.entrypoint_class",
    ])
    assert shaped.message.startswith(
        "the job's entrypoint fails the build's check: several entrypoint classes")
    assert shaped.hint == "choose one with python.entrypoint_class"


def test_a_package_built_for_numpy_1_beside_numpy_2_is_told_to_pin_numpy(tmp_path: Path) -> None:
    err = _fail_with(tmp_path, CHECK, [
        "ValueError: numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C "
        "header, got 88 from PyObject",
    ])
    assert "built against NumPy 1.x" in err.message and err.hint is not None and "numpy<2" in err.hint


def test_a_failed_job_check_says_the_job_cannot_be_imported(tmp_path: Path) -> None:
    err = _fail_with(
        tmp_path,
        'RUN ["python", "-m", "fatman_wrapper", "check", "job.py", "--no-server"]',
        ["ModuleNotFoundError: No module named 'nope'"],
    )
    assert isinstance(err, BuildFailed)
    assert "the job cannot be imported inside the image" in err.message


def test_a_network_the_engine_does_not_have_is_a_usage_error() -> None:
    from racetrack_builder.build_stream import StepFailure
    from racetrack_builder.failures import explain

    err = explain(StepFailure("8/10", "RUN set -eu; apt-get update", "network hots not found",
                              ["Removing intermediate container 0137", "network hots not found"]))
    assert isinstance(err, UsageError) and err.exit_code == 2
    assert err.message == "--network hots: the Docker engine has no such network"
