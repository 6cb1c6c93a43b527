"""The registry of meta-RL methods: the one place every stage and report looks a method up.

A method is a `MethodSpec`: its name (params `meta_train.methods`, stage `meta_train@<setting>-<name>`), its
label in tables and figures, the params blocks its family owns (top-level keys of params.yaml, each with its
schema dataclass, validated by pipeline.config), the shared params blocks and the code its runs depend on,
and the module that builds its trainer (`pipeline.methods.protocol.MethodTrainer`). Variants of one family
(MCAT's ablations) share the family's code and params blocks and differ by `options`.

Each sub-package of pipeline/methods declares its methods in a module attribute `METHODS` (a sequence of
`MethodSpec`); `methods()` imports the sub-packages the first time it is called, so nothing but this module is
imported by a stage that only validates params. Tests register methods of their own with `registered`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding pipeline/ and stages/
PACKAGE = "pipeline.methods"


@dataclass(frozen=True)
class MethodSpec:
    """One registered meta-RL method."""

    name: str  # params meta_train.methods; stages meta_train@<setting>-<name>, meta_delay@<delay>-<setting>-<name>
    label: str  # how tables and figures name it
    family: str  # the family it belongs to (its sub-package of pipeline/methods, or a test's name)
    # the trainer module (`protocol.MethodTrainer`): a dotted module path, imported only when the method runs,
    # or the module (or any object with its functions) itself
    trainer: str | Any
    # top-level params blocks the family owns: key -> schema dataclass (its defaults apply where params.yaml
    # has no such key); the variants of a family declare the same blocks
    params: Mapping[str, type] = field(default_factory=dict)
    # shared params blocks its runs read besides meta_train's own params (dvc.yaml): e.g. td3
    reads: tuple[str, ...] = ()
    # the code its runs execute besides what stages/meta_train.py imports: folders and files relative to the
    # repository root. Stage check_params hashes them into data/methods/<name>.json, a dep of its stages
    code: tuple[str, ...] = ()
    # what tells the variants of a family apart; the trainer reads them
    options: Mapping[str, Any] = field(default_factory=dict)

    def load_trainer(self) -> Any:
        """The trainer module (imported on first use)."""
        return importlib.import_module(self.trainer) if isinstance(self.trainer, str) else self.trainer

    @property
    def params_keys(self) -> tuple[str, ...]:
        """Every params block its runs read: its family's own, then the shared ones."""
        return (*self.params, *self.reads)


_discovered: dict[str, MethodSpec] | None = None
_registered: dict[str, MethodSpec] = {}  # registered at run time (tests), after the discovered ones


def _discover() -> dict[str, MethodSpec]:
    global _discovered
    if _discovered is None:
        found: dict[str, MethodSpec] = {}
        package = importlib.import_module(PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.ispkg:
                continue
            module = importlib.import_module(f"{PACKAGE}.{info.name}")
            specs = getattr(module, "METHODS", None)
            if specs is None:
                raise TypeError(f"{module.__name__}: a method family's package must declare METHODS")
            for spec in specs:
                _check_new(spec, found)
                found[spec.name] = spec
        _discovered = found
    return _discovered


def _check_new(spec: MethodSpec, known: Mapping[str, MethodSpec]) -> None:
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"not a MethodSpec: {spec!r}")
    if not spec.name.isidentifier():
        raise ValueError(f"method name {spec.name!r}: must be a Python identifier (it names stages and folders)")
    if spec.name in known:
        raise ValueError(f"method {spec.name!r} is registered twice")
    for other in known.values():
        for key, schema in spec.params.items():
            if key in other.params and (other.family != spec.family or other.params[key] is not schema):
                raise ValueError(f"method {spec.name!r}: params block {key!r} is owned by {other.name!r}")


def methods() -> Mapping[str, MethodSpec]:
    """Every registered method by name: the families' under pipeline/methods, then those registered at run time."""
    return MappingProxyType({**_discover(), **_registered})


def method_names() -> tuple[str, ...]:
    return tuple(methods())


def get_method(name: str) -> MethodSpec:
    """The method `name`; ValueError naming the registered ones if there is none."""
    known = methods()
    if name not in known:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(known)}")
    return known[name]


def label(name: str) -> str:
    """A method's label in tables and figures (its name if it is not registered)."""
    spec = methods().get(name)
    return name if spec is None else spec.label


def owned_params() -> dict[str, type]:
    """Every params block a registered family owns: top-level key -> schema dataclass."""
    return {key: schema for spec in methods().values() for key, schema in spec.params.items()}


def register(*specs: MethodSpec) -> None:
    """Register methods at run time (e.g. a test's); `unregister` removes them."""
    for spec in specs:
        _check_new(spec, methods())
        _registered[spec.name] = spec


def unregister(*names: str) -> None:
    for name in names:
        _registered.pop(name, None)


@contextmanager
def registered(*specs: MethodSpec) -> Iterator[None]:
    """Methods registered for the duration of a `with` block."""
    register(*specs)
    try:
        yield
    finally:
        unregister(*(spec.name for spec in specs))


def code_files(spec: MethodSpec, root: Path = SOURCE_ROOT) -> list[Path]:
    """The files of the method's `code` entries (folders recursively, without caches), sorted."""
    files: set[Path] = set()
    for entry in spec.code:
        path = root / entry
        if path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            files.add(path)
        else:
            raise FileNotFoundError(f"method {spec.name!r}: code entry {entry!r} does not exist under {root}")
    return sorted(files)


def _plain(value: Any) -> Any:
    """A params block as JSON-compatible values (dataclasses as dicts, enums as their values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.value if isinstance(value, Enum) else value


def dependency_record(spec: MethodSpec, params: Any, root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """What the runs of `spec` depend on beyond dvc.yaml's shared deps: its params blocks' values and the
    sha256 of each of its code files. Stage check_params writes it to data/methods/<name>.json, a dep of the
    method's meta_train and meta_delay stages, so that exactly the method's own params and code rerun them
    (and of the plot stages, which show its label)."""
    return {
        "method": spec.name,
        "label": spec.label,
        "family": spec.family,
        "options": _plain(dict(spec.options)),
        "params": {key: _plain(getattr(params, key)) for key in spec.params_keys},
        "code": {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in code_files(spec, root)
        },
    }


__all__ = [
    "MethodSpec",
    "code_files",
    "dependency_record",
    "get_method",
    "label",
    "method_names",
    "methods",
    "owned_params",
    "register",
    "registered",
    "unregister",
]
