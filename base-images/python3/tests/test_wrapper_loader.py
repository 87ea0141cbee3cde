"""Finding and starting the entrypoint: clear messages, and a server that stays up on failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wrapper_support import job_path

from fatman_wrapper.errors import JobLoadError
from fatman_wrapper.loader import check_entrypoint


def test_failing_import_keeps_server_up(make_app):
    client = make_app("failing_import").test_client()
    assert client.get("/live").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "failed"
    assert "ModuleNotFoundError" in body["error"] and "module_that_does_not_exist_anywhere" in body["error"]
    assert "traceback" not in body  # the log has it; probes answer anyone
    health = client.get("/health")
    assert health.status_code == 503 and "module_that_does_not_exist_anywhere" in health.get_json()["error"]
    for method, path in (
        ("post", "/api/v1/perform"),
        ("get", "/api/v1/parameters"),
        ("post", "/api/v1/explain"),
        ("get", "/api/v1/webview/"),
    ):
        response = getattr(client, method)(path, json={})
        assert response.status_code == 503, path
        assert response.get_json()["type"] == "JobNotReady"
        assert "module_that_does_not_exist_anywhere" in response.get_json()["error"]
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_failing_init_keeps_server_up(make_app):
    client = make_app("failing_init").test_client()
    assert client.get("/live").status_code == 200
    body = client.get("/ready").get_json()
    # The type, not the text of the user's exception (it may hold data): the log has both.
    assert "FailingInitEntrypoint.__init__ raised FileNotFoundError" in body["error"]
    assert "model.pkl is missing" not in body["error"] and "traceback" not in body
    response = client.post("/api/v1/perform", json={})
    assert response.status_code == 503
    assert "raised FileNotFoundError" in response.get_json()["error"]


def _load_error(job: str, class_name=None) -> JobLoadError:
    with pytest.raises(JobLoadError) as info:
        check_entrypoint("fatman_entrypoint.py", class_name, job_path(job))
    return info.value


def test_missing_entrypoint_file():
    with pytest.raises(JobLoadError) as info:
        check_entrypoint("nope.py", None, job_path("adder"))
    assert "entrypoint file 'nope.py' not found in the job root" in str(info.value)
    assert "python.entrypoint_path" in str(info.value)
    assert info.value.user_traceback is None


def test_no_class():
    err = _load_error("no_class")
    assert "no class defined there has a perform method" in str(err)
    assert "Settings" in str(err)


def test_several_classes_lists_candidates():
    err = _load_error("several_classes")
    assert "several entrypoint classes found" in str(err)
    assert "FirstModel, SecondModel" in str(err)
    assert "python.entrypoint_class" in str(err)


def test_entrypoint_class_chooses(make_app):
    assert (
        check_entrypoint("fatman_entrypoint.py", "SecondModel", job_path("several_classes")).__name__
        == "SecondModel"
    )
    client = make_app("several_classes", class_name="SecondModel").test_client()
    assert client.post("/api/v1/perform").get_json() == "second"


def test_unknown_entrypoint_class():
    err = _load_error("several_classes", "ThirdModel")
    assert "entrypoint class 'ThirdModel' not found" in str(err)
    assert "FirstModel, SecondModel" in str(err)


def test_star_args_in_perform():
    err = _load_error("args_perform")
    assert "declares *numbers" in str(err)
    assert "**kwargs" in str(err)


def test_import_error_carries_the_user_traceback():
    err = _load_error("failing_import")
    assert err.user_traceback is not None
    assert "import module_that_does_not_exist_anywhere" in err.user_traceback
    assert "importlib" not in err.user_traceback and "fatman_wrapper" not in err.user_traceback


def test_helper_and_imported_classes_are_not_candidates():
    assert (
        check_entrypoint("fatman_entrypoint.py", None, job_path("helper_classes")).__name__
        == "HelpedEntrypoint"
    )


def test_check_does_not_run_init():
    assert (
        check_entrypoint("fatman_entrypoint.py", None, job_path("failing_init")).__name__
        == "FailingInitEntrypoint"
    )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fatman_wrapper", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_check_command_ok(tmp_path):
    result = _cli("check", "fatman_entrypoint.py", "--root", str(job_path("failing_init")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FailingInitEntrypoint" in result.stdout


@pytest.mark.parametrize(
    "job,args,expected",
    [
        ("failing_import", [], "import module_that_does_not_exist_anywhere"),
        (
            "several_classes",
            [],
            "several entrypoint classes found in fatman_entrypoint: FirstModel, SecondModel",
        ),
        ("no_class", [], "no entrypoint class found"),
        ("args_perform", [], "declares *numbers"),
        ("several_classes", ["--class", "Nope"], "entrypoint class 'Nope' not found"),
    ],
)
def test_check_command_errors(job, args, expected):
    result = _cli("check", "fatman_entrypoint.py", *args, cwd=job_path(job))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Error: " in result.stderr


def test_check_without_the_server_stack_imports_only_the_job(tmp_path):
    code = (
        "import sys; from fatman_wrapper.__main__ import main; "
        "rc = main(['check', 'fatman_entrypoint.py', '--no-server', '--root', sys.argv[1]]); "
        "print(rc, 'flask' in sys.modules, 'gunicorn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(job_path("failing_init"))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 False False"


def test_check_server_imports_the_server_stack(tmp_path):
    result = _cli("check-server", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "server stack" in result.stdout


def test_check_server_names_the_fix_when_a_package_shadows_the_wrappers(tmp_path):
    shadow = tmp_path / "shadow"
    (shadow / "werkzeug").mkdir(parents=True)
    (shadow / "werkzeug" / "__init__.py").write_text("raise ImportError('this werkzeug is broken')\n")
    result = subprocess.run(
        [sys.executable, "-m", "fatman_wrapper", "check-server"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(shadow)},
    )
    assert result.returncode == 1
    assert "this werkzeug is broken" in result.stderr
    assert "pin a matching set" in result.stderr


def test_check_command_missing_file(tmp_path):
    result = _cli("check", "missing.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "entrypoint file 'missing.py' not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "returned,message",
    [
        ("{'/perform': self.perform}", "collides with the wrapper's /api/v1/perform"),
        ("{'/../x': self.perform}", "is not a valid path"),
        ("{'/x': 42}", "which is not callable"),
        ("['/x']", "not a dict"),
    ],
)
def test_bad_auxiliary_endpoints(tmp_path, make_app, returned, message):
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        f"    def auxiliary_endpoints(self):\n        return {returned}\n"
    )
    client = make_app("", root=tmp_path).test_client()
    body = client.get("/ready").get_json()
    assert message in body["error"]


def test_background_loading_answers_probes_at_once_and_requests_wait(monkeypatch):
    import time

    from wrapper_support import BufferedClient

    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    monkeypatch.chdir(job_path("slow_init"))
    monkeypatch.setenv("FATMAN_TEST_INIT_SECONDS", "1.5")
    started = time.monotonic()
    app = create_app(
        "fatman_entrypoint.py", root=job_path("slow_init"), settings=Settings(timeout=30), background=True
    )
    app.test_client_class = BufferedClient
    client = app.test_client()
    assert client.get("/live").status_code == 200
    starting = client.get("/ready")
    assert starting.status_code == 503 and starting.get_json()["status"] == "starting"
    assert time.monotonic() - started < 1.0, "the probes must not wait for __init__"
    # a job request waits for the load instead of failing
    response = client.post("/api/v1/perform", json={"x": 1})
    assert response.status_code == 200 and response.get_json() == 2
    assert client.get("/ready").get_json() == {"status": "ready"}


def test_the_openapi_document_of_a_worker_still_loading_waits_for_the_job(monkeypatch):
    """A smoke test reading the examples from a worker still loading must not get a document with
    the probes alone (it would then call no example and pass)."""
    from wrapper_support import BufferedClient

    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    monkeypatch.chdir(job_path("slow_init"))
    monkeypatch.setenv("FATMAN_TEST_INIT_SECONDS", "1.5")
    app = create_app(
        "fatman_entrypoint.py", root=job_path("slow_init"), settings=Settings(timeout=30), background=True
    )
    app.test_client_class = BufferedClient
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert "/api/v1/perform" in paths


def test_background_loading_gives_up_after_the_wait(monkeypatch):
    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    monkeypatch.chdir(job_path("slow_init"))
    monkeypatch.setenv("FATMAN_TEST_INIT_SECONDS", "3")
    app = create_app(
        "fatman_entrypoint.py", root=job_path("slow_init"), settings=Settings(timeout=1), background=True
    )
    response = app.test_client().post("/api/v1/perform", json={"x": 1})
    assert response.status_code == 503
    assert "still starting" in response.get_json()["error"]


def _nested_job(root: Path, *, root_helpers: bool = False, broken: bool = False) -> None:
    """A job whose entrypoint lives in src/app/ and imports a module lying next to it."""
    app_dir = root / "src" / "app"
    app_dir.mkdir(parents=True)
    (app_dir / "helpers.py").write_text("ORIGIN = 'next to the entrypoint'\n")
    if root_helpers:
        (root / "helpers.py").write_text("ORIGIN = 'job root'\n")
    (app_dir / "entry.py").write_text(
        "from helpers import ORIGIN\n"
        + ("raise RuntimeError('broken on purpose')\n" if broken else "")
        + "class Entry:\n    def perform(self) -> str:\n        return ORIGIN\n"
    )


_SERVE_NESTED = (
    "import sys; from fatman_wrapper import create_app; from fatman_wrapper.config import Settings\n"
    "app = create_app('src/app/entry.py', root=sys.argv[1], settings=Settings())\n"
    "response = app.test_client().post('/api/v1/perform')\n"
    "print(response.status_code, response.get_json())\n"
)


@pytest.mark.parametrize("root_helpers,origin", [(False, "next to the entrypoint"), (True, "job root")])
def test_entrypoint_folder_is_importable_after_the_job_root(tmp_path, root_helpers, origin):
    # As `python src/app/entry.py` would: the entrypoint's folder is importable, but a module of
    # the same name at the job root wins (the root comes first on sys.path). Subprocesses, so
    # the `helpers` module of one case is not cached for the next.
    root = tmp_path / "job"
    _nested_job(root, root_helpers=root_helpers)
    checked = _cli("check", "src/app/entry.py", "--no-server", "--root", str(root), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "entrypoint class: Entry (src/app/entry.py)" in checked.stdout
    served = subprocess.run(
        [sys.executable, "-c", _SERVE_NESTED, str(root)], capture_output=True, text=True, timeout=60
    )
    assert served.returncode == 0, served.stderr
    assert served.stdout.splitlines()[-1] == f"200 {origin}"


def test_import_error_names_the_entrypoint_path_as_given(tmp_path):
    _nested_job(tmp_path, broken=True)
    result = _cli("check", "src/app/entry.py", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "importing the entrypoint 'src/app/entry.py' failed: RuntimeError: broken on purpose" in (
        result.stderr
    )


@pytest.mark.parametrize("static_path", ["/perform", "/explain", "/explain/data.csv"])
def test_a_static_endpoint_on_a_job_endpoints_path_is_refused(tmp_path, make_app, static_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        "    def explain(self):\n        return 2\n"
        "    def auxiliary_endpoints(self):\n        return {'/explain': self.explain}\n"
        f"    def static_endpoints(self):\n        return {{'{static_path}': 'data.csv'}}\n"
    )
    body = make_app("", root=tmp_path).test_client().get("/ready").get_json()
    assert body["status"] == "failed"
    assert f"static endpoint /api/v1{static_path} collides with the endpoint /api/v1/" in body["error"]


def test_the_fix_for_an_import_failure_fits_its_cause(tmp_path):
    """A syntax error is told by its line, a missing module by its package, neither by the other."""
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "maths.py").write_text("def add(x, y)\n    return x + y\n")
    (tmp_path / "syntax.py").write_text("from helpers.maths import add\nclass Job:\n    pass\n")
    (tmp_path / "missing.py").write_text("import sklearnn.model\nclass Job:\n    pass\n")
    (tmp_path / "other.py").write_text("raise RuntimeError('no')\n")
    hints = {}
    for name in ("syntax", "missing", "other"):
        with pytest.raises(JobLoadError) as caught:
            check_entrypoint(f"{name}.py", root=str(tmp_path))
        hints[name] = caught.value.hint
    assert hints["syntax"] == "fix the syntax error at helpers/maths.py:1"
    assert hints["missing"].startswith(
        "add the package that provides the module 'sklearnn' to the job's requirements")
    assert hints["other"] == "fix the error in your code shown in the traceback"
