"""The process ``racetrack-build serve`` starts: the wrapper's app under Werkzeug's server.

Run as ``python -m racetrack_builder.dev_child`` by :mod:`racetrack_builder.dev_server`, with the
job's environment already set (FATMAN_NAME, runtime_env, secrets...). It imports only the standard
library, Werkzeug and ``fatman_wrapper`` (through its public ``create_app``), never the rest of
racetrack_builder: the job's process holds what a job image holds, the wrapper and the job.

With ``--reload`` Werkzeug's reloader (the one ``flask run --reload`` uses) does the work: the first
process binds the port and keeps it, and runs the server in a child it restarts when a watched
file changes (stat polling: no extra dependency, works on every file system). A job that fails to
import or whose ``__init__`` raises does not stop anything: the wrapper answers 503 naming the
failure (its ``JobHolder``), the reloader keeps watching, and saving the fixed file restarts it.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# Folders never watched: version control, caches, virtual environments, dependencies of web UIs.
IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache",
                          ".ruff_cache", ".tox", ".nox", "node_modules", ".venv", "venv"})
# A job folder holding more files than this (a dataset) is watched for its Python files only.
MAX_WATCHED_FILES = 5000
RELOAD_INTERVAL = 0.5  # seconds between polls: a change restarts the job well within 2 s
READY_MARK = "racetrack-build serve:"

log = logging.getLogger("racetrack_builder.serve")


def job_files(root: str, ignored: Iterable[str] = ()) -> list[str]:
    """Every file of the job's folder to watch, besides Python files (which Werkzeug finds itself
    by walking the folder): data, templates, static files. Virtual environments and caches left out."""
    skip = {os.path.abspath(p) for p in ignored}
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS
                   and not os.path.isfile(os.path.join(folder, d, "pyvenv.cfg"))]
        for name in files:
            path = os.path.abspath(os.path.join(folder, name))
            if path not in skip and not name.endswith((".pyc", ".pyo")):
                found.append(path)
            if len(found) >= MAX_WATCHED_FILES:
                return found
    return found


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="racetrack-build serve (child)")
    parser.add_argument("entrypoint")
    parser.add_argument("--class", dest="class_name")
    parser.add_argument("--root", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--ignore", action="append", default=[],
                        help="a file not to watch (the manifest: the parent restarts on it)")
    return parser.parse_args(argv)


def _drop_start_folder(start: str) -> None:
    # `python -m` put the folder it started in first on sys.path. The job image's console script
    # does not, and a job file named like a module of the server (json.py, flask.py) must not
    # replace it: the wrapper puts the job root on sys.path itself, after its own imports.
    for entry in ("", start):
        while entry in sys.path:
            sys.path.remove(entry)


def _report_state(get: Callable[[str], Any]) -> None:
    """Log once whether the job loaded: a line the terminal shows, besides the wrapper's own log."""
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        body = get("/ready").get_json(silent=True) or {}
        state = body.get("status")
        if state == "ready":
            log.info("%s the job is ready", READY_MARK)
            return
        if state == "failed":
            log.error("%s the job failed to load: %s; its endpoints answer 503 until you fix it "
                      "and save", READY_MARK, body.get("error"))
            return
        time.sleep(0.1)


def _excluded(ignored: Iterable[str]) -> list[str]:
    """Patterns of files a change to which must not restart the job: the ones the parent watches
    (the manifest, the secret env file), and the server's own code. Werkzeug watches every folder
    on sys.path; from a source checkout (an editable install) that is racetrack-build's and the
    wrapper's sources, which are not the job's."""
    patterns = [glob.escape(os.path.abspath(p)) for p in ignored]
    own = [os.path.dirname(os.path.abspath(__file__))]
    spec = importlib.util.find_spec("fatman_wrapper")
    if spec is not None and spec.origin:
        own.append(os.path.dirname(spec.origin))
    patterns += [glob.escape(folder) + os.sep + "*" for folder in own]
    return patterns


def _placeholder(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    # The reloader's first process only holds the port; it never serves (or imports the job).
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    yield b"starting\n"


def main(argv: list[str] | None = None) -> None:
    """Serve the job until stopped (SIGTERM or SIGINT)."""
    args = _parse(argv)
    _drop_start_folder(os.getcwd())
    root = os.path.realpath(args.root)
    os.chdir(root)  # the job type's promise: the working directory is the job's root
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    from werkzeug.serving import is_running_from_reloader, run_simple

    supervising = args.reload and not is_running_from_reloader()
    if supervising:
        app: Any = _placeholder
    else:
        import fatman_wrapper

        app = fatman_wrapper.create_app(args.entrypoint, args.class_name, root=root, background=True)
        client = app.test_client()
        threading.Thread(target=_report_state, args=(client.get,), name="serve-state", daemon=True).start()
    extra: list[str] = []
    if args.reload and not supervising:
        # The folder itself: Werkzeug walks it for Python files on every poll, so new modules count.
        extra = [root, *job_files(root, args.ignore)]
    run_simple(
        args.host,
        args.port,
        app,
        use_reloader=args.reload,
        reloader_type="stat",
        # Werkzeug types it int, but sleeps for it: half a second keeps a restart within 2 s.
        reloader_interval=RELOAD_INTERVAL,  # type: ignore[arg-type]
        extra_files=extra,
        exclude_patterns=_excluded(args.ignore),
        threaded=True,
    )


if __name__ == "__main__":
    main()
