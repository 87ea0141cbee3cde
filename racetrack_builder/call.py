"""``call``: send inputs to a running job and give back its answer.

The target is a URL (the job's root, a ``/pub/fatman/NAME/VERSION`` prefix, or a whole endpoint
URL), or a manifest whose job is being served on 127.0.0.1 by ``run`` or ``serve`` (port 7000
unless told otherwise; the job answering there must be the manifest's, by its ``/health``).

``-i NAME=VALUE`` values are typed by the job itself: its ``/api/v1/parameters`` for perform (its
``/openapi.json`` for an auxiliary endpoint) says which parameters take text, whose values are sent
as written; any other value is read as JSON when it parses (``1.5``, ``[1,2]``, ``true``) and sent as
text otherwise, so the job's own argument check (400 naming the field) has the last word. A small
urllib client: nothing here needs more than a JSON POST and a few GETs.
"""

from __future__ import annotations

import difflib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import contract, serving
from .errors import JobAnswerError, JobUnreachable, UsageError

API_PREFIX = "/api/v1"
PERFORM = API_PREFIX + "/perform"
AUTH_HEADER = "X-Racetrack-Auth"
TIMEOUT = 300.0  # a model's inference may take minutes, as the wrapper's own timeout allows
# Annotations (as /api/v1/parameters writes them) whose JSON value is a string: text as written.
_TEXT_TYPE = re.compile(
    r"^(Optional\[)?(str|datetime\.datetime|datetime\.date|datetime\.time|datetime|date|time|"
    r"uuid\.UUID|UUID|pathlib\.Path|pathlib\.PosixPath|Path)(\])?( \| None)?$"
)


@dataclass(frozen=True)
class Target:
    """Where to call: the job's base URL (root or gateway prefix) and the endpoint path."""

    base_url: str
    endpoint: str
    expected: tuple[str, str] | None = None
    """(name, version) of the manifest given as the target, checked against the job's /health."""

    @property
    def url(self) -> str:
        return self.base_url + self.endpoint


@dataclass(frozen=True)
class Parameters:
    """What an endpoint takes, as far as the job says: names, which take text, and whether any
    other name is accepted (``**kwargs``)."""

    names: tuple[str, ...]
    text: frozenset[str]
    open: bool
    extra_text: bool = False  # ``**kwargs: str``


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def endpoint_path(endpoint: str | None) -> str:
    """``perform``, ``/explain``, ``/api/v1/explain`` -> ``/api/v1/...``."""
    if not endpoint:
        return PERFORM
    path = "/" + endpoint.strip().lstrip("/")
    return path if path.startswith(API_PREFIX + "/") else API_PREFIX + path


def resolve_target(target: str, *, endpoint: str | None = None, port: int | None = None,
                   overrides: Iterable[Any] = ()) -> Target:
    """A URL or a manifest path as a :class:`Target`; UsageError when it is neither.

    ``overrides`` are ``-e KEY.PATH=VALUE`` overrides (texts or parsed), applied to the manifest as
    every other command applies them, so the identity checked is the one ``serve``/``run`` were
    given with the same ``-e`` (``-e version=2.0.0``); a URL takes none.
    """
    overrides = tuple(overrides)
    if re.match(r"^https?://", target, re.IGNORECASE):
        if port is not None:
            raise UsageError("--port goes with a manifest", hint="put the port in the URL")
        if overrides:
            raise UsageError("-e goes with a manifest", hint="give the manifest (or its folder) as TARGET")
        parts = urllib.parse.urlsplit(target)
        path = parts.path.rstrip("/")
        base_path, sep, rest = path.partition(API_PREFIX + "/")
        if sep and endpoint is None:
            endpoint = rest  # a whole endpoint URL
        base_path = base_path.rstrip("/") if sep else path
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, base_path, "", ""))
        return Target(base_url=base, endpoint=endpoint_path(endpoint))
    manifest_path = Path(target)
    if manifest_path.is_dir():
        from .manifest import manifest_in

        manifest_path = manifest_in(manifest_path) or manifest_path / "fatman.yaml"
    if manifest_path.is_file() or target.endswith((".yaml", ".yml")):
        from .manifest import load_manifest

        manifest = load_manifest(manifest_path, overrides)
        # Without --port: where `serve` or `run` serves this job now, else the default port.
        served = None if port is not None else serving.url_of(manifest.name, manifest.version)
        return Target(base_url=served or f"http://127.0.0.1:{port or contract.PORT}",
                      endpoint=endpoint_path(endpoint), expected=(manifest.name, manifest.version))
    raise UsageError(f"{target!r} is neither a URL nor a manifest file",
                     hint="give the job's URL (http://127.0.0.1:7000) or its fatman.yaml (or job.yaml)")


class Client:
    """JSON over HTTP to one job, with its token when it has one."""

    def __init__(self, target: Target, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.target = target
        self.token = token
        self.timeout = timeout

    def request(self, path: str, body: Any | None = None, *, method: str | None = None) -> Answer:
        """One request to ``base_url + path``; JobUnreachable when nothing answers."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers[AUTH_HEADER] = self.token
        url = self.target.base_url + path
        request = urllib.request.Request(url, data=data, headers=headers,
                                         method=method or ("POST" if data is not None else "GET"))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return Answer(response.status, response.read().decode("utf-8", "replace"),
                              response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode("utf-8", "replace"),
                          exc.headers.get("Content-Type", ""))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise JobUnreachable(
                f"nothing answers at {self.target.base_url} ({reason})",
                hint="start the job with `racetrack-build serve MANIFEST` (or `run`), or give its "
                "URL or --port",
            ) from exc

    def json(self, path: str) -> Any:
        """A GET whose answer must be 2xx JSON; the job's error otherwise."""
        answer = self.request(path)
        if not answer.ok:
            raise answer_error("GET", path, answer)
        try:
            return json.loads(answer.body)
        except ValueError as exc:
            raise JobAnswerError(f"GET {path} did not answer JSON: {answer.body[:200]!r}",
                                 status=answer.status, hint="is this a Racetrack job?") from exc


def check_identity(client: Client) -> None:
    """For a manifest target: the job at the address is the manifest's (by its /health)."""
    expected = client.target.expected
    if expected is None:
        return
    answer = client.request("/health")
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        raise JobUnreachable(f"{client.target.base_url} is not a Racetrack job (its /health answered "
                             f"{answer.status})", hint="give the job's port with --port")
    name, version = body.get("name"), body.get("version")
    if name and (name, version) != expected:
        raise JobUnreachable(
            f"{client.target.base_url} serves {name} {version}, not {expected[0]} {expected[1]}",
            hint="serve this job (`racetrack-build serve` it) or give its port with --port",
        )


def parameters_of(client: Client, endpoint: str) -> Parameters | None:
    """What ``endpoint`` takes, from the job: /api/v1/parameters for perform, /openapi.json for
    the others; None when the job does not say."""
    if endpoint == PERFORM:
        listed = client.json(API_PREFIX + "/parameters")
        if not isinstance(listed, list):
            return None
        names = [p["name"] for p in listed if isinstance(p, dict) and p.get("kind") != "var_keyword"]
        text = {p["name"] for p in listed if isinstance(p, dict) and _TEXT_TYPE.match(str(p.get("type", "")))}
        kwargs = [p for p in listed if isinstance(p, dict) and p.get("kind") == "var_keyword"]
        return Parameters(names=tuple(names), text=frozenset(text), open=bool(kwargs),
                          extra_text=bool(kwargs) and bool(_TEXT_TYPE.match(str(kwargs[0].get("type", "")))))
    document = client.json("/openapi.json")
    try:
        schema = document["paths"][endpoint]["post"]["requestBody"]["content"]["application/json"]["schema"]
        properties = schema.get("properties") or {}
    except (KeyError, TypeError, AttributeError):
        return None
    extra = schema.get("additionalProperties", True)
    return Parameters(
        names=tuple(properties),
        text=frozenset(n for n, s in properties.items() if isinstance(s, dict) and s.get("type") == "string"),
        open=extra is not False,
        extra_text=isinstance(extra, dict) and extra.get("type") == "string",
    )


def parse_pair(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"-i {pair!r} is not NAME=VALUE", hint="e.g. -i x=1.5 -i items='[1,2]'")
    return name.strip(), value


def read_input(text: str, where: str) -> dict[str, Any]:
    """An ``--input`` document: a JSON object of arguments."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--input {where}: not JSON ({exc})",
                         hint="give a JSON object, e.g. {\"x\": 1}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"--input {where}: a JSON {type(doc).__name__}, not an object",
                         hint="give the arguments as a JSON object, e.g. {\"x\": 1}")
    return doc


def typed_inputs(pairs: Sequence[tuple[str, str]], params: Parameters | None,
                 base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``-i`` values typed by what the endpoint takes, over ``base`` (``--input``)."""
    inputs = dict(base or {})
    for name, raw in pairs:
        if params is not None and name not in params.names and not params.open:
            close = difflib.get_close_matches(name, params.names, n=1)
            raise UsageError(
                f"-i {name}: the endpoint takes no argument {name!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint=f"it takes: {', '.join(params.names) or 'no arguments'}",
            )
        inputs[name] = value_of(name, raw, params)
    return inputs


def value_of(name: str, raw: str, params: Parameters | None) -> Any:
    if params is not None:
        if name in params.text or (name not in params.names and params.extra_text):
            return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a word: Literal choices, enum values, Any; the job checks it


def call(client: Client, inputs: Mapping[str, Any] | None) -> Answer:
    """POST the inputs to the target's endpoint; JobAnswerError unless 2xx. ``None``: no inputs
    given, so no body, which a Racetrack 2.x job answers with its docs example (a fatman-era job
    reads it as no arguments, as it reads ``{}``)."""
    endpoint = client.target.endpoint
    answer = client.request(endpoint, None if inputs is None else dict(inputs), method="POST")
    if not answer.ok:
        error = answer_error("POST", endpoint, answer)
        if inputs is None and answer.status == 400:
            # No arguments given at all: say how to give them, first.
            error.hint = ("give its arguments with -i NAME=VALUE or --input FILE (its Swagger UI at /docs "
                          "shows an example); " + (error.hint or ""))
        raise error
    return answer


_HINTS = {
    400: "check the inputs against the job's /api/v1/parameters (or its Swagger UI at /docs)",
    401: "give the job's token with --token or FATMAN_AUTH_TOKEN",
    404: "no such endpoint: the job's Swagger UI (/docs) lists what it serves",
    405: "this path does not take a POST: --endpoint names perform or an auxiliary endpoint",
    413: "the body is over the job's FATMAN_MAX_BODY_BYTES",
    503: "the job failed to start or is still starting: its log (serve's or run's terminal) says why",
}


def answer_error(method: str, path: str, answer: Answer) -> JobAnswerError:
    """The job's own error (its JSON ``error``, ``type`` and ``fields``) as our error."""
    detail: str = answer.body.strip()[:2000] or "(no body)"
    kind = ""
    try:
        doc = json.loads(answer.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("error"):
        detail = str(doc["error"])
        kind = f" {doc['type']}" if doc.get("type") else ""
        fields = [f for f in doc.get("fields") or [] if isinstance(f, dict)]
        if fields and len(fields) > 1:
            detail = detail.split(":")[0] + ":" + "".join(
                f"\n  {f.get('field')}: {f.get('problem')}" for f in fields)
    return JobAnswerError(f"{method} {path} answered {answer.status}{kind}: {detail}", status=answer.status,
                          hint=_HINTS.get(answer.status))


def format_result(answer: Answer, pretty: bool) -> str:
    """The answer's body: indented JSON for a person at a terminal, exactly as sent otherwise."""
    if not pretty:
        return answer.body.rstrip("\n")
    try:
        return json.dumps(json.loads(answer.body), indent=2, ensure_ascii=False)
    except ValueError:
        return answer.body.rstrip("\n")
