"""LightGBM: learning a separable problem, early stopping on noise, text save/load, determinism,
and the binned dataset a run prepares once for all its fits.

Same synthetic problem as the MLP's: three classes by the size of feature 0, four noise
features; every fit takes its rows from one dataset binned over all 2,000 rows, as a run's
fits do. On pure-noise labels the validation loss stops improving within a few rounds,
so early stopping must end training long before `max_rounds`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from forex_assets.models import gradient_boosting
from forex_assets.models.dataset import TrainingData
from forex_assets.models.gradient_boosting import (
    BINNED_FILE,
    GradientBoostingSettings,
    binned_dataset,
    fit_gradient_boosting,
    load_binned_dataset,
    load_gradient_boosting,
    predict_proba,
    prepare_binned_dataset,
    save_gradient_boosting,
)
from forex_assets.models.model_spec import Fitted, PreparedDataError

NAMES = [f"f{i}" for i in range(5)]
SETTINGS = GradientBoostingSettings(learning_rate=0.1, max_rounds=200, early_stopping_rounds=20)


def separable_problem(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5)).astype(np.float32)
    classes = np.where(features[:, 0] < -0.5, 0, np.where(features[:, 0] > 0.5, 2, 1))
    return features, classes.astype(np.int64)


FEATURES, CLASSES = separable_problem()
TRAIN, VALID, TEST = np.arange(0, 1400), np.arange(1400, 1700), np.arange(1700, 2000)


def fit(
    classes: np.ndarray = CLASSES,
    settings: GradientBoostingSettings = SETTINGS,
    threads: int = 1,
    seed: int = 5,
) -> Fitted[lgb.Booster]:
    binned = binned_dataset(FEATURES, classes, NAMES, settings, threads)
    return fit_gradient_boosting(binned, TRAIN, VALID, settings, threads=threads, seed=seed)


@pytest.fixture(scope="module")
def fitted() -> Fitted[lgb.Booster]:
    return fit()


def multi_logloss(proba: np.ndarray, classes: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(classes.size), classes])))


def test_learns_a_separable_problem(fitted):
    proba = predict_proba(fitted.model, FEATURES[TEST])
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(proba.argmax(axis=1) == CLASSES[TEST]) > 0.9


def test_importance_names_every_feature_and_ranks_the_informative_one_first(fitted):
    importance = fitted.importance
    assert list(importance) == NAMES
    assert max(importance, key=importance.get) == "f0"


def test_reported_validation_loss_is_the_best_iterations(fitted):
    proba = predict_proba(fitted.model, FEATURES[VALID])
    assert multi_logloss(proba, CLASSES[VALID]) == pytest.approx(fitted.validation_loss, rel=1e-6)


def test_early_stopping_ends_training_on_noise_before_max_rounds():
    noise = np.random.default_rng(1).integers(0, 3, CLASSES.size)
    booster = fit(classes=noise)
    assert 1 <= booster.best_iteration < SETTINGS.max_rounds // 2
    # Nothing past the best round is kept: later rounds only fitted the noise.
    assert booster.model.current_iteration() == booster.best_iteration


def test_save_and_load_give_identical_predictions(fitted, tmp_path):
    path = tmp_path / "lightgbm.txt"
    save_gradient_boosting(fitted.model, path)
    loaded = load_gradient_boosting(path)
    np.testing.assert_array_equal(
        loaded.predict(FEATURES[TEST]), predict_proba(fitted.model, FEATURES[TEST])
    )
    assert loaded.current_iteration() == fitted.best_iteration
    assert loaded.feature_name() == NAMES


def test_saved_model_is_lightgbm_text(fitted, tmp_path):
    path = tmp_path / "lightgbm.txt"
    save_gradient_boosting(fitted.model, path)
    text = path.read_text()
    assert text.startswith("tree\n")
    assert "num_class=3" in text
    assert f"feature_names={' '.join(NAMES)}" in text


def test_same_seed_and_threads_give_identical_models():
    # One thread: with OpenMP's spinning waits, several threads on a busy 2-core test box
    # can take 100x longer; training.py's determinism across workers is tested there.
    short = GradientBoostingSettings(learning_rate=0.1, max_rounds=40)
    first, second = fit(settings=short, seed=9), fit(settings=short, seed=9)
    assert first.best_iteration == second.best_iteration
    assert first.model.model_to_string() == second.model.model_to_string()
    np.testing.assert_array_equal(
        predict_proba(first.model, FEATURES[TEST]), predict_proba(second.model, FEATURES[TEST])
    )


def test_a_different_seed_gives_a_different_model():
    """The seed reaches bagging and feature sampling (so per-split seeds mean something)."""
    first, other = fit(seed=9), fit(seed=10)
    assert first.model.model_to_string() != other.model.model_to_string()


def test_a_fit_granted_more_cores_while_it_runs_widens_and_grows_the_same_trees(fitted):
    """What a CPCV split task does when its pool grants it freed cores mid-fit: the
    OpenMP pool widens between rounds, and the trees stay those of a one-thread fit."""
    from threadpoolctl import threadpool_info

    from forex_assets.compute.task_grants import GrantBoard, following_grant

    widths = []
    original = gradient_boosting._widen_when_granted

    def observed(threads):
        widen = original(threads)

        def callback(env):
            widen(env)
            widths.append(
                max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")
            )

        callback.before_iteration = True
        return callback

    board = GrantBoard(2)
    try:
        board.grant(1, 2)
        with following_grant(board.path, 1), pytest.MonkeyPatch.context() as patch:
            patch.setattr(gradient_boosting, "_widen_when_granted", observed)
            widened = fit(threads=1)
    finally:
        board.close()
    assert set(widths) == {2}  # widened before the first round
    assert trees(widened.model) == trees(fitted.model)


def test_threads_and_seed_reach_lightgbm_parameters():
    params = SETTINGS.params(threads=3, seed=17)
    assert params["num_threads"] == 3
    assert params["seed"] == 17
    assert params["deterministic"] is True
    assert params["num_class"] == 3


# --- the binned dataset a run prepares once ---------------------------------------------


def save_training_data(directory: Path, classes: np.ndarray = CLASSES) -> Path:
    """The problem as a run's spilled training data (times are unused here)."""
    rows = np.arange(CLASSES.size, dtype=np.int64)
    TrainingData(FEATURES, classes, rows, rows + 1, np.zeros(rows.size), tuple(NAMES)).save(
        directory
    )
    return directory


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A training-data folder with its binned dataset prepared (read-only for tests)."""
    directory = save_training_data(tmp_path_factory.mktemp("prepared"))
    prepare_binned_dataset(directory, SETTINGS, threads=1)
    return directory


@pytest.fixture
def damageable(prepared, tmp_path) -> Path:
    """A copy of `prepared` a test may damage."""
    return Path(shutil.copytree(prepared, tmp_path / "data"))


def trees(booster: lgb.Booster) -> str:
    """A saved model without its parameter section."""
    return booster.model_to_string().split("\nparameters:")[0]


def test_a_fit_on_the_prepared_dataset_equals_one_on_datasets_binned_alike(prepared):
    """Subsets of the saved binned dataset hold the same bins as datasets built from the
    same rows against it (`reference=`), LightGBM's way of binning like another dataset:
    the same trees, bit for bit."""
    shared = fit_gradient_boosting(
        load_binned_dataset(prepared, SETTINGS, 1), TRAIN, VALID, SETTINGS, 1, 5
    )
    reference = binned_dataset(FEATURES, CLASSES, NAMES, SETTINGS, 1)
    params = SETTINGS.params(1, 5)
    alike = lgb.train(
        params,
        lgb.Dataset(FEATURES[TRAIN], CLASSES[TRAIN], reference=reference, feature_name=NAMES),
        num_boost_round=SETTINGS.max_rounds,
        valid_sets=[lgb.Dataset(FEATURES[VALID], CLASSES[VALID], reference=reference)],
        callbacks=[lgb.early_stopping(SETTINGS.early_stopping_rounds, verbose=False)],
    )
    # the trees, bit for bit; the parameters differ in num_threads only (a fit takes its
    # width from the OpenMP pool, 0 in the parameters)
    assert trees(shared.model) == trees(alike)
    assert shared.best_iteration == alike.best_iteration


def test_the_bins_take_no_label_of_the_rows_a_fit_does_not_train_on(fitted):
    """Every row is binned, test rows included, but only by its feature values: scrambling
    the labels of the rows outside the inner and validation rows changes nothing."""
    scrambled = CLASSES.copy()
    scrambled[TEST] = np.random.default_rng(3).permutation(scrambled[TEST])[::-1]
    assert not np.array_equal(scrambled, CLASSES)
    assert fit(classes=scrambled).model.model_to_string() == fitted.model.model_to_string()


def test_preparing_again_replaces_the_dataset_in_one_rename(damageable):
    """LightGBM writes nothing over an existing file; a run prepares over the last one."""
    (damageable / BINNED_FILE).write_bytes(b"an earlier run's")
    prepare_binned_dataset(damageable, SETTINGS, threads=1)
    assert load_binned_dataset(damageable, SETTINGS, 1).num_data() == CLASSES.size
    assert [p.name for p in damageable.iterdir() if p.name.startswith(".")] == []


def _truncate(directory: Path) -> None:
    path = directory / BINNED_FILE
    path.write_bytes(path.read_bytes()[:200])


def _other_rows(directory: Path) -> None:
    binned = binned_dataset(FEATURES[:1500], CLASSES[:1500], NAMES, SETTINGS, 1)
    (directory / BINNED_FILE).unlink()
    binned.save_binary(directory / BINNED_FILE)


def _other_labels(directory: Path) -> None:
    save_training_data(directory, (CLASSES + 1) % 3)


@pytest.mark.parametrize(
    ("damage", "settings", "problem"),
    [
        (lambda d: (d / BINNED_FILE).unlink(), SETTINGS, "does not exist.*prepare_models"),
        (_truncate, SETTINGS, "cannot be loaded as LightGBM's binary dataset"),
        (lambda d: (d / BINNED_FILE).write_bytes(b"\x00" * 64), SETTINGS, "cannot be loaded"),
        (lambda d: None, GradientBoostingSettings(max_bin=15), "max_bin=63.*changed to 15"),
        (_other_rows, SETTINGS, r"binned from other data.*\(1500 rows where the data has 2000"),
        (_other_labels, SETTINGS, r"binned from other data.*\(other labels\)"),
    ],
    ids=["missing", "truncated", "not a dataset", "other max_bin", "other rows", "other labels"],
)
def test_a_prepared_dataset_that_cannot_serve_the_fit_is_refused_naming_it(
    damageable, damage, settings, problem
):
    damage(damageable)
    with pytest.raises(PreparedDataError, match=problem) as refused:
        load_binned_dataset(damageable, settings, 1)
    assert str(damageable / BINNED_FILE) in str(refused.value)
