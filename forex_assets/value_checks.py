"""What counts as a number or a count in a setting, an order or a contract.

Python's True is an int and NumPy's scalars are not Python's, so `isinstance(x, float)`
both lets booleans through and refuses `np.float64`. Every input check asks here instead.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def is_number(value: object) -> bool:
    """A real number (NumPy scalars included) that is not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def is_finite_number(value: object) -> bool:
    """A number as `is_number` says, neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)


def is_whole(value: object) -> bool:
    """An integer (NumPy integers included) that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)
