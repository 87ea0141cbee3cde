"""One call of a job endpoint, from the WSGI environ of its request to the JSON body of its result.

Flask-free on purpose: only the WSGI environ is read, so any WSGI server or a plain-WSGI fast path
can answer ``POST /api/v1/<endpoint>`` with ``call_endpoint``. Every failure is an ``ApiError``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any, Callable

from .encoding import dumps_result, utf8
from .errors import ApiError
from .limits import SLOT_KEY, CallTimedOut, call_with_timeout
from .loader import Endpoint
from .request_context import enter, leave

log = logging.getLogger("fatman_wrapper")


def call_endpoint(
    endpoint: Endpoint,
    environ: dict[str, Any],
    *,
    body_limit: int,
    timeout: float,
    v2: bool = False,
    on_call: Callable[[], None] | None = None,
) -> bytes:
    """Read the request's arguments, call ``endpoint`` and return its result as strict JSON (UTF-8).

    ``body_limit``: the most bytes of body read (413 beyond); ``timeout``: seconds before 504 (0:
    none). Raises ``ApiError``: 400 for a malformed body or wrong arguments, 500 when the job raises
    or its result cannot be encoded, 504 on timeout. ``v2`` (Racetrack 2.x's answers,
    ``FATMAN_CONTRACT=2``): a ``ValueError`` the job raises is 400, and so is a call the method's
    signature refuses (``TypeError`` binding the arguments, which 2.x turns into a ``ValueError``),
    and a request without a body is called with the endpoint's docs example, if it has one.
    ``on_call`` runs once the arguments are bound, as the job is called (``last_call_timestamp``).
    """
    data = read_body(environ, body_limit)
    if v2 and endpoint.example is not None and not data.strip():
        payload = dict(endpoint.example)
    else:
        payload = parse_json_object(data, v2=v2)
    kwargs = endpoint.signature.bind(payload)
    if on_call is not None:
        on_call()  # the arguments are the job's to judge from here: a call, whatever it answers
    request_tokens = enter(environ)  # self.request_context.get() in the job
    try:
        if timeout > 0:
            result = call_with_timeout(
                lambda: invoke(endpoint.method, kwargs),
                timeout,
                name=f"/api/v1/{endpoint.path}",
                slot=environ.get(SLOT_KEY),
            )
        else:
            result = invoke(endpoint.method, kwargs)
    except CallTimedOut:
        log.warning(
            "/api/v1/%s did not answer within %g s (FATMAN_REQUEST_TIMEOUT): answered 504, "
            "the call goes on in the background",
            endpoint.path,
            timeout,
        )
        raise ApiError(
            504,
            f"/api/v1/{endpoint.path} did not answer within {timeout:g} s (FATMAN_REQUEST_TIMEOUT)",
            error_type="GatewayTimeout",
        ) from None
    except Exception as exc:
        log.exception("/api/v1/%s raised %s", endpoint.path, type(exc).__name__)
        if v2 and isinstance(exc, ValueError):
            raise ApiError(400, str(exc) or type(exc).__name__, error_type=type(exc).__name__) from exc
        if v2 and isinstance(exc, TypeError) and _refused_arguments(exc):
            raise ApiError(400, f"failed to call a function: {exc}", error_type="ValueError") from exc
        raise ApiError(500, str(exc) or type(exc).__name__, error_type=type(exc).__name__) from exc
    finally:
        leave(request_tokens)
    try:
        return utf8(dumps_result(result))
    except (TypeError, ValueError) as exc:
        log.error("the result of /api/v1/%s cannot be encoded as JSON: %s", endpoint.path, exc)
        raise ApiError(
            500, f"the result cannot be encoded as JSON: {exc}", error_type="EncodingError"
        ) from exc
    except RecursionError:  # nested deeper than the encoder's recursion limit
        log.error("the result of /api/v1/%s nests too deeply to be encoded as JSON", endpoint.path)
        raise ApiError(
            500,
            "the result nests lists or dicts too deeply to be encoded as JSON",
            error_type="EncodingError",
        ) from None


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond), straight from the WSGI input."""
    raw_length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length {raw_length!r}", error_type="BadRequest") from None
        if length > limit:
            raise ApiError(
                413,
                f"the request body has {length} bytes, over the limit of {limit} (FATMAN_MAX_BODY_BYTES)",
                error_type="PayloadTooLarge",
            )
        return stream.read(length) if length > 0 else b""
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not end the stream: no body can be read safely
    data = stream.read(limit + 1)  # chunked: bounded all the same
    if len(data) > limit:
        raise ApiError(
            413,
            f"the request body is over the limit of {limit} bytes (FATMAN_MAX_BODY_BYTES)",
            error_type="PayloadTooLarge",
        )
    return data


def parse_json_object(data: bytes, *, v2: bool = False) -> dict[str, Any]:
    """A request body as a JSON object; 400 if malformed or not an object (``v2``: 422 with
    ``detail``, as Racetrack 2.x answers a body that is not an object). No body means ``{}``."""
    if not data.strip():
        return {}  # an endpoint without arguments, or all of them optional
    try:
        payload = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(
            400, f"the request body is not valid JSON: {exc}", error_type="MalformedJSON"
        ) from None
    except RecursionError:  # [[[[... deeper than the parser's recursion limit: the client's doing
        raise ApiError(
            400, "the request body nests arrays or objects too deeply to be read", error_type="MalformedJSON"
        ) from None
    if not isinstance(payload, dict):
        kind = "an array" if isinstance(payload, list) else type(payload).__name__
        raise ApiError(
            422 if v2 else 400,
            f"the request body must be a JSON object of named arguments, got {kind}",
            error_type="MalformedJSON",
            detail=v2,
        )
    return payload


def invoke(method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a job's endpoint method; an ``async def`` one is run to completion on an event loop of
    its own (each call runs in a worker thread, which has none running)."""
    result = method(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return result


def _refused_arguments(exc: TypeError) -> bool:
    """The ``TypeError`` came from binding the arguments in ``invoke`` (``perform(self, **kw)`` sent
    ``{"self": 1}``), not from inside the job: its deepest frame is ``invoke``'s own call."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code is invoke.__code__


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
