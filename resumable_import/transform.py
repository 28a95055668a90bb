"""A user's function applied to every item on the way in (`--transform module:function`).

The function gets each element of the dump as plain Python values, whatever the dump's
format: str, int or Decimal numbers (never float, so no digit is lost), bool, None, dict,
list, and from DynamoDB JSON also bytes (B) and sets (SS, NS, BS). It returns the item to
write, a list of items (or a generator), or None to skip the element. What it returns goes
through the very checks an untransformed item does (`checks.Prepare`, by `Check`), so
`validate` and `start` refuse the same things.

An element the function raises on, or returns something that is not items for, is refused
as a whole with code TransformError (none of its items is written): it goes to the dead
letters as the function left it, and the run goes on. Each item it returns is then checked
on its own, as any item is.

A run records the transform's spec and a hash of the file that defines the function, and
`resume` loads it again and refuses to go on with different code: half a table transformed
one way and half another is not a state anyone can tell apart afterwards.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .attributes import Unsupported, from_attributes, kept, kind_of, to_attributes
from .checks import MAX_ITEM_BYTES, Prepare, converter
from .errors import UsageError
from .items import MAX_DEPTH, ItemError, Unparsed
from .keys import Key, KeySpec

CODE = "TransformError"
_FORMS = "write it as FILE.py:FUNCTION or MODULE:FUNCTION"
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Transform:
    """A loaded transform: what to record with the run, and the function itself."""

    spec: str  # as recorded: a file's path made absolute, so resume finds it from anywhere
    function: Callable[[Any], Any]
    sha256: str | None  # of the file that defines the function; None when there is none
    # False for a function that `spec` cannot find again (a lambda, one defined in a
    # script): it is applied in this process, and a resume must be handed it.
    reloadable: bool = True

    def record(self) -> dict[str, str | None]:
        """What the run keeps in its options, for `resume` to load and compare."""
        return {"spec": self.spec, "sha256": self.sha256}

    def matches(self, recorded: Mapping[str, Any]) -> bool:
        """Whether this is the transform a run recorded: the same function in the same code."""
        return _name(self.spec) == _name(str(recorded.get("spec", ""))) and self.sha256 == (
            recorded.get("sha256")
        )


TransformSpec = str | Callable[[Any], Any] | Transform
"""What callers may pass as a transform: FILE.py:FUNCTION, MODULE:FUNCTION, the function."""


def load(spec: TransformSpec) -> Transform:
    """The transform named by `spec` (FILE.py:FUNCTION or MODULE:FUNCTION), or a callable
    given directly by a Python caller.

    Raises UsageError, naming the spec and what to do, when it cannot be loaded: no such
    file or module, a syntax error, an import that fails, no such function, not callable.
    """
    if isinstance(spec, Transform):
        return spec
    if callable(spec):
        return _from_callable(spec)
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise UsageError(f"transform {spec!r} names no function", _FORMS)
    recorded = spec
    if where.endswith(".py") or "/" in where or os.sep in where:
        module, source, shown = _from_file(spec, Path(where))
        recorded = f"{source}:{name}"
    else:
        module = _from_module(spec, where)
        shown = f"module {where}"
    function = _attribute(spec, module, name, shown)
    return Transform(recorded, function, _hash(_source_of(function, module)))


load_transform = load  # as the package offers it: `load` alone says nothing out of here


def _from_file(spec: str, path: Path) -> tuple[types.ModuleType, Path, str]:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UsageError(
            f"transform {spec!r}: there is no file {path}",
            f"{_FORMS}, the file's path relative to the current folder",
        )
    # A name of its own per file, so two transform files both called `t.py` do not meet.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"_rimport_transform_{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"transform {spec!r}: {path} cannot be loaded as Python", _FORMS)
    module = importlib.util.module_from_spec(module_spec)
    # Its own folder on the path, as `python FILE` does, so it can import its neighbours.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[name] = module  # loaded afresh each time: the file may have changed
    try:
        module_spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise _import_failed(spec, e, f"python {path}") from None
    return module, path, str(path)


def _from_module(spec: str, name: str) -> types.ModuleType:
    # As `python -m` does: modules in the current folder can be named.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise UsageError(
                f"transform {spec!r}: there is no module {name!r} to import",
                f"run rimport from the folder that holds {name.replace('.', '/')}.py, or "
                "give the file's path: FILE.py:FUNCTION",
            ) from None
        raise _import_failed(spec, e, f'python -c "import {name}"') from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise _import_failed(spec, e, f'python -c "import {name}"') from None


def _import_failed(spec: str, e: BaseException, check: str) -> UsageError:
    if isinstance(e, SyntaxError):
        where = f"{e.filename}, line {e.lineno}" if e.filename else "its file"
        return UsageError(f"transform {spec!r}: {where}: {e.msg}", "fix the syntax error")
    return UsageError(
        f"transform {spec!r}: importing it raised {_describe(e)}",
        f"`{check}` shows the full traceback",
    )


def _attribute(spec: str, module: types.ModuleType, name: str, shown: str) -> Callable[..., Any]:
    value: Any = module
    for part in name.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            defined = sorted(
                n for n, v in vars(module).items()
                if inspect.isfunction(v) and v.__module__ == module.__name__
                and not n.startswith("_")
            )  # fmt: skip
            hint = (
                f"name one of the functions it defines: {', '.join(defined[:8])}"
                if defined
                else "define the function in it"
            )
            raise UsageError(f"transform {spec!r}: {shown} has no {name!r}", hint)
    if not callable(value):
        raise UsageError(
            f"transform {spec!r}: {name!r} is {type(value).__name__}, not a function",
            "name a function that takes one item and returns the item to write",
        )
    _check_signature(spec, value)
    return value  # type: ignore[no-any-return]


_MISSING = object()


def _check_signature(spec: str, function: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without one: find out on the first item
        return
    try:
        signature.bind(None)
    except TypeError:
        raise UsageError(
            f"transform {spec!r}: {function.__name__}{signature} cannot be called with one item",
            "it must take exactly one argument, the item",
        ) from None


def _from_callable(function: Callable[[Any], Any]) -> Transform:
    """A function given by a Python caller: recorded by where it is defined, so that a
    resume can find it again (or be handed it, for one defined in a script)."""
    _check_signature(repr(function), function)
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    name = getattr(function, "__qualname__", type(function).__qualname__)
    source = _source_of(function, module)
    file_module = module is not None and module.__name__.startswith("_rimport_transform_")
    where = str(source) if file_module and source else getattr(module, "__name__", "?")
    reloadable = module is not None and where != "__main__" and "<" not in name
    return Transform(f"{where}:{name}", function, _hash(source), reloadable)


def _source_of(function: Callable[..., Any], module: types.ModuleType | None) -> Path | None:
    try:
        file = inspect.getsourcefile(function)  # type: ignore[arg-type]
    except TypeError:  # a callable object, a partial, a builtin
        file = None
    file = file or getattr(module, "__file__", None)
    return Path(file).resolve() if file and Path(file).is_file() else None


def _hash(path: Path | None) -> str | None:
    if path is None:
        return None
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _name(spec: str) -> str:
    return spec.rpartition(":")[2]


def changed(transform: Transform, recorded: Mapping[str, Any]) -> str | None:
    """Why `transform` is not the one a run recorded, in words; None when it is."""
    if transform.matches(recorded):
        return None
    if _name(transform.spec) != _name(str(recorded.get("spec", ""))):
        return f"the run used {recorded.get('spec')}, not {transform.spec}"
    return f"the code of {recorded.get('spec')} has changed since the run used it"


# -- applying it -------------------------------------------------------------------------


class Apply:
    """Callable: an element of the dump -> the items the transform made of it (a list of
    dicts: none, one or several), to be checked one by one by `Check`.

    Raises ItemError when the element is refused as a whole: the dump's own typing is
    broken (as without a transform), or the transform raised or returned something that
    is not items (code TransformError).
    """

    def __init__(self, transform: Transform, items_as: str = "json") -> None:
        self._function = transform.function
        self._typed = converter(items_as) if items_as != "json" else None

    def __call__(self, value: Any) -> list[Mapping[str, Any]]:
        if type(value) is Unparsed:
            raise ItemError(
                "TooDeep",
                f"nested deeper than DynamoDB's {MAX_DEPTH} levels (and than Python decodes)",
            )
        if self._typed is not None:
            value = from_attributes(self._typed(value))
        try:
            out = self._function(value)
            if out is None:
                return []
            if isinstance(out, Mapping):
                return [out]
            listed = isinstance(out, list | tuple | types.GeneratorType)
            made = list(out) if listed else None
        except Exception as e:
            raise ItemError(CODE, f"the transform raised {_describe(e)}") from None
        if made is None:
            raise ItemError(
                CODE,
                f"the transform returned {kind_of(out)}; it must return the item to write (a "
                "dict), a list of items, or None to skip it",
            )
        for n, item in enumerate(made):
            if not isinstance(item, Mapping):
                raise ItemError(
                    CODE,
                    f"the transform returned {kind_of(item)} as item {n} of a list, not a dict",
                )
        return made


class Check:
    """`checks.Prepare` for an item a transform made: (item) -> (the item as the JSON of
    the request, its key, its write units if `units` else 0), or ItemError.

    Its size is measured only when the request JSON is over the limit, for that is never
    smaller than the size as DynamoDB counts it.
    """

    def __init__(self, keys: tuple[KeySpec, ...], *, units: bool = False) -> None:
        self._prepare = Prepare(keys, "json", units=units)

    def __call__(self, item: Mapping[str, Any]) -> tuple[bytes, Key, int]:
        if type(item) is not dict:
            item = dict(item)
        try:
            body, key, units = self._prepare(item, 0)
            if len(body) > MAX_ITEM_BYTES:
                return self._prepare(item, len(body))  # measured exactly this time
        except Unsupported as e:
            raise ItemError(
                CODE, f"the transform returned attribute {e.path!r}, which {e.what}"
            ) from None
        return body, key, units


def kept_as(value: Any, error: ItemError) -> str:
    """How an item a transform made (or an element it may have changed in place) is kept
    in the dead letters: as DynamoDB JSON when it can be, else as `attributes.kept` keeps
    a refused element, else (values nothing can store) as `{"$repr": "..."}`."""
    if error.code != "TooDeep":
        try:
            return json.dumps({"M": to_attributes(value, limits=False)})
        except (Unsupported, AttributeError, RecursionError):
            pass
    try:
        return kept(value, error)
    except (Unsupported, TypeError, ValueError, RecursionError):
        return json.dumps({"$repr": repr(value)[:MAX_ITEM_BYTES]})


def _describe(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
