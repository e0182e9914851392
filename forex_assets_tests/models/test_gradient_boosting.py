"""LightGBM: learning a separable problem, early stopping on noise, text save/load, determinism.

Same synthetic problem as the MLP's: three classes by the size of feature 0, four noise
features. On pure-noise labels the validation loss stops improving within a few rounds,
so early stopping must end training long before `max_rounds`.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from forex_assets.models.gradient_boosting import (
    GradientBoostingSettings,
    fit_gradient_boosting,
    load_gradient_boosting,
    predict_proba,
    save_gradient_boosting,
)
from forex_assets.models.model_spec import Fitted

NAMES = [f"f{i}" for i in range(5)]
SETTINGS = GradientBoostingSettings(learning_rate=0.1, max_rounds=200, early_stopping_rounds=20)


def separable_problem(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5)).astype(np.float32)
    classes = np.where(features[:, 0] < -0.5, 0, np.where(features[:, 0] > 0.5, 2, 1))
    return features, classes.astype(np.int64)


FEATURES, CLASSES = separable_problem()
TRAIN, VALID, TEST = slice(0, 1400), slice(1400, 1700), slice(1700, 2000)


def fit(
    classes: np.ndarray = CLASSES,
    settings: GradientBoostingSettings = SETTINGS,
    threads: int = 1,
    seed: int = 5,
) -> Fitted[lgb.Booster]:
    return fit_gradient_boosting(
        FEATURES[TRAIN],
        classes[TRAIN],
        (FEATURES[VALID], classes[VALID]),
        settings,
        NAMES,
        threads=threads,
        seed=seed,
    )


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


def test_threads_and_seed_reach_lightgbm_parameters():
    params = SETTINGS.params(threads=3, seed=17)
    assert params["num_threads"] == 3
    assert params["seed"] == 17
    assert params["deterministic"] is True
    assert params["num_class"] == 3
