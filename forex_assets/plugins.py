"""Extension points collected by module: each registry is a package whose modules each
define one well-known object (a format, a model type, indicators, presets).

Discovered rather than listed, so an extension is one new module and no list elsewhere
can forget it; a module without the object, or two modules claiming one name, fail
naming both modules, since either would otherwise silently lose an extension.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One registered object and the module (its last dotted part) that defined it."""

    module: str
    item: T


def collect(
    package: ModuleType,
    attribute: str,
    kind: type[T],
    *,
    many: bool,
    error: type[Exception],
) -> list[Registration[T]]:
    """Every `attribute` of the modules of `package`, in module-name order.

    With `many`, `attribute` is a tuple of `kind` (a module may define several, e.g. one
    firm's presets); otherwise a single `kind`. Raises `error` naming the module when one
    lacks it or holds something else, and naming both modules when two define one name.
    """
    found: list[Registration[T]] = []
    owners: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        value = getattr(module, attribute, None)
        items = value if many and isinstance(value, tuple) else (value,)
        if (many and not isinstance(value, tuple)) or not all(isinstance(i, kind) for i in items):
            shape = f"a tuple of {kind.__name__}" if many else f"one {kind.__name__}"
            raise error(
                f"{module.__name__} defines {attribute}={value!r}; every module of "
                f"{package.__name__} must define {attribute} as {shape}. Move shared code "
                "out of the package."
            )
        for item in items:
            if item.name in owners:
                raise error(
                    f"{item.name!r} is defined by both {owners[item.name]} and "
                    f"{module.__name__}; give one of them another name."
                )
            owners[item.name] = module.__name__
            found.append(Registration(info.name, item))
    return found
