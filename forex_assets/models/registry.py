"""The registered model types: every module of `forex_assets.models.types` with a `SPEC`.

Discovered, not listed, so a new model type is one module there (plus its test) and no
list elsewhere can forget it. They come in name order, which fixes the order of the
blender's inputs and of every table that shows the models.
"""

from __future__ import annotations

import functools
from types import ModuleType

from forex_assets.models import types as types_package
from forex_assets.models.model_spec import AnySpec, ModelSpec
from forex_assets.plugins import collect


class ModelTypeError(ValueError):
    """A model type module that does not register one well-formed spec."""


def discover(package: ModuleType) -> tuple[AnySpec, ...]:
    """The `SPEC` of every module in `package`, in name order; refused when there is none."""
    found = collect(package, "SPEC", ModelSpec, many=False, error=ModelTypeError)
    if not found:
        raise ModelTypeError(f"{package.__name__} registers no model type; training needs one.")
    return tuple(sorted((registered.item for registered in found), key=lambda spec: spec.name))


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
