"""racetrack_builder.secrets: secret .env files next to the manifest, and their precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from racetrack_builder.errors import SecretsError
from racetrack_builder.manifest import Manifest
from racetrack_builder.secrets import find_template, merge_env, read_secret_env, secret_env_path

# The spec's own example of a .env.build file.
SPEC_ENV_BUILD = """\
# Git username or email
GITLAB_USERNAME = 'username@example.com'
# Use read_repo access token instead of your password
GITLAB_TOKEN = "Pa55w0rD"
"""


def make_manifest(**extra: Any) -> Manifest:
    return Manifest.model_validate({
        "name": "adder",
        "owner_email": "owner@example.com",
        "lang": "python3:latest",
        "git": {"remote": "https://example.com/adder.git"},
        "python": {"entrypoint_path": "adder.py"},
        **extra,
    })


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A manifest in ``repo/jobs/adder`` of a folder that looks like a git checkout."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    folder = tmp_path / "repo" / "jobs" / "adder"
    folder.mkdir(parents=True)
    manifest = folder / "fatman.yaml"
    manifest.write_text("name: adder\n")
    return manifest


def test_no_file_named_means_no_secrets(job: Path) -> None:
    assert read_secret_env(make_manifest(), job, "build") == {}
    assert read_secret_env(make_manifest(), job, "runtime") == {}
    assert secret_env_path(make_manifest(), job, "build") is None


def test_reads_the_spec_example(job: Path) -> None:
    (job.parent / ".env.build").write_text(SPEC_ENV_BUILD)
    values = read_secret_env(make_manifest(secret_build_env_file=".env.build"), job, "build")
    assert values == {"GITLAB_USERNAME": "username@example.com", "GITLAB_TOKEN": "Pa55w0rD"}


def test_build_and_runtime_files_are_distinct(job: Path) -> None:
    (job.parent / ".env.build").write_text("A=build\n")
    (job.parent / ".env.runtime").write_text("A=runtime\n")
    manifest = make_manifest(secret_build_env_file=".env.build", secret_runtime_env_file=".env.runtime")
    assert read_secret_env(manifest, job, "build") == {"A": "build"}
    assert read_secret_env(manifest, job, "runtime") == {"A": "runtime"}


def test_dotenv_syntax_quotes_comments_export_and_empty_values(job: Path) -> None:
    (job.parent / "secrets.env").write_text(
        "export TOKEN=abc # trailing comment\n"
        "EMPTY=\n"
        "HASH='a#b'\n"
        "SPACES=\"with spaces\"\n"
        "MULTI=\"line1\nline2\"\n"
        "\n"
        "# a comment line\n"
        "TOKEN=def\n"  # the last assignment wins, as in python-dotenv
    )
    values = read_secret_env(make_manifest(secret_runtime_env_file="secrets.env"), job, "runtime")
    assert values == {"TOKEN": "def", "EMPTY": "", "HASH": "a#b", "SPACES": "with spaces",
                      "MULTI": "line1\nline2"}


def test_no_interpolation_from_the_host_environment(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_ONLY", "from-this-machine")
    (job.parent / ".env.build").write_text("PASSWORD=pa${HOST_ONLY}ss\nOTHER=$HOST_ONLY\n")
    values = read_secret_env(make_manifest(secret_build_env_file=".env.build"), job, "build")
    assert values == {"PASSWORD": "pa${HOST_ONLY}ss", "OTHER": "$HOST_ONLY"}


def test_path_relative_to_the_manifest_folder_not_the_working_directory(
        job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (job.parent / "conf").mkdir()
    (job.parent / "conf" / "build.env").write_text("A=1\n")
    monkeypatch.chdir(tmp_path)
    manifest = make_manifest(secret_build_env_file="conf/build.env")
    assert read_secret_env(manifest, job, "build") == {"A": "1"}
    # A manifest path given relative to the working directory works too.
    assert read_secret_env(manifest, job.relative_to(tmp_path), "build") == {"A": "1"}


def test_linked_manifest_reads_its_neighbours_where_the_link_is(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "fatman.yaml").write_text("name: adder\n")
    (real / ".env.build").write_text("WHERE=real\n")
    linked = tmp_path / "work"
    linked.mkdir()
    (linked / "fatman.yaml").symlink_to(real / "fatman.yaml")
    (linked / ".env.build").write_text("WHERE=link\n")
    manifest = make_manifest(secret_build_env_file="./sub/../.env.build")
    assert secret_env_path(manifest, linked / "fatman.yaml", "build") == linked / ".env.build"
    assert read_secret_env(manifest, linked / "fatman.yaml", "build") == {"WHERE": "link"}


def test_absolute_and_home_paths(job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".secrets").mkdir(parents=True)
    (home / ".secrets" / "adder.env").write_text("A=home\n")
    monkeypatch.setenv("HOME", str(home))
    in_home = make_manifest(secret_build_env_file="~/.secrets/adder.env")
    assert read_secret_env(in_home, job, "build") == {"A": "home"}
    absolute = str(home / ".secrets" / "adder.env")
    assert read_secret_env(make_manifest(secret_build_env_file=absolute), job, "build") == {"A": "home"}


def test_missing_file_points_to_the_dist_template_next_to_it(job: Path) -> None:
    (job.parent / ".env.build.dist").write_text("GITLAB_TOKEN=\n")
    with pytest.raises(SecretsError) as info:
        read_secret_env(make_manifest(secret_build_env_file=".env.build"), job, "build")
    err = info.value
    assert err.exit_code == 2
    searched = job.parent / ".env.build"
    assert err.message == f"secret_build_env_file: '.env.build' not found (searched {searched})"
    assert err.hint == "copy .env.build.dist to .env.build and fill it in; keep .env.build out of git"


def test_missing_file_finds_a_template_at_the_repository_root(job: Path) -> None:
    repo = job.parent.parent.parent
    (repo / ".env.runtime.example").write_text("KEY=\n")
    with pytest.raises(SecretsError) as info:
        read_secret_env(make_manifest(secret_runtime_env_file=".env.runtime"), job, "runtime")
    assert info.value.hint == (f"copy {repo / '.env.runtime.example'} to .env.runtime and fill it in; "
                               "keep .env.runtime out of git")
    assert find_template(job.parent / ".env.runtime", job) == repo / ".env.runtime.example"


def test_missing_file_without_a_template(job: Path) -> None:
    with pytest.raises(SecretsError) as info:
        read_secret_env(make_manifest(secret_runtime_env_file="runtime.env"), job, "runtime")
    assert info.value.message.startswith("secret_runtime_env_file: 'runtime.env' not found")
    assert info.value.hint == ("create runtime.env with one NAME=value line per secret runtime variable; "
                               "it is read from this machine, never from git (commit a runtime.env.dist "
                               "template so others know what to fill in)")


def test_key_without_value_names_the_line_and_never_the_values(job: Path) -> None:
    (job.parent / ".env.build").write_text("TOKEN=s3cr3t\nFOO\nBAR=ok\n")
    with pytest.raises(SecretsError) as info:
        read_secret_env(make_manifest(secret_build_env_file=".env.build"), job, "build")
    # The line's text is never quoted: a line holding only a pasted token would be the secret.
    assert str(info.value) == (
        "secret_build_env_file: '.env.build' is not a valid .env file:\n"
        "  line 2: has no '=' and no value (write NAME=value, or NAME= for an empty one)"
    )
    assert "s3cr3t" not in str(info.value) and "FOO" not in str(info.value)


def test_unparsable_line_and_bad_names_are_all_reported(job: Path) -> None:
    (job.parent / ".env.build").write_text("GOOD=1\nthis is s3cr3t garbage\n1ABC=x\nA-B=y\n")
    with pytest.raises(SecretsError) as info:
        read_secret_env(make_manifest(secret_build_env_file=".env.build"), job, "build")
    message = str(info.value)
    assert "line 2: cannot be parsed" in message
    assert "line 3: the name is not a valid environment variable name" in message
    assert "line 4: the name is not a valid environment variable name" in message
    assert "s3cr3t" not in message and "1ABC" not in message and "A-B" not in message


def test_runtime_secrets_may_not_override_what_the_image_sets(job: Path) -> None:
    (job.parent / ".env.runtime").write_text("PATH=/evil\nFATMAN_NAME=x\nOK=1\n")
    manifest = make_manifest(secret_runtime_env_file=".env.runtime", secret_build_env_file=".env.runtime")
    with pytest.raises(SecretsError) as info:
        read_secret_env(manifest, job, "runtime")
    assert "line 1: 'PATH' is set by the image and cannot be overridden" in str(info.value)
    assert "line 2: 'FATMAN_NAME' is set by the image" in str(info.value)
    # At build time these names are the build's own business.
    assert read_secret_env(manifest, job, "build") == {"PATH": "/evil", "FATMAN_NAME": "x", "OK": "1"}


def test_unreadable_files(job: Path) -> None:
    (job.parent / "adir").mkdir()
    with pytest.raises(SecretsError, match="is a directory"):
        read_secret_env(make_manifest(secret_build_env_file="adir"), job, "build")
    (job.parent / "latin1.env").write_bytes("A=caf\xe9\n".encode("latin-1"))
    with pytest.raises(SecretsError, match="is not UTF-8 text"):
        read_secret_env(make_manifest(secret_build_env_file="latin1.env"), job, "build")


def test_secret_values_win_over_plain_env() -> None:
    plain = {"DEBUG": "false", "TOKEN": "placeholder", "ONLY_PLAIN": "1"}
    secret = {"TOKEN": "real", "ONLY_SECRET": "2"}
    assert merge_env(plain, secret) == {"DEBUG": "false", "TOKEN": "real", "ONLY_PLAIN": "1",
                                        "ONLY_SECRET": "2"}
    assert plain["TOKEN"] == "placeholder"  # inputs are not modified
    assert merge_env({}, {}) == {}


def test_manifest_env_merged_with_its_secret_file(job: Path) -> None:
    (job.parent / ".env.build").write_text(SPEC_ENV_BUILD)
    manifest = make_manifest(build_env={"GITLAB_TOKEN": "not-the-real-one",
                                        "DEBIAN_FRONTEND": "noninteractive"},
                             secret_build_env_file=".env.build")
    merged = merge_env(manifest.build_env, read_secret_env(manifest, job, "build"))
    assert merged == {"GITLAB_TOKEN": "Pa55w0rD", "DEBIAN_FRONTEND": "noninteractive",
                      "GITLAB_USERNAME": "username@example.com"}
