"""Command line of the wrapper.

    fatman-wrapper run|check ENTRYPOINT_PATH [--class NAME] [--root DIR]
    fatman-wrapper check-server

(``python -m fatman_wrapper`` works too, but puts the working directory, a job's root in an image,
first on ``sys.path`` before the wrapper's imports: images run the console script.)

A thin layer: parses arguments, calls ``server.run``, ``loader.check_entrypoint`` or
``check_server_stack`` and turns their errors into a message on stderr and a non-zero exit status.

Job images run the two checks in different layers: ``check-server`` right after the job's packages
(they can shadow the wrapper's), ``check --no-server`` after the job's code, so a change to the code
alone re-runs only the cheap import of the job.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import JobLoadError

EXIT_JOB_ERROR = 1  # argparse exits 2 itself for a wrong command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fatman-wrapper", description="Serve or check a Racetrack python3 job."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("entrypoint_path", help="the entrypoint .py file, relative to the job root")
        p.add_argument(
            "--class",
            dest="class_name",
            default=None,
            help="the entrypoint class (default: the one class in the file with perform)",
        )
        p.add_argument("--root", default=".", help="the job's root folder (default: the current one)")

    run = commands.add_parser("run", help="serve the job (granian, or gunicorn: FATMAN_SERVER)")
    common(run)
    run.add_argument("--host", default=None, help="address to listen on (default: FATMAN_HOST or 0.0.0.0)")
    run.add_argument("--port", type=int, default=None, help="port (default: FATMAN_PORT or 7000)")
    check = commands.add_parser(
        "check", help="import the entrypoint and find its class without running __init__"
    )
    common(check)
    check.add_argument(
        "--no-server",
        action="store_true",
        help="skip importing the server stack (job images check it in an earlier layer with check-server)",
    )
    commands.add_parser(
        "check-server",
        help="import the server stack (Flask, Werkzeug, granian or gunicorn, prometheus-client) with the "
        "job's packages",
    )
    return parser


def check_server_stack() -> None:
    """Import what ``run`` imports (Flask, Werkzeug, the server, prometheus-client) after the job.

    A job's packages shadow the wrapper's on sys.path, so a pin such as Flask==2.0.2 beside a
    Werkzeug too new for it breaks the server, not the job's own import: the build check must see it.
    """
    import traceback

    try:
        # gunicorn always (FATMAN_SERVER=gunicorn may choose it), granian where it is the default.
        import gunicorn.app.base  # noqa: F401  (imported for their side effect: the imports)
        import prometheus_client  # noqa: F401

        from .server import default_server

        if default_server() == "granian":
            import granian.server  # noqa: F401

        import racetrack_job_wrapper.call  # noqa: F401  (what Racetrack 2.x jobs import)
        import racetrack_job_wrapper.entrypoint  # noqa: F401

        from . import app, server  # noqa: F401
    except Exception as exc:  # any failure here means the image cannot serve
        raise JobLoadError(
            f"the wrapper cannot import its server with the job's packages installed: "
            f"{type(exc).__name__}: {exc}",
            hint="a job requirement pins a version of Flask, Werkzeug or another wrapper dependency "
            "that does not work with the rest; pin a matching set (e.g. Flask 2.0.x with Werkzeug 2.0.x)",
            user_traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ) from exc


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-server":
            check_server_stack()
            print("server stack: imports with the job's packages")
            return 0
        if args.command == "check":
            from .loader import check_entrypoint

            cls = check_entrypoint(args.entrypoint_path, args.class_name, os.path.realpath(args.root))
            if not args.no_server:
                check_server_stack()
            print(f"entrypoint class: {cls.__name__} ({args.entrypoint_path})")
            return 0
        from .server import run

        run(args.entrypoint_path, args.class_name, root=args.root, host=args.host, port=args.port)
        return 0
    except JobLoadError as exc:
        if exc.user_traceback:
            sys.stderr.write(exc.user_traceback)
        # The fix on a line of its own, as racetrack-build writes it: the build's failure reads it.
        sys.stderr.write(f"Error: {exc.message}\n" + (f"To fix: {exc.hint}\n" if exc.hint else ""))
        return EXIT_JOB_ERROR


if __name__ == "__main__":
    sys.exit(main())
