"""init: a new job that validates and serves as generated, never overwriting, filled from git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from racetrack_builder.errors import UsageError
from racetrack_builder.manifest import JobManifest, load_manifest
from racetrack_builder.scaffold import GITIGNORE_LINES, default_name, init_job, without_credentials
from racetrack_builder.smoke import documented_examples
from tests.gitrepos import GIT_ENV

EXPECTED = {"fatman.yaml", "fatman_entrypoint.py", "requirements.txt", ".env.build.dist",
            ".env.runtime.dist", "fatman.schema.json"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_new_folder_gets_a_job_that_validates(tmp_path: Path, hermetic_git: None) -> None:
    job = tmp_path / "My Model"
    result = init_job(job)
    assert result.name == "my-model"
    assert set(result.written) == EXPECTED
    manifest = load_manifest(job / "fatman.yaml")
    assert (manifest.name, manifest.python.entrypoint_path) == ("my-model", "fatman_entrypoint.py")
    assert manifest.python.requirements_path == "requirements.txt"
    text = (job / "fatman.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=fatman.schema.json\n")
    # The optional fields of the spec are there, commented out.
    for field in ("# version:", "# branch:", "# directory:", "# entrypoint_class:", "# system_dependencies:",
                  "# build_env:", "# runtime_env:", "# public_endpoints:", "# secret_build_env_file:",
                  "# secret_runtime_env_file:", "# labels:"):
        assert field in text
    assert "placeholder" in text and result.notes  # no git: the remote is a placeholder, said so
    assert (job / ".gitignore").read_text().splitlines()[-3:] == list(GITIGNORE_LINES)


def test_the_generated_job_serves_its_example(tmp_path: Path, hermetic_git: None) -> None:
    """What the smoke test does, through the wrapper's app: the documented example answers 2xx."""
    fatman_wrapper = pytest.importorskip("fatman_wrapper")
    from fatman_wrapper.config import Settings

    init_job(tmp_path / "job", "adder")
    app = fatman_wrapper.create_app("fatman_entrypoint.py", root=tmp_path / "job", settings=Settings())
    client = app.test_client()
    params = client.get("/api/v1/parameters").get_json()
    assert [(p["name"], p["type"]) for p in params] == [("numbers", "list[float]"), ("scale", "float")]
    examples = documented_examples(client.get("/openapi.json").get_json())
    assert examples == [("/api/v1/perform", {"numbers": [40, 2], "scale": 1.0})]
    answer = client.post("/api/v1/perform", json=examples[0][1])
    assert answer.status_code == 200 and answer.get_json() == {"total": 42.0}
    assert "Add up numbers" in client.get("/openapi.json").get_data(as_text=True)


def test_a_job_yaml_job_validates_and_serves_as_racetrack_2x_writes_it(tmp_path: Path,
                                                                       hermetic_git: None) -> None:
    fatman_wrapper = pytest.importorskip("fatman_wrapper")
    from fatman_wrapper.config import Settings

    job = tmp_path / "scorer"
    result = init_job(job, fmt="job")
    assert result.manifest == "job.yaml"
    assert set(result.written) == {"job.yaml", "job_entrypoint.py", "requirements.txt", ".env.build.dist",
                                   ".env.runtime.dist", "job.schema.json"}
    manifest = load_manifest(job / "job.yaml")
    assert isinstance(manifest, JobManifest) and manifest.notices == ()  # no deprecated field
    assert (manifest.name, manifest.python.entrypoint_path, manifest.python.entrypoint_class) == (
        "scorer", "job_entrypoint.py", "JobEntrypoint")
    text = (job / "job.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=job.schema.json\n")
    for field in ("# python_version:", "# max_concurrency:", "# home_page:", "# replicas:", "# resources:"):
        assert field in text
    assert '"title": "job.yaml"' in (job / "job.schema.json").read_text()
    app = fatman_wrapper.create_app("job_entrypoint.py", root=job, settings=Settings())
    answer = app.test_client().post("/api/v1/perform", json={"numbers": [40, 2], "scale": 1.0})
    assert answer.status_code == 200 and answer.get_json() == {"total": 42.0}


@pytest.mark.parametrize(("existing", "fmt"), [("fatman.yaml", "job"), ("job.yaml", "fatman")])
def test_a_folder_with_the_other_manifest_is_refused(tmp_path: Path, existing: str, fmt: str,
                                                    hermetic_git: None) -> None:
    (tmp_path / existing).write_text("name: x\n")
    with pytest.raises(UsageError, match=f"{existing} already exists"):
        init_job(tmp_path, "x", fmt=fmt)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


@pytest.mark.parametrize(("origin", "written"), [
    (None, "https://git.example.com/you/repo.git"),  # a fresh `git init`: a placeholder
    ("git@github.com:you/scorer.git", "https://github.com/you/scorer.git"),
    ("ssh://git@gitlab.example.com:2222/team/scorer.git", "https://gitlab.example.com/team/scorer.git"),
    ("https://git.example.com/team/scorer.git", "https://git.example.com/team/scorer.git"),
])
def test_a_job_yaml_in_a_working_tree_gets_an_https_remote(tmp_path: Path, hermetic_git: None,
                                                           origin: str | None, written: str) -> None:
    """Racetrack 2.x clones https:// only, so init writes no local path or ssh remote in a job.yaml."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    if origin:
        git(repo, "remote", "add", "origin", origin)
    result = init_job(repo, fmt="job")
    manifest = load_manifest(repo / "job.yaml")
    assert manifest.git.remote == written
    assert origin is None or origin.startswith("https://") or any("https" in note for note in result.notes)


def test_never_overwrites(tmp_path: Path, hermetic_git: None) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "requirements.txt").write_text("numpy\n")
    (job / ".gitignore").write_text("*.log")  # no final newline
    result = init_job(job, "job")
    assert result.kept == ("requirements.txt",)
    assert (job / "requirements.txt").read_text() == "numpy\n"
    assert (job / ".gitignore").read_text().startswith("*.log\n# secret env files")
    # A second init: the job is there, nothing is touched.
    before = {p.name: p.read_bytes() for p in job.iterdir()}
    with pytest.raises(UsageError, match="already exists.*nothing was written"):
        init_job(job, "job")
    assert {p.name: p.read_bytes() for p in job.iterdir()} == before


def test_gitignore_entries_already_there_are_not_repeated(tmp_path: Path, hermetic_git: None) -> None:
    (tmp_path / ".gitignore").write_text("/.env.build\n.env.runtime\n__pycache__\n")
    assert init_job(tmp_path, "job").ignored == ()
    assert (tmp_path / ".gitignore").read_text() == "/.env.build\n.env.runtime\n__pycache__\n"


def test_a_git_working_tree_fills_remote_branch_and_directory(tmp_path: Path, hermetic_git: None) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "dev")
    git(repo, "remote", "add", "origin", "https://ci:s3cret-token@git.example.com/team/models.git")
    result = init_job(repo / "jobs" / "scorer")
    manifest = load_manifest(repo / "jobs/scorer/fatman.yaml")
    assert manifest.git.remote == "https://git.example.com/team/models.git"  # no token committed
    assert (manifest.git.branch, manifest.git.directory) == ("dev", "jobs/scorer")
    assert "s3cret" not in (repo / "jobs/scorer/fatman.yaml").read_text()
    assert any("credentials" in note for note in result.notes)


def test_a_working_tree_without_remote_points_at_itself(tmp_path: Path, hermetic_git: None) -> None:
    git(tmp_path, "init", "-q", "-b", "master")
    init_job(tmp_path, "job")
    manifest = load_manifest(tmp_path / "fatman.yaml")
    assert (manifest.git.remote, manifest.git.branch) == (".", "master")


def test_a_bad_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--name: 'Bad_Name' is not a valid job name.*'bad-name'") as err:
        init_job(tmp_path / "job", "Bad_Name")
    assert err.value.exit_code == 2
    assert not (tmp_path / "job").exists()


@pytest.mark.parametrize(("folder", "name"),
                         [("Adder", "adder"), ("my_job 2", "my-job-2"), ("___", "my-job")])
def test_default_name(tmp_path: Path, folder: str, name: str) -> None:
    assert default_name(tmp_path / folder) == name


def test_without_credentials() -> None:
    assert without_credentials("https://u:p@h.example/x.git") == "https://h.example/x.git"
    assert without_credentials("ssh://git@h.example/x.git") == "ssh://git@h.example/x.git"
    assert without_credentials("ssh://git:pw@h.example/x.git") == "ssh://git@h.example/x.git"
    assert without_credentials("git@h.example:x.git") == "git@h.example:x.git"
