"""The OpenAPI 3 document of a job and the Swagger UI page that shows it.

Swagger UI's JavaScript and CSS come from the ``swagger-ui-bundle`` package installed with the
wrapper and are served by the wrapper itself: the page works without internet access.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

from .encoding import to_jsonable
from .loader import Job
from .signature import EndpointSignature
from .typeinfo import Kind, TypeInfo


def swagger_ui_dir() -> str:
    """The folder of Swagger UI's built assets inside the installed swagger-ui-bundle package."""
    import swagger_ui_bundle

    return os.fspath(swagger_ui_bundle.swagger_ui_path)


def json_schema(info: TypeInfo) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 dialect) of what the argument check accepts for ``info``;
    ``{}`` (anything) for ``Kind.ANY``."""
    kind = info.kind
    if kind is Kind.ANY:
        return {}
    if kind is Kind.NULL:
        return {"nullable": True}
    if kind is Kind.UNION:
        options = info.items
        one = json_schema(options[0]) if len(options) == 1 else {"anyOf": [json_schema(o) for o in options]}
        return dict(one, nullable=True) if info.nullable else one
    if kind is Kind.LITERAL or kind is Kind.ENUM:
        return {"enum": list(info.choices)}
    if kind in _JSON_TYPES:
        return {"type": kind.value}
    if kind is Kind.ARRAY:
        return {"type": "array", "items": json_schema(info.items[0]) if info.items else {}}
    if kind is Kind.TUPLE:
        # OpenAPI 3.0 has no per-position items, so say its length and what any position may hold.
        kinds = [json_schema(position) for position in info.items]
        return {
            "type": "array",
            "items": kinds[0] if all(k == kinds[0] for k in kinds) else {"anyOf": kinds},
            "minItems": len(kinds),
            "maxItems": len(kinds),
        }
    if kind is Kind.OBJECT:
        return {"type": "object", "additionalProperties": json_schema(info.items[0]) if info.items else {}}
    if kind is Kind.VALUE:
        assert info.value_type is not None  # Kind.VALUE always names its row
        return dict(info.value_type.schema)
    if kind is Kind.DATACLASS:
        # Say what the argument check enforces: required fields and no others.
        fields: dict[str, Any] = {
            "type": "object",
            "title": info.cls.__name__,
            "properties": {name: json_schema(field) for name, field in info.fields},
            "additionalProperties": False,
        }
        if info.required:
            fields["required"] = list(info.required)
        return fields
    if kind is Kind.MODEL:
        return _model_schema(info.cls)
    raise AssertionError(f"no JSON schema for {kind}")  # pragma: no cover - every Kind is handled


_JSON_TYPES = frozenset([Kind.BOOLEAN, Kind.INTEGER, Kind.NUMBER, Kind.STRING])


def _model_schema(cls: Any) -> dict[str, Any]:
    """A pydantic model's own schema of its fields (v2's model_json_schema; nothing more for v1)."""
    model_schema = getattr(cls, "model_json_schema", None)
    if not callable(model_schema):
        return {}
    try:
        return {"type": "object", "title": cls.__name__, "properties": model_schema().get("properties", {})}
    except Exception:  # noqa: BLE001 - a schema is documentation; never fail the page
        return {"type": "object", "title": cls.__name__}


def _nan_as_null(schema: Any) -> Any:
    """A result schema where every number may also be null: NaN and infinities answer null
    (encoding.dumps_result), so a float result may legitimately come back as null."""
    if isinstance(schema, list):
        return [_nan_as_null(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _nan_as_null(value) for key, value in schema.items()}
    if out.get("type") == "number":
        out["nullable"] = True
    return out


def _request_schema(sig: EndpointSignature) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    for p in sig.parameters:
        prop = json_schema(p.type_info)
        if p.var_keyword:
            schema["additionalProperties"] = prop or True
            continue
        prop = dict(prop)
        if p.description:
            prop["description"] = p.description
        if p.required:
            required.append(p.name)
        else:
            try:
                prop["default"] = to_jsonable(p.default)
            except TypeError:
                pass
        prop.setdefault("title", f"{p.name}: {p.type_name}")
        properties[p.name] = prop
    if required:
        schema["required"] = required
    if not any(p.var_keyword for p in sig.parameters):
        schema["additionalProperties"] = False
    return schema


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
        "fields_omitted": {"type": "integer"},
    },
}


def _operation(
    path: str, sig: EndpointSignature, example: dict[str, Any] | None, tag: str, *, v2: bool = False
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _request_schema(sig)}
    if example is not None:
        try:
            media["example"] = to_jsonable(example)
        except TypeError:
            pass
    result_schema = _nan_as_null(json_schema(sig.returns))
    if sig.returns_doc:
        result_schema = dict(result_schema, description=sig.returns_doc)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "tags": [tag],
        "summary": sig.summary or f"Call {path}",
        "description": sig.description,
        "operationId": "call_" + path.replace("/", "_"),
        "requestBody": {"required": True, "content": {"application/json": media}},
        "responses": {
            "200": {
                "description": sig.returns_doc or "The result",
                "content": {"application/json": {"schema": result_schema}},
            },
            "400": dict(
                error,
                description="Invalid arguments, malformed JSON or a ValueError of the job"
                if v2
                else "Invalid arguments or malformed JSON",
            ),
            "413": dict(error, description="Request body too large"),
            "500": dict(error, description="The job raised an exception"),
            "503": dict(error, description="The job failed to start or is still starting"),
        },
    }


def _static_operation(summary: str, description: str) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["static"],
            "summary": summary,
            "responses": {"200": {"description": description}, "404": {"description": "Not found"}},
        }
    }


def build_document(
    job: Job | None,
    *,
    title: str,
    version: str,
    server_url: str,
    load_error: str | None = None,
    token_header: str | None = None,
    v2: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``job`` (or, while it is not loaded, for the wrapper's routes).

    ``token_header``: the header of the token the job requires, if it requires one; the document
    then declares it as Racetrack 2.x's does (an API key in ``X-Racetrack-Auth``), so Swagger UI's
    "Authorize" sends it with every call it makes. ``v2``: Racetrack 2.x's answers
    (``FATMAN_CONTRACT=2``): a job's ``ValueError`` is 400, ``/health`` not ready is 500.
    """
    description = job.description if job else (f"The job is not serving: {load_error}" if load_error else "")
    paths: dict[str, Any] = {}
    if job is not None:
        for path, endpoint in job.endpoints.items():
            tag = "perform" if path == "perform" else "auxiliary"
            paths[f"/api/v1/{path}"] = {
                "post": _operation(path, endpoint.signature, job.examples.get(path), tag, v2=v2)
            }
        paths["/api/v1/parameters"] = {
            "get": {
                "tags": ["perform"],
                "summary": "The parameters of perform",
                "responses": {
                    "200": {
                        "description": "name, type and default_value of each parameter",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
                        },
                    }
                },
            }
        }
        for path, entry in job.static.items():
            if entry.problem is not None:
                continue  # missing or outside the root at load: not advertised (the log says why)
            if not entry.is_dir:
                paths[f"/api/v1/{path}"] = _static_operation(f"Static content: {entry.target}", entry.target)
                continue
            # A folder: its files below it; its index.html at the slash form when it has one. The
            # bare path only redirects to the slash form, so it is not listed as a resource.
            if entry.has_index:
                paths[f"/api/v1/{path}/"] = _static_operation(
                    f"Static content: {entry.target}/index.html", "The folder's index.html"
                )
            operation = _static_operation(f"Static content: files under {entry.target}/", "The file")
            operation["get"]["parameters"] = [
                {
                    "name": "path",
                    "in": "path",
                    "required": True,
                    "description": f"A file's path inside {entry.target}/ (may contain '/')",
                    "schema": {"type": "string"},
                }
            ]
            paths[f"/api/v1/{path}/{{path}}"] = operation
        if job.webview is not None:
            paths["/api/v1/webview/"] = {
                "get": {
                    "tags": ["webview"],
                    "summary": "The job's web pages",
                    "responses": {"200": {"description": "HTML"}},
                }
            }
    # The codes each probe answers: Racetrack 2.x's 500 where it has one, the fatman era's 503.
    # The fatman era's /live is 200 for as long as the server answers; 2.x's is 500 after a failed load.
    not_ready = "500" if v2 else "503"
    probes: list[tuple[str, str, dict[str, dict[str, str]]]] = [
        ("/health", "Health and the job's state", {not_ready: {"description": "Not ready"}}),
        ("/live", "Liveness: the server answers",
         {"500": {"description": "The job failed to load"}} if v2 else {}),
        ("/ready", "Readiness: the job is loaded and serving", {not_ready: {"description": "Not ready"}}),
    ]
    for probe, text, failures in probes:
        paths[probe] = {
            "get": {
                "tags": ["probes"],
                "summary": text,
                "responses": {"200": {"description": "OK"}, **failures},
            }
        }
    paths["/metrics"] = {
        "get": {
            "tags": ["probes"],
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text format"}},
        }
    }
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version or "0.0.0", "description": description},
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR_SCHEMA}},
    }
    if token_header:
        document["components"]["securitySchemes"] = {
            "RacetrackAuth": {"type": "apiKey", "in": "header", "name": token_header}
        }
        document["security"] = [{"RacetrackAuth": []}]
        for probe in ("/health", "/live", "/ready"):
            paths[probe]["get"]["security"] = []  # the probes answer anyone
    return document


def swagger_page(title: str, static_url: str, openapi_url: str) -> str:
    """The HTML page of Swagger UI loading its assets from ``static_url`` and the document."""
    title_html = html.escape(title)
    static = html.escape(static_url, quote=True)
    url_js = json.dumps(openapi_url).replace("<", "\\u003c")  # cannot close the <script> element
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title_html} - Swagger UI</title>
  <link rel="stylesheet" href="{static}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: {url_js},
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""
