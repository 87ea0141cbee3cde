"""The ``racetrack-build`` console script: the build server's client first, then the CLI.

Kept to the standard library so that a command handed to a running build server
(``RACETRACK_BUILD_SERVER=1``, build_server.py) imports nothing heavy.
"""

from __future__ import annotations

import sys


def main() -> None:
    import os

    # The variable first: without it, not even the client's few modules are imported.
    if os.environ.get("RACETRACK_BUILD_SERVER", "").strip():
        from .build_server import hand_over

        code = hand_over(sys.argv[1:])  # None: not asked for after all ("0"), or not taken
        if code is not None:
            sys.exit(code)
    from .cli import main as cli_main

    cli_main()
