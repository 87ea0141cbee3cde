"""GitPython, imported so that a machine without git still runs every command that needs none.

GitPython looks for a git executable when first imported and, by default, raises ``ImportError:
Bad git executable`` without one: on a slim CI image that ended ``render --local`` in a traceback.
``GIT_PYTHON_REFRESH=quiet`` (unless the user chose otherwise) defers the failure to the first git
command, which :func:`.git_transport.require_git` checks for first, with a message naming the fix.
Every module imports GitPython from here, so the setting comes before the first import.
"""

from __future__ import annotations

import os

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from git import GitCommandError, GitCommandNotFound, Repo  # noqa: E402 - after the setting above
from git.cmd import Git  # noqa: E402

__all__ = ["Git", "GitCommandError", "GitCommandNotFound", "Repo"]
