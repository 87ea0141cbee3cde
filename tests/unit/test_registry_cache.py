"""The registry cache's own logic (registry_cache.py, base_registry.py): parsing --cache-from and
--base-registry, the stage keys, what a lookup does with each answer of a registry, one warning per
source, and what is pushed. The engine is a fake; the real registry is the integration suite's
(tests/integration/test_registry_cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from racetrack_builder import reporting
from racetrack_builder.base_image import CONTEXT_LABEL, BaseImageOptions
from racetrack_builder.base_registry import (
    BASE_REGISTRY_ENV,
    base_registry_setting,
    publish_base_images,
    published_base_ref,
    published_tools_ref,
    pull_base_image,
    pull_build_tools,
)
from racetrack_builder.build_tools import tools_ref
from racetrack_builder.engine import PullFailed, pull_failure_kind
from racetrack_builder.errors import EnvironmentFailure, UsageError
from racetrack_builder.install import InstallRequest, install_key, portable_install_key
from racetrack_builder.registry_cache import (
    CacheRef,
    RegistryCache,
    copied_files,
    parse_cache_ref,
    system_key,
)
from racetrack_builder.requirements import RequirementsPlan
from tests.reporter import Recorded

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO = "127.0.0.1:5000/cache/adder"
BASE = "racetrack/python3:latest"
BASE_LAYERS = ["sha256:b1", "sha256:b2"]


# ---- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [REPO, f"type=registry,ref={REPO}", f" {REPO} ",
                                   "registry.example.com/x/y"])
def test_a_cache_ref_is_a_registry_repository(given: str) -> None:
    ref = parse_cache_ref(given)
    assert ref.repository == given.strip().removeprefix("type=registry,ref=")
    assert ref.given == given.strip()


@pytest.mark.parametrize(("given", "says"), [
    (f"{REPO}:latest", "names a tag or digest"),
    (f"{REPO}@sha256:" + "a" * 64, "names a tag or digest"),
    ("cache/adder", "names no registry"),
    ("adder", "names no registry"),
    ("type=local,src=/tmp/cache", "only a registry cache"),
    ("type=registry", "only a registry cache"),
    ("127.0.0.1:5000/Cache", "not a valid image reference"),
])
def test_a_bad_cache_ref_is_a_usage_error_naming_the_form(given: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_cache_ref(given, "--cache-to")
    assert says in caught.value.message
    assert caught.value.exit_code == 2
    assert "--cache-to" in caught.value.message
    if "valid" not in says:  # the reference grammar's own hint otherwise
        assert "127.0.0.1:5000/cache/NAME" in (caught.value.hint or "")


def test_stage_tags_name_the_job_the_stage_and_the_key() -> None:
    ref = parse_cache_ref(REPO)
    assert ref.tag("adder", "install", "f" * 64) == f"{REPO}:adder-install-{'f' * 32}"
    assert ref.tag("adder", "job") == f"{REPO}:adder-job"
    # The longest job name (63) still makes a valid tag (at most 128 characters).
    assert len(ref.tag("a" * 63, "install", "f" * 64).rpartition(":")[2]) <= 128


def test_the_base_registry_comes_from_the_option_then_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_REGISTRY_ENV, raising=False)
    assert base_registry_setting(None) is None
    monkeypatch.setenv(BASE_REGISTRY_ENV, "127.0.0.1:5000/")
    assert base_registry_setting(None) == "127.0.0.1:5000"
    assert base_registry_setting("registry.example.com/mirror") == "registry.example.com/mirror"
    with pytest.raises(UsageError, match="is not a registry"):
        base_registry_setting("mirror")
    monkeypatch.setenv(BASE_REGISTRY_ENV, "Bad Registry")
    with pytest.raises(UsageError, match=BASE_REGISTRY_ENV):
        base_registry_setting(None)


# ---- keys ----------------------------------------------------------------------------------------


def test_the_system_key_follows_the_base_the_dockerfile_and_its_arguments() -> None:
    key = system_key("sha256:base", "FROM x\nRUN apt-get install jq\n", {"CA": "pem"})
    assert key == system_key("sha256:base", "FROM x\nRUN apt-get install jq\n", {"CA": "pem"})
    assert key != system_key("sha256:other", "FROM x\nRUN apt-get install jq\n", {"CA": "pem"})
    assert key != system_key("sha256:base", "FROM x\nRUN apt-get install gcc\n", {"CA": "pem"})
    assert key != system_key("sha256:base", "FROM x\nRUN apt-get install jq\n", {})
    assert key != system_key("sha256:base", "FROM x\nRUN apt-get install jq\n", {"CA": "pem"}, {"f": b"1"})


def test_copied_files_are_what_copy_and_add_read_from_the_context(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(b"pem")
    (tmp_path / "one.txt").write_bytes(b"1")
    dockerfile = ("FROM x\nCOPY --chown=1:1 one.txt /one\nADD certs /certs\n"
                  "COPY --from=build /a /b\nRUN true\n")
    assert copied_files(tmp_path, dockerfile) == {"one.txt": b"1", "certs/ca.pem": b"pem"}


def _install(tmp_path: Path, **changes: object) -> InstallRequest:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    request = InstallRequest(
        job_name="adder", system_image="sha256:" + "a" * 64, tools_volume="racetrack-build-tools-1",
        requirements_path="requirements.txt",
        plan=RequirementsPlan(files=("requirements.txt",), needs_source=False), job_root=tmp_path,
        job_files=("requirements.txt",), python_version="3.11", secrets={"TOKEN": "s3cr3t"},
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def test_the_portable_install_key_ignores_the_engines_ids_but_not_the_inputs(tmp_path: Path) -> None:
    request = _install(tmp_path)
    key = portable_install_key(request, "system-key", "racetrack/build-tools:py3.11-abc")
    # Another engine: other image and volume ids for the same inputs.
    other_engine = replace(request, system_image="sha256:" + "b" * 64, tools_volume="racetrack-build-tools-2")
    assert portable_install_key(other_engine, "system-key", "racetrack/build-tools:py3.11-abc") == key
    assert portable_install_key(request, "other-system", "racetrack/build-tools:py3.11-abc") != key
    assert portable_install_key(request, "system-key", "racetrack/build-tools:py3.11-def") != key
    assert portable_install_key(replace(request, secrets={"TOKEN": "other"}), "system-key",
                                "racetrack/build-tools:py3.11-abc") != key
    # The key (in a tag pushed to a registry) never holds a secret value.
    assert "s3cr3t" not in key and key != install_key(request, request.tools_volume)


# ---- lookups and warnings ------------------------------------------------------------------------


class FakeEngine:
    """Images by ref; ``registry`` maps a ref to its layers, or to the PullFailed kind it answers."""

    def __init__(self, registry: dict[str, list[str] | str] | None = None) -> None:
        self.images: dict[str, list[str]] = {BASE: BASE_LAYERS}
        self.registry = registry or {}
        self.pulls: list[str] = []
        self.pushed: list[str] = []
        self.tags: dict[str, str] = {}
        self.refuse_push = False

    def image_id(self, ref: str) -> str | None:
        return f"id-of-{ref}" if ref in self.images else None

    def image_layers(self, ref: str) -> list[str] | None:
        return self.images.get(ref)

    def pull(self, ref: str) -> str:
        self.pulls.append(ref)
        answer = next((v for k, v in self.registry.items() if ref.startswith(k)), "missing")
        if isinstance(answer, str):
            raise PullFailed(ref, answer, {"missing": "manifest unknown", "unreachable": "connection refused",
                                           "refused": "no basic auth credentials"}.get(answer, "teapot"))
        self.images[ref] = answer
        return f"id-of-{ref}"

    def untag(self, ref: str) -> None:
        self.images.pop(ref, None)

    def tag(self, image_id: str, ref: str) -> None:
        self.tags[ref] = image_id

    def push(self, ref: str) -> str | None:
        if self.refuse_push:
            raise EnvironmentFailure("pushing failed: connection refused")
        self.pushed.append(ref)
        return "sha256:digest"


def _cache(engine: FakeEngine, *refs: str, target: str | None = None) -> RegistryCache:
    return RegistryCache(engine, "adder", [parse_cache_ref(r) for r in refs],  # type: ignore[arg-type]
                         parse_cache_ref(target) if target else None)


def test_a_hit_is_pulled_and_checked_against_the_base_image() -> None:
    engine = FakeEngine({f"{REPO}:adder-install-": [*BASE_LAYERS, "sha256:apt", "sha256:pkgs"]})
    with reporting.reporting_to(Recorded()) as seen:
        found = _cache(engine, REPO).find("install", "k" * 64, base_image=BASE)
    assert found == f"{REPO}:adder-install-{'k' * 32}"
    assert seen.warnings == []


def test_a_missing_tag_is_one_warning_per_source_naming_the_ref_and_the_build_goes_on() -> None:
    engine = FakeEngine()
    cache = _cache(engine, REPO)
    with reporting.reporting_to(Recorded()) as seen:
        assert cache.find("install", "k" * 64, base_image=BASE) is None
        assert cache.find("system", "s" * 64, base_image=BASE) is None
        assert cache.find("job") is None
    # Still asked for each stage (another stage may be there), but said once.
    assert len(engine.pulls) == 3
    assert seen.warnings == [
        f"cache {REPO}: tag adder-install-{'k' * 32} does not exist yet (the first build with these "
        "inputs); building without it"
    ]
    assert cache.report.warnings == seen.warnings


@pytest.mark.parametrize(("kind", "reason"), [
    ("unreachable", "the registry cannot be reached (connection refused)"),
    ("refused", "the registry refused the pull (log in with `docker login REGISTRY`) "
                "(no basic auth credentials)"),
    ("other", f"tag adder-system-{'s' * 32} could not be pulled (teapot)"),
])
def test_a_registry_that_cannot_help_is_a_warning_and_is_not_asked_again(kind: str, reason: str) -> None:
    engine = FakeEngine({REPO: kind})
    cache = _cache(engine, REPO)
    with reporting.reporting_to(Recorded()) as seen:
        assert cache.find("system", "s" * 64, base_image=BASE) is None
        assert cache.find("job") is None
    assert seen.warnings == [f"cache {REPO}: {reason}; building without it"]
    assert len(engine.pulls) == 1


def test_layers_not_on_this_base_are_refused_and_the_next_source_is_asked() -> None:
    other = "127.0.0.1:5001/cache/adder"
    engine = FakeEngine({REPO: ["sha256:another-base", "sha256:apt"],
                         other: [*BASE_LAYERS, "sha256:apt"]})
    cache = _cache(engine, REPO, other)
    with reporting.reporting_to(Recorded()) as seen:
        found = cache.find("system", "s" * 64, base_image=BASE)
    assert found == f"{other}:adder-system-{'s' * 32}"
    assert seen.warnings == [f"cache {REPO}: tag adder-system-{'s' * 32} is not built on {BASE} "
                             "(its layers do not match); building without it"]
    assert f"{REPO}:adder-system-{'s' * 32}" not in engine.images  # the useless pull is untagged


def test_an_image_already_on_the_engine_is_used_without_asking_the_registry() -> None:
    engine = FakeEngine()
    engine.images[f"{REPO}:adder-job"] = ["sha256:x"]
    assert _cache(engine, REPO).find("job") == f"{REPO}:adder-job"
    assert engine.pulls == []


def test_publish_pushes_each_stage_and_a_failed_push_is_a_warning() -> None:
    engine = FakeEngine()
    cache = _cache(engine, target=REPO)
    stages = [("sha256:sys", "system", "s" * 64), ("sha256:pkgs", "install", "k" * 64),
              ("sha256:job", "job", None)]
    cache.publish(stages)
    assert engine.pushed == [f"{REPO}:adder-system-{'s' * 32}", f"{REPO}:adder-install-{'k' * 32}",
                             f"{REPO}:adder-job"]
    assert cache.report.pushed == engine.pushed
    assert engine.tags[f"{REPO}:adder-job"] == "sha256:job"
    assert not any(ref.startswith(REPO) for ref in engine.images)  # the cache's tags go after the push

    failing = FakeEngine()
    failing.refuse_push = True
    cache = _cache(failing, target=REPO)
    with reporting.reporting_to(Recorded()) as seen:
        cache.publish(stages)
    assert seen.warnings == [f"cache {REPO}: tag adder-system-{'s' * 32} could not be pushed "
                             "(pushing failed: connection refused); the next build runs without it"]


def test_no_sources_means_no_lookups() -> None:
    engine = FakeEngine()
    cache = RegistryCache(engine, "adder", [CacheRef(REPO, REPO)], read=False)  # type: ignore[arg-type]
    assert not cache.reads
    assert cache.find("job") is None
    assert engine.pulls == []


@pytest.mark.parametrize(("said", "status", "kind"), [
    ("manifest for x:y not found: manifest unknown: manifest unknown", 404, "missing"),
    ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 500, "unreachable"),
    ('Head "http://127.0.0.1:1/v2/x/manifests/y": no basic auth credentials', 500, "refused"),
    ("pull access denied for x, repository does not exist", 404, "refused"),
    ("unauthorized: authentication required", None, "refused"),
    ("dial tcp: lookup nowhere.invalid: no such host", 500, "unreachable"),
    ("something else", 500, "other"),
])
def test_the_engines_pull_errors_are_classified(said: str, status: int | None, kind: str) -> None:
    assert pull_failure_kind(said, status) == kind


# ---- the command line: bad values are exit 2 before any engine is asked ----------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["build", "examples/adder/fatman.yaml", "--local", "--cache-from", "cache/adder"],
     "--cache-from 'cache/adder' names no registry"),
    (["build", "examples/adder/fatman.yaml", "--local", "--cache-to", f"{REPO}:v1"],
     f"--cache-to '{REPO}:v1' names a tag or digest"),
    (["build", "examples/adder/fatman.yaml", "--local", "--base-registry", "mirror"],
     "--base-registry 'mirror' is not a registry"),
    (["base", "--push"], "base --push needs --registry"),
])
def test_bad_registry_options_are_exit_2_naming_the_fix(args: list[str], says: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "racetrack_builder", *args], capture_output=True, text=True, timeout=120,
        cwd=REPO_ROOT, env={**os.environ, "NO_COLOR": "1", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )
    assert result.returncode == 2, result.stderr
    assert says in result.stderr, result.stderr


# ---- base images from a registry -----------------------------------------------------------------


class FakeBaseEngine(FakeEngine):
    """Tags really name images here: pulls and tags make refs that image_id then finds."""

    def tag(self, image_id: str, ref: str) -> None:
        self.images[ref] = self.images.get(image_id, [])


def test_a_missing_base_is_pulled_and_given_the_local_names() -> None:
    options = BaseImageOptions()
    engine = FakeBaseEngine({"127.0.0.1:5000/racetrack/": ["sha256:b1"]})
    engine.images.clear()
    with reporting.reporting_to(Recorded()) as seen:
        pull_base_image(engine, options, "127.0.0.1:5000")  # type: ignore[arg-type]
        pull_build_tools(engine, "3.11", "127.0.0.1:5000")  # type: ignore[arg-type]
    assert engine.pulls == [published_base_ref("127.0.0.1:5000", options),
                            published_tools_ref("127.0.0.1:5000", "3.11")]
    assert options.ref in engine.images and tools_ref("3.11") in engine.images
    assert not any(ref.startswith("127.0.0.1:5000/") for ref in engine.images)  # only the local names
    assert seen.warnings == []
    # Once there, the registry is not asked again.
    engine.pulls.clear()
    pull_base_image(engine, options, "127.0.0.1:5000")  # type: ignore[arg-type]
    pull_build_tools(engine, "3.11", "127.0.0.1:5000")  # type: ignore[arg-type]
    assert engine.pulls == []


@pytest.mark.parametrize(("kind", "says"), [
    ("missing", "has no 127.0.0.1:5000/racetrack/python3:latest-"),
    ("unreachable", "cannot be reached (connection refused)"),
    ("refused", "refused the pull"),
])
def test_a_base_registry_that_cannot_help_is_a_warning_and_the_base_is_built_here(
        kind: str, says: str) -> None:
    engine = FakeBaseEngine({"127.0.0.1:5000/": kind})
    engine.images.clear()
    with reporting.reporting_to(Recorded()) as seen:
        pull_base_image(engine, BaseImageOptions(), "127.0.0.1:5000")  # type: ignore[arg-type]
    assert engine.images == {}  # nothing pulled: ensure_base_image builds it
    assert says in seen.warnings[0] and seen.warnings[0].endswith(": building the base image here")
    if kind == "missing":
        assert "publish it with `racetrack-build base --push --registry 127.0.0.1:5000`" in seen.warnings[0]


def test_base_push_tags_the_base_by_the_sources_it_was_built_from_and_pushes_both() -> None:
    engine = FakeBaseEngine()
    engine.images["sha256:built"] = ["sha256:b1"]
    engine.image_labels = lambda ref: {CONTEXT_LABEL: "d" * 64}  # type: ignore[attr-defined]
    engine.images[tools_ref("3.9")] = ["sha256:t1"]
    options = BaseImageOptions(python_version="3.9")
    done = publish_base_images(engine, "sha256:built", options, "127.0.0.1:5000", push=True)  # type: ignore[arg-type]
    assert done == [(f"127.0.0.1:5000/racetrack/python3:latest-py3.9-{'d' * 12}", "sha256:digest"),
                    (f"127.0.0.1:5000/{tools_ref('3.9')}", "sha256:digest")]
    assert engine.pushed == [ref for ref, _ in done]
    assert not any(ref.startswith("127.0.0.1:5000/") for ref in engine.images)  # untagged once pushed
