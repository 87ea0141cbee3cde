"""Manifest fuzzing shared by ``tests/unit/test_manifest_fuzz.py`` (a fast slice) and
``benchmarks/fuzz_manifests.py`` (the 10,000+ run).

Each generated case is manifest text. :func:`check_case` runs it through the same path as
``racetrack-build render``: parse and validate, then render the Dockerfile against a fake job
source. The only acceptable outcomes are a :class:`ManifestError` / :class:`RenderError` (the input
is refused with a message) or a Dockerfile whose instructions are exactly the ones the template
puts there, every manifest value quoted so that reading it back gives the value itself.

The Dockerfile is read with a small tokenizer of its own (:func:`instructions`), independent of the
renderer: comment and blank lines dropped, ``\\`` continuations joined, the first word of each
logical line is the instruction. A value that smuggled a newline, a continuation or an unbalanced
quote into the file shows up as an extra instruction or as a value that does not read back.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from racetrack_builder.contract import SERVER_CHECK_COMMAND
from racetrack_builder.errors import ManifestError, RenderError
from racetrack_builder.manifest import Manifest, parse_manifest
from racetrack_builder.render import (
    RenderOptions,
    default_base_image,
    image_labels,
    job_check_command,
    render,
    wrapper_command,
)
from racetrack_builder.source import JobSource

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ENTRY = "class FatmanEntrypoint:\n    def perform(self, x: float) -> float:\n        return x\n"

# A valid manifest using every field: the starting point of the field-by-field mutations.
VALID: dict[str, Any] = {
    "name": "fuzz-job",
    "owner_email": "owner@example.com",
    "lang": "python3:latest",
    "version": "1.2.3",
    "git": {"remote": "https://github.com/example/fuzz", "branch": "main", "directory": "jobs/fuzz"},
    "python": {
        "entrypoint_path": "entrypoint.py",
        "entrypoint_class": "FatmanEntrypoint",
        "requirements_path": "requirements.txt",
    },
    "system_dependencies": ["libgomp1", "curl=7.88.1-10+deb12u5"],
    "build_env": {"DEBIAN_FRONTEND": "noninteractive", "PIP_INDEX_URL": "http://127.0.0.1:8080/simple"},
    "runtime_env": {"GREETING": "hello", "WORKERS": "4"},
    "public_endpoints": ["/api/v1/perform"],
    "secret_build_env_file": ".env.build",
    "secret_runtime_env_file": ".env.runtime",
    "labels": {"team": "data-science"},
}

# Strings that break out of a Dockerfile line, a shell word, a JSON array or a YAML scalar when
# they are not quoted for their context.
HOSTILE: tuple[str, ...] = (
    "a\nRUN id", "x\r\nUSER root", "ok \\\nRUN id", "ok\\", "\\", '"', "'", '"; RUN id; "', "$(id)", "`id`",
    "${HOME}", "$HOME", "'; rm -rf / #", "\" \\\n RUN id", "a=b c=d", "x\" LABEL evil=\"1", "#", "# escape=`",
    "\x00", "\x1b[2J", "\u2028RUN id", "\x85", "\t", " ", "", "-o", "--build-arg", "ext::sh -c id",
    "../../etc/passwd", "/etc/passwd", "*", "?", "[a]", "job/*", "a" * 300, "ü", "😀", "\ufeff",
    "1.0.0\nUSER root", "python3:latest\nFROM scratch", "/api\nRUN id", "name\nRUN id",
    "curl && rm -rf /", "curl;id", "curl|id", "onbuild run id", "FROM", "RUN", "null", "~", "yes",
)
# What the mutations put into a field: hostile strings, other YAML scalars and small containers.
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=24))
MUTANTS = (st.sampled_from(HOSTILE) | SCALARS | st.lists(st.sampled_from(HOSTILE) | SCALARS, max_size=3)
           | st.dictionaries(st.sampled_from(HOSTILE) | st.text(max_size=8),
                             st.sampled_from(HOSTILE) | SCALARS, max_size=3))


def _field_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in VALID.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths += [(key, sub) for sub in value]
    return paths


FIELD_PATHS = _field_paths()


def _copy() -> dict[str, Any]:
    return json.loads(json.dumps(VALID))


def set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value``, making missing or non-mapping levels mappings."""
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


@st.composite
def one_field_mutated(draw: st.DrawFn) -> str:
    """The valid manifest with one field (top-level or nested) replaced by a mutant value."""
    data = _copy()
    set_path(data, draw(st.sampled_from(FIELD_PATHS)), draw(MUTANTS))
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans()))


@st.composite
def hostile_everywhere(draw: st.DrawFn) -> str:
    """Hostile strings in every string field at once, and as keys and items of every map and list."""
    data = _copy()
    for path in FIELD_PATHS:
        current: Any = data
        for part in path:
            current = current[part]
        if isinstance(current, str) and draw(st.booleans()):
            set_path(data, path, draw(st.sampled_from(HOSTILE)))
        elif isinstance(current, list) and draw(st.booleans()):
            current.append(draw(st.sampled_from(HOSTILE)))
        elif isinstance(current, dict) and path[0] in ("build_env", "runtime_env", "labels"):
            key = draw(st.sampled_from(("HOSTILE_VALUE", *HOSTILE[:8])))
            current[key] = draw(st.sampled_from(HOSTILE))
    return yaml.safe_dump(data, allow_unicode=True)


_PRINTABLE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cc", "Cs")), max_size=6)


@st.composite
def values_near_valid(draw: st.DrawFn) -> str:
    """Every string field given a value that the validator might accept but a Dockerfile must quote:
    valid shapes with shell and Dockerfile metacharacters appended where the field's rules allow."""
    data = _copy()
    tricky = st.sampled_from(
        ["$HOME", "${X}", '"', "\\", "'", "`id`", "$(id)", " RUN id", ";id", "#", "=", " "])
    for env in ("build_env", "runtime_env", "labels"):
        for key in list(data[env]):
            data[env][key] = draw(_PRINTABLE) + draw(tricky) + draw(_PRINTABLE)
    # Other fields: mostly values their rules accept (so the renderer sees them), sometimes not.
    endpoint = draw(st.sampled_from(["~u", "%20", "a=b", "a:b@c+d", "a$b", 'q"']))
    data["public_endpoints"] = ["/api/v1/" + endpoint]
    data["git"]["branch"] = "main" + draw(st.sampled_from(["", "$x", "'", "/a", "-b", "`x`"]))
    data["git"]["directory"] = "jobs/" + draw(st.sampled_from(["a b", "$x", "'q", "x\\y", "ok", '"']))
    remote_end = draw(st.sampled_from(["", "$x", "'", '"', "?a=b", " c"]))
    data["git"]["remote"] = "https://example.com/r" + remote_end
    data["version"] = "1.0.0" + draw(st.sampled_from(["", "-rc.1", "+b.5", "$x", " RUN"]))
    return yaml.safe_dump(data, allow_unicode=True)


_YAML_CHARS = st.text(
    alphabet=st.sampled_from(list(":-[]{},#&*!|>'\"%@` \n\t?<=~.0123456789abcdefnrstuy\\$")), max_size=120)
_VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20)


def random_yaml() -> st.SearchStrategy[str]:
    """Text made of YAML syntax, and random YAML documents (maps with manifest keys half the time)."""
    keyed = st.dictionaries(st.sampled_from(list(VALID)), _VALUES, max_size=8)
    return _YAML_CHARS | st.builds(yaml.safe_dump, _VALUES) | st.builds(yaml.safe_dump, keyed)


CASES = st.one_of(one_field_mutated(), hostile_everywhere(), values_near_valid(), random_yaml())


# --- reading a Dockerfile back ----------------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` for every instruction, as Docker's parser splits them.

    Blank lines and lines starting with ``#`` are dropped, inside a continuation too; a line ending
    with ``\\`` continues on the next one.
    """
    result: list[tuple[str, str]] = []
    current: list[str] = []
    for line in dockerfile.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current.append(line.rstrip()[:-1])
            continue
        current.append(line)
        joined = " ".join(part.strip() for part in current)
        current = []
        keyword, _, rest = joined.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    if current:
        result.append(("<UNTERMINATED>", " ".join(current)))
    return result


_QUOTED = r'"(?:[^"\\$]|\\.)*"'  # one double-quoted word: no bare " or $, escapes allowed
_PAIR = re.compile(rf"\s*(?P<key>{_QUOTED}|[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>{_QUOTED}))?")


def _unquote(word: str) -> str:
    if not (word.startswith('"') and word.endswith('"')):
        return word
    return re.sub(r"\\(.)", r"\1", word[1:-1], flags=re.DOTALL)


def key_values(arguments: str) -> list[tuple[str, str | None]]:
    """``KEY="value" ...`` pairs of ENV/ARG/LABEL; every value must be one double-quoted word with
    no bare ``$`` (no substitution) and nothing may be left over. Raises AssertionError otherwise."""
    pairs: list[tuple[str, str | None]] = []
    position = 0
    while position < len(arguments):
        match = _PAIR.match(arguments, position)
        assert match and match.end() > position, f"unquoted text in {arguments[position:][:80]!r}"
        value = match["value"]
        pairs.append((_unquote(match["key"]), None if value is None else _unquote(value)))
        position = match.end()
        if position < len(arguments):
            assert arguments[position] == " ", f"two words run together at {arguments[position:][:80]!r}"
    return pairs


def expected_keywords(manifest: Manifest, requirements: bool, secrets: tuple[str, ...]) -> list[str]:
    """The instructions the template writes for this manifest shape (fake source: no CA, one
    requirements file that installs no local path; the BuildKit install of ``render``)."""
    plain_build = [name for name in manifest.build_env if name not in secrets]
    words: list[str] = ["FROM"]  # the system stage
    if manifest.system_dependencies:
        words.append("USER")
        if plain_build:
            words.append("ARG")
        words += ["RUN", "USER"]
    words.append("FROM")  # the job's stage
    if requirements:
        words += ["USER", "RUN", "USER"]  # the install step, secrets as a BuildKit secret
    words += ["ENV", "CMD"]
    words += ["COPY", "RUN", "ENV", "LABEL"]  # the ENV: GIT_VERSION, the fake source's commit
    return words


# --- one case ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one case gave: ``rejected`` says by whom (``manifest`` / ``render``), else ``accepted``."""

    verdict: str
    dockerfile: str | None = None


SECRET_NAMES = ("INDEX_TOKEN",)


def fake_source(root: Path, manifest: Manifest) -> JobSource:
    """The job's files as the renderer sees them, without git: the entrypoint and requirements file."""
    files = {"entrypoint.py": ENTRY}
    if manifest.python.requirements_path:
        files["requirements.txt"] = "idna\n"
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    return JobSource(repo_root=root, job_root=root, files=tuple(sorted(files)), commit=COMMIT,
                     remote=manifest.git.remote, branch=manifest.git.branch, dirty=False)


def check_case(text: str, workdir: Path) -> Outcome:
    """Run one manifest text through validation and rendering; AssertionError on a contract breach.

    Any exception other than ManifestError/RenderError propagates: the caller counts it as a
    traceback.
    """
    try:
        manifest = parse_manifest(text, "fatman.yaml")
    except ManifestError as err:
        assert err.problems, "a ManifestError always names at least one problem"
        return Outcome("rejected by manifest")
    if manifest.python.requirements_path:
        # The fake source names the requirements file requirements.txt whatever the manifest says.
        manifest = manifest.model_copy(update={
            "python": manifest.python.model_copy(update={"requirements_path": "requirements.txt"})})
    source = fake_source(workdir, manifest)
    secrets = SECRET_NAMES if manifest.secret_build_env_file else ()
    try:
        dockerfile = render(manifest, source, RenderOptions(secret_build_names=secrets)).dockerfile
    except RenderError:
        return Outcome("rejected by render")
    check_dockerfile(dockerfile, manifest, secrets)
    return Outcome("accepted", dockerfile)


def check_dockerfile(dockerfile: str, manifest: Manifest, secrets: tuple[str, ...]) -> None:
    """No injected instruction, every value quoted and reading back as the manifest's own value."""
    requirements = bool(manifest.python.requirements_path)
    found = instructions(dockerfile)
    keywords = [k for k, _ in found]
    assert keywords == expected_keywords(manifest, requirements, secrets), (keywords, dockerfile)
    secret = set(secrets)
    plain_build = [(k, v) for k, v in manifest.build_env.items() if k not in secret]
    args = [rest for k, rest in found if k == "ARG"]
    envs = [rest for k, rest in found if k == "ENV"]
    labels = [rest for k, rest in found if k == "LABEL"]
    if manifest.system_dependencies and plain_build:
        assert key_values(args.pop(0)) == plain_build, args
    assert not args, args
    # No secret is a build argument or anywhere else in the Dockerfile: the install step reads them.
    for name in secrets:
        assert name not in dockerfile, name
    if manifest.system_dependencies:
        apt = next(rest for k, rest in found if k == "RUN")  # the system stage's RUN
        packages = apt.split("--no-install-recommends", 1)[1].split(";", 1)[0]
        assert shlex.split(packages) == list(manifest.system_dependencies), apt
    assert key_values(envs[0]) == [
        ("FATMAN_NAME", manifest.name), ("FATMAN_VERSION", manifest.version),
        ("JOB_NAME", manifest.name), ("JOB_VERSION", manifest.version), *manifest.wrapper_env(),
        *manifest.runtime_env.items(), ("FATMAN_PUBLIC_ENDPOINTS", ",".join(manifest.public_endpoints)),
    ], envs[0]
    assert key_values(envs[1]) == [("GIT_VERSION", COMMIT)], envs[1]
    expected_labels = image_labels(manifest, fake_source_stub(manifest), default_base_image(manifest))
    assert key_values(labels[0]) == expected_labels, labels[0]
    cmd = next(rest for k, rest in found if k == "CMD")
    assert json.loads(cmd) == wrapper_command(manifest, "run"), cmd
    check = [rest for k, rest in found if k == "RUN"][-1]
    assert json.loads(check) == job_check_command(manifest), check
    # The install step checks the server (base-images/build-tools/racetrack_install.py), no step here.
    assert not any(SERVER_CHECK_COMMAND[-1] in rest for k, rest in found if k == "RUN"), found


def fake_source_stub(manifest: Manifest) -> JobSource:
    """A JobSource carrying only what :func:`image_labels` reads (the commit)."""
    return JobSource(repo_root=Path("/nonexistent"), job_root=Path("/nonexistent"), files=(), commit=COMMIT,
                     remote=manifest.git.remote, branch=manifest.git.branch, dirty=False)


def iter_valid_texts() -> Iterator[str]:
    """The unmutated starting point, in block and flow style: both must be accepted."""
    yield yaml.safe_dump(VALID)
    yield yaml.safe_dump(VALID, default_flow_style=True)
