"""Combinatorial purged cross-validation (López de Prado, AFML ch. 12).

Time-ordered rows are cut into N contiguous groups; every choice of k groups is one test
set, so the C(N, k) splits give k x C(N, k) / N complete backtest paths instead of the
single path of walk-forward testing, and a strategy's result becomes a distribution.

A row's label is only known at `t1`, after its features at `t0`, so a plain K-fold split
leaks: a training row whose label interval reaches into a test group has partly seen the
test outcome. Such rows are **purged**. Features such as moving averages also carry the
test period's information into the rows just after it, so the first
ceil(embargo_share x rows) rows after each test group are **embargoed** as well. Purging
wins where both apply, so the counts say how much each rule costs.

Group ids are 0-based throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl

ROLE_TEST = 1
ROLE_TRAIN = 0
ROLE_PURGED = -1
ROLE_EMBARGOED = -2

# `embargo_share x rows` is meant as a decimal share; products such as 0.07 x 100 =
# 7.000000000000001 must not cost a whole extra row.
_ROUNDING_SLACK = 1e-9


class CpcvConfigError(ValueError):
    """Settings or data that cannot give a purged cross-validation; the message says why."""


@dataclass(frozen=True)
class CpcvSettings:
    n_groups: int = 6
    test_groups: int = 2
    embargo_share: float = 0.01
    # Every split is a model fit and the plan holds row indices for each one: C(N, k)
    # grows so fast (C(30, 15) is 155 million) that an unbounded plan fails only after
    # hours of fitting or when memory runs out.
    max_splits: int = 1000
    min_group_rows: int = 50

    def __post_init__(self) -> None:
        for name in ("n_groups", "test_groups", "max_splits", "min_group_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CpcvConfigError(
                    f"{name}={value!r} ({type(value).__name__}) must be an int: it counts "
                    "groups, splits or rows."
                )
        if self.n_groups < 2:
            raise CpcvConfigError(
                f"n_groups={self.n_groups} must be >= 2: with one group every row is tested "
                "at once and nothing is left to train on."
            )
        if not 1 <= self.test_groups < self.n_groups:
            raise CpcvConfigError(
                f"test_groups={self.test_groups} must be in [1, n_groups - 1] = "
                f"[1, {self.n_groups - 1}]: each split tests test_groups of the "
                f"n_groups={self.n_groups} groups and trains on the rest, so at least one "
                "group must be tested and at least one left for training."
            )
        share = self.embargo_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 0.5:
            raise CpcvConfigError(
                f"embargo_share={share!r} must be a number in [0, 0.5): it is the share of "
                "all rows embargoed after each test group, and half the rows or more would "
                "leave little or nothing to train on. Typical values are 0 to 0.05."
            )
        if self.max_splits < 1:
            raise CpcvConfigError(f"max_splits={self.max_splits} must be >= 1.")
        if self.min_group_rows < 1:
            raise CpcvConfigError(f"min_group_rows={self.min_group_rows} must be >= 1.")
        n_splits = math.comb(self.n_groups, self.test_groups)
        if n_splits > self.max_splits:
            raise CpcvConfigError(
                f"n_groups={self.n_groups} and test_groups={self.test_groups} make "
                f"C({self.n_groups}, {self.test_groups}) = {n_splits} splits, more than "
                f"max_splits={self.max_splits}: each split is one model fit. Use fewer "
                "groups or test groups, or raise max_splits if fits are cheap."
            )


@dataclass(frozen=True)
class Split:
    index: int
    test_groups: tuple[int, ...]
    train: np.ndarray
    test: np.ndarray
    purged: int
    embargoed: int
    # Kept because purging wins over the embargo: which removed rows were embargoed
    # cannot be told afterwards without the label intervals.
    embargoed_rows: np.ndarray


@dataclass(frozen=True)
class CpcvPlan:
    settings: CpcvSettings
    group_of_row: np.ndarray
    group_bounds: tuple[tuple[int, int], ...]
    splits: tuple[Split, ...]
    paths: np.ndarray

    @property
    def n_paths(self) -> int:
        return self.paths.shape[0]


def _frozen(values: np.ndarray) -> np.ndarray:
    """Read-only, so that a plan shared between fits cannot be changed by one of them."""
    values.setflags(write=False)
    return values


def _check_times(t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t0 = np.asarray(t0)
    t1 = np.asarray(t1)
    for name, values in (("t0", t0), ("t1", t1)):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise CpcvConfigError(
                f"{name} has shape {values.shape} and dtype {values.dtype}; it must be a 1-D "
                "integer array of epoch microseconds (polars: .dt.epoch('us'))."
            )
    if t0.shape != t1.shape:
        raise CpcvConfigError(
            f"t0 has {t0.size} rows but t1 has {t1.size}: both describe the same rows."
        )
    t0 = t0.astype(np.int64, copy=False)
    t1 = t1.astype(np.int64, copy=False)
    backwards = np.flatnonzero(np.diff(t0) < 0)
    if backwards.size:
        row = int(backwards[0]) + 1
        raise CpcvConfigError(
            f"t0 decreases at row {row} ({t0[row - 1]} -> {t0[row]}): groups are contiguous "
            "time ranges, so rows must be sorted by t0."
        )
    early = np.flatnonzero(t1 < t0)
    if early.size:
        row = int(early[0])
        raise CpcvConfigError(
            f"t1 < t0 at row {row} (t0={t0[row]}, t1={t1[row]}): a label cannot be decided "
            "before its features are known; check how t1 was computed."
        )
    return t0, t1


def _group_bounds(n_rows: int, n_groups: int) -> tuple[tuple[int, int], ...]:
    """np.array_split sizes: the first n_rows % n_groups groups get one row more."""
    size, extra = divmod(n_rows, n_groups)
    stops = np.cumsum([size + (g < extra) for g in range(n_groups)])
    starts = np.concatenate([[0], stops[:-1]])
    return tuple((int(a), int(b)) for a, b in zip(starts, stops, strict=True))


def _check_group_sizes(
    t0: np.ndarray, t1: np.ndarray, settings: CpcvSettings, embargo: int
) -> None:
    """Refuse plans where purging and embargo empty whole training groups.

    A training group between two test groups loses about one label span of rows before
    the later test group and the embargo after the earlier one; once that reaches the
    group's size, whole groups vanish from training and the splits stop meaning much.
    """
    n_rows, n_groups = t0.size, settings.n_groups
    needed = n_groups * settings.min_group_rows
    if n_rows < needed:
        fit = n_rows // settings.min_group_rows
        advice = f"use n_groups={fit} or fewer" if fit >= 2 else "use more rows"
        raise CpcvConfigError(
            f"{n_rows} rows are too few for n_groups={n_groups} groups of at least "
            f"min_group_rows={settings.min_group_rows} rows ({needed} rows needed); "
            f"{advice}, or lower min_group_rows."
        )
    group_rows = n_rows // n_groups
    if embargo >= group_rows:
        raise CpcvConfigError(
            f"embargo_share={settings.embargo_share} embargoes {embargo} rows after each test "
            f"group, but the smallest of the n_groups={n_groups} groups holds {group_rows} "
            "rows: the group after every test group would lose all its training rows. "
            "Lower embargo_share or use fewer groups."
        )
    # Rows after row i that its label interval reaches (0 for a label decided at t0).
    spans = np.searchsorted(t0, t1, side="right") - np.arange(n_rows) - 1
    span = int(np.median(spans))
    if span + embargo >= group_rows:
        raise CpcvConfigError(
            f"labels span a median of {span} rows and the embargo adds {embargo}, together at "
            f"least the {group_rows} rows of the smallest of the n_groups={n_groups} groups: "
            "purging and embargo would remove whole training groups next to the test "
            "groups. Use fewer (larger) groups, shorter labels or a smaller embargo_share."
        )


def combinatorial_purged_cv(
    t0: np.ndarray, t1: np.ndarray, settings: CpcvSettings = CpcvSettings()
) -> CpcvPlan:
    """All C(N, k) purged and embargoed splits of rows known at `t0` with labels ending at `t1`.

    `t0` and `t1` are epoch microseconds; rows are sorted by `t0`. Purging uses closed
    intervals: a training row is removed when [t0_i, t1_i] touches a test group's
    [first t0, latest t1], since a label decided at the very moment a test row is known
    already shares its information.
    """
    t0, t1 = _check_times(t0, t1)
    n_rows = t0.size
    embargo = math.ceil(settings.embargo_share * n_rows - _ROUNDING_SLACK)
    _check_group_sizes(t0, t1, settings, embargo)
    bounds = _group_bounds(n_rows, settings.n_groups)
    group_of_row = np.repeat(
        np.arange(settings.n_groups, dtype=np.int64), [b - a for a, b in bounds]
    )
    rows = np.arange(n_rows, dtype=np.int64)
    overlaps = [(t1 >= t0[start]) & (t0 <= t1[start:stop].max()) for start, stop in bounds]
    embargo_zones = [(rows >= stop) & (rows < stop + embargo) for _, stop in bounds]

    splits = []
    for index, groups in enumerate(combinations(range(settings.n_groups), settings.test_groups)):
        test = np.isin(group_of_row, groups)
        purged = np.logical_or.reduce([overlaps[g] for g in groups]) & ~test
        embargoed = np.logical_or.reduce([embargo_zones[g] for g in groups]) & ~test & ~purged
        train = ~(test | purged | embargoed)
        if not train.any():
            raise CpcvConfigError(
                f"split {index} (test groups {groups}) has no training rows left: "
                f"{int(purged.sum())} purged, {int(embargoed.sum())} embargoed of "
                f"{n_rows - int(test.sum())} candidates; some labels span most of the data. "
                "Use fewer test groups, shorter labels or a smaller embargo_share."
            )
        splits.append(
            Split(
                index=index,
                test_groups=groups,
                train=_frozen(np.flatnonzero(train)),
                test=_frozen(np.flatnonzero(test)),
                purged=int(purged.sum()),
                embargoed=int(embargoed.sum()),
                embargoed_rows=_frozen(np.flatnonzero(embargoed)),
            )
        )

    paths = _assign_paths(splits, settings.n_groups)
    return CpcvPlan(settings, _frozen(group_of_row), bounds, tuple(splits), paths)


def _assign_paths(splits: Sequence[Split], n_groups: int) -> np.ndarray:
    """Path p takes, for each group, the p-th split (in split order) that tested it."""
    testing = [[s.index for s in splits if g in s.test_groups] for g in range(n_groups)]
    return _frozen(np.array(testing, dtype=np.int64).T.copy())


def plan_from_membership(membership: pl.DataFrame) -> CpcvPlan:
    """The plan back from `fold_membership`'s frame (as stored by the `cpcv_folds` asset).

    Splits, groups and paths are exact; of the settings only n_groups and test_groups are
    recoverable, the others keep their defaults.
    """
    split_columns = sorted(c for c in membership.columns if c.startswith("split_"))
    if "group" not in membership.columns or not split_columns:
        raise CpcvConfigError(
            f"membership columns {membership.columns[:8]} lack `group` and `split_*`; pass "
            "the frame fold_membership returned (the cpcv_folds asset)."
        )
    group_of_row = membership.get_column("group").cast(pl.Int64).to_numpy()
    n_groups = int(group_of_row.max()) + 1
    splits = []
    for index, column in enumerate(split_columns):
        role = membership.get_column(column).to_numpy()
        test = np.flatnonzero(role == ROLE_TEST)
        splits.append(
            Split(
                index=index,
                test_groups=tuple(int(g) for g in np.unique(group_of_row[test])),
                train=_frozen(np.flatnonzero(role == ROLE_TRAIN)),
                test=_frozen(test),
                purged=int((role == ROLE_PURGED).sum()),
                embargoed=int((role == ROLE_EMBARGOED).sum()),
                embargoed_rows=_frozen(np.flatnonzero(role == ROLE_EMBARGOED)),
            )
        )
    settings = CpcvSettings(n_groups=n_groups, test_groups=len(splits[0].test_groups))
    starts = np.searchsorted(group_of_row, np.arange(n_groups + 1))
    bounds = tuple((int(starts[g]), int(starts[g + 1])) for g in range(n_groups))
    paths = _assign_paths(splits, n_groups)
    return CpcvPlan(settings, _frozen(group_of_row), bounds, tuple(splits), paths)


def split_table(plan: CpcvPlan) -> pl.DataFrame:
    """One row per split, for materialization metadata and for checking what purging cost."""
    return pl.DataFrame(
        {
            "split": [s.index for s in plan.splits],
            "test_groups": [",".join(map(str, s.test_groups)) for s in plan.splits],
            "train_rows": [s.train.size for s in plan.splits],
            "test_rows": [s.test.size for s in plan.splits],
            "purged": [s.purged for s in plan.splits],
            "embargoed": [s.embargoed for s in plan.splits],
        },
        schema={
            "split": pl.Int64,
            "test_groups": pl.String,
            "train_rows": pl.Int64,
            "test_rows": pl.Int64,
            "purged": pl.Int64,
            "embargoed": pl.Int64,
        },
    )


def path_table(plan: CpcvPlan) -> pl.DataFrame:
    """Which split's predictions make up each group of each backtest path, in long format."""
    n_paths, n_groups = plan.paths.shape
    return pl.DataFrame(
        {
            "path": np.repeat(np.arange(n_paths), n_groups),
            "group": np.tile(np.arange(n_groups), n_paths),
            "split": plan.paths.ravel(),
        },
        schema={"path": pl.Int64, "group": pl.Int64, "split": pl.Int64},
    )


def fold_membership(plan: CpcvPlan) -> pl.DataFrame:
    """Each row's role in every split, aligned with the input rows so it joins to features.

    Roles: 1 test, 0 train, -1 purged, -2 embargoed.
    """
    width = max(2, len(str(len(plan.splits) - 1)))
    columns = [pl.Series("group", plan.group_of_row, dtype=pl.Int16)]
    for split in plan.splits:
        role = np.full(plan.group_of_row.size, ROLE_PURGED, dtype=np.int8)
        role[split.train] = ROLE_TRAIN
        role[split.test] = ROLE_TEST
        role[split.embargoed_rows] = ROLE_EMBARGOED
        columns.append(pl.Series(f"split_{split.index:0{width}d}", role, dtype=pl.Int8))
    return pl.DataFrame(columns)
