"""The ``racetrack-build`` console script: the build server's client first, then the CLI.

Kept to the standard library so that a command handed to a running build server
(``RACETRACK_BUILD_SERVER=1``, build_server.py) imports nothing heavy.
"""

from __future__ import annotations

import sys


def main() -> None:
    from .build_server import hand_over, wanted

    if wanted():
        code = hand_over(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from .cli import main as cli_main

    cli_main()
