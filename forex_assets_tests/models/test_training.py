"""Training every split plus the final refit in an elastic process pool.

The data is built directly: 3,000 rows of 10 random features, classes planted by the size
of feature 0, t0 in 5-minute steps (epoch microseconds) and labels ending 3 bars later.
Three hand-made purged (train, test) splits test one third of the rows each. The step's
budget is fixed at 2 threads (FOREX_ASSETS_STEP_THREADS), so the 4 tasks share 2 cores,
whatever machine runs the tests. Before the pool starts, the run bins the data once for
LightGBM (`prepare_models`); every task trains on those bins.
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.models.dataset import TrainingData
from forex_assets.models.gradient_boosting import BINNED_FILE, GradientBoostingSettings
from forex_assets.models.neural_net_settings import NeuralNetSettings
from forex_assets.models.registry import model_spec, model_specs
from forex_assets.models.training import (
    FINAL_REFIT,
    SplitResult,
    SplitTask,
    TrainingSettings,
    prepare_models,
    train_all,
    train_split,
)

ROWS = 3000
HORIZON = 3
STEP_US = 300_000_000
SHARE = 0.15
SETTINGS = TrainingSettings(
    models={
        "lightgbm": GradientBoostingSettings(max_rounds=30, min_data_in_leaf=50),
        "mlp": NeuralNetSettings(max_epochs=3, hidden=(16,)),
    },
    inner_validation_share=SHARE,
    seed=7,
)
MODELS = [spec.name for spec in model_specs()]


def training_data(rows: int = ROWS, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 10)).astype(np.float32)
    classes = np.where(features[:, 0] < -0.5, 0, np.where(features[:, 0] > 0.5, 2, 1))
    t0 = 1_704_672_000_000_000 + np.arange(rows, dtype=np.int64) * STEP_US
    return TrainingData(
        features=features,
        classes=classes.astype(np.int64),
        t0=t0,
        t1=t0 + HORIZON * STEP_US,
        trade_return=rng.normal(0, 1e-3, rows),
        feature_names=tuple(f"feature_{i}" for i in range(10)),
    )


def thirds_splits(rows: int = ROWS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Test each third; purge the HORIZON training rows before it (their labels reach it)."""
    bounds = np.linspace(0, rows, 4).astype(int)
    splits = []
    for start, stop in pairwise(bounds):
        test = np.arange(start, stop, dtype=np.int64)
        train = np.concatenate([np.arange(0, max(0, start - HORIZON)), np.arange(stop, rows)])
        splits.append((train.astype(np.int64), test))
    return splits


DATA = training_data()
SPLITS = thirds_splits()


def run(
    directory: Path, progress=lambda result: None, tasks_run=None
) -> tuple[list[SplitResult], SplitResult]:
    data_dir = directory / "data"
    DATA.save(data_dir)
    return train_all(data_dir, SPLITS, SETTINGS, directory / "models", progress, tasks_run)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two complete runs of train_all (for determinism), with a 2-thread step budget."""
    with pytest.MonkeyPatch.context() as patch:
        # Module-scoped, so it runs before the autouse per-test isolation: isolate here too.
        home = tmp_path_factory.mktemp("home")
        patch.setenv("FOREX_ASSETS_HOME", str(home / "forex_home"))
        patch.setenv("FOREX_ASSETS_CORE_LEDGER", str(home / "core_ledger.sqlite"))
        patch.setenv(STEP_THREADS_ENV, "2")
        reported: list[int] = []
        first_dir = tmp_path_factory.mktemp("first")
        records: list = []
        first = run(first_dir, lambda result: reported.append(result.index), records)
        second = run(tmp_path_factory.mktemp("second"))
    return first, second, reported, first_dir, records


# --- train_all ------------------------------------------------------------------------


def test_results_come_in_split_order_with_the_final_refit_apart(trained):
    (results, final), _, reported, _, _ = trained
    assert [r.index for r in results] == [0, 1, 2]
    assert final.index == FINAL_REFIT
    for result, (_, test) in zip(results, SPLITS, strict=True):
        np.testing.assert_array_equal(result.test, test)
    assert final.test.size == 0
    # The progress callback saw every task once, in the parent process.
    assert sorted(reported) == [FINAL_REFIT, 0, 1, 2]


def test_test_probabilities_are_one_distribution_per_test_row(trained):
    (results, _), _, _, _, _ = trained
    for result in results:
        assert set(result.proba) == set(MODELS)
        for model in MODELS:
            proba = result.proba[model]
            assert proba.shape == (result.test.size, 3), (result.index, model)
            assert np.isfinite(proba).all()
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_models_learn_the_planted_rule_out_of_fold(trained):
    (results, _), _, _, _, _ = trained
    for result in results:
        accuracy = np.mean(result.proba["lightgbm"].argmax(axis=1) == DATA.classes[result.test])
        assert accuracy > 0.9, result.index


def test_train_rows_are_the_inner_rows_after_holding_out_and_purging(trained):
    (results, final), _, _, _, _ = trained
    held_out = round(SHARE * ROWS)
    # The final refit trains on every row but the early-stopping slice and the HORIZON rows
    # whose labels reach into it.
    assert final.train_rows == ROWS - held_out - HORIZON
    assert final.train_rows == pytest.approx(ROWS * (1 - SHARE), rel=0.01)
    for result, (train, _) in zip(results, SPLITS, strict=True):
        assert train.size * (1 - SHARE) - HORIZON - 1 <= result.train_rows < train.size


def test_each_split_reports_iterations_losses_importance_and_device(trained):
    (results, final), _, _, _, _ = trained
    for result in [*results, final]:
        assert set(result.best_iteration) == set(MODELS)
        assert 1 <= result.best_iteration["lightgbm"] <= 30
        assert 1 <= result.best_iteration["mlp"] <= 3
        assert all(np.isfinite(v) and v > 0 for v in result.validation_loss.values())
        # LightGBM measures gain per feature; the MLP measures none.
        assert list(result.importance) == ["lightgbm"]
        gains = result.importance["lightgbm"]
        assert list(gains) == list(DATA.feature_names)
        assert max(gains, key=gains.get) == "feature_0"
        assert result.devices["lightgbm"] == "cpu"
        assert result.devices["mlp"] in {"cpu", "cuda"}
        assert result.seconds > 0


def test_model_files_exist_and_load_back_to_the_same_probabilities(trained):
    (results, final), _, _, directory, _ = trained
    for result in results:
        for spec in model_specs():
            path = Path(result.files[spec.name])
            assert path == directory / "models" / f"split_{result.index:02d}" / spec.file
            assert path.exists()
            x_test = DATA.features[result.test]
            np.testing.assert_allclose(
                spec.predict_proba(spec.load(path), x_test), result.proba[spec.name], atol=1e-6
            )
    for spec in model_specs():
        path = Path(final.files[spec.name])
        assert path == directory / "models" / "final" / spec.file
        assert spec.predict_proba(spec.load(path), DATA.features[:5]).shape == (5, 3)


def test_only_the_model_types_selected_are_trained(tmp_path, monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "2")
    data_dir = tmp_path / "data"
    DATA.save(data_dir)
    only = TrainingSettings(models={"lightgbm": SETTINGS.models["lightgbm"]})
    results, final = train_all(data_dir, SPLITS[:1], only, tmp_path / "models")
    assert set(results[0].proba) == set(final.files) == {"lightgbm"}
    assert not (tmp_path / "models" / "final" / model_spec("mlp").file).exists()


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({}, "TrainingSettings.models is empty"),
        ({"xgboost": GradientBoostingSettings()}, "no model type is named 'xgboost'"),
        ({"mlp": GradientBoostingSettings()}, "takes NeuralNetSettings"),
    ],
)
def test_settings_refuse_model_types_that_cannot_train(models, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(models=models)


def test_default_settings_train_every_registered_type_with_its_defaults():
    assert TrainingSettings().models == {spec.name: spec.settings() for spec in model_specs()}


def test_two_runs_give_identical_probabilities(trained):
    (first, first_final), (second, second_final), _, _, _ = trained
    for a, b in zip(first, second, strict=True):
        for model in MODELS:
            np.testing.assert_array_equal(a.proba[model], b.proba[model])
        assert a.best_iteration == b.best_iteration
        # a task's width may differ between runs: LightGBM's threaded loss sum, in the last bit
        assert a.validation_loss == pytest.approx(b.validation_loss, rel=1e-12)
    assert first_final.best_iteration == second_final.best_iteration
    assert first_final.validation_loss == pytest.approx(second_final.validation_loss, rel=1e-12)


def test_the_run_bins_once_and_a_task_in_a_fresh_process_trains_on_those_bins(trained, tmp_path):
    """train_all prepared one binned dataset beside the arrays, and a task trains LightGBM
    on it alone: with the raw features zeroed after preparing (binned again, every
    feature would be one bin and no tree could split), a task in a fresh process saves
    the model the run's worker saved, bit for bit."""
    (results, _), _, _, first_dir, _ = trained
    assert sorted(p.name for p in (first_dir / "data").iterdir() if "lightgbm" in p.name) == [
        BINNED_FILE
    ]
    data_dir = Path(shutil.copytree(first_dir / "data", tmp_path / "data"))
    np.save(data_dir / "features.npy", np.zeros_like(DATA.features))
    only = TrainingSettings(models={"lightgbm": SETTINGS.models["lightgbm"]}, seed=SETTINGS.seed)
    train, test = SPLITS[0]
    task = SplitTask(0, train, test, str(data_dir), str(tmp_path / "models"), only)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        again = pool.submit(train_split, task).result()

    def model_text(path: str) -> list[str]:  # the width a task ran with is not the model
        return [line for line in Path(path).read_text().splitlines() if "num_threads" not in line]

    assert model_text(again.files["lightgbm"]) == model_text(results[0].files["lightgbm"])
    # the same trees; the loss LightGBM sums over its threads may differ in the last bit
    assert again.validation_loss["lightgbm"] == pytest.approx(
        results[0].validation_loss["lightgbm"], rel=1e-12
    )


def test_final_refit_probabilities_have_the_class_axis_even_when_empty(trained):
    (_, final), _, _, _, _ = trained
    for model in MODELS:
        assert final.proba[model].shape == (0, 3), model


def test_every_task_is_recorded_with_its_width_within_the_budget(trained):
    *_, records = trained
    assert sorted(r.task for r in records) == ["final", "split_00", "split_01", "split_02"]
    # No ledger outside the executor: nothing leased, every width within the 2 threads.
    assert all(1 <= r.threads <= 2 and r.leased == 0 for r in records)
    assert all(r.seconds > 0 and r.cpu_s > 0 for r in records)
    # The final refit, the heaviest task, started first.
    assert min(records, key=lambda r: r.start_s).task == "final"
    # The tasks that ran at once never held more than the 2 threads together.
    for record in records:
        overlapping = [
            other
            for other in records
            if other.start_s <= record.start_s < other.start_s + other.seconds
        ]
        assert sum(o.threads for o in overlapping) <= 2


def test_a_task_trains_the_same_models_on_one_thread_as_on_two(tmp_path, monkeypatch):
    """Elastic widths depend on what is free when a task starts; results must not."""
    data_dir = tmp_path / "data"
    DATA.save(data_dir)
    prepare_models(data_dir, SETTINGS, 2)
    train, test = SPLITS[0]
    outcomes = []
    for threads in ("1", "2"):
        monkeypatch.setenv(STEP_THREADS_ENV, threads)
        task = SplitTask(0, train, test, str(data_dir), str(tmp_path / threads), SETTINGS)
        outcomes.append(train_split(task))
    one, two = outcomes
    for model in MODELS:
        np.testing.assert_array_equal(one.proba[model], two.proba[model])
    assert one.best_iteration == two.best_iteration
