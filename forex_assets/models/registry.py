"""The registered model types: every module of `forex_assets.models.types` with a `SPEC`.

Discovered, not listed, so a new model type is one module there (plus its test) and no
list elsewhere can forget it. They come in name order, which fixes the order of the
blender's inputs and of every table that shows the models.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

from forex_assets.models import types as types_package
from forex_assets.models.model_spec import AnySpec, ModelSpec


class ModelTypeError(ValueError):
    """A model type module that does not register one well-formed spec."""


def discover(package: ModuleType) -> tuple[AnySpec, ...]:
    """The `SPEC` of every module in `package`, by name; a module without one, or two
    specs of one name, are refused naming the modules."""
    specs: dict[str, tuple[AnySpec, str]] = {}
    for module_info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(module_info.name)
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, ModelSpec):
            raise ModelTypeError(
                f"{module_info.name} is in the model types package but its SPEC is "
                f"{type(spec).__name__}, not a ModelSpec; define SPEC = ModelSpec(...) there "
                "or move the module out of the package."
            )
        if spec.name in specs:
            raise ModelTypeError(
                f"{module_info.name} and {specs[spec.name][1]} both register a model type "
                f"named {spec.name!r}; each model type needs its own name (it names its "
                "files, ledger rows and probabilities)."
            )
        specs[spec.name] = (spec, module_info.name)
    if not specs:
        raise ModelTypeError(f"{package.__name__} registers no model type; training needs one.")
    return tuple(specs[name][0] for name in sorted(specs))


@functools.cache
def model_specs() -> tuple[AnySpec, ...]:
    """Every registered model type, in name order."""
    return discover(types_package)


def model_spec(name: str) -> AnySpec:
    for spec in model_specs():
        if spec.name == name:
            return spec
    raise ModelTypeError(
        f"no model type is named {name!r}; the registered ones are "
        f"{[spec.name for spec in model_specs()]} (modules of forex_assets.models.types)."
    )
