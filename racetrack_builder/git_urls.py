"""Repository locations as users write them in ``git.remote``: credentials, local paths, identity.

Credentials written into a URL (``https://user:token@host/...``) are masked wherever a location is
shown; a local path becomes a ``file://`` URL so git clones it shallowly; two spellings of one
repository (https, ssh, scp-like, a local path) compare equal through :func:`repository_key`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import RemoteUnreachable
from .secrets import manifest_folder

# Where a URL starts, in a location or in free text (git's stderr). What follows up to the first
# '/' (or whitespace, which a remote cannot hold) is the authority: [userinfo@]host[:port].
_URL_START = re.compile(r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
_AUTHORITY_END = re.compile(r"[/\\\s]")
_SECRET_SCHEMES = ("http", "https", "ftp", "ftps")


def _userinfo_spans(text: str) -> list[tuple[str, int, int]]:
    """``(scheme, start, end)`` of the userinfo of every URL in ``text``, parsed rather than matched
    against a character class: a password may hold any character but '/' and whitespace.

    The userinfo ends at the LAST '@' of the authority, as git (through curl) splits it, so a
    password with an unencoded '@' (``https://u:p@ss@host``) is masked whole. The authority ends
    at the first '/' only: '?' or '#' would end it for a parser, but one written unencoded in a
    password must not let the rest of it through; masking a little too much is the safe side.
    """
    spans = []
    for match in _URL_START.finditer(text):
        start = match.end()
        end = _AUTHORITY_END.search(text, start)
        authority = text[start:end.start() if end else len(text)]
        at = authority.rfind("@")
        if at > 0:
            spans.append((match.group("scheme").lower(), start, start + at))
    return spans


def mask_credentials(text: str) -> str:
    """Hide credentials embedded in URLs inside ``text`` (a location, or free text such as git's
    messages).

    For http(s) and ftp(s) the whole user part goes (a token is often given as the user name:
    ``https://TOKEN@host``); for other schemes (``ssh://git@host``) only a password after ``:``.
    """
    pieces, done = [], 0
    for scheme, start, end in _userinfo_spans(text):
        if start < done:
            continue  # inside the userinfo of a URL already masked
        user, sep, _ = text[start:end].partition(":")
        pieces += [text[done:start], "***" if scheme in _SECRET_SCHEMES else user + (":***" if sep else "")]
        done = end
    return "".join(pieces) + text[done:]


def url_secret(remote: str) -> str | None:
    """The password, or else the user part (often a token), of a URL with credentials."""
    spans = _userinfo_spans(remote)
    if not spans:
        return None
    scheme, start, end = spans[0]
    user, _, password = remote[start:end].partition(":")
    secret = password or (user if scheme in _SECRET_SCHEMES else "")
    return secret if len(secret) >= 4 else None


def is_local_path(remote: str) -> bool:
    """Git's own rule: a URL has ``://``; ``host:path`` (a ':' before any '/') is scp-like ssh."""
    if "://" in remote:
        return False
    colon, slash = remote.find(":"), remote.find("/")
    return colon == -1 or (slash != -1 and slash < colon)


def resolve_remote(remote: str, manifest_path: Path) -> str:
    """The URL to clone for ``git.remote``.

    https, ssh (``ssh://`` and ``user@host:path``) and ``file://`` URLs are used as they are. A local
    path (relative ones are relative to the manifest's folder) becomes a ``file://`` URL: git ignores
    ``--depth`` for a plain path (it copies or hard-links the whole object store instead), and only
    through ``file://`` does it run the real transport, so the clone is shallow as everywhere else.
    Raises :class:`RemoteUnreachable` when that local path does not exist.
    """
    if not is_local_path(remote):
        return remote
    path = Path(remote).expanduser()
    if not path.is_absolute():
        path = manifest_folder(manifest_path) / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise RemoteUnreachable(
            f"git.remote: local repository {remote!r} does not exist (searched {path})",
            hint="relative paths are relative to the manifest's folder; use a URL for a remote repository",
        )
    return path.as_uri()


def repository_key(location: str, base: Path) -> str:
    """One spelling of a repository location, to compare https, ssh, scp-like and local forms:
    ``host/path`` without credentials, port or ``.git``, or an absolute local path (relative ones
    are relative to ``base``)."""
    if is_local_path(location) or location.startswith("file://"):
        path = location.removeprefix("file://").removeprefix("localhost")
        resolved = (base / path).resolve() if not os.path.isabs(path) else Path(path).resolve()
        return str(resolved).removesuffix("/.git").removesuffix(".git")
    host, path = _host_and_path(location)
    return f"{host.lower()}/{path.removesuffix('.git')}"


def _host_and_path(url: str) -> tuple[str, str]:
    """The host (no user, no port) and the path (no surrounding '/') of a URL with ``://``, or of
    an scp-like ``[user@]host:path``."""
    if "://" in url:
        rest = url.split("://", 1)[1]
    else:  # scp-like: [user@]host:path
        rest = url.replace(":", "/", 1)
    hostport, _, path = rest.partition("/")
    return hostport.rpartition("@")[2].partition(":")[0], path.strip("/")


def https_form(remote: str) -> str | None:
    """The https:// URL of the repository an ssh remote names (``git@host:path``,
    ``ssh://git@host[:port]/path``), as GitHub, GitLab and most forges serve both; the remote itself
    when it is https already; None for a local path, ``file://`` or another scheme."""
    if remote.startswith("https://"):
        return remote
    if is_local_path(remote) or ("://" in remote and not remote.startswith("ssh://")):
        return None
    host, path = _host_and_path(remote)
    return f"https://{host}/{path}" if host and path else None
