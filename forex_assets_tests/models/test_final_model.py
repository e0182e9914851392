"""A run's final model loaded back from the model store (the `trained_run` fixture trains
one on a planted rule), and every way its files can be missing or damaged."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forex_assets.defs.resources import ModelStoreResource
from forex_assets.models.dataset import CLASSES, PROBABILITY_COLUMNS, feature_array
from forex_assets.models.final_model import (
    FINAL_MODEL_FILE,
    IN_SAMPLE,
    FeatureMismatchError,
    RunIdError,
    load_final_model,
)
from forex_assets.models.registry import model_spec
from forex_assets.models.stacking import BLENDER_FILE, blend, fit_blender
from forex_assets.storage.damage import StoredDataError
from forex_assets_tests.trained_run import PLANTED_FEATURES, PLANTED_STEP, planted_matrix


def planted_classes(matrix: pl.DataFrame) -> np.ndarray:
    return np.searchsorted(CLASSES, matrix.get_column("tb_label").to_numpy())


@pytest.fixture
def copied_run(trained_run, tmp_path):
    """The trained run's folder copied into a model store of this test's own."""
    root = tmp_path / "models"
    shutil.copytree(
        trained_run.root / trained_run.symbol / trained_run.run_id, _run(root, trained_run)
    )
    return root


def _run(root, trained_run):
    return root / trained_run.symbol / trained_run.run_id


def test_the_final_model_scores_later_rows_by_the_planted_rule(trained_run):
    model = load_final_model(trained_run.root, trained_run.symbol, trained_run.run_id)
    assert model.model_names == ("lightgbm", "mlp")
    assert model.features == PLANTED_FEATURES
    later = planted_matrix(
        1000, seed=1, start=trained_run.matrix.get_column("time")[-1] + PLANTED_STEP
    )
    scored = model.score(later)
    assert scored.columns == ["time", "close_time", *PROBABILITY_COLUMNS, IN_SAMPLE]
    proba = scored.select(PROBABILITY_COLUMNS).to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(proba.argmax(axis=1) == planted_classes(later)) > 0.9
    # The refit trained on every row of its matrix, and on none after it.
    assert not scored.get_column(IN_SAMPLE).any()
    assert model.score(trained_run.matrix).get_column(IN_SAMPLE).all()


def test_the_final_model_is_the_final_refit_blended_as_training_fitted_it(trained_run):
    model = load_final_model(trained_run.root, trained_run.symbol, trained_run.run_id)
    training = trained_run.training
    features = feature_array(trained_run.matrix, PLANTED_FEATURES)
    names = [spec.name for spec in training.models]
    refit = [
        model_spec(name).predict_proba(
            model_spec(name).load(Path(training.final.files[name])), features
        )
        for name in names
    ]
    # The blender is fitted on the first path's out-of-fold probabilities of every row.
    weights = fit_blender(
        [training.path_proba[name][0] for name in names], planted_classes(trained_run.matrix)
    )
    np.testing.assert_allclose(model.predict_proba(features), blend(refit, weights), atol=1e-9)


def test_rows_are_scored_by_column_name_not_position(trained_run):
    model = load_final_model(trained_run.root, trained_run.symbol, trained_run.run_id)
    matrix = trained_run.matrix.head(200)
    shuffled = matrix.select(reversed(matrix.columns))
    assert model.score(shuffled).equals(model.score(matrix))


def test_rows_lacking_a_trained_feature_are_refused_naming_it(trained_run):
    model = load_final_model(trained_run.root, trained_run.symbol, trained_run.run_id)
    with pytest.raises(FeatureMismatchError, match=r"lack 1 of the 10 .*\['feature_3'\]"):
        model.score(trained_run.matrix.drop("feature_3"))


def test_the_model_store_resource_loads_what_it_stores(trained_run):
    store = ModelStoreResource(root=str(trained_run.root))
    loaded = store.load(trained_run.symbol, trained_run.run_id)
    assert loaded.directory == store.run_directory(trained_run.symbol, trained_run.run_id)
    assert loaded.model_names == ("lightgbm", "mlp")


def _drop_one_feature(document: dict) -> None:
    document["features"].pop()


def _unknown_model(document: dict) -> None:
    document["models"][1] = "xgboost"


@pytest.mark.parametrize(
    ("damaged", "damage", "problem"),
    [
        ("final/lightgbm.txt", None, "cannot be loaded as a LightGBM text model"),
        ("final/mlp/network.json", b"{", "cannot be loaded as a torch MLP spec"),
        (FINAL_MODEL_FILE, None, "cannot be loaded as a final model manifest"),
        (FINAL_MODEL_FILE, b"[]", "cannot be loaded as a final model manifest"),
        (FINAL_MODEL_FILE, _drop_one_feature, "lists 9 features but the final lightgbm model"),
        (BLENDER_FILE, b'{"models": ["lightgbm", "mlp"]', "cannot be loaded as a blender"),
        (BLENDER_FILE, _unknown_model, "no model type is named 'xgboost'"),
    ],
    ids=[
        "lightgbm missing",
        "mlp spec truncated",
        "manifest missing",
        "manifest not an object",
        "manifest of other features",
        "blender truncated",
        "blender of an unknown type",
    ],
)
def test_a_missing_or_damaged_file_is_named_with_the_command_that_rebuilds_it(
    trained_run, copied_run, damaged, damage, problem
):
    path = _run(copied_run, trained_run) / damaged
    if damage is None:
        path.unlink()
    elif callable(damage):
        document = json.loads(path.read_text())
        damage(document)
        path.write_text(json.dumps(document))
    else:
        path.write_bytes(damage)
    with pytest.raises(StoredDataError) as raised:
        load_final_model(copied_run, trained_run.symbol, trained_run.run_id)
    message = str(raised.value)
    assert message.startswith(f"asset trained_models partition EURUSD: {path} ")
    assert problem in message and "\n" not in message
    assert message.endswith("--select trained_models --partition EURUSD`")


def test_a_run_that_stored_nothing_is_named(tmp_path):
    run_id = str(uuid.uuid4())
    with pytest.raises(StoredDataError, match=rf"{tmp_path / 'EURUSD' / run_id} does not exist"):
        load_final_model(tmp_path, "EURUSD", run_id)


@pytest.mark.parametrize("run_id", ["latest", "../../etc", ""])
def test_a_run_id_that_is_no_dagster_run_id_is_refused(tmp_path, run_id):
    with pytest.raises(RunIdError, match=f"run id {run_id!r} is not a Dagster run id"):
        load_final_model(tmp_path, "EURUSD", run_id)
