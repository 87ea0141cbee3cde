"""Which format a manifest is in: fatman.yaml (2022) or job.yaml (Racetrack 2.x).

By its content first: ``jobtype``, ``jobtype_extra`` and ``extends`` exist only in job.yaml, so a
file holding one is a 2.x manifest whatever its name: an overlay may be called anything, and
Racetrack 2.x reads a ``fatman.yaml`` with its own rules (racetrack-build does too, and says to
rename it). Otherwise by the file's name:
``job.yaml``/``job.yml`` (or ``*.job.yaml``) is 2.x, any other name the 2022 format.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

Format = Literal["fatman", "job"]
FATMAN: Format = "fatman"
JOB: Format = "job"
FORMATS: tuple[Format, ...] = (FATMAN, JOB)
# The file a folder holds, per format (the names a folder is searched for).
FILE_NAMES: dict[Format, str] = {FATMAN: "fatman.yaml", JOB: "job.yaml"}
SEARCHED_NAMES = (FILE_NAMES[JOB], FILE_NAMES[FATMAN])
JOB_MARKERS = ("jobtype", "jobtype_extra", "extends")


def format_by_name(filename: str) -> Format:
    """The format a file of this name is read in when its content does not say."""
    name = PurePath(filename).name.lower()
    if name in ("job.yaml", "job.yml") or name.endswith((".job.yaml", ".job.yml")):
        return JOB
    return FATMAN


def format_of(filename: str, data: Any) -> Format:
    """The format of a manifest file: by its content, else by its name."""
    if isinstance(data, dict) and any(marker in data for marker in JOB_MARKERS):
        return JOB
    return format_by_name(filename)


def renamed_notice(filename: str, data: Any) -> str | None:
    """A warning for a ``fatman.yaml`` that holds a 2.x manifest, else None."""
    name = PurePath(filename).name.lower()
    if name in ("fatman.yaml", "fatman.yml") and format_of(filename, data) == JOB:
        return (f"{filename}: holds a Racetrack 2.x manifest (jobtype:), read as job.yaml; rename it "
                f"job.yaml")
    return None
