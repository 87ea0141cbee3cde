"""The CLI kept warm: what a code-change rebuild would take in a process that stays up between
builds (a build server, `build --watch`), which racetrack-build does not have.

    python benchmarks/warm_cli.py     # reads one JSON argv per line on stdin

It imports the CLI and what a build imports once, then, per line, forks and runs the command in
the child (fresh state, as a server would give each build), and answers ``<exit code>`` when the
child ends. build_times.py --warm times it against the engine building the rendered context.
"""

from __future__ import annotations

import gc
import json
import os
import sys


def main() -> None:
    import docker  # noqa: F401 - what a build imports, imported before the timed builds
    import git  # noqa: F401
    import jinja2  # noqa: F401
    import rich.console  # noqa: F401

    import racetrack_builder.build  # noqa: F401
    import racetrack_builder.buildkit_build  # noqa: F401
    import racetrack_builder.manifest  # noqa: F401
    import racetrack_builder.render  # noqa: F401
    import racetrack_builder.working_tree  # noqa: F401
    from racetrack_builder import cli

    gc.freeze()  # what was imported stays shared with the children, untouched by their collections
    print("ready", flush=True)
    for line in sys.stdin:
        argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                cli.main(argv)
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    main()
