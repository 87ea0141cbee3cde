"""The data-science examples of issue 10 build through the CLI and answer real predictions.

- ``scikit-model``: a scikit-learn pipeline pickled by its ``train.py``. It is built from a clone of
  a bare repository where ``model.pkl`` is an LFS object on a ``file://`` LFS remote, so the build
  must fetch it: a pointer file would fail to unpickle.
- ``pandas-stats``: ``describe()`` of posted records, answered as JSON (NaN as null).
- ``old-stack-py39``: numpy 1.19 / pandas 1.1 / scikit-learn 0.24.1, which have wheels for Python
  3.9 only, on ``python.python_version: "3.9"``.
- ``lightgbm-native``: lightgbm, whose native library needs ``libgomp1`` from ``system_dependencies``.

(A private library installed from git with credentials, the fifth job of the issue, is covered by
``test_install_needs.py`` against a basic-auth git server on 127.0.0.1.)

Validation is fast and needs no engine. The builds clone one bare repository laid out like this
project (``examples/<name>`` on ``main``) over ``file://``, with pip pointed at the suite's local
index (``--network host``). Its wheels are downloaded on the host once per machine: the 3.11
examples' by the ``wheelhouse`` fixture, the 3.9 example's for Python 3.9 by
:func:`_py39_wheels`, since the host's own Python is 3.11. Each example is built once per module
and shared by the tests below.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests import gitrepos
from tests.integration.jobs import (
    EXAMPLES_DIR,
    CliResult,
    DockerCleanup,
    JobServer,
    client_manifest,
    example_files,
    example_manifest,
    example_requirements,
    examples_tree,
    our_base_ref,
    run_cli,
    serve,
)
from tests.integration.package_index import py39_wheels

# The examples this module builds; tests/integration/test_examples.py leaves them to it.
EXAMPLES = ["scikit-model", "pandas-stats", "old-stack-py39", "lightgbm-native"]
LFS_EXAMPLE = "scikit-model"
LFS_PATTERNS = ["*.pkl"]
REMOTE = "data-science-examples.git"
MAIN = "main"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"
# Each build takes 25 to 100 s here (more when a base image must be rebuilt first); this bounds a
# hung engine or index.
BUILD_TIMEOUT_S = 1500


def _python_version(name: str) -> str:
    return str((example_manifest(name).get("python") or {}).get("python_version", "3.11"))


# ---- the manifests: fast, no engine ------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_manifest_is_valid(name: str) -> None:
    result = run_cli("validate", EXAMPLES_DIR / name / "fatman.yaml", "--json")
    assert result.returncode == 0, result.describe()
    summary = result.json()
    assert summary["valid"] is True and summary["problems"] == [], summary
    manifest = example_manifest(name)
    assert summary["name"] == manifest["name"] == f"example-{name}"
    assert (manifest["git"]["branch"], manifest["git"]["directory"]) == (MAIN, f"examples/{name}")
    # A data-science job pins its stack: a model only loads with the versions that wrote it.
    requirements = example_requirements(name)
    assert requirements, f"examples/{name} has no requirements"
    assert all("==" in line for line in requirements), requirements


def test_the_old_stack_asks_for_python_3_9_and_lightgbm_for_libgomp() -> None:
    assert _python_version("old-stack-py39") == "3.9"
    assert example_manifest("lightgbm-native")["system_dependencies"] == ["libgomp1"]
    assert "python_version" not in example_manifest("pandas-stats")["python"]


def test_the_model_is_a_plain_pickle_in_this_repository() -> None:
    # This repository keeps model.pkl as an ordinary file, so any checkout holds the model, with or
    # without git-lfs (a CI checkout often skips LFS). The job's own repository, which the builds
    # below clone, keeps it in Git LFS, as the example's README tells users to.
    files = example_files(LFS_EXAMPLE)
    assert ".gitattributes" not in files
    model = files["model.pkl"]
    assert not model.startswith(LFS_POINTER_START), "model.pkl is an LFS pointer; restore the pickle"
    assert model[:1] == b"\x80", "model.pkl is not a pickle; run train.py"
    assert "train.py" in files


# ---- the builds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltExample:
    name: str
    tag: str
    result: CliResult


def _ca() -> tuple[str, ...]:
    return ("--ca-cert", str(HOST_CA_BUNDLE)) if HOST_CA_BUNDLE.is_file() else ()


@pytest.fixture(scope="module")
def examples_remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bare repository with the four examples; ``*.pkl`` files are Git LFS objects on it."""
    base = tmp_path_factory.mktemp("data-science-remotes")
    return gitrepos.make_lfs_bare_repo(base / REMOTE, examples_tree(EXAMPLES), lfs=LFS_PATTERNS, branch=MAIN)


@pytest.fixture(scope="module")
def shared_images(docker_client: docker.DockerClient) -> Iterator[DockerCleanup]:
    tracker = DockerCleanup(docker_client)
    yield tracker
    problems = tracker.remove_all()
    if problems:
        pytest.fail("could not remove the examples' images: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def build_example(
    examples_remote: Path,
    shared_images: DockerCleanup,
    root_image_for: Callable[[str], str],
    base_image: str,
    public_index: str,
    wheelhouse: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], BuiltExample]:
    """``build(name) -> BuiltExample``: the example built once per module from a clone of
    ``examples_remote`` (later calls reuse it). Fails the calling test when the CLI fails."""
    built: dict[str, BuiltExample] = {}
    clients = tmp_path_factory.mktemp("data-science-clients")

    def build(name: str) -> BuiltExample:
        if name in built:
            return built[name]
        requirements = example_requirements(name)
        version = _python_version(name)
        if version == "3.11":
            wheelhouse(requirements)
        else:
            assert version == "3.9", f"no wheel download for Python {version} here"
            root_image_for(version)
            public = wheelhouse([])
            for wheel in py39_wheels(requirements).glob("*.whl"):
                if not (public / wheel.name).exists():
                    shutil.copy2(wheel, public / wheel.name)
        manifest = client_manifest(clients / name, name, remote=examples_remote.as_uri(),
                                   build_env={"PIP_INDEX_URL": public_index})
        tag = shared_images.image_tag(f"example-{name}")
        result = run_cli("build", manifest, "--network", "host", *_ca(), "--tag", tag, "--json",
                         timeout=BUILD_TIMEOUT_S)
        assert result.returncode == 0, result.describe()
        summary = result.json()
        assert summary["image"] == tag
        assert summary["base_image"] == our_base_ref(version)
        # Shown with `pytest -rP`: the cold-build times of these stacks are worth watching.
        print(f"built examples/{name} in {result.duration:.1f}s")
        built[name] = BuiltExample(name, tag, result)
        return built[name]

    return build


@pytest.fixture
def served(build_example: Callable[[str], BuiltExample], docker_client: docker.DockerClient,
           docker_cleanup: DockerCleanup) -> Callable[[str], Any]:
    """``serve(name)``: a context manager with the example's image running on 127.0.0.1."""

    def start(name: str) -> Any:
        example = build_example(name)
        return serve(docker_client, example.tag, name=docker_cleanup.container_name(name))

    return start


def call(job: JobServer, *args: str) -> Any:
    """``racetrack-build call URL ARGS``: the job's answer, parsed; fails on a non-zero exit."""
    result = run_cli("call", job.url, *args, timeout=120)
    assert result.returncode == 0, result.describe() + "\n--- job log\n" + job.logs()
    return json.loads(result.stdout)


def call_fails(job: JobServer, *args: str) -> str:
    """``racetrack-build call`` that the job refuses: its stderr."""
    result = run_cli("call", job.url, *args, timeout=120)
    assert result.returncode != 0, result.describe()
    return result.stderr


def test_scikit_model_fetches_its_lfs_model_and_predicts_the_species(
        examples_remote: Path, served: Callable[[str], Any]) -> None:
    model = example_files(LFS_EXAMPLE)["model.pkl"]
    # The premise: on the remote, model.pkl is a pointer and its content an LFS object.
    stored = gitrepos.git("show", f"{MAIN}:examples/{LFS_EXAMPLE}/model.pkl", cwd=examples_remote)
    assert stored.encode().startswith(LFS_POINTER_START), stored[:200]
    assert gitrepos.lfs_object(examples_remote, model).is_file()

    with served(LFS_EXAMPLE) as job:
        code, output = job.container.exec_run(["sha256sum", "/src/fatman/model.pkl"])
        assert code == 0 and output.decode().split()[0] == hashlib.sha256(model).hexdigest(), output
        setosa = call(job, "-i", "features=[5.1, 3.5, 1.4, 0.2]")
        assert setosa["species"] == "setosa"
        assert setosa["probabilities"] == pytest.approx({"setosa": 0.9811, "versicolor": 0.0189,
                                                         "virginica": 0.0}, abs=0.002)
        assert call(job, "-i", "features=[5.9, 3.0, 4.2, 1.5]")["species"] == "versicolor"
        virginica = call(job, "-i", "features=[6.7, 3.0, 5.2, 2.3]")
        assert virginica["species"] == "virginica"
        assert sum(virginica["probabilities"].values()) == pytest.approx(1, abs=0.001)
        assert "give 4 features" in call_fails(job, "-i", "features=[1, 2]")


def test_pandas_stats_describes_records_as_plain_json(served: Callable[[str], Any]) -> None:
    records = [
        {"city": "Oslo", "temp": 3.5},
        {"city": "Oslo", "temp": 5.5},
        {"city": "Rome", "temp": 14.0, "rain_mm": 0.0},
        {"city": "Rome", "temp": 16.0, "rain_mm": 1.0},
    ]
    with served("pandas-stats") as job:
        stats = call(job, "-i", f"records={json.dumps(records)}", "-i", "group_by=city")
        assert stats["rows"] == 4
        assert stats["dtypes"] == {"city": "object", "temp": "float64", "rain_mm": "float64"}
        assert stats["describe"]["temp"] == pytest.approx(
            {"count": 4, "mean": 9.75, "std": 6.17117, "min": 3.5, "25%": 5.0, "50%": 9.75, "75%": 14.5,
             "max": 16.0}, abs=1e-5)
        assert stats["describe"]["rain_mm"]["count"] == 2
        # Oslo has no rain figure at all: its mean is NaN in pandas, null here.
        assert stats["mean_by_city"] == {"Oslo": {"temp": 4.5, "rain_mm": None},
                                         "Rome": {"temp": 15.0, "rain_mm": 0.5}}
        # A single value has no standard deviation: null again, and no group_by, no group means.
        single = call(job, "-i", 'records=[{"x": 1}]')
        assert single["describe"]["x"]["std"] is None and "mean_by_city" not in single
        assert "no numeric column" in call_fails(job, "-i", 'records=[{"city": "Oslo"}]')


def test_old_stack_runs_on_python_3_9_and_forecasts_the_trend(served: Callable[[str], Any]) -> None:
    series = {"2021-03-01": 10.0, "2021-03-02": 12.0, "2021-03-04": 16.0}  # 03-03 missing
    with served("old-stack-py39") as job:
        versions = call(job, "--endpoint", "/versions")
        assert versions["python"].startswith("3.9."), versions
        assert {k: versions[k] for k in ("numpy", "pandas", "scikit-learn")} == {
            "numpy": "1.19.5", "pandas": "1.1.5", "scikit-learn": "0.24.1"}
        forecast = call(job, "-i", f"series={json.dumps(series)}", "-i", "horizon=3")
        assert forecast == pytest.approx({"2021-03-05": 18.0, "2021-03-06": 20.0, "2021-03-07": 22.0},
                                         abs=1e-3)
        assert "at least two days" in call_fails(job, "-i", 'series={"2021-03-01": 1}')


def test_lightgbm_loads_its_native_library_and_prices_a_flat(served: Callable[[str], Any]) -> None:
    with served("lightgbm-native") as job:
        price = call(job, "-i", "area_m2=72", "-i", "rooms=3", "-i", "age_years=15")
        assert price == pytest.approx(260.8, abs=0.05)  # what train.py's model predicts on the host
        bigger = call(job, "-i", "area_m2=140", "-i", "rooms=5", "-i", "age_years=2")
        older = call(job, "-i", "area_m2=72", "-i", "rooms=3", "-i", "age_years=80")
        assert bigger > price > older
        importance = call(job, "--endpoint", "/importance")
        assert set(importance) == {"area_m2", "rooms", "age_years"} and all(importance.values())
        code, output = job.container.exec_run(["sh", "-c", "dpkg-query -W -f '${Status}' libgomp1"])
        assert code == 0 and output.decode().endswith("installed"), output
