"""A build by the engine's BuildKit, through the ``/build`` API docker-py's client already speaks.

docker-py drives only the classic builder, which runs and commits a container for every step after
a change (the job's COPY, its import check, ENV and LABEL): about 0.6 s of a code-change rebuild,
where BuildKit takes 0.1 s. The engine's own ``/build`` endpoint runs BuildKit when asked with
``version=2``; the build context goes up in the request body, as for the classic builder, and no
BuildKit session is needed as long as the build uses no secret, SSH forwarding or registry pull
(every image the job's steps start from is on the engine already: racetrack-build made it).

The request goes through docker-py's low-level client (its connection, TLS, ssh and auth set up
by engine_connection.py) with its ``_post``/``_url``/``_stream_helper`` helpers: private, but the
same ones every docker-py endpoint method uses, unchanged since docker-py 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .dockerignore import kept_paths
from .engine_connection import api_version

# The first engine API with BuildKit behind /build (Docker 18.09).
MIN_API_VERSION = (1, 39)
# The networks BuildKit's RUN steps can use on the engine; another (a user-defined network) is the
# classic builder's alone.
NETWORKS = frozenset({"", "default", "bridge", "host", "none"})
# Held in memory up to this size, then in a temporary file, as docker-py does with the classic
# builder's context.
_SPOOL_BYTES = 16 * 1024 * 1024


def disabled_by_user() -> bool:
    """``DOCKER_BUILDKIT=0``, the Docker CLI's own switch, asks for the classic builder."""
    return os.environ.get("DOCKER_BUILDKIT", "").strip().lower() in {"0", "false", "no"}


def engine_supports(version: Mapping[str, Any]) -> bool:
    """Whether an engine whose ``/version`` answer is ``version`` builds with BuildKit: a Linux
    engine (Windows engines have no BuildKit) with API 1.39 or newer."""
    if str(version.get("Os") or "linux").lower() != "linux":
        return False
    found = api_version(str(version.get("ApiVersion") or ""))
    return found is not None and found >= MIN_API_VERSION


def build_params(
    *,
    tag: str,
    buildargs: Mapping[str, str],
    network: str | None,
    nocache: bool,
    labels: Mapping[str, str] | None,
    dockerfile: str | None,
) -> dict[str, str]:
    """The query of a BuildKit ``/build`` request, with the meaning the classic build's has."""
    params = {"version": "2", "t": tag, "rm": "1", "forcerm": "1"}
    if buildargs:
        params["buildargs"] = json.dumps(dict(buildargs))
    if network:
        params["networkmode"] = network
    if nocache:
        params["nocache"] = "1"
    if labels:
        params["labels"] = json.dumps(dict(labels))
    if dockerfile:
        params["dockerfile"] = dockerfile
    return params


@contextlib.contextmanager
def context_archive(context: Path, dockerfile: str = "Dockerfile") -> Iterator[IO[bytes]]:
    """The build context as the tar the engine reads, its ``.dockerignore`` applied as docker-py
    applies it for the classic builder.

    Two things differ from docker-py's own archive, both for the engine's BuildKit, which looks at
    the head of the body to tell a context archive from a bare Dockerfile: the Dockerfile is the
    first member, and the archive is in GNU format (Python's default, PAX, starts with an
    extended header the engine does not read as a tar, and then parses the archive as a
    Dockerfile).
    """
    names = kept_paths(context, dockerfile)
    names.sort(key=lambda name: name != dockerfile)  # stable: the Dockerfile first, then by name
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for name in names:
                archive.add(context / name, arcname=name, recursive=False)
        spool.seek(0)
        yield spool  # type: ignore[misc]  # a SpooledTemporaryFile is a binary file


def request(api: Any, body: IO[bytes], params: Mapping[str, str]) -> Any:
    """The engine's streamed answer to the build request (check its status first)."""
    return api._post(
        api._url("/build"),
        params=dict(params),
        data=body,
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=None,
    )


def chunks(api: Any, response: Any) -> Iterator[dict[str, Any]]:
    """The JSON chunks of a streamed build answer, as docker-py's classic ``build`` yields them."""
    yield from api._stream_helper(response, decode=True)
