"""Which files and whether the whole source the builder stage needs for pip."""

from __future__ import annotations

import pytest

from racetrack_builder.errors import RenderError
from racetrack_builder.requirements import plan_requirements


def _plan(files: dict[str, str], start: str = "requirements.txt"):
    return plan_requirements(start, files.get)


def test_plain_requirements_need_only_the_file() -> None:
    plan = _plan({"requirements.txt": "numpy==2.0\nrequests>=2  # http\n\n# comment\n"})
    assert plan.files == ("requirements.txt",) and not plan.needs_source


@pytest.mark.parametrize(
    "line",
    [
        "-r base.txt",
        "--requirement base.txt",
        "--requirement=base.txt",
        "-rbase.txt",
        "-c base.txt",
        "--constraint=base.txt",
    ],
)
def test_includes_are_followed(line: str) -> None:
    plan = _plan({"requirements.txt": f"{line}\n", "base.txt": "idna\n"})
    assert plan.files == ("requirements.txt", "base.txt")


def test_includes_resolve_relative_to_the_including_file_and_cycles_end() -> None:
    files = {"reqs/main.txt": "-r sub/a.txt\n", "reqs/sub/a.txt": "-r ../main.txt\nidna\n"}
    assert _plan(files, "reqs/main.txt").files == ("reqs/main.txt", "reqs/sub/a.txt")


def test_continuation_lines_are_joined() -> None:
    plan = _plan({"requirements.txt": "-r \\\nbase.txt\n", "base.txt": ""})
    assert plan.files == ("requirements.txt", "base.txt")


@pytest.mark.parametrize(
    "line",
    [
        "-e .",
        "--editable ./libs/x",
        "./libs/x",
        ".",
        "../shared",
        "mylib @ file:///src/libs/mylib",
        "-f ./wheels",
        "--find-links=wheels",
        "file:libs/x",
    ],
)
def test_local_paths_need_the_whole_source(line: str) -> None:
    assert _plan({"requirements.txt": f"{line}\n"}).needs_source


@pytest.mark.parametrize(
    "line",
    [
        "--extra-index-url https://${U}:${T}@example.com/simple",
        "-e git+https://example.com/r.git#egg=r",
        "pkg @ https://example.com/p.whl",
        "-f https://example.com/wheels",
        "--index-url=http://127.0.0.1:1/simple",
    ],
)
def test_remote_references_do_not_need_the_source(line: str) -> None:
    assert not _plan({"requirements.txt": f"{line}\n"}).needs_source


def test_include_outside_the_job_is_refused() -> None:
    with pytest.raises(RenderError, match="outside the job's directory"):
        _plan({"requirements.txt": "-r ../other/requirements.txt\n"})


def test_missing_include_names_the_file() -> None:
    with pytest.raises(RenderError, match="'missing.txt' is not in the job's source"):
        _plan({"requirements.txt": "-r missing.txt\n"})


def test_undefined_variables_in_requirements_are_named_per_file() -> None:
    from racetrack_builder.requirements import undefined_references

    texts = {
        "requirements.txt": (
            "--extra-index-url http://${USER_X}:${TOKEN}@${HOST}/simple/\n# ${IN_A_COMMENT}\nsix\n"
        ),
        "more.txt": "pkg @ file://${HOME}/x.whl\n",
    }
    assert undefined_references(texts, {"TOKEN"}) == {"requirements.txt": ["USER_X", "HOST"]}


@pytest.mark.parametrize(
    ("text", "needs_git"),
    [
        ("git+https://${GITLAB_USERNAME}:${GITLAB_TOKEN}@github.com/racetrack/mllab-utils.git\n", True),
        ("mylib @ git+ssh://git@git.example.com/team/mylib.git@v1.2\n", True),
        ("-e git+https://git.example.com/team/mylib.git#egg=mylib\n", True),
        ("-r more.txt\n", True),  # through an include
        ("numpy==2.0\nhttps://example.com/pkg.whl\nlegit-package\n", False),
        ("# git+https://commented.out/x.git\nsix\n", False),
    ],
)
def test_requirements_from_git_are_seen_so_the_install_step_gets_git(text: str, needs_git: bool) -> None:
    plan = _plan({"requirements.txt": text, "more.txt": "x @ git+https://h/x.git\n"})
    assert plan.needs_git is needs_git
