"""The model store's layout: damaged model files are named, orphaned run folders found."""

import json
import uuid

import numpy as np
import pytest

from forex_assets.models.gradient_boosting import load_gradient_boosting
from forex_assets.models.stacking import load_blender, save_blender
from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.model_store import orphaned_runs, run_directory, run_folders


def _run_id() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize("content", [None, "garbage"], ids=["missing", "damaged"])
def test_unloadable_booster_names_asset_partition_file_and_rebuild(tmp_path, content):
    path = run_directory(tmp_path, "EURUSD", _run_id()) / "split_03" / "lightgbm.txt"
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    with pytest.raises(StoredDataError) as raised:
        load_gradient_boosting(path)
    message = str(raised.value)
    assert message.startswith(f"asset trained_models partition EURUSD: {path} cannot be loaded")
    assert "\n" not in message and "a LightGBM text model" in message
    assert message.endswith(
        "`dagster asset materialize -m forex_assets --select trained_models --partition EURUSD`"
    )


def test_damaged_blender_is_named_and_a_good_one_loads(tmp_path):
    path = run_directory(tmp_path, "USDJPY", _run_id()) / "blender.json"
    save_blender(np.ones((7, 3)), ["lightgbm", "mlp"], path)  # 2 models x 3 classes + 1
    models, weights = load_blender(path)
    assert models == ["lightgbm", "mlp"] and weights.shape == (7, 3)
    path.write_text('{"models": ["lightgbm"]')  # truncated
    with pytest.raises(StoredDataError, match=rf"partition USDJPY: {path} cannot be loaded"):
        load_blender(path)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"models": ["lightgbm", "mlp"], "weights": np.ones((4, 3)).tolist()}, "shape (4, 3)"),
        ({"models": "lightgbm", "weights": np.ones((4, 3)).tolist()}, "models is 'lightgbm'"),
        ({"models": [], "weights": [[1.0]]}, "models is []"),
    ],
)
def test_a_blender_whose_weights_do_not_fit_its_models_is_refused(tmp_path, document, problem):
    path = run_directory(tmp_path, "USDJPY", _run_id()) / "blender.json"
    path.write_text(json.dumps(document))
    with pytest.raises(StoredDataError) as raised:
        load_blender(path)
    assert f"{path} cannot be loaded" in str(raised.value)
    assert problem in str(raised.value)


def test_a_model_file_outside_a_run_folder_asks_for_the_symbol(tmp_path):
    with pytest.raises(StoredDataError, match=r"--partition <symbol>`$"):
        load_gradient_boosting(tmp_path / "model.txt")


def test_only_folders_of_runs_that_ended_unsuccessfully_are_orphans(tmp_path):
    runs = {name: _run_id() for name in ("failed", "canceled", "running", "ok", "unknown")}
    runs["registered_failure"] = _run_id()
    for run_id in runs.values():
        run_directory(tmp_path, "EURUSD", run_id)
    (tmp_path / "EURUSD" / "evolution-0123456789ab").mkdir()  # a checkpoint, not a run
    status = {
        runs["failed"]: "FAILURE",
        runs["canceled"]: "CANCELED",
        runs["running"]: "STARTED",
        runs["ok"]: "SUCCESS",
        runs["registered_failure"]: "FAILURE",
    }
    registered = {("EURUSD", runs["registered_failure"])}
    orphans, unknown = orphaned_runs(tmp_path, registered, status.get)
    assert sorted(f.run_id for f in orphans) == sorted([runs["failed"], runs["canceled"]])
    assert [f.run_id for f in unknown] == [runs["unknown"]]
    assert len(run_folders(tmp_path)) == 6
    assert orphaned_runs(tmp_path / "absent", registered, status.get) == ([], [])
