"""Racetrack 2.x's job library, as far as jobs import it: ``racetrack_job_wrapper.call`` (chain calls
to other jobs) and ``racetrack_job_wrapper.entrypoint.JobEntrypoint`` (an optional base class).

Served by ``fatman_wrapper``: a job written for Racetrack 2.x (``python3`` job type) runs in this
base image unchanged. Importing this package has no side effects.
"""

from __future__ import annotations

from fatman_wrapper import __version__

__all__ = ["__version__"]
