"""What an endpoint method accepts, computed once at startup and used on every request.

``describe_method`` reads a bound method's signature, type hints and docstring into an
``EndpointSignature``: each parameter's annotation classified once (``typeinfo.classify``) and its
converter compiled from that (``converters.py``), so the hot path does no introspection. Its
``bind`` turns a decoded JSON object into keyword arguments. The same description feeds
``/parameters`` and the OpenAPI document.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, Callable

from .converters import Converter, Invalid, compile_converter
from .docstrings import parse_docstring
from .encoding import to_jsonable
from .errors import ApiError, JobLoadError
from .typeinfo import TypeInfo, classify, resolved_hints, type_name

# A 400 lists at most this many wrong fields and counts the rest: a body of a million unknown keys
# must not make an answer (and a worker's memory) a hundred times its size.
MAX_PROBLEMS = 20
# Field names and problems longer than this are cut in answers: a 16 MB key or value (a problem
# quotes the wrong value) is not echoed back.
TEXT_LIMIT = 300


def _shown(text: str) -> str:
    """A field name or problem as a 400 gives it: cut to ``TEXT_LIMIT`` characters."""
    if len(text) <= TEXT_LIMIT:
        return text
    return text[: TEXT_LIMIT - 3] + "..."


def _note(problems: list[dict[str, str]], field: str, problem: str) -> int:
    """Add a problem to ``problems`` while fewer than ``MAX_PROBLEMS`` are listed: 0, else 1 (omitted)."""
    if len(problems) >= MAX_PROBLEMS:
        return 1
    problems.append({"field": _shown(field), "problem": _shown(problem)})
    return 0


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One keyword argument of an endpoint method."""

    name: str
    annotation: Any  # as written, for its name
    type_info: TypeInfo
    required: bool
    default: Any  # inspect.Parameter.empty when required
    var_keyword: bool = False  # the ``**kwargs`` catch-all
    description: str = ""

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


@dataclasses.dataclass
class EndpointSignature:
    """The precomputed signature of an endpoint method and the checks its requests go through."""

    name: str
    parameters: list[ParameterSpec]
    returns: TypeInfo
    summary: str
    description: str
    returns_doc: str
    _converters: dict[str, Converter] = dataclasses.field(default_factory=dict, repr=False)
    _extra: Converter | None = dataclasses.field(default=None, repr=False)
    _required: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def bind(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a decoded JSON object against the signature and return the keyword arguments.

        Raises ``ApiError`` 400 naming the wrong fields: missing, unknown (when there is no
        ``**kwargs``) or of the wrong type; the first ``MAX_PROBLEMS`` are listed, the rest counted.
        """
        problems: list[dict[str, str]] = []
        omitted = 0  # problems past MAX_PROBLEMS: counted, not listed
        unexpected: str | None = None
        kwargs: dict[str, Any] = {}
        converters = self._converters
        for key, value in payload.items():
            conv = converters.get(key)
            if conv is None:
                conv = self._extra
                if conv is None:
                    if unexpected is None:  # once per request, however many unknown keys it has
                        accepted = ", ".join(converters) or "no arguments"
                        unexpected = f"unexpected argument (accepted: {accepted})"
                    omitted += _note(problems, key, unexpected)
                    continue
            try:
                kwargs[key] = conv(value, key)
            except Invalid as exc:
                omitted += _note(problems, exc.field, exc.problem)
        for name in self._required:
            if name not in payload:
                omitted += _note(problems, name, "missing required argument")
        if problems:
            summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            if omitted:
                summary += f"; and {omitted} more problem(s) not listed"
            raise ApiError(
                400,
                f"invalid arguments for {self.name}: {summary}",
                error_type="ValidationError",
                fields=problems,
                fields_omitted=omitted,
            )
        return kwargs

    def parameters_json(self) -> list[dict[str, Any]]:
        """The ``/parameters`` answer: name, type and, for optional ones, ``default_value``."""
        out: list[dict[str, Any]] = []
        for p in self.parameters:
            item: dict[str, Any] = {"name": p.name, "type": p.type_name}
            if p.var_keyword:
                item["name"] = f"**{p.name}"
                item["kind"] = "var_keyword"
            elif not p.required:
                item["default_value"] = to_jsonable(p.default)
            out.append(item)
        return out


def _snapshot(default: Any) -> Any:
    """The default as declared, for the docs: a mutable default (``options: dict = {}``) that the
    job changes in a call must not change what ``/parameters`` and the OpenAPI document show."""
    try:
        return copy.deepcopy(default)
    except Exception:  # noqa: BLE001 - an object that cannot be copied is shown as it is
        return default


def describe_method(method: Callable[..., Any], name: str, *, unbound: bool = False) -> EndpointSignature:
    """Precompute the signature of an endpoint method (``perform`` or an auxiliary one).

    ``unbound``: ``method`` is the function on the class, whose first parameter (``self``) is not
    an argument. Raises ``JobLoadError`` for a signature that cannot take a JSON object: ``*args``
    or positional-only parameters.
    """
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError) as exc:
        raise JobLoadError(f"cannot read the signature of {name}: {exc}") from exc
    if unbound and sig.parameters:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    hints = resolved_hints(method)
    docs = parse_docstring(inspect.getdoc(method) or "")
    params: list[ParameterSpec] = []
    converters: dict[str, Converter] = {}
    extra: Converter | None = None
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise JobLoadError(
                f"{name} declares *{p.name}, which a JSON object cannot fill",
                hint=f"replace *{p.name} with named parameters, or a list parameter such as "
                f"'{p.name}: list', or **kwargs",
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise JobLoadError(
                f"{name} declares the positional-only parameter '{p.name}', which a JSON object cannot fill",
                hint="remove the '/' marker from the signature",
            )
        annotation = hints.get(p.name, p.annotation)
        info = classify(annotation)
        conv = compile_converter(info)
        description = docs.params.get(p.name, "")
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            extra = conv
            params.append(
                ParameterSpec(p.name, annotation, info, False, inspect.Parameter.empty, True, description)
            )
            continue
        converters[p.name] = conv
        required = p.default is inspect.Parameter.empty
        params.append(
            ParameterSpec(p.name, annotation, info, required, _snapshot(p.default), False, description)
        )
    return EndpointSignature(
        name=name,
        parameters=params,
        returns=classify(hints.get("return", sig.return_annotation)),
        summary=docs.summary,
        description=docs.description,
        returns_doc=docs.returns,
        _converters=converters,
        _extra=extra,
        _required=tuple(p.name for p in params if p.required and not p.var_keyword),
    )
