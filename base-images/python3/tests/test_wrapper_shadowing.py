"""A job's files named like modules the server itself uses (json.py, flask.py, fatman_wrapper.py).

Job images start the console script with the job's root as working directory; ``python -m`` would
have put that folder first on sys.path before the wrapper imported anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from wrapper_server import running_server
from wrapper_support import server_env

from fatman_wrapper.loader import SERVER_STACK_MODULES

SCRIPT = str(Path(sys.executable).parent / "fatman-wrapper")
JOB = """\
class Job:
    def perform(self, x: int = 1) -> dict:
        return {"x": x, "module": __name__}
"""


def _check(root: Path, entrypoint: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, "check", entrypoint, "--no-server"],
        cwd=root,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["json", "flask", "logging", "gunicorn", "fatman_wrapper"])
def test_an_entrypoint_named_like_a_module_the_server_uses_is_checked_and_served(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / f"{name}.py").write_text(JOB)
    checked = _check(tmp_path, f"{name}.py")
    assert checked.returncode == 0, checked.stderr
    with running_server(tmp_path, entrypoint=f"{name}.py", cwd=tmp_path) as server:
        request = urllib.request.Request(
            server.url + "/api/v1/perform", data=b'{"x": 41}', headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    assert answer["x"] == 41
    assert answer["module"] != name  # a private name: the server's own module stays in sys.modules


def test_a_job_file_named_like_a_server_module_gets_a_hint_to_rename_it(tmp_path: Path) -> None:
    (tmp_path / "fatman_wrapper.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "entry.py").write_text("from fatman_wrapper import helper\n\n" + JOB)
    checked = _check(tmp_path, "entry.py")
    assert checked.returncode == 1
    assert "job's fatman_wrapper.py has the name of a module" in checked.stderr
    assert "rename it" in checked.stderr


def test_server_stack_modules_cover_what_the_server_imports() -> None:
    """The loader keeps these names off the job's modules: the list must not fall behind."""
    code = (
        "import sys, gunicorn.app.base, prometheus_client\n"
        "from fatman_wrapper import app, server\n"
        "if server.default_server() == 'granian': import granian.server\n"
        "print(sorted({n.partition('.')[0] for n, m in list(sys.modules.items())\n"
        "              if 'site-packages' in (getattr(m, '__file__', None) or '')}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    imported = set(json.loads(result.stdout.replace("'", '"'))) - {"_distutils_hack"}
    assert imported <= SERVER_STACK_MODULES, imported - SERVER_STACK_MODULES
