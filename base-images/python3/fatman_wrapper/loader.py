"""Finding, importing and starting the user's entrypoint class; no HTTP here.

Three steps, each with a failure message of its own, because each is fixed differently: a file
that is not there is a wrong path, a module that raises while importing is a bug in the user's code
(shown with their traceback, and only then), a missing or ambiguous class is a naming problem:

1. ``resolve_entrypoint_file``: the file exists ("no such file" names the root it looked in);
2. ``import_entrypoint`` + ``find_entrypoint_class``: the module imports (the user's own traceback
   when it raises) and holds exactly one candidate class (the candidates listed otherwise);
3. ``load_job``: the class is instantiated and its optional methods (auxiliary, static, webview,
   metrics, docs examples) are read once into a ``Job`` the app serves.

``check_entrypoint`` runs steps 1-2 plus the signature checks without calling ``__init__``: the
build-time check of an image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import logging
import os
import re
import sys
import traceback
import types
from pathlib import Path
from typing import Any, Callable

from .errors import JobLoadError
from .request_context import attach
from .signature import EndpointSignature, describe_method
from .static import StaticEntry, inspect_target

log = logging.getLogger(__name__)

# Paths under /api/v1/ that the wrapper itself answers; user endpoints may not take them.
RESERVED_PATHS = ("perform", "parameters", "webview")

_OUR_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A job method answering ``POST /api/v1/<path>``."""

    path: str  # without the leading slash: "perform", "explain", "explain/more"
    method: Callable[..., Any]
    signature: EndpointSignature
    # The docs example of its body (docs_input_example(s)), which Racetrack 2.x calls it with when a
    # request has no body.
    example: dict[str, Any] | None = None


@dataclasses.dataclass
class Job:
    """A started entrypoint, with everything the app needs precomputed."""

    class_name: str
    description: str
    instance: Any
    endpoints: dict[str, Endpoint]  # "perform" and every auxiliary path
    static: dict[str, StaticEntry]
    webview: Callable[..., Any] | None
    metrics: Callable[[], Any] | None
    examples: dict[str, dict[str, Any]]  # endpoint path -> example body


def normalize_endpoint_path(raw: Any, what: str) -> str:
    """``'/explain/'`` -> ``'explain'``; refuses empty paths and ``.``/``..`` segments."""
    if not isinstance(raw, str):
        raise JobLoadError(
            f"{what}: endpoint path {raw!r} is not a string", hint="use paths such as '/explain'"
        )
    path = raw.strip("/")
    segments = path.split("/")
    if not path or any(s in ("", ".", "..") for s in segments):
        raise JobLoadError(
            f"{what}: endpoint path {raw!r} is not a valid path",
            hint="use paths such as '/explain' or '/reports/latest'",
        )
    return path


def resolve_entrypoint_file(entrypoint_path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """The entrypoint file: relative to the job root, or absolute."""
    root_path = Path(root).resolve()
    path = Path(entrypoint_path)
    full = path if path.is_absolute() else root_path / path
    if not full.is_file():
        where = "" if path.is_absolute() else f" in the job root {root_path}"
        raise JobLoadError(
            f"entrypoint file '{entrypoint_path}' not found{where}",
            hint="set python.entrypoint_path in fatman.yaml to a .py file relative to the job's root "
            "(and --root to that folder when running by hand)",
        )
    return full.resolve()


# Top-level modules of the server stack: the wrapper imports them before the job at run time.
SERVER_STACK_MODULES = frozenset(
    {
        "fatman_wrapper",
        "racetrack_job_wrapper",
        "flask",
        "werkzeug",
        "jinja2",
        "markupsafe",
        "itsdangerous",
        "click",
        "blinker",
        "gunicorn",
        # gunicorn before 21 imports it
        "pkg_resources",
        "granian",
        # granian imports these when they are installed (python-dotenv and anyio are optional)
        "dotenv",
        "anyio",
        "sniffio",
        "packaging",
        "prometheus_client",
        "swagger_ui_bundle",
        "importlib_metadata",
        "zipp",
    }
)
# Python 3.10+ lists its standard library; on 3.9 what is already imported has to do.
_STDLIB_MODULES: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())


def _taken(top_level: str) -> bool:
    """A top-level module name the process has, or will import, for something other than the job."""
    return top_level in sys.modules or top_level in _STDLIB_MODULES or top_level in SERVER_STACK_MODULES


# Where the text of a user's exception is, in answers that leave it out (see JobLoadError).
IN_LOG = " (its message and traceback are in the job's log)"


# A module name as an ImportError carries it (``exc.name``): dotted identifiers, nothing else.
_MODULE_NAME = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*")


def _public_text(exc: BaseException) -> str:
    """What answers anyone may read say of a user's exception: its type, and for an import or
    syntax error the facts Python records apart from its text (the missing module's name; the file
    and line), never the text itself. A module may raise ``ImportError(f"cannot reach {dsn}")``
    with a password in it; the log has the whole text."""
    kind = type(exc).__name__
    if isinstance(exc, ImportError):
        name = exc.name
        if isinstance(name, str) and _MODULE_NAME.fullmatch(name):
            if isinstance(exc, ModuleNotFoundError):
                return f"{kind}: No module named {name!r}"
            return f"{kind} in importing module {name!r}{IN_LOG}"
    elif isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{kind} in {os.path.basename(exc.filename)} line {exc.lineno}{IN_LOG}"
    return kind + IN_LOG


def _module_name(file: Path, root: Path) -> str:
    try:
        parts = list(file.relative_to(root).with_suffix("").parts)
    except ValueError:
        parts = [file.stem]
    if not all(p.isidentifier() for p in parts):
        parts = [file.stem] if file.stem.isidentifier() else ["fatman_entrypoint"]
    # An entrypoint named json.py or flask.py must not replace, in sys.modules, the module of that
    # name the server uses (json.dumps would be the job's): it gets a private name instead, in the
    # build's check and at run time alike. Only pickling its classes by module name is lost.
    if _taken(parts[0]):
        return "fatman_job_" + "_".join(parts)
    return ".".join(parts)


def _shadowing_file(root: Path, exc: BaseException) -> str | None:
    """The job's own file or package named like the module an ImportError is about, when that name
    is taken by the standard library or the server: ``import <name>`` in the job gets theirs."""
    failed = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    top = failed.partition(".")[0] if isinstance(failed, str) else ""
    if not top or not _taken(top):
        return None
    for candidate in (root / f"{top}.py", root / top / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root).as_posix()
    return None


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without the wrapper's and importlib's own frames."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_OUR_DIR) or filename.startswith("<frozen importlib")):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _import_hint(exc: BaseException, root: Path) -> str:
    """How to fix the entrypoint's import failing with ``exc``: the line of a syntax error, the
    package a missing module comes from, else the traceback."""
    if isinstance(exc, SyntaxError):
        where = exc.filename or ""
        with contextlib.suppress(ValueError):
            where = str(Path(where).relative_to(root))
        return f"fix the syntax error at {where}:{exc.lineno}" if where and exc.lineno else (
            "fix the syntax error the traceback shows")
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        return (
            f"add the package that provides the module '{top}' to the job's requirements; if "
            f"'{top}' is the job's own module, add its file to the job's folder"
        )
    return "fix the error in your code shown in the traceback"


def import_entrypoint(
    file: Path, root: str | os.PathLike, display_path: str | os.PathLike | None = None
) -> types.ModuleType:
    """Import the entrypoint file as a module.

    The job root goes first on ``sys.path`` and the entrypoint's own folder right after it, so
    ``from helpers import x`` finds a ``helpers.py`` beside ``src/app/entry.py`` as
    ``python src/app/entry.py`` would, while a module of the same name at the root still wins.
    ``display_path`` is the path as the user gave it, for messages (default: the file's name).
    """
    root_path = str(Path(root).resolve())
    entry_dir = str(file.parent)
    for path in (root_path, entry_dir):
        while path in sys.path:
            sys.path.remove(path)
    # First, so `from supersmart.model import ...` finds the job's own package before any other.
    sys.path.insert(0, root_path)
    if entry_dir != root_path:
        sys.path.insert(1, entry_dir)
    shown = os.fspath(display_path) if display_path is not None else file.name
    name = _module_name(file, Path(root_path))
    spec = importlib.util.spec_from_file_location(name, str(file))
    if spec is None or spec.loader is None:
        raise JobLoadError(
            f"'{file}' cannot be imported as a Python module", hint="the entrypoint must be a .py file"
        )
    module = importlib.util.module_from_spec(spec)
    # Registered before running it so dataclasses, pickle and typing can find the module by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        hint = _import_hint(exc, Path(root_path))
        shadowing = _shadowing_file(Path(root_path), exc)
        if shadowing:
            hint = (
                f"the job's {shadowing} has the name of a module of the standard library or of the "
                "wrapper's server, and `import` gives that module, not the job's file; rename it"
            )
        raise JobLoadError(
            f"importing the entrypoint '{shown}' failed: {type(exc).__name__}: {exc}",
            hint=hint,
            user_traceback=_user_traceback(exc),
            public_message=f"importing the entrypoint '{shown}' failed: {_public_text(exc)}",
        ) from exc
    return module


def find_entrypoint_class(module: types.ModuleType, class_name: str | None = None) -> type[Any]:
    """The entrypoint class: ``class_name`` if given, else the one defined there with ``perform``.

    Classes imported into the module and helper classes without ``perform`` (dataclasses, pydantic
    models) are not candidates.
    """
    defined = [
        obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__
    ]
    if class_name:
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            names = ", ".join(c.__name__ for c in defined) or "none"
            raise JobLoadError(
                f"entrypoint class '{class_name}' not found in {module.__name__} "
                f"(classes defined there: {names})",
                hint="fix python.entrypoint_class in fatman.yaml (--class) or the class name",
            )
        if not callable(getattr(cls, "perform", None)):
            raise JobLoadError(
                f"entrypoint class '{class_name}' has no perform method",
                hint="add `def perform(self, ...)` to it",
            )
        return cls
    candidates = [c for c in defined if callable(getattr(c, "perform", None))]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        others = ", ".join(c.__name__ for c in defined)
        listed = f" (classes defined there, none with perform: {others})" if others else ""
        raise JobLoadError(
            f"no entrypoint class found in {module.__name__}: "
            f"no class defined there has a perform method{listed}",
            hint="define a class with `def perform(self, ...)` in the entrypoint file",
        )
    names = ", ".join(sorted(c.__name__ for c in candidates))
    raise JobLoadError(
        f"several entrypoint classes found in {module.__name__}: {names}",
        hint="choose one with python.entrypoint_class in fatman.yaml (--class when running by hand)",
    )


def check_entrypoint(
    entrypoint_path: str | os.PathLike, class_name: str | None = None, root: str | os.PathLike = "."
) -> type[Any]:
    """Import the entrypoint and find its class WITHOUT instantiating it (the image build check).

    Also checks that ``perform`` can take a JSON object (no ``*args``).
    """
    file = resolve_entrypoint_file(entrypoint_path, root)
    cls = find_entrypoint_class(import_entrypoint(file, root, entrypoint_path), class_name)
    describe_method(cls.perform, f"{cls.__name__}.perform", unbound=True)
    return cls


_BASE_CLASS_MODULE = "racetrack_job_wrapper.entrypoint"


def _base_default(instance: Any, name: str) -> bool:
    """Whether ``name`` is the one of Racetrack 2.x's optional base class ``JobEntrypoint``, which
    the job's class did not override."""
    method = getattr(type(instance), name, None)
    return getattr(method, "__module__", None) == _BASE_CLASS_MODULE


def _call_optional(instance: Any, name: str, *args: Any) -> Any:
    method = getattr(instance, name, None)
    if method is None:
        return None
    if not callable(method):
        raise JobLoadError(f"{type(instance).__name__}.{name} is not a method")
    try:
        return method(*args)
    except Exception as exc:
        raise JobLoadError(
            f"{type(instance).__name__}.{name}() raised {type(exc).__name__}: {exc}",
            hint="fix the error shown in the traceback",
            user_traceback=_user_traceback(exc),
            public_message=f"{type(instance).__name__}.{name}() raised {type(exc).__name__}{IN_LOG}",
        ) from exc


def _auxiliary_endpoints(instance: Any, cls_name: str) -> dict[str, Endpoint]:
    declared = _call_optional(instance, "auxiliary_endpoints")
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise JobLoadError(
            f"{cls_name}.auxiliary_endpoints() returned {type(declared).__name__}, not a dict",
            hint="return a dict such as {'/explain': self.explain}",
        )
    endpoints: dict[str, Endpoint] = {}
    for raw_path, method in declared.items():
        path = normalize_endpoint_path(raw_path, f"{cls_name}.auxiliary_endpoints()")
        if path.split("/")[0] in RESERVED_PATHS:
            raise JobLoadError(
                f"auxiliary endpoint '{raw_path}' collides with the wrapper's /api/v1/{path}",
                hint="rename the endpoint",
            )
        if path in endpoints:
            raise JobLoadError(f"auxiliary endpoint '{raw_path}' is declared twice")
        if not callable(method):
            raise JobLoadError(
                f"auxiliary endpoint '{raw_path}' maps to {method!r}, which is not callable",
                hint="map it to a method, e.g. {'/explain': self.explain}",
            )
        endpoints[path] = Endpoint(path, method, describe_method(method, f"/{path}"))
    return endpoints


def _static_endpoints(
    instance: Any, cls_name: str, root: str, endpoints: dict[str, Endpoint]
) -> dict[str, StaticEntry]:
    """The job's static endpoints; none may take a path of the wrapper's or of ``endpoints``
    (perform and the auxiliary ones), where GET would serve a file and POST call a method."""
    declared = _call_optional(instance, "static_endpoints")
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise JobLoadError(
            f"{cls_name}.static_endpoints() returned {type(declared).__name__}, not a dict",
            hint="return a dict such as {'/readme': 'README.md'}",
        )
    entries: dict[str, StaticEntry] = {}
    for raw_path, meta in declared.items():
        path = normalize_endpoint_path(raw_path, f"{cls_name}.static_endpoints()")
        top = path.split("/")[0]
        if top in ("parameters", "webview"):
            raise JobLoadError(
                f"static endpoint '{raw_path}' collides with the wrapper's /api/v1/{path}",
                hint="rename the endpoint",
            )
        taken = path if path in endpoints else top if top in endpoints else None
        if taken is not None:
            raise JobLoadError(
                f"static endpoint /api/v1/{path} collides with the endpoint /api/v1/{taken}",
                hint="give the static endpoint a path of its own",
            )
        mimetype: str | None = None
        if isinstance(meta, (tuple, list)) and len(meta) == 2:
            target, mimetype = meta
        else:
            target = meta
        if not isinstance(target, (str, os.PathLike)) or (
            mimetype is not None and not isinstance(mimetype, str)
        ):
            raise JobLoadError(
                f"static endpoint '{raw_path}' maps to {meta!r}",
                hint="map it to a file name or (file name, mimetype), relative to the job's root",
            )
        target = os.fspath(target)
        info = inspect_target(root, target)
        problem = info.problem
        if problem is not None:
            # Not fatal: the job may write the file later. Warned once here, and left out of the
            # OpenAPI document, instead of a silent 404 behind an advertised endpoint.
            log.warning(
                "static endpoint '%s' maps to '%s', %s; name a file or folder inside the job's "
                "repository, relative to the job's root",
                raw_path,
                target,
                problem,
            )
        entries[path] = StaticEntry(path, target, mimetype, problem, info.is_dir, info.has_index)
    return entries


def _docs_examples(instance: Any, endpoints: dict[str, Endpoint]) -> dict[str, dict[str, Any]]:
    """Example bodies per endpoint path; a failing docs method is logged, never fatal."""
    examples: dict[str, dict[str, Any]] = {}
    try:
        # The optional base class's defaults ({}) mean "none": they neither give /perform an empty
        # example nor make the job's own docs_input_examples() look like it replaces one.
        single = None if _base_default(instance, "docs_input_example") else _call_optional(
            instance, "docs_input_example")
        if isinstance(single, dict):
            examples["perform"] = single
        elif single is not None:
            log.warning(
                "ignoring docs_input_example(): it returned %s, not a dict of argument values",
                type(single).__name__,
            )
        many = _call_optional(instance, "docs_input_examples")
        if many is not None and not isinstance(many, dict):
            log.warning(
                "ignoring docs_input_examples(): it returned %s, not a dict of endpoint path -> "
                "argument values",
                type(many).__name__,
            )
        for raw_path, example in (many if isinstance(many, dict) else {}).items():
            path = normalize_endpoint_path(raw_path, "docs_input_examples()")
            if path not in endpoints:
                log.warning(
                    "docs_input_examples() names %s, which is no endpoint of this job (endpoints: %s)",
                    raw_path,
                    ", ".join(f"/{p}" for p in endpoints),
                )
            elif not isinstance(example, dict):
                log.warning(
                    "ignoring docs_input_examples()[%r]: %s, not a dict of argument values",
                    raw_path,
                    type(example).__name__,
                )
            else:
                if path in examples and examples[path] != example:
                    log.warning(
                        "docs_input_examples() gives /%s an example of its own: it replaces the one "
                        "of docs_input_example()",
                        path,
                    )
                examples[path] = example
    except JobLoadError as exc:
        log.warning("ignoring the docs examples: %s\n%s", exc, exc.user_traceback or "")
    return examples


def load_job(
    entrypoint_path: str | os.PathLike,
    class_name: str | None = None,
    root: str | os.PathLike = ".",
    webview_base_url: str = "/api/v1/webview",
) -> Job:
    """Import and instantiate the entrypoint and read what it declares; raises ``JobLoadError``."""
    cls = check_entrypoint(entrypoint_path, class_name, root)
    try:
        instance = cls()
    except Exception as exc:
        raise JobLoadError(
            f"{cls.__name__}.__init__ raised {type(exc).__name__}: {exc}",
            hint="fix the error shown in the traceback; the server stays up meanwhile",
            user_traceback=_user_traceback(exc),
            public_message=f"{cls.__name__}.__init__ raised {type(exc).__name__}{IN_LOG}",
        ) from exc
    attach(instance)  # self.request_context, self.request_extra: after __init__, as in Racetrack 2.x
    endpoints = {
        "perform": Endpoint("perform", instance.perform, describe_method(instance.perform, "perform"))
    }
    endpoints.update(_auxiliary_endpoints(instance, cls.__name__))
    static = _static_endpoints(instance, cls.__name__, os.path.realpath(root), endpoints)
    webview = _call_optional(instance, "webview_app", webview_base_url)
    if webview is not None and not callable(webview):
        raise JobLoadError(
            f"{cls.__name__}.webview_app() returned {type(webview).__name__}, not a WSGI app",
            hint="return a WSGI application, e.g. `app.wsgi_app` of a Flask app",
        )
    metrics = getattr(instance, "metrics", None)
    examples = _docs_examples(instance, endpoints)
    endpoints = {path: dataclasses.replace(e, example=examples.get(path)) for path, e in endpoints.items()}
    return Job(
        class_name=cls.__name__,
        description=inspect.getdoc(cls) or "",
        instance=instance,
        endpoints=endpoints,
        static=static,
        webview=webview,
        metrics=metrics if callable(metrics) else None,
        examples=examples,
    )
