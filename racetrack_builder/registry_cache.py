"""A job's layer cache in a registry: ``--cache-from REF`` reads it, ``--push``/``--cache-to REF`` fill it.

A fresh engine (a CI runner) has none of the job's layers, and the install step is a container
the tool commits, not a Dockerfile step, so the builder's own ``cache_from`` cannot find it. Each
slow stage is therefore kept in the cache repository under a tag made of a key of its inputs,
the same inputs the engine's own cache goes by:

- ``REF:<job>-system-<key>``: the ``system`` stage (base image + apt), keyed by the base image's id,
  the stage's Dockerfile and its build arguments;
- ``REF:<job>-install-<key>``: the install step's commit (the job's packages), keyed as the local
  install is (install.py), with the system stage's key and the install tools' sources in place of
  the engine's own image ids, which differ from engine to engine;
- ``REF:<job>-job``: the last job image, handed to the builder as ``cache_from`` for the job's own
  steps (they are cheap; the builder matches their layers itself).

A build looks for the install first (a hit skips apt and the install), then the system stage (a hit
skips apt). Nothing is cached that holds a secret: the install's commit holds none by design, and
its key holds the secret values only through scrypt (install.py).

A cache that cannot help never fails the build: a tag that does not exist yet (every first build),
a registry that cannot be reached or refuses the pull, an image not built on this build's base
image. Each source says why in one warning, the first time, and the build goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import reporting
from .engine import Engine, PullFailed
from .errors import RacetrackError, UsageError
from .images import check_image_ref, names_a_registry

KEY_LENGTH = 32  # hex digits of a key in a cache tag
STAGES = ("system", "install", "job")
_REASONS = {
    "unreachable": "the registry cannot be reached",
    "refused": "the registry refused the pull (log in with `docker login REGISTRY`)",
}
_EXAMPLE = "127.0.0.1:5000/cache/NAME"


@dataclass(frozen=True)
class CacheRef:
    """A cache repository: ``HOST[:PORT]/PATH``, its tags made by :meth:`tag`."""

    repository: str
    given: str  # as the user wrote it, for messages

    def tag(self, job: str, stage: str, key: str | None = None) -> str:
        """``REPOSITORY:<job>-<stage>[-<key>]``."""
        suffix = f"{job}-{stage}" + (f"-{key[:KEY_LENGTH]}" if key else "")
        return f"{self.repository}:{suffix}"


def parse_cache_ref(value: str, option: str = "--cache-from") -> CacheRef:
    """A cache repository from ``--cache-from``/``--cache-to``: ``HOST[:PORT]/PATH`` or BuildKit's
    ``type=registry,ref=HOST[:PORT]/PATH``. UsageError (exit 2) naming the form otherwise."""
    given = value.strip()
    repository = given
    if "=" in given:
        fields = dict(part.partition("=")[::2] for part in given.split(",") if part)
        if fields.get("type", "registry") != "registry" or "ref" not in fields:
            raise UsageError(
                f"{option} {given!r}: only a registry cache is supported",
                hint=f"give the repository ({_EXAMPLE}) or type=registry,ref={_EXAMPLE}",
            )
        repository = fields["ref"]
    if "@" in repository or ":" in repository.rpartition("/")[2]:
        raise UsageError(
            f"{option} {given!r} names a tag or digest",
            hint=f"give the repository alone ({_EXAMPLE}): the cache keeps one tag per stage and inputs",
        )
    check_image_ref(repository, option)
    if not names_a_registry(repository):
        raise UsageError(
            f"{option} {given!r} names no registry",
            hint=f"start it with the registry's host (and port): {_EXAMPLE}",
        )
    return CacheRef(repository=repository, given=given)


def system_key(base_image_id: str, dockerfile: str, buildargs: Mapping[str, str],
               files: Mapping[str, bytes] | None = None) -> str:
    """A key of the ``system`` stage's inputs: what its layers are made from."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)

    add("base", base_image_id.encode())
    add("dockerfile", dockerfile.encode())
    add("args", json.dumps(dict(buildargs), sort_keys=True).encode())
    for name, data in sorted((files or {}).items()):
        add("file:" + name, data)
    return digest.hexdigest()


def copied_files(context: Path, dockerfile: str) -> dict[str, bytes]:
    """The context files a Dockerfile's COPY/ADD steps read (``--from`` copies read no context)."""
    found: dict[str, bytes] = {}
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        sources = [w for w in words[1:] if not w.startswith("--")][:-1]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for source in sources:
            path = context / source
            if path.is_file():
                found[source] = path.read_bytes()
            elif path.is_dir():
                for item in sorted(path.rglob("*")):
                    if item.is_file():
                        found[item.relative_to(context).as_posix()] = item.read_bytes()
    return found


@dataclass
class CacheReport:
    """What the registry cache did in one build, for the summary and ``--json``."""

    sources: list[str] = field(default_factory=list)
    system: str | None = None  # "registry" (pulled, apt skipped), "built", or None (no such stage)
    install: str | None = None  # "registry" (pulled, install skipped), "engine", "installed", or None
    job_cache: str | None = None  # the image handed to the builder for the job's steps
    warnings: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "from": self.sources,
            "system": self.system,
            "install": self.install,
            "job_cache": self.job_cache,
            "warnings": self.warnings,
            "pushed": self.pushed,
        }


class RegistryCache:
    """The cache sources and target of one build of ``job``."""

    def __init__(self, engine: Engine, job: str, sources: Sequence[CacheRef] = (),
                 target: CacheRef | None = None, *, read: bool = True) -> None:
        self.engine = engine
        self.job = job
        self.sources = list(sources) if read else []
        self.target = target
        self.report = CacheReport(sources=[s.given for s in sources])
        self._warned: set[CacheRef] = set()
        self._dead: set[CacheRef] = set()  # unreachable or refusing: not asked again

    @property
    def reads(self) -> bool:
        return bool(self.sources)

    def find(self, stage: str, key: str | None = None, *, base_image: str | None = None) -> str | None:
        """A local ref of ``stage``'s cache image for ``key``: already on the engine, or pulled from
        the first source that has it. With ``base_image``, an image not built on it is refused."""
        for source in self.sources:
            if source in self._dead:
                continue
            ref = source.tag(self.job, stage, key)
            if self.engine.image_id(ref) is None:
                try:
                    self.engine.pull(ref)
                except PullFailed as exc:
                    if exc.kind != "missing":
                        self._dead.add(source)
                    self._warn(source, failure_reason(exc))
                    continue
            if base_image is not None and not self._built_on(ref, base_image):
                tag = ref.rpartition(":")[2]
                self._warn(source, f"tag {tag} is not built on {base_image} (its layers do not match)")
                with contextlib.suppress(RacetrackError):
                    self.engine.untag(ref)
                continue
            reporting.progress(f"cache: using {ref}")
            return ref
        return None

    def _built_on(self, ref: str, base_image: str) -> bool:
        layers = self.engine.image_layers(ref) or []
        base = self.engine.image_layers(base_image) or []
        return bool(base) and layers[:len(base)] == base

    def _warn(self, source: CacheRef, reason: str) -> None:
        """One line per source, the first time it cannot help: the ref, the reason, what happens."""
        if source in self._warned:
            reporting.log(f"cache {source.given}: {reason}")
            return
        self._warned.add(source)
        # "without it", not "cold": the engine's own cache may still have the stage.
        text = f"cache {source.given}: {reason}; building without it"
        self.report.warnings.append(text)
        reporting.warn(text)

    def publish(self, images: Sequence[tuple[str, str, str | None]]) -> None:
        """Push ``(image id, stage, key)`` to the target under the stages' tags. A push that fails
        is a warning: the image is built, only the next build's cache is missing."""
        if self.target is None:
            return
        for image_id, stage, key in images:
            ref = self.target.tag(self.job, stage, key)
            try:
                self.engine.tag(image_id, ref)
                reporting.progress(f"cache: pushing {ref}")
                self.engine.push(ref)
            except RacetrackError as exc:
                text = f"cache {self.target.given}: tag {ref.rpartition(':')[2]} could not be pushed " \
                    f"({exc.message}); the next build runs without it"
                self.report.warnings.append(text)
                reporting.warn(text)
                return
            finally:
                # The image keeps its other names; a tag per key would pile up on a busy engine.
                with contextlib.suppress(RacetrackError):
                    self.engine.untag(ref)
            self.report.pushed.append(ref)


def failure_reason(exc: PullFailed) -> str:
    """The reason a warning gives for a pull that failed (the warning names the repository)."""
    tag = exc.ref.rpartition(":")[2]
    if exc.kind == "missing":
        return f"tag {tag} does not exist yet (the first build with these inputs)"
    return f"{_REASONS.get(exc.kind, f'tag {tag} could not be pulled')} ({exc.said})"
