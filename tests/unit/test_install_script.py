"""The install step's script (base-images/build-tools/racetrack_install.py), run here on the host's
Python: variables, installer choice, secrets handling, the wrapper-copy pruning and the diagnosis of
real installer messages (uv's and pip's wording, as they print them)."""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "base-images" / "build-tools" / "racetrack_install.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("racetrack_install", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ri = _load()


def _plan(**extra: object) -> object:
    data = {
        "requirements": "requirements.txt",
        "files": ["requirements.txt"],
        "build_env": {},
        "wrapper_python": "/opt/fatman/venv/bin/python",
        "site_packages": "/x",
        "bin": "/y",
        "python_version": "3.11",
    }
    data.update(extra)
    return ri.Plan(data)


# -- inputs -------------------------------------------------------------------------------------------
def test_variables_are_expanded_as_pip_does_and_unknown_ones_stay() -> None:
    text = "private @ https://${USER_1}:${TOKEN}@host/p.whl ${lower} ${MISSING}\n"
    assert ri.expand_variables(text, {"USER_1": "u", "TOKEN": "t", "lower": "no"}) == (
        "private @ https://u:t@host/p.whl ${lower} ${MISSING}\n"
    )


def test_uv_is_the_installer_unless_the_build_env_needs_pip() -> None:
    assert ri.installer_for({"PIP_INDEX_URL": "http://127.0.0.1/simple", "OTHER": "x"}) == ("uv", None)
    installer, why = ri.installer_for({"PIP_PRE": "1", "PIP_NO_BINARY": ":all:"})
    assert installer == "pip" and "PIP_NO_BINARY, PIP_PRE" in why
    assert ri.installer_for({"RACETRACK_INSTALLER": "pip"})[0] == "pip"


def test_the_environment_gives_uv_pips_settings_and_the_secrets_win(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    env = ri.installer_env(
        {"PATH": "/usr/bin"},
        {
            "PIP_INDEX_URL": "http://plain/simple",
            "PIP_EXTRA_INDEX_URL": "http://a/simple\nhttp://b/simple",
            "TOKEN": "plain",
        },
        {"TOKEN": "secret"},
        ca,
    )
    assert env["UV_DEFAULT_INDEX"] == "http://plain/simple"
    assert env["UV_INDEX"] == "http://a/simple http://b/simple"
    assert env["TOKEN"] == "secret"
    assert env["SSL_CERT_FILE"] == env["GIT_SSL_CAINFO"] == str(ca)
    assert env["PATH"].startswith(f"{ri.TOOLS}/bin:")


def test_the_secrets_file_is_gone_once_read(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"TOKEN": "s3cr3t"}))
    assert ri.take_secrets(path) == {"TOKEN": "s3cr3t"}
    assert not path.exists()
    assert ri.take_secrets(path) == {}


def test_a_buildkit_secret_is_the_env_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "build-env"
    path.write_text("# comment\nexport USER=ci\nTOKEN='a b#c'\nHOST=\"h\" \nPLAIN=x  # note\n")
    assert ri.take_secrets(path) == {"USER": "ci", "TOKEN": "a b#c", "HOST": "h", "PLAIN": "x"}


def test_requirements_are_found_through_includes(tmp_path: Path) -> None:
    (tmp_path / "req").mkdir()
    (tmp_path / "requirements.txt").write_text("-r req/base.txt\n# c\nnumpy==1.26.4\n")
    (tmp_path / "req" / "base.txt").write_text(
        "--index-url https://x/simple\nscikit-learn==0.24.1 ; python_version < '4'\n"
        "mylib @ git+https://${U}:${T}@git/x.git\n-e git+https://git/y.git#egg=ylib\n"
    )
    found = ri.requirement_lines(tmp_path, "requirements.txt")
    assert found["scikit-learn"] == ("scikit-learn==0.24.1 ; python_version < '4'", "req/base.txt", 2)
    assert found["numpy"] == ("numpy==1.26.4", "requirements.txt", 3)
    assert found["mylib"][1:] == ("req/base.txt", 3)
    assert found["ylib"][1:] == ("req/base.txt", 4)


# -- the wrapper's own packages -----------------------------------------------------------------------
def _dist(site: Path, name: str, version: str, files: dict[str, str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
    record = [f"{rel},," for rel in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)


def test_copies_of_the_wrappers_packages_are_removed_and_other_versions_kept(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "flask", "3.1.3", {"flask/__init__.py": "", "bin/flask": "#!"})
    (site / "flask" / "__pycache__").mkdir()
    (site / "flask" / "__pycache__" / "__init__.cpython-311.pyc").write_text("")
    _dist(site, "werkzeug", "2.0.3", {"werkzeug/__init__.py": ""})
    _dist(site, "python_dateutil", "2.9.0", {"dateutil/__init__.py": ""})
    removed = ri.drop_wrapper_copies(site, {"flask": "3.1.3", "werkzeug": "3.1.9"})
    assert removed == ["flask==3.1.3"]
    assert sorted(p.name for p in site.iterdir()) == [
        "dateutil",
        "python_dateutil-2.9.0.dist-info",
        "werkzeug",
        "werkzeug-2.0.3.dist-info",
    ]


# -- diagnosis ----------------------------------------------------------------------------------------
@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ri, "WORK", tmp_path)
    (tmp_path / "job").mkdir()
    return tmp_path / "job"


def _diagnose(
    lines: str,
    wrapper: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, object]:
    return ri.diagnose(
        lines.splitlines(),
        _plan(),
        env or {"UV_DEFAULT_INDEX": "http://127.0.0.1:9/simple"},
        wrapper or {},
        secrets,
    )


def test_a_package_that_does_not_exist_is_named_with_a_guess(job: Path) -> None:
    (job / "requirements.txt").write_text("flask\nsklearn==1.0\n")
    found = _diagnose(
        "error: No solution found when resolving dependencies\n"
        "  cause: Because sklearn was not found in the package registry and you require sklearn==1.0, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert found["requirement"] == "sklearn==1.0" and found["where"] == "requirements.txt:2"
    assert found["kind"] == "not-found"
    assert "did you mean 'scikit-learn'?" in str(found["fix"])


def test_a_version_that_does_not_exist_is_named(job: Path) -> None:
    (job / "requirements.txt").write_text("numpy==0.0.99\n")
    found = _diagnose(
        "  cause: Because there is no version of numpy==0.0.99 and you require numpy==0.0.99, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert (found["kind"], found["where"]) == ("no-version", "requirements.txt:1")
    assert "numpy ==0.0.99" in str(found["cause"])


def test_a_version_that_does_not_exist_is_told_the_versions_around_it_not_a_near_name(
        job: Path, index: str) -> None:
    (job / "requirements.txt").write_text("numpy==1.99.0\n")
    found = _diagnose(
        "  cause: Because there is no version of numpy==1.99.0 and you require numpy==1.99.0, "
        "we can conclude that your requirements are unsatisfiable.",
        env={"UV_DEFAULT_INDEX": index},
    )
    assert found["fix"] == "choose a version the index has: numpy 1.19.5 (around 1.99.0)"
    assert "did you mean" not in str(found["fix"])


def test_versions_near_the_one_asked_for() -> None:
    versions = ["1.0", "1.2", "1.10", "2.0", "2.1", "3.0"]
    assert ri.versions_near("1.11", versions) == "1.2, 1.10, 2.0, 2.1 (around 1.11), 3.0 (the newest)"
    assert ri.versions_near("9", versions) == "2.1, 3.0 (around 9)"
    assert ri.versions_near("1.0", []) == ""


def test_a_conflict_with_the_wrappers_pin_says_whose_it_is(job: Path) -> None:
    (job / "requirements.txt").write_text("werkzeug==1.0.1\n")
    found = _diagnose(
        "  cause: Because you require werkzeug==1.0.1 and flask==3.1.3 depends on werkzeug>=3.1, "
        "we can conclude that your requirements are unsatisfiable.",
        wrapper={"flask": "3.1.3", "werkzeug": "3.1.9"},
    )
    assert found["kind"] == "conflict" and found["where"] == "requirements.txt:1"
    assert "flask is the wrapper's own (flask==3.1.3)" in str(found["cause"])


def test_a_conflict_between_two_pins_reads_as_one_sentence(job: Path) -> None:
    (job / "requirements.txt").write_text("pandas==2.2.0\nnumpy==1.20.0\n")
    found = _diagnose(
        "  cause: Because pandas==2.2.0 depends on numpy>=1.23.2,<2 and you require pandas==2.2.0, we can "
        "conclude that you require numpy>=1.23.2,<2.\n      And because you require numpy==1.20.0, we can "
        "conclude that your requirements are unsatisfiable."
    )
    assert found["kind"] == "conflict"
    assert found["cause"] == (
        "the requirements conflict: pandas==2.2.0 needs numpy>=1.23.2,<2, but the requirements ask for "
        "numpy==1.20.0; the pins involved: pandas==2.2.0 (requirements.txt:1), "
        "numpy==1.20.0 (requirements.txt:2)")


def test_pip_checks_finding_names_both_sides(job: Path) -> None:
    (job / "requirements.txt").write_text("werkzeug==1.0.1\n")
    found = _diagnose(
        "flask 3.1.3 has requirement werkzeug>=3.1, but you have werkzeug 1.0.1.",
        wrapper={"flask": "3.1.3", "werkzeug": "3.1.9"},
    )
    assert found["kind"] == "conflict"
    assert "flask 3.1.3 (the wrapper's own) needs werkzeug>=3.1" in str(found["cause"])
    assert found["requirement"] == "werkzeug==1.0.1"


def test_a_source_build_names_the_debian_packages(job: Path) -> None:
    (job / "requirements.txt").write_text("psycopg2==2.9.9\n")
    found = _diagnose(
        "  × Failed to build `psycopg2==2.9.9`\n  ├─▶ The build backend returned an error\n"
        "      Error: pg_config executable not found.\n"
    )
    assert found["where"] == "requirements.txt:1" and found["kind"] == "source-build"
    assert found["fix"] == "add libpq-dev, gcc to system_dependencies"


def test_refused_credentials_name_the_secret_variables_and_mask_the_url(job: Path) -> None:
    found = _diagnose(
        "error: Failed to fetch: `http://ci:tok3n@127.0.0.1:8080/simple/private-demo/`\n"
        "  Caused by: HTTP status client error (401 Unauthorized) for url (http://127.0.0.1:8080/)",
        secrets=("INDEX_TOKEN", "INDEX_USER"),
    )
    assert found["kind"] == "auth"
    assert "tok3n" not in json.dumps(found)
    assert "INDEX_TOKEN, INDEX_USER" in str(found["fix"])
    assert found["cause"] == (
        "the package index or git server refused the credentials at http://***@127.0.0.1:8080/simple/private-demo/"
    )


def test_refused_credentials_in_uvs_resolution_words_name_the_requirement(job: Path) -> None:
    """uv tells a refused index apart only in its hint; the requirement is the one not found."""
    (job / "requirements.txt").write_text("--index-url http://${U}:${T}@127.0.0.1:8080/simple/\nprivate-demo==1.0\n")
    found = _diagnose(
        "  cause: Because private-demo was not found in the package registry and you require "
        "private-demo==1.0, we can conclude that your requirements are unsatisfiable.\n\n"
        "  hint: An index (http://127.0.0.1:8080/simple/) returned a 403 Forbidden error. Check that the "
        "index URL is correct and the credentials are valid.",
        secrets=("T", "U"),
    )
    assert (found["kind"], found["requirement"], found["where"]) == (
        "auth", "private-demo==1.0", "requirements.txt:2")
    assert found["cause"] == "the package index or git server refused the credentials at http://127.0.0.1:8080/simple/"


class _Index(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        page = b"<a>x</a>"
        if self.path == "/simple/numpy/":
            page = "".join(
                f'<a href="#">numpy-1.19.5-cp{v}-cp{v}-manylinux2010_x86_64.whl</a>\n'
                for v in ("36", "37", "38")
            ).encode()
        if self.path == "/simple/scikit-learn/":
            page = (
                "".join(
                    f'<a href="#">scikit_learn-0.24.1-cp{v}-cp{v}-manylinux2010_x86_64.whl</a>\n'
                    for v in ("36", "37", "38", "39")
                ).encode()
                + b'<a href="#">scikit-learn-0.24.1.tar.gz</a>'
            )
        self.send_response(200)
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def test_no_wheel_for_this_python_names_the_pythons_the_index_has(job: Path, index: str) -> None:
    (job / "requirements.txt").write_text("numpy==1.19.5\nscikit-learn==0.24.1\nsix\n")
    found = _diagnose(
        "  × Failed to build `scikit-learn==0.24.1`\n  ├─▶ The build backend returned an error\n"
        "      error: some compiler failure deep in numpy.distutils\n",
        env={"UV_DEFAULT_INDEX": index},
    )
    assert found["kind"] == "no-distribution"
    assert found["wheel_pythons"] == ["3.6", "3.7", "3.8", "3.9"]
    assert "no wheel for Python 3.11 (it has wheels for Python 3.6, 3.7, 3.8, 3.9)" in str(found["cause"])
    assert "numpy==1.19.5 has none either" in str(found["cause"])
    # The newest Python both pins have wheels for.
    assert "set python.python_version to '3.8'" in str(found["fix"])
    assert "pin newer releases of scikit-learn and numpy" in str(found["fix"])


def test_pip_no_index_becomes_uvs_flag_for_uv_has_no_variable_for_it() -> None:
    assert ri.installer_for({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "http://127.0.0.1/w/"}) == ("uv", None)
    command = ri.install_command("uv", _plan(), Path("/r.txt"), None, no_index=ri.truthy("true"))
    assert command[-1] == "--no-index"
    assert "--no-index" not in ri.install_command("uv", _plan(), Path("/r.txt"), None)
    env = ri.installer_env({}, {"PIP_FIND_LINKS": "http://a/ http://b/"}, {}, None)
    assert env["UV_FIND_LINKS"] == "http://a/ http://b/" and "UV_NO_INDEX" not in env


def test_a_files_index_url_wins_over_pip_index_url_as_with_pip() -> None:
    texts = ["-r base.txt\n", "--index-url https://private/simple/\nprivate-lib==1\n"]
    index = ri.file_index_url(texts)
    assert index == "https://private/simple/"
    env = ri.installer_env({}, {"PIP_INDEX_URL": "https://public/simple"}, {}, None, index)
    assert "UV_DEFAULT_INDEX" not in env


def test_a_failed_source_build_of_a_release_with_other_pythons_wheels_is_no_wheel_not_a_compiler(
    job: Path, index: str
) -> None:
    """numpy 1.19.5 on Python 3.11: its source build fails on a compiler, but gcc is not the fix."""
    (job / "requirements.txt").write_text("numpy==1.19.5\n")
    found = _diagnose(
        "  × Failed to build `numpy==1.19.5`\n  ├─▶ The build backend returned an error\n"
        "      error: command 'gcc' failed: No such file or directory\n",
        env={"UV_DEFAULT_INDEX": index},
    )
    assert found["kind"] == "no-distribution", found
    assert "and its build from source failed" in str(found["cause"])


def test_the_fix_names_the_python_field_of_the_manifest_in_use(job: Path, index: str) -> None:
    (job / "requirements.txt").write_text("scikit-learn==0.24.1\n")
    plan = _plan(python_version_field="jobtype_extra.python_version")
    found = ri.diagnose(
        ["  × Failed to build `scikit-learn==0.24.1`"], plan, {"UV_DEFAULT_INDEX": index}, {}, ()
    )
    assert "set jobtype_extra.python_version to '3.9'" in str(found["fix"]), found


def test_a_conflict_between_the_jobs_own_pins_names_both_without_uvs_markers(job: Path) -> None:
    (job / "requirements.txt").write_text("pandas==2.2.2\nnumpy==1.21.0\n")
    found = _diagnose(
        "  cause: Because pandas==2.2.2 depends on numpy{python_full_version < '3.12'}>=1.23.2 and you\n"
        "      require pandas==2.2.2, we can conclude that you require numpy>=1.23.2.\n"
        "      And because you require numpy==1.21.0, we can conclude that your requirements are\n"
        "      unsatisfiable."
    )
    assert found["kind"] == "conflict"
    assert "{" not in str(found["cause"]), found["cause"]
    assert "pandas==2.2.2 (requirements.txt:1), numpy==1.21.0 (requirements.txt:2)" in str(found["cause"])


def test_a_deprecated_placeholder_name_gets_its_real_name(job: Path) -> None:
    (job / "requirements.txt").write_text("sklearn==1.0\n")
    found = _diagnose(
        "  cause: Because there is no version of sklearn==1.0 and you require sklearn==1.0, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert found["kind"] == "no-version" and "did you mean 'scikit-learn'?" in str(found["fix"])


def test_the_installed_modules_are_compiled_but_not_their_test_suites(tmp_path: Path) -> None:
    import sys

    site = tmp_path / "site-packages"
    files = {
        "numpy/__init__.py": "X = 1\n",
        "numpy/core/_methods.py": "def f():\n    return 1\n",
        "numpy/testing/__init__.py": "T = 1\n",  # numpy.testing is a public API: compiled
        "numpy/tests/test_basic.py": "def test():\n    pass\n",
        "pandas/tests/io/test_csv.py": "def test():\n    pass\n",
        "oldpkg/py2.py": "print 'hello'\n",  # a Python 2 leftover: skipped, never fatal
        "six.py": "A = 1\n",
    }
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    expected = ["numpy/__init__.py", "numpy/core/_methods.py", "numpy/testing/__init__.py", "oldpkg/py2.py",
                "six.py"]
    assert ri.modules_to_compile(site) == [str(site / rel) for rel in expected]
    assert ri.compile_packages(sys.executable, site, workers=2) == len(expected)
    compiled = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.pyc"))
    tag = sys.implementation.cache_tag
    assert compiled == sorted(
        f"{Path(rel).parent.as_posix()}/__pycache__/{Path(rel).stem}.{tag}.pyc".lstrip("./")
        for rel in expected if rel != "oldpkg/py2.py"
    )


# -- the server check ---------------------------------------------------------------------------------


def test_the_server_check_runs_beside_and_its_failure_names_the_exception(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What `fatman-wrapper check-server` prints when Flask 2.0 meets a Werkzeug 3 (the wrapper's
    # __main__: the traceback, then "Error: " and the message with its hint).
    output = (
        "Traceback (most recent call last):\n"
        '  File "/opt/fatman/job/site-packages/flask/__init__.py", line 7, in <module>\n'
        "    from .app import Flask as Flask\n"
        "ImportError: cannot import name 'url_quote' from 'werkzeug.urls'\n"
        "Error: the wrapper cannot import its server with the job's packages installed: ImportError: "
        "cannot import name 'url_quote' from 'werkzeug.urls' (a job requirement pins ...)\n"
    )
    check = [sys.executable, "-c", f"import sys; sys.stdout.write({output!r}); sys.exit(1)"]
    plan = _plan(server_check=check)  # as the current user: no "user" in the plan
    proc = ri.start_server_check(plan)
    assert proc is not None
    rc, lines = ri.finish(proc)
    assert rc == 1 and "Traceback (most recent call last):" in capsys.readouterr().out
    failure = ri.server_failure(lines)
    assert failure["kind"] == "server"
    assert failure["cause"] == "ImportError: cannot import name 'url_quote' from 'werkzeug.urls'"
    assert "Werkzeug" in failure["fix"]


def test_a_server_check_without_a_traceback_gives_its_error_line() -> None:
    failure = ri.server_failure(["Error: something else went wrong"])
    assert failure["cause"] == "something else went wrong"
    assert ri.server_failure([])["cause"] == "the server check failed"


def test_an_old_plan_without_a_server_check_runs_none() -> None:
    assert ri.start_server_check(_plan()) is None


def test_install_failure_reads_the_server_diagnosis() -> None:
    from racetrack_builder.contract import DIAGNOSIS_MARKER
    from racetrack_builder.errors import BuildFailed
    from racetrack_builder.failures import install_failure

    diagnosis = ri.server_failure(["ImportError: cannot import name 'url_quote'", "Error: x"])
    lines = [DIAGNOSIS_MARKER + json.dumps(diagnosis), "ImportError: cannot import name 'url_quote'"]
    err = install_failure(lines)
    assert isinstance(err, BuildFailed) and err.exit_code == 1
    assert err.message == ("the wrapper's server cannot be imported beside the job's packages: "
                           "ImportError: cannot import name 'url_quote'")
    assert "Werkzeug" in (err.hint or "")


class _UnlistedIndex(http.server.BaseHTTPRequestHandler):
    """An index that does not list its projects (as PyPI's listing is too big to read)."""

    projects = ("numpy", "pandas", "requests")
    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.asked.append(self.path)
        name = self.path.removeprefix("/simple/").strip("/")
        self.send_response(200 if name in self.projects else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("typed, meant", [
    ("numpyy", "numpy"),  # a letter too many
    ("pnadas", "pandas"),  # two letters swapped
    ("reqests", "requests"),  # a letter short: a well-known name
    ("zzqqxx", None),
])
def test_an_index_without_a_listing_is_asked_about_the_near_names(typed: str, meant: str | None) -> None:
    _UnlistedIndex.asked = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UnlistedIndex)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        said = ri._did_you_mean(typed, {"UV_DEFAULT_INDEX": f"http://127.0.0.1:{server.server_address[1]}/simple"})
    finally:
        server.shutdown()
        server.server_close()
    assert said == (f" (did you mean '{meant}'?)" if meant else "")
    assert len(_UnlistedIndex.asked) <= ri._MAX_PROBES + 1  # the listing, then the near names only


def test_the_near_names_come_nearest_first_and_never_the_name_itself() -> None:
    assert ri.near_names("flaskk")[:2] == ["flask", "laskk"]  # the well-known name, then one letter less
    assert "abc" not in ri.near_names("abc") and len(ri.near_names("a" * 40)) <= ri._MAX_PROBES


def test_an_index_that_cannot_be_asked_is_not_asked_about_near_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable index costs one try, not one timeout per near name; find-links alone, none."""
    def probed(names: list[str], env: dict[str, str]) -> str:
        raise AssertionError(f"asked about {names}")

    monkeypatch.setattr(ri, "_first_listed", probed)
    closed = f"http://127.0.0.1:{_closed_port()}/simple"
    assert ri._did_you_mean("numpyy", {"UV_DEFAULT_INDEX": closed}) == ""
    assert ri._did_you_mean("numpyy", {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/w"}) == ""
    assert ri._did_you_mean("sklearn", {"PIP_NO_INDEX": "1"}) == " (did you mean 'scikit-learn'?)"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
