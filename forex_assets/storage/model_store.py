"""The model store's layout, `<root>/<symbol>/<run id>/<split>/...`, and what it leaves.

`trained_models` writes every file of a run under the folder of that run's Dagster run
id (each split's models in `<split>/`, the final model's blender and manifest beside them,
which `forex_assets.models.final_model` loads back) and registers them in the model
ledger once training has finished. A run killed or
failed before that leaves a folder no registry row points to; `orphaned_runs` finds
those, and only those whose run is known to have ended (failed or canceled), so the
folder of a run still training is never offered for removal. Folders not named by a run
id (evolution checkpoints, `evolution-<digest>`) are not runs and are left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from forex_assets.storage.damage import StoredDataError, first_line

# The asset that writes the model store, named here (this core knows no Dagster) and made
# the asset key `forex_assets.defs.keys.TRAINED_MODELS` there.
MODEL_ASSET = "trained_models"
ENDED_UNSUCCESSFULLY = frozenset({"FAILURE", "CANCELED"})


@dataclass(frozen=True)
class RunFolder:
    symbol: str
    run_id: str
    path: Path


def run_path(root: Path, symbol: str, run_id: str) -> Path:
    """Where the run's files are, whether or not it stored any."""
    return Path(root) / symbol / run_id


def run_directory(root: Path, symbol: str, run_id: str) -> Path:
    """The run's folder, created for a run about to store its files."""
    directory = run_path(root, symbol, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def is_run_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def run_folders(root: Path) -> list[RunFolder]:
    """Every `<symbol>/<run id>` folder under `root`."""
    if not Path(root).is_dir():
        return []
    return [
        RunFolder(run.parent.name, run.name, run)
        for run in sorted(Path(root).glob("*/*"))
        if run.is_dir() and is_run_id(run.name)
    ]


def orphaned_runs(
    root: Path,
    registered: Collection[tuple[str, str]],
    run_status: Callable[[str], str | None],
) -> tuple[list[RunFolder], list[RunFolder]]:
    """(orphans, unknown): run folders with no model registered for their (symbol, run
    id), split into those whose run ended unsuccessfully and those whose run the instance
    does not know (`run_status` returns None; perhaps another instance's, so not removed)."""
    orphans, unknown = [], []
    for folder in run_folders(root):
        if (folder.symbol, folder.run_id) in registered:
            continue
        status = run_status(folder.run_id)
        if status is None:
            unknown.append(folder)
        elif status in ENDED_UNSUCCESSFULLY:
            orphans.append(folder)
    return orphans, unknown


def unreadable_model(path: Path, kind: str, error: BaseException) -> StoredDataError:
    """The error for a model file that cannot be loaded, naming the symbol (partition) of
    the run folder it lies in, so the message says which materialization writes it again."""
    path = Path(path)
    folder = next((p for p in path.parents if is_run_id(p.name)), None)
    partition = folder.parent.name if folder is not None else "<symbol>"
    problem = f"cannot be loaded as {kind} ({first_line(error)})"
    return StoredDataError(MODEL_ASSET, partition, path, problem)
