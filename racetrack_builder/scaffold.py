"""``init``: write a new job that validates, builds and passes its smoke test as generated.

The files come from ``templates/init/`` (Jinja2, StrictUndefined): the manifest with the JSON
Schema comment for editors and the optional fields commented out, the entrypoint, requirements.txt,
templates of the secret env files, and ``.gitignore`` entries for the real secret files. Nothing
is ever overwritten: a folder that already holds a manifest or the entrypoint is refused before
anything is written, other files already there are kept, and missing ``.gitignore`` lines are
appended. In a git working tree, ``git.remote``, ``git.branch`` and ``git.directory`` come from it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import reporting
from .errors import UsageError, disk_error
from .git_urls import https_form
from .manifest.formats import FATMAN, FILE_NAMES, JOB, Format
from .resources import templates_dir


# What init writes for each manifest format: the 2022 fatman.yaml (the default) or Racetrack 2.x's
# job.yaml. Dot files are kept without their dot in templates/ (packaging tools skip dot files more
# often than not).
@dataclass(frozen=True)
class Layout:
    fmt: Format
    manifest: str
    manifest_template: str
    entrypoint: str
    entrypoint_class: str

    @property
    def schema(self) -> str:
        return self.manifest.removesuffix(".yaml") + ".schema.json"

    @property
    def templates(self) -> dict[str, str]:
        """template -> file written."""
        return {
            self.manifest_template: self.manifest,
            "entrypoint.py.j2": self.entrypoint,
            "requirements.txt.j2": "requirements.txt",
            "env.build.dist.j2": ".env.build.dist",
            "env.runtime.dist.j2": ".env.runtime.dist",
        }


LAYOUTS: dict[Format, Layout] = {
    FATMAN: Layout(FATMAN, FILE_NAMES[FATMAN], "fatman.yaml.j2", "fatman_entrypoint.py", "FatmanEntrypoint"),
    JOB: Layout(JOB, FILE_NAMES[JOB], "job.yaml.j2", "job_entrypoint.py", "JobEntrypoint"),
}
GITIGNORE = ".gitignore"
GITIGNORE_LINES = (".env.build", ".env.runtime", "__pycache__/")
PLACEHOLDER_EMAIL = "owner@example.com"
PLACEHOLDER_REMOTE = "https://git.example.com/you/{name}.git"


@dataclass(frozen=True)
class GitFacts:
    """What the working tree holding the new job says about it."""

    toplevel: Path
    remote: str | None  # the URL of the branch's upstream remote, else origin, else the only remote
    branch: str | None  # None when HEAD is detached
    directory: str  # the job's folder relative to the top, "." at the top


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` did."""

    directory: Path
    name: str
    written: tuple[str, ...]
    kept: tuple[str, ...]
    ignored: tuple[str, ...]  # lines appended to (or written in a new) .gitignore
    git: GitFacts | None
    remote: str
    notes: tuple[str, ...] = field(default=())
    manifest: str = FILE_NAMES[FATMAN]  # the manifest's file name


def default_name(directory: Path) -> str:
    """A job name from the folder's name: lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")[:63].strip("-")
    return slug or "my-job"


def _check_name(name: str) -> None:
    from .manifest import check_name

    try:
        check_name(name)
    except ValueError as exc:  # the rule's own message (pydantic's custom error is a ValueError)
        text = exc.message() if hasattr(exc, "message") else str(exc)
        raise UsageError(f"--name: {text}") from exc


def git_facts(directory: Path) -> GitFacts | None:
    """The working tree holding ``directory`` (or its nearest existing parent), if there is one."""
    from .git_transport import git_text

    existing = directory
    while not existing.is_dir():
        existing = existing.parent
    top = git_text(existing, "rev-parse", "--show-toplevel")
    if not top:
        return None
    toplevel = Path(top).resolve()
    head = git_text(toplevel, "symbolic-ref", "--quiet", "HEAD") or ""
    branch = head.removeprefix("refs/heads/") or None
    remote_name = None
    if branch:
        remote_name = git_text(toplevel, "config", "--get", f"branch.{branch}.remote")
    remotes = (git_text(toplevel, "remote") or "").split()
    if not remote_name or remote_name not in remotes:
        remote_name = "origin" if "origin" in remotes else (remotes[0] if len(remotes) == 1 else None)
    remote = git_text(toplevel, "remote", "get-url", remote_name) if remote_name else None
    rel = os.path.relpath(directory.resolve(), toplevel)
    return GitFacts(toplevel=toplevel, remote=remote or None, branch=branch,
                    directory=Path(rel).as_posix() if rel != "." else ".")


def without_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: a manifest is committed, a token must not be.

    As ``git_urls.mask_credentials`` reads them: for http(s) and ftp(s) the whole user part is a
    credential (often a token); for ssh only a password after ``:`` (``git@`` is the login name).
    """
    url = re.sub(r"^((?:https?|ftps?)://)[^/\s]*@", r"\1", url, flags=re.IGNORECASE)
    return re.sub(r"^(ssh://[^/:@\s]+):[^/@\s]*@", r"\1@", url, flags=re.IGNORECASE)


def _owner_email(toplevel: Path | None, directory: Path) -> str:
    from .git_transport import git_text
    from .manifest import check_email

    where = toplevel or (directory if directory.is_dir() else Path.cwd())
    email = git_text(where, "config", "--get", "user.email")
    if email:
        try:
            return check_email(email.strip())
        except ValueError:
            pass
    return PLACEHOLDER_EMAIL


def _render(template: str, values: dict[str, object]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "init")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML and Python, not HTML; values go through `yaml`
        keep_trailing_newline=True,
    )
    # A JSON string is a YAML double-quoted scalar: quotes, colons and non-ASCII stay inert.
    env.filters["yaml"] = json.dumps
    return env.get_template(template).render(**values)


def render_files(name: str, *, owner_email: str, remote: str, remote_note: str | None,
                 branch: str | None, directory: str, layout: Layout = LAYOUTS[FATMAN]) -> dict[str, str]:
    """Every file init writes, as text: relative path -> content (``.gitignore`` aside)."""
    values: dict[str, object] = {
        "name": name,
        "owner_email": owner_email,
        "remote": remote,
        "remote_note": remote_note,
        "branch": branch,
        "directory": directory if directory != "." else None,
        "entrypoint": layout.entrypoint,
        "entrypoint_class": layout.entrypoint_class,
        "manifest": layout.manifest,
    }
    files = {target: _render(template, values) for template, target in layout.templates.items()}
    from .manifest import parse_manifest
    from .schema import manifest_schema_json

    # A ManifestError here is a bug of the templates.
    parse_manifest(files[layout.manifest], layout.manifest)
    files[layout.schema] = manifest_schema_json(fmt=layout.fmt) + "\n"
    return files


def init_job(directory: Path, name: str | None = None,
             facts: Callable[[Path], GitFacts | None] = git_facts, fmt: Format = FATMAN) -> Scaffold:
    """Write a new job into ``directory`` (created when missing), with a manifest of format ``fmt``;
    UsageError when it already has a job (either manifest, or the entrypoint init would write)."""
    layout = LAYOUTS[fmt]
    name = name or default_name(directory)
    _check_name(name)
    # Either manifest: a folder with both is an error for every command.
    for defining in (*FILE_NAMES.values(), layout.entrypoint):
        if (directory / defining).exists():
            raise UsageError(
                f"{directory / defining} already exists: init writes new jobs only, and nothing was written",
                hint="run init in a new folder (racetrack-build init DIR), or edit the existing job",
            )
    git = facts(directory)
    notes: list[str] = []
    if git is None:
        remote = PLACEHOLDER_REMOTE.format(name=name)
        remote_note = "a placeholder: put your repository's URL here"
        notes.append(f"not in a git repository: git.remote is a placeholder ({remote}); `git init` "
                     "there lets `build --local` build the working tree, and set git.remote to the "
                     "repository's URL once it has one")
    elif git.remote:
        remote = without_credentials(git.remote)
        remote_note = None
        if remote != git.remote:
            notes.append("git.remote: the credentials in the working tree's remote URL were left out")
    else:
        # No remote yet: the working tree itself, as a local path from the manifest's folder; a
        # clone of it builds what is committed, and `build --local` what is there.
        remote = Path(os.path.relpath(git.toplevel, directory.resolve())).as_posix()
        remote_note = "this working tree (it has no remote yet): put the repository's URL here"
        if fmt != JOB:  # a job.yaml takes https:// only: a placeholder below, with its own note
            notes.append("the working tree has no remote: git.remote points at it; set its URL once it "
                         "has one")
    if fmt == JOB and not remote.startswith("https://"):
        # Racetrack 2.x clones https:// remotes only (a job.yaml's git.remote is refused otherwise).
        https = https_form(remote)
        if https is not None:
            notes.append(f"git.remote: the working tree's remote {remote} is written as {https}, since "
                         "Racetrack 2.x clones https:// remotes only: check that it is the repository's "
                         "https URL")
            remote, remote_note = https, "the working tree's ssh remote as https: check it"
        else:
            placeholder = PLACEHOLDER_REMOTE.format(name=name)
            if git is not None:
                where = (f"the working tree's remote is {remote}" if git.remote
                         else "the working tree has no remote")
                notes.append(f"git.remote is a placeholder ({placeholder}): Racetrack 2.x clones https:// "
                             f"remotes only, and {where}; `build --local` builds the working tree meanwhile")
            remote, remote_note = placeholder, "a placeholder: put your repository's https:// URL here"
    files = render_files(
        name,
        owner_email=_owner_email(git.toplevel if git else None, directory),
        remote=remote,
        remote_note=remote_note,
        branch=git.branch if git else None,
        directory=git.directory if git else ".",
        layout=layout,
    )
    written: list[str] = []
    kept: list[str] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            path = directory / rel
            try:
                with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite, even in a race
                    f.write(text)
            except FileExistsError:
                kept.append(rel)
                continue
            written.append(rel)
        ignored = _extend_gitignore(directory / GITIGNORE)
    except OSError as exc:
        raise disk_error(exc, "writing the new job", directory) from exc
    for rel in kept:
        reporting.warn(f"{directory / rel} already exists: kept as it is")
    return Scaffold(directory=directory, name=name, written=tuple(written), kept=tuple(kept),
                    ignored=ignored, git=git, remote=remote, notes=tuple(notes), manifest=layout.manifest)


def _extend_gitignore(path: Path) -> tuple[str, ...]:
    """Append the lines .gitignore lacks (an existing file is extended, never rewritten)."""
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    have = {line.strip().lstrip("/") for line in existing}
    missing = [line for line in GITIGNORE_LINES if line not in have and line.rstrip("/") not in have]
    if not missing:
        return ()
    lead = ""
    if existing:
        text = path.read_text(encoding="utf-8")
        lead = "" if text.endswith("\n") else "\n"
    header = "# secret env files stay on this machine (racetrack-build init)\n"
    block = lead + header + "\n".join(missing) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(block)
    return tuple(missing)
