"""Install a job's requirements: run by racetrack-build inside the job's install container.

The container runs the job's own image as it stands before its packages (base image + apt layer),
as root, with the build tools mounted at /opt/racetrack-tools. racetrack-build hands in, under
/tmp/racetrack-install:

    plan.json      what to install (see ``Plan``), no secret in it
    secrets.json   the secret build env: read and deleted first, so it is gone before the commit
    job/           the requirements files (or the whole job when they install local paths)
    ca-bundle.pem  extra CA certificates to trust, when --ca-cert was given

It installs into the job's package folders with uv (pip when the build env asks for what uv cannot
do, see ``installer_for``), checks the result against the wrapper's own packages, and removes the
whole of /tmp/racetrack-install. The container is then committed: everything this script wrote
and deleted again (secrets, the expanded requirements, the download cache) never reaches a layer,
because a file created and deleted in one container layer leaves nothing behind.

When the install fails, the last line of output is ``DIAGNOSIS_MARKER`` followed by a JSON object
(requirement, where, cause, fix, ...) that racetrack-build shows before the installer's own lines.

Runs on the job's Python (3.9 and newer) with the standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WORK = Path("/tmp/racetrack-install")
# The tools are beside this script, wherever they are mounted.
TOOLS = Path(__file__).resolve().parent
DIAGNOSIS_MARKER = "::racetrack-diagnosis::"
# The index a requirements file names, for the diagnosis (set in the installer's env).
_FILE_INDEX = "RACETRACK_FILE_INDEX_URL"

# pip's own rule for variables in requirements files: ${NAME} with upper-case letters, digits and
# underscores ("Using Environment Variables" in pip's requirements file format). uv expands them only
# inside URLs, so the files are expanded here, the way pip reads them, before uv sees them.
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")

# pip settings from the build env that uv takes under its own names. Anything else named PIP_* makes
# the install use pip (see installer_for), so no setting is silently ignored.
_UV_SETTINGS = {
    "PIP_INDEX_URL": "UV_DEFAULT_INDEX",
    "PIP_EXTRA_INDEX_URL": "UV_INDEX",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
    "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
}
# PIP_* settings that change nothing an install into an image needs.
_HARMLESS_PIP_SETTINGS = {
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_ROOT_USER_ACTION",
    "PIP_CERT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_NO_WARN_SCRIPT_LOCATION",
    "PIP_PROGRESS_BAR",
    "PIP_NO_INPUT",
}

# Why a source build failed, read from the build's output, and the Debian packages that fix it.
_MISSING_BUILD_NEEDS: list[tuple[re.Pattern, list[str], str]] = [
    (
        re.compile(r"pg_config executable not found|pg_config is required"),
        ["libpq-dev", "gcc"],
        "PostgreSQL's client library and headers",
    ),
    (
        re.compile(r"mysql_config: not found|mysql_config not found"),
        ["default-libmysqlclient-dev", "pkg-config", "gcc"],
        "MySQL's client library",
    ),
    (
        re.compile(r"krb5-config: not found|krb5-config.*not found"),
        ["libkrb5-dev", "gcc"],
        "Kerberos headers",
    ),
    (re.compile(r"ffi\.h: No such file"), ["libffi-dev", "gcc"], "libffi headers"),
    (re.compile(r"openssl/\w+\.h: No such file"), ["libssl-dev", "gcc"], "OpenSSL headers"),
    (
        re.compile(r"libxml/\w+\.h: No such file|xml2-config"),
        ["libxml2-dev", "libxslt1-dev", "gcc"],
        "libxml2 headers",
    ),
    (
        re.compile(r"(lber|ldap)\.h: No such file"),
        ["libldap2-dev", "libsasl2-dev", "gcc"],
        "OpenLDAP headers",
    ),
    (
        re.compile(r"jpeglib\.h: No such file|zlib\.h: No such file"),
        ["libjpeg-dev", "zlib1g-dev", "gcc"],
        "image library headers",
    ),
    (re.compile(r"gfortran|Fortran compiler"), ["gfortran"], "a Fortran compiler"),
    (
        re.compile(r"\bg\+\+\b.*(not found|No such file)|command 'g\+\+' failed|c\+\+: not found"),
        ["g++"],
        "a C++ compiler",
    ),
    (
        re.compile(
            r"command 'x86_64-linux-gnu-gcc' failed|command '(gcc|cc)' failed|"
            r"\b(gcc|cc): (not found|No such file)|error: command 'gcc'|"
            r"unable to execute '(gcc|cc)'|C compiler cannot create|No working C compiler|"
            r"Unknown compiler\(s\)"
        ),
        ["gcc"],
        "a C compiler",
    ),
    (re.compile(r"cmake: not found|CMake must be installed|Could not find CMake"), ["cmake"], "CMake"),
    (re.compile(r"pkg-config: not found|Did not find pkg-config"), ["pkg-config"], "pkg-config"),
]
# uv's words for a project the index does not list (or lists only to those it lets in).
_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")
_NEEDS_RUST = re.compile(r"can't find Rust compiler|cargo: not found|rustc: not found|Rust toolchain")


class Plan:
    """What racetrack-build asks for (plan.json)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.requirements: str = data["requirements"]  # the top file, relative to job/
        self.files: list[str] = list(data["files"])  # every file it includes, relative to job/
        self.build_env: dict[str, str] = dict(data.get("build_env") or {})
        self.wrapper_python: str = data["wrapper_python"]
        self.site_packages: str = data["site_packages"]
        self.bin: str = data["bin"]
        self.python_version: str = data["python_version"]
        self.check_requirements: bool = bool(data.get("check_requirements", True))
        # How the manifest names the job's Python, for the fixes that suggest another one.
        self.python_version_field: str = data.get("python_version_field") or "python.python_version"
        # The wrapper's server check (fatman-wrapper check-server) and the user it runs as.
        self.server_check: list[str] = list(data.get("server_check") or [])
        self.user: tuple[int, int] | None = tuple(data["user"]) if data.get("user") else None  # type: ignore[assignment]


def take_secrets(path: Path) -> dict[str, str]:
    """The secret build env, and the file gone before anything else runs (a BuildKit secret is
    read-only and never in a layer: it stays). JSON from racetrack-build, or the secret build env
    file itself (KEY=VALUE lines) as a BuildKit secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    finally:
        try:
            path.unlink()
        except OSError:
            pass
    try:
        values = json.loads(text)
    except ValueError:
        values = parse_env_file(text)
    return {str(k): str(v) for k, v in values.items()}


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as dotenv files write them: ``export``, quotes and comments allowed."""
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if raw.strip().split("=", 1)[1].strip().startswith('"'):
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[name.strip()] = value
    return values


def expand_variables(text: str, env: dict[str, str]) -> str:
    """``${NAME}`` replaced as pip does: a name that is not set stays as it is written."""
    return _ENV_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def installer_for(build_env: dict[str, str]) -> tuple[str, str | None]:
    """``("uv", None)``, or ``("pip", why)`` when the build env sets what uv has no equivalent for.

    ``RACETRACK_INSTALLER=pip`` in build_env asks for pip outright."""
    if build_env.get("RACETRACK_INSTALLER", "").lower() == "pip":
        return "pip", "build_env sets RACETRACK_INSTALLER=pip"
    unknown = sorted(
        name
        for name in build_env
        if name.startswith("PIP_")
        and name not in _UV_SETTINGS
        and name not in _HARMLESS_PIP_SETTINGS
        and name != "PIP_NO_INDEX"
    )
    if unknown:
        return "pip", f"build_env sets {', '.join(unknown)}, which uv has no equivalent for"
    return "uv", None


_INDEX_URL_OPTION = re.compile(r"^\s*(?:-i|--index-url)[\s=]+(\S+)", re.M)


def file_index_url(texts: Iterable[str]) -> str | None:
    """The ``--index-url`` a requirements file sets, if any (the last one, as pip takes it)."""
    found = None
    for text in texts:
        for match in _INDEX_URL_OPTION.finditer(text):
            found = match.group(1)
    return found


def installer_env(
    base: dict[str, str],
    build_env: dict[str, str],
    secrets: dict[str, str],
    ca_bundle: Path | None,
    file_index: str | None = None,
) -> dict[str, str]:
    """The environment of the installer: the image's, the build env, then the secrets (which win,
    as the spec says), uv's names for pip's settings, and the CA bundle for every client.

    With pip, a requirements file's ``--index-url`` wins over PIP_INDEX_URL; uv lets its
    environment win over the file, so PIP_INDEX_URL is not handed on when a file sets one."""
    env = dict(base)
    env.update(build_env)
    env.update(secrets)
    for pip_name, uv_name in _UV_SETTINGS.items():
        if pip_name == "PIP_INDEX_URL" and file_index:
            continue
        if pip_name in env and uv_name not in env:
            value = env[pip_name]
            if pip_name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"):
                value = " ".join(value.split())
            env[uv_name] = value
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    bundle = str(ca_bundle) if ca_bundle else (system_bundle if os.path.exists(system_bundle) else None)
    if bundle:
        for name in ("SSL_CERT_FILE", "PIP_CERT", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE"):
            env.setdefault(name, bundle)
    if file_index:
        env[_FILE_INDEX] = file_index
    env["PATH"] = f"{TOOLS}/bin:" + env.get("PATH", "/usr/bin:/bin")
    env["UV_CACHE_DIR"] = str(WORK / "cache")
    env["UV_NO_PROGRESS"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["PIP_NO_CACHE_DIR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_ROOT_USER_ACTION"] = "ignore"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def wrapper_packages(python: str) -> dict[str, str]:
    """``{normalised name: version}`` of what the wrapper's venv holds."""
    code = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = subprocess.run([python, "-I", "-c", code], check=True, capture_output=True, text=True).stdout
    return {normalise(name): version for name, version in json.loads(out).items() if name}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def install_command(
    installer: str, plan: Plan, requirements: Path, constraints: Path | None, no_index: bool = False
) -> list[str]:
    """uv's command, or pip's. PIP_NO_INDEX becomes uv's --no-index: uv has no variable for it."""
    if installer == "uv":
        command = [
            str(TOOLS / "bin" / "uv"),
            "pip",
            "install",
            "--python",
            plan.wrapper_python,
            "--target",
            plan.site_packages,
            # No --compile-bytecode: compile_packages below compiles what a service imports.
            "-r",
            str(requirements),
        ]
    else:
        command = [
            plan.wrapper_python,
            "-m",
            "pip",
            "install",
            "--no-warn-script-location",
            "--prefix",
            str(WORK / "prefix"),
            "-r",
            str(requirements),
        ]
    if constraints is not None:
        command += ["-c", str(constraints)]
    if no_index and installer == "uv":
        command.append("--no-index")
    return command


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    """Run ``command``, its output passed on line by line; returns the exit code and the lines."""
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    return finish(proc)


def start_server_check(plan: Plan) -> subprocess.Popen[str] | None:
    """Start the wrapper's server check as the job's user, in the image's environment: the job's
    packages come first on sys.path and can shadow the wrapper's own (Flask pinned beside a Werkzeug
    too new for it), which ``pip check`` does not see. Here rather than a build step of its own, which
    would start and commit one more container per install."""
    if not plan.server_check:
        return None
    user: dict[str, Any] = {}
    if plan.user is not None and os.geteuid() == 0:
        user = {"user": plan.user[0], "group": plan.user[1], "extra_groups": []}
    return subprocess.Popen(
        plan.server_check,
        env=dict(os.environ),
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        **user,  # type: ignore[call-overload]
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[str]]:
    """Wait for ``proc`` (started with its output on a pipe), its output passed on line by line as
    it comes; returns the exit code and the lines."""
    lines: list[str] = []
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            print(line, flush=True)
    return proc.wait(), lines


def server_failure(lines: list[str]) -> dict[str, Any]:
    """The diagnosis of a failed server check: the exception its traceback ends with."""
    errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    cause = None
    if errors:
        before = [line for line in lines[: errors[-1]] if line and not line.startswith(" ")]
        cause = before[-1] if before and not before[-1].startswith("Traceback") else lines[errors[-1]][7:]
    return {
        "kind": "server",
        "headline": "the wrapper's server cannot be imported beside the job's packages",
        "cause": cause or "the server check failed",
        "fix": "a requirement pins Flask, Werkzeug or another of the wrapper's packages at a version "
        "that does not work with the rest; pin a matching set (e.g. Flask 2.0.x with Werkzeug 2.0.x)",
        "requirement": None,
        "where": None,
    }


# Folders of test suites inside installed packages (numpy/tests, pandas/tests/...): a service never
# imports them, and they are more than half of the files of numpy + pandas + scikit-learn.
TEST_DIRS = frozenset({"tests", "test"})
_COMPILER = (
    "import py_compile, sys\n"
    "for path in sys.stdin.read().split('\\0'):\n"
    "    if path:\n"
    "        py_compile.compile(path, quiet=2)\n"
)


def modules_to_compile(site_packages: Path) -> list[str]:
    """The ``.py`` files under ``site_packages`` outside test-suite folders, sorted."""
    found = []
    for path in site_packages.rglob("*.py"):
        if not TEST_DIRS.intersection(path.relative_to(site_packages).parts[:-1]):
            found.append(str(path))
    return sorted(found)


def compile_packages(python: str, site_packages: Path, workers: int | None = None) -> int:
    """Write the bytecode of the installed modules, test suites left out, with ``workers`` processes
    of the job's Python (default: the CPUs); returns how many files were given to compile.

    Instead of uv's --compile-bytecode, which compiles every file, test suites included: at run time
    the job's user cannot write __pycache__ in the package folders, so what is not compiled here is
    compiled again in memory at each import; a test suite is never imported. A file that does not
    compile (Python 2 leftovers some packages ship) is skipped, as compileall skips it."""
    files = modules_to_compile(site_packages)
    count = max(1, min(workers or os.cpu_count() or 1, len(files) or 1))
    chunks = [files[i::count] for i in range(count)]
    procs = [subprocess.Popen([python, "-c", _COMPILER], stdin=subprocess.PIPE, text=True) for _ in chunks]
    for proc, chunk in zip(procs, chunks):
        assert proc.stdin is not None
        proc.stdin.write("\0".join(chunk))
        proc.stdin.close()
    for proc in procs:
        proc.wait()
    return len(files)


def drop_wrapper_copies(site_packages: Path, wrapper: dict[str, str]) -> list[str]:
    """Remove the distributions in ``site_packages`` that the wrapper's venv already has at the same
    version: uv installs a whole resolution into --target, and a second copy of Flask is only
    weight. Returns what was removed. Runs before the scripts are moved out of ``bin``."""
    removed = []
    root = site_packages.resolve()
    for info in sorted(site_packages.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if wrapper.get(normalise(name)) != version:
            continue
        tops = set()
        record = info / "RECORD"
        if record.is_file():
            for row in record.read_text(encoding="utf-8", errors="replace").splitlines():
                rel = row.split(",", 1)[0]
                target = (site_packages / rel).resolve()
                if root in target.parents:
                    tops.add(target.relative_to(root).parts[0])
                    if target.is_file() or target.is_symlink():
                        target.unlink()
        shutil.rmtree(info, ignore_errors=True)
        # Left behind: the bytecode uv compiled, which RECORD does not list.
        for top in tops - {"bin"}:
            folder = root / top
            if folder.is_dir() and not any(p.is_file() and p.suffix != ".pyc" for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"{name}=={version}")
    _remove_empty_folders(site_packages)
    return removed


def _remove_empty_folders(root: Path) -> None:
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        if not any(folder.iterdir()):
            folder.rmdir()


def move_prefix(prefix: Path, site_packages: Path, bin_dir: Path) -> None:
    """pip's --prefix layout into the job's folders."""
    for found in prefix.glob("lib*/python*/*-packages"):
        _merge(found, site_packages)
    if (prefix / "bin").is_dir():
        _merge(prefix / "bin", bin_dir)


def _merge(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dest / entry.name
        if target.is_dir() and entry.is_dir():
            _merge(entry, target)
        else:
            os.replace(str(entry), str(target))


# -- diagnosis ----------------------------------------------------------------------------------------
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def requirement_lines(job: Path, top: str) -> dict[str, tuple[str, str, int]]:
    """``{normalised name: (the requirement as written, file, line)}`` through -r/-c includes,
    read from the files as the user wrote them (before variables are expanded)."""
    found: dict[str, tuple[str, str, int]] = {}
    seen = set()

    def visit(rel: str) -> None:
        if rel in seen:
            return
        seen.add(rel)
        path = job / rel
        if not path.is_file():
            return
        number = 0
        for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            line = re.sub(r"(^|\s+)#.*$", "", raw).strip().rstrip("\\").strip()
            if not line:
                continue
            include = re.match(r"^(-r|--requirement|-c|--constraint)[\s=]*(\S+)", line)
            if include:
                visit(os.path.normpath(os.path.join(os.path.dirname(rel), include.group(2))))
                continue
            egg = re.search(r"#egg=([A-Za-z0-9._-]+)", raw)
            if egg:
                found.setdefault(normalise(egg.group(1)), (raw.strip(), rel, number))
                continue
            if line.startswith("-"):
                continue
            named = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@", line)  # name @ url
            if named:
                found.setdefault(normalise(named.group(1)), (line, rel, number))
                continue
            m = _REQ_NAME.match(line.split(";")[0])
            if m and "://" not in line:
                found.setdefault(normalise(m.group(1)), (line.split(" --hash")[0].strip(), rel, number))

    visit(top)
    return found


def _index_url(env: dict[str, str]) -> str:
    return (
        env.get(_FILE_INDEX)
        or env.get("UV_DEFAULT_INDEX")
        or env.get("PIP_INDEX_URL")
        or "https://pypi.org/simple"
    )


def _mask(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def wheel_pythons(name: str, version: str, env: dict[str, str]) -> list[str] | None:
    """The CPython versions the index has wheels of ``name==version`` for, or None when it cannot
    tell (index unreachable, no such page)."""
    page = _fetch(f"{_index_url(env).rstrip('/')}/{normalise(name)}/", env)
    if page is None:
        return None
    wanted = re.escape(normalise(name).replace("-", "_"))
    tags = set()
    for file in re.findall(r">([^<>]+\.whl)<", page):
        m = re.match(rf"(?i){wanted}-{re.escape(version)}-(?:\d[^-]*-)?([^-]+)-([^-]+)-[^-]+\.whl$", file)
        if not m:
            continue
        for tag in m.group(1).split("."):
            t = re.match(r"cp3(\d+)$", tag)
            if t:
                tags.add(int(t.group(1)))
            elif tag in ("py3", "py2.py3"):
                return ["any"]
    return [f"3.{minor}" for minor in sorted(tags)]


def diagnose(
    lines: list[str], plan: Plan, env: dict[str, str], wrapper: dict[str, str], secret_names: Iterable[str]
) -> dict[str, Any]:
    """What went wrong, from the installer's output: requirement, where, cause, fix."""
    text = "\n".join(lines)
    known = requirement_lines(WORK / "job", plan.requirements)
    secrets = sorted(secret_names)
    result: dict[str, Any] = {"cause": None, "fix": None, "requirement": None, "where": None}

    def about(name: str | None, spec: str | None = None) -> None:
        if not name:
            return
        entry = known.get(normalise(name))
        if entry:
            result["requirement"], rel, number = entry
            result["where"] = f"{rel}:{number}"
        else:
            result["requirement"] = spec or name

    # An index or git server refusing us, or not reachable at all.
    if re.search(
        r"\b401\b|\b403\b|Unauthorized|Forbidden|Authentication failed|could not read Username"
        r"|Missing credentials",
        text,
        re.I,
    ):
        # The installers quote URLs in backticks or parentheses: neither belongs to the URL.
        url = re.search(r"https?://[^\s()`'\"]+", text)
        result["cause"] = "the package index or git server refused the credentials" + (
            f" at {_mask(url.group(0).rstrip(':,.'))}" if url else ""
        )
        result["fix"] = (
            "check the values of " + ", ".join(secrets) + " in secret_build_env_file"
            if secrets
            else "give the credentials in secret_build_env_file"
        ) + " and how the requirements file uses them, as ${NAME}"
        result["kind"] = "auth"
        # The project whose page was refused (pip, uv fetching it) or not found for want of access.
        asked = re.search(r"/simple/([A-Za-z0-9._-]+)/", text) or _NOT_FOUND.search(text)
        about(asked.group(1) if asked else None)
        return result
    if re.search(
        r"dns error|Name or service not known|Temporary failure in name resolution|"
        r"Connection refused|Network is unreachable|failed to lookup address|"
        r"Could not resolve host|connection (?:error|timed out)|operation timed out",
        text,
        re.I,
    ):
        result["cause"] = f"the package index could not be reached ({_mask(_index_url(env))})"
        result["fix"] = (
            "check the index URL and the network the build uses (--network host reaches "
            "a server on the build host)"
            + (f"; the secret variables in play are {', '.join(secrets)}" if secrets else "")
        )
        result["kind"] = "network"
        return result
    if re.search(
        r"certificate verify failed|invalid peer certificate|UnknownIssuer|CERTIFICATE_VERIFY_FAILED",
        text,
        re.I,
    ):
        result["cause"] = "the package index's TLS certificate is not trusted in the build"
        result["fix"] = "pass the CA bundle that signs it with --ca-cert FILE"
        result["kind"] = "tls"
        return result

    # A version or package that does not exist.
    missing = _NOT_FOUND.search(text) or re.search(
        r"Could not find a version that satisfies the requirement ([A-Za-z0-9._-]+)\S* "
        r"\(from versions: none\)",
        text,
    )
    if missing:
        name = missing.group(1)
        about(name)
        result["cause"] = f"{name} is not on the package index ({_mask(_index_url(env))})"
        result["fix"] = "check the name on the index" + _did_you_mean(name, env)
        result["kind"] = "not-found"
        return result
    versions = (
        re.search(r"Because there is no version of (\S+?)(==|>=|<=|~=|>|<)(\S+?) and", text)
        or re.search(r"Because (\S+?)(==)(\S+?) (?:has no wheels|has no usable wheels)", text)
        or re.search(
            r"satisfies the requirement ([A-Za-z0-9._-]+)(==|>=|<=|~=|>|<)(\S+) \(from versions", text
        )
    )
    if versions:
        name, op, version = versions.group(1), versions.group(2), versions.group(3)
        about(name, f"{name}{op}{version}")
        if "wheels" in versions.group(0) or re.search(r"no wheels with a matching", text):
            _no_wheel(result, name, version, plan, env)
            return result
        result["cause"] = f"the index has no {name} {op}{version}"
        # The project is there (uv says "not found" otherwise): its versions, not a near name.
        near = versions_near(version, project_versions(name, env))
        real = _real_name(name)
        result["fix"] = (
            f"choose a version the index has: {name} {near}" if near
            else f"choose a version the index has (`pip index versions {name}`)"
        ) + (f" (did you mean '{real}'?)" if real else "")
        result["kind"] = "no-version"
        return result
    if re.search(r"has no wheels with a matching (Python|platform)|no wheels with a matching", text):
        m = re.search(r"(\S+?)==(\S+?) has no wheels", text)
        if m:
            about(m.group(1), m.group(0))
            _no_wheel(result, m.group(1), m.group(2), plan, env)
            return result

    # A version conflict, with the wrapper's own packages named as such.
    conflict = re.search(r"Because (.+?unsatisfiable)", text, re.S) or re.search(
        r"(\S+ \S+ has requirement .*, but you have .*)", text
    )
    pip_check = re.findall(
        r"^(\S+) (\S+) (?:has requirement|requires) (.+?), but you have (\S+) (\S+)", text, re.M
    )
    if pip_check:
        owner, owner_version, needed, name, have = pip_check[0]
        have = have.rstrip(".")  # pip ends its sentence after the version
        mine = normalise(owner) in wrapper and normalise(name) not in known
        about(name if normalise(name) in known else owner)
        who = (
            "the wrapper's own"
            if normalise(owner) in wrapper and normalise(owner) not in known
            else "the job's"
        )
        result["cause"] = (
            f"{owner} {owner_version} ({who}) needs {needed.strip()}, "
            f"but the job's requirements give {name} {have}"
        )
        result["fix"] = (
            f"pin {name} to a version {owner} accepts, or drop the pin and let it be chosen"
            if not mine
            else f"pin {owner} to a version that accepts {name} {have}"
        )
        result["kind"] = "conflict"
        return result
    if conflict:
        # uv's explanation, one line, without its environment markers (numpy{python_version < '3.12'}).
        clause = re.sub(r"\{[^{}]*\}", "", " ".join(conflict.group(1).split()))
        clause = re.sub(r",? we can conclude that your requirements are unsatisfiable$", "", clause)
        clause = _conflict_sentence(clause) or clause
        names = [n for n in re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==|>=|<=|!=|~=|<|>)", clause)]
        ours = [n for n in names if normalise(n) in wrapper and normalise(n) not in known]
        job_names = [n for n in names if normalise(n) in known]
        about(job_names[0] if job_names else (names[0] if names else None))
        if ours:
            result["cause"] = (
                f"a version conflict with the wrapper's own packages: {clause}; "
                f"{', '.join(sorted(set(ours)))} {'is' if len(set(ours)) == 1 else 'are'} the wrapper's own "
                f"({', '.join(f'{n}=={wrapper[normalise(n)]}' for n in sorted(set(ours)))})"
            )
        else:
            result["cause"] = f"the requirements conflict: {clause}"
        pins = [known[k] for k in dict.fromkeys(normalise(n) for n in job_names)]
        if len(pins) > 1:
            result["cause"] += "; the pins involved: " + ", ".join(
                f"{spec} ({rel}:{line})" for spec, rel, line in pins
            )
        result["fix"] = "relax one of the pins so that both can be met"
        result["kind"] = "conflict"
        return result

    # A source build that needs a compiler, a library or tools.
    if re.search(
        r"Failed to build|Building wheel for .* did not run successfully|"
        r"error: subprocess-exited-with-error|Failed to prepare distributions",
        text,
    ):
        m = (
            re.search(r"Failed to build `([^`]+)`", text)
            or re.search(r"Building wheel for (\S+)", text)
            or re.search(r"Failed to build (\S+)", text)
        )
        if m:
            spec = m.group(1)
            name = re.split(r"[=<>!~ @]", spec, maxsplit=1)[0]
            about(name, spec)
        # First: a pinned release with wheels for other Pythons only. Its source build failing is a
        # consequence (an old numpy on a new Python), and a compiler would not be the way out.
        if result["requirement"]:
            pinned = re.match(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", str(result["requirement"]))
            if pinned:
                wheels = wheel_pythons(pinned.group(1), pinned.group(2), env)
                if wheels and "any" not in wheels and plan.python_version not in wheels:
                    _no_wheel(result, pinned.group(1), pinned.group(2), plan, env, wheels, built=True)
                    return result
        for pattern, packages, what in _MISSING_BUILD_NEEDS:
            if pattern.search(text):
                result["cause"] = f"building it from source needs {what}, which the image does not have"
                result["fix"] = f"add {', '.join(packages)} to system_dependencies"
                result["packages"] = packages
                result["kind"] = "source-build"
                return result
        if _NEEDS_RUST.search(text):
            result["cause"] = "building it from source needs a Rust toolchain"
            result["fix"] = (
                f"pin a version with a wheel for this Python, or choose another {plan.python_version_field}"
            )
            result["kind"] = "source-build"
            return result
        result["cause"] = "its build from source failed (the installer's lines say why)"
        result["fix"] = (
            "add the build's system packages to system_dependencies, or pin a version "
            "with a wheel for this Python"
        )
        result["kind"] = "source-build"
        return result
    return result


def _conflict_sentence(clause: str) -> str | None:
    """uv's chain of "Because X depends on Y and you require Z, we can conclude ..." as one
    sentence: ``X needs Y, but the requirements ask for Z``; None when it reads otherwise."""
    end = r"(?=,\s|\s+and\b|\.\s|\.?$)"  # a comma within a spec (>=1,<2) has no space after it
    needs = list(dict.fromkeys(re.findall(rf"(\S+?) depends on (\S+?){end}", clause)))
    asked = [spec for spec in dict.fromkeys(re.findall(rf"you require (\S+?){end}", clause))
             if spec not in {source for source, _ in needs} and spec not in {dep for _, dep in needs}]
    if not needs or not asked:
        return None
    return (", ".join(f"{source} needs {dep}" for source, dep in needs)
            + ", but the requirements ask for " + ", ".join(asked))


def project_versions(name: str, env: dict[str, str]) -> list[str]:
    """The final releases of ``name`` the index's project page lists files of, oldest first."""
    page = _fetch(f"{_index_url(env).rstrip('/')}/{normalise(name)}/", env)
    if page is None:
        return []
    stem = re.escape(normalise(name)).replace("\\-", "[-_.]")
    found = set(re.findall(rf"(?i)>{stem}-(\d+(?:\.\d+)*)(?:-[^<>]*\.whl|\.tar\.gz|\.zip)<", page))
    return sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))


def versions_near(wanted: str, versions: list[str]) -> str:
    """``1.26.4, 2.0.0 (around 1.99.0) ... 2.3.5 (the newest)`` from ``versions`` (oldest first)."""
    if not versions:
        return ""
    key = tuple(int(part) for part in re.findall(r"\d+", wanted))
    at = sum(1 for v in versions if tuple(int(p) for p in v.split(".")) < key)
    around = versions[max(0, at - 2):at + 2]
    text = ", ".join(around) + (f" (around {wanted})" if key else "")
    if versions[-1] not in around:
        text += f", {versions[-1]} (the newest)"
    return text


def _no_wheel(
    result: dict[str, Any],
    name: str,
    version: str,
    plan: Plan,
    env: dict[str, str],
    wheels: list[str] | None = None,
    built: bool = False,
) -> None:
    wheels = wheels if wheels is not None else wheel_pythons(name, version, env)
    have = f" (it has wheels for Python {', '.join(wheels)})" if wheels else ""
    cause = f"{name} {version} has no wheel for Python {plan.python_version}{have}" + (
        " and its build from source failed" if built else ""
    )
    # An old stack is pinned as a whole: say which other pins lack wheels too, so that a newer
    # pin of this one alone is not taken for the fix.
    others = _pins_without_wheels(plan, env, skip=name)
    if others:
        pins = ", ".join(f"{n}=={v}" for n, v, _ in others)
        cause += f"; {pins} {'has' if len(others) == 1 else 'have'} none either"
    result["cause"] = cause
    pythons = set(wheels or [])
    for _, _, other in others:
        pythons &= set(other)
    options = []
    if pythons:
        best = max(pythons, key=lambda v: tuple(int(x) for x in v.split(".")))
        options.append(f"set {plan.python_version_field} to {best!r}")
    else:
        options.append(f"choose another {plan.python_version_field}")
    pinned = " and ".join([name] + [n for n, _, _ in others][:3])
    options.append(f"pin newer releases of {pinned} that have wheels for Python {plan.python_version}")
    result["fix"] = " or ".join(options)
    result["wheel_pythons"] = wheels
    result["also_without_wheels"] = [f"{n}=={v}" for n, v, _ in others]
    result["kind"] = "no-distribution"


def _pins_without_wheels(
    plan: Plan, env: dict[str, str], skip: str, limit: int = 20
) -> list[tuple[str, str, list[str]]]:
    """``(name, version, pythons)`` of the other ``name==version`` pins whose wheels on the index
    leave out this Python (pure-Python wheels and unknown pages are left out)."""
    found = []
    for spec, _rel, _line in list(requirement_lines(WORK / "job", plan.requirements).values())[:limit]:
        m = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!-]+)\s*(?:;|$)", spec)
        if not m or normalise(m.group(1)) == normalise(skip):
            continue
        pythons = wheel_pythons(m.group(1), m.group(2), env)
        if pythons and pythons != ["any"] and plan.python_version not in pythons:
            found.append((m.group(1), m.group(2), pythons))
    return found


# Projects a misspelt requirement most often means. PyPI lists every project on one page of hundreds
# of MB, so against it (and any index that does not list its projects) the near names are asked
# for one by one: a name from here, or one a letter off, that the index has.
_WELL_KNOWN = (
    "aiohttp", "alembic", "anyio", "attrs", "boto3", "botocore", "celery", "click", "cryptography",
    "dask", "django", "fastapi", "flask", "gunicorn", "h5py", "httpx", "jinja2", "joblib", "keras",
    "lightgbm", "lxml", "matplotlib", "networkx", "nltk", "numba", "numpy", "openpyxl", "pandas",
    "pillow", "plotly", "polars", "protobuf", "psycopg2", "psycopg2-binary", "pyarrow", "pydantic",
    "pymongo", "pytest", "pytz", "pyyaml", "redis", "requests", "scikit-learn", "scipy", "seaborn",
    "sqlalchemy", "statsmodels", "sympy", "tensorflow", "torch", "tqdm", "transformers", "urllib3",
    "xgboost",
)
_MAX_PROBES = 24
# Names people install by their module's or an old name, some of them placeholders on PyPI whose
# every release fails (sklearn): the project they mean.
_REAL_NAMES = {
    "scikit-learn": ["sklearn", "scikitlearn", "scikit_learn"],
    "beautifulsoup4": ["beautifulsoup", "bs4"],
    "pyyaml": ["yaml"],
    "opencv-python": ["opencv", "cv2"],
    "pillow": ["pil"],
    "python-dateutil": ["dateutil"],
    "scikit-image": ["skimage"],
    "psycopg2-binary": ["psycopg"],
}


def _real_name(wanted: str) -> str | None:
    return next((real for real, aliases in _REAL_NAMES.items() if normalise(wanted) in aliases), None)


def _did_you_mean(name: str, env: dict[str, str]) -> str:
    """`` (did you mean 'x'?)``: a project of the index with a near name, from its list of
    projects when it gives one cheaply, else by asking it about the nearest names."""
    import difflib

    wanted = normalise(name)
    real = _real_name(wanted)
    if real:
        return f" (did you mean '{real}'?)"
    if truthy(env.get("PIP_NO_INDEX")) or truthy(env.get("UV_NO_INDEX")):
        return ""  # find-links pages only: no index to ask
    answered, listed = _index_projects(env)
    if listed is not None:
        close = difflib.get_close_matches(wanted, listed + list(_REAL_NAMES), n=1, cutoff=0.8)
        return f" (did you mean '{close[0]}'?)" if close else ""
    found = _first_listed(near_names(wanted), env) if answered else None  # unreachable: ask no more
    return f" (did you mean '{found}'?)" if found else ""


def near_names(wanted: str) -> list[str]:
    """The names ``wanted`` most likely misspells, nearest first: well-known projects close to it,
    then the names one letter off (a letter too many, two letters swapped)."""
    import difflib

    names = difflib.get_close_matches(wanted, _WELL_KNOWN, n=3, cutoff=0.8)
    names += [wanted[:i] + wanted[i + 1:] for i in range(len(wanted))]
    names += [wanted[:i] + wanted[i + 1] + wanted[i] + wanted[i + 2:] for i in range(len(wanted) - 1)]
    names = [n for n in dict.fromkeys(normalise(n) for n in names) if n and n != wanted]
    return names[:_MAX_PROBES]


def _first_listed(names: list[str], env: dict[str, str]) -> str | None:
    """The first of ``names`` the index has a project page for, asked all at once."""
    from concurrent.futures import ThreadPoolExecutor

    base = _index_url(env).rstrip("/")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: _get(f"{base}/{n}/", env, limit=0, timeout=5)[1], names))
    return next((name for name, page in zip(names, answers) if page is not None), None)


def _index_projects(env: dict[str, str], limit: int = 4_000_000) -> tuple[bool, list[str] | None]:
    """Whether the index answered, and the project names of a small one (a private index); no
    names from a big one (PyPI's lists every project: hundreds of MB) rather than a slow
    download, or from one that does not list them."""
    answered, page = _get(_index_url(env).rstrip("/") + "/", env, limit)
    if page is None:
        return answered, None
    return True, [normalise(n) for n in re.findall(r">([^<>/]+)</a>", page)]


def _fetch(url: str, env: dict[str, str], limit: int = 20_000_000) -> str | None:
    """A page of the index, with the credentials of its URL; None when it cannot be had or is over
    ``limit`` bytes."""
    return _get(url, env, limit)[1]


def _get(url: str, env: dict[str, str], limit: int, timeout: float = 10) -> tuple[bool, str | None]:
    """Whether the server answered at all (an HTTP error is an answer), and the page when it was
    had within ``limit`` bytes (``limit=0``: "" for a page that is there, unread)."""
    import base64
    import ssl

    parts = urllib.parse.urlsplit(url)
    request = urllib.request.Request(
        urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    )
    if parts.username:
        token = base64.b64encode(
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}".encode()
        ).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        context = ssl.create_default_context(cafile=env.get("SSL_CERT_FILE"))
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # noqa: S310
            if limit == 0:
                return True, ""
            length = answer.headers.get("Content-Length")
            if length and int(length) > limit:
                return True, None
            data = answer.read(limit + 1)
    except urllib.error.HTTPError:
        return True, None
    except Exception:  # noqa: BLE001 - a hint that cannot be had is left out, never an error
        return False, None
    return True, (None if len(data) > limit else data.decode("utf-8", "replace"))


# -- main -----------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Install a job's requirements (racetrack-build).")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="a folder with plan.json and job/ to copy into the work folder first",
    )
    parser.add_argument(
        "--secrets",
        type=Path,
        default=WORK / "secrets.json",
        help="the secret build env: JSON, or KEY=VALUE lines",
    )
    args = parser.parse_args(argv)
    if args.source is not None:
        shutil.copytree(str(args.source), str(WORK), dirs_exist_ok=True)
    started = time.monotonic()
    plan = Plan(json.loads((WORK / "plan.json").read_text(encoding="utf-8")))
    secrets = take_secrets(args.secrets)
    ca_bundle = WORK / "ca-bundle.pem"
    job = WORK / "job"
    originals = {
        rel: (job / rel).read_text(encoding="utf-8", errors="replace")
        for rel in plan.files
        if (job / rel).is_file()
    }
    variables = {**os.environ, **plan.build_env, **secrets}
    expanded = {rel: expand_variables(text, variables) for rel, text in originals.items()}
    env = installer_env(
        dict(os.environ),
        plan.build_env,
        secrets,
        ca_bundle if ca_bundle.is_file() else None,
        file_index_url(expanded.values()),
    )
    try:
        for rel, text in expanded.items():
            (job / rel).write_text(text, encoding="utf-8")
        wrapper = wrapper_packages(plan.wrapper_python)
        constraints = WORK / "wrapper-packages.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(wrapper.items())), encoding="utf-8")
        installer, why = installer_for(plan.build_env)
        if why:
            print(f"racetrack: installing with pip: {why}", flush=True)
        requirements = job / plan.requirements
        no_index = truthy(env.get("PIP_NO_INDEX"))
        rc, lines = run(install_command(installer, plan, requirements, constraints, no_index), env, job)
        if rc != 0 and _conflicts_with_wrapper(lines, wrapper):
            # The job pins another version of a package the wrapper has: it may shadow the
            # wrapper's own (its packages come first on sys.path), as with pip. The check below
            # and the build's server check tell whether the wrapper still works with it.
            print(
                "racetrack: the requirements pin other versions of the wrapper's packages; "
                "installing them to come first",
                flush=True,
            )
            rc, lines = run(install_command(installer, plan, requirements, None, no_index), env, job)
        for rel, text in originals.items():
            (job / rel).write_text(text, encoding="utf-8")  # the diagnosis quotes the files as written
        if rc != 0:
            _report(diagnose(lines, plan, env, wrapper, secrets))
            return 1
        site_packages = Path(plan.site_packages)
        if installer == "pip":
            move_prefix(WORK / "prefix", site_packages, Path(plan.bin))
        else:
            removed = drop_wrapper_copies(site_packages, wrapper)
            if removed:
                print(f"racetrack: kept the wrapper's own copy of {', '.join(removed)}", flush=True)
            if (site_packages / "bin").is_dir():
                _merge(site_packages / "bin", Path(plan.bin))
                shutil.rmtree(site_packages / "bin", ignore_errors=True)
            compiling = time.monotonic()
            compiled = compile_packages(plan.wrapper_python, site_packages)
            took = time.monotonic() - compiling
            print(f"racetrack: compiled {compiled} modules (test suites left out) in {took:.1f}s", flush=True)
        print(f"racetrack: installed in {time.monotonic() - started:.1f}s", flush=True)
        # The two checks at once: the server's imports beside pip's reading of the metadata.
        server = start_server_check(plan)
        failure = None
        if plan.check_requirements:
            check_env = dict(
                os.environ,
                PYTHONPATH=plan.site_packages,
                PIP_DISABLE_PIP_VERSION_CHECK="1",
                PIP_NO_CACHE_DIR="1",
            )
            rc, lines = run([plan.wrapper_python, "-m", "pip", "check"], check_env, WORK)
            if rc != 0:
                failure = diagnose(lines, plan, env, wrapper, secrets)
        else:
            print(
                "racetrack: check_requirements is off: not checking against the wrapper's packages",
                flush=True,
            )
        if server is not None:
            rc, lines = finish(server)
            if rc != 0 and failure is None:
                failure = server_failure(lines)
        if failure is not None:
            _report(failure)
            return 1
        return 0
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def _conflicts_with_wrapper(lines: list[str], wrapper: dict[str, str]) -> bool:
    text = "\n".join(lines)
    if "unsatisfiable" not in text and "No solution found" not in text:
        return False
    for name, version in wrapper.items():
        if re.search(rf"(?i)\b{re.escape(name).replace('-', '[-_.]')}=={re.escape(version)}\b", text):
            return True
    return False


def _report(diagnosis: dict[str, Any]) -> None:
    print(DIAGNOSIS_MARKER + json.dumps(diagnosis), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
