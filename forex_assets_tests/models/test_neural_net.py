"""The MLP: standardization, learning a separable problem, safe and exact save/load.

The synthetic problem has three classes set by the size of feature 0 (below -0.5, in
between, above 0.5) and four noise features, so a working network scores near 100% on
held-out rows and a broken one near the 38% of the largest class.
"""

from __future__ import annotations

import json
import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from forex_assets.models.neural_net import (
    SPEC_FILE,
    WEIGHTS_FILE,
    FittedNet,
    NeuralNetSettings,
    Standardizer,
    fit_neural_net,
    load_neural_net,
)
from forex_assets.storage.damage import StoredDataError

SETTINGS = NeuralNetSettings(hidden=(32,), batch_size=128, max_epochs=40, learning_rate=1e-2)


def separable_problem(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5)).astype(np.float32)
    classes = np.where(features[:, 0] < -0.5, 0, np.where(features[:, 0] > 0.5, 2, 1))
    return features, classes.astype(np.int64)


FEATURES, CLASSES = separable_problem()
TRAIN, VALID, TEST = slice(0, 1400), slice(1400, 1700), slice(1700, 2000)


def fit(seed: int = 3, settings: NeuralNetSettings = SETTINGS) -> FittedNet:
    return fit_neural_net(
        FEATURES[TRAIN],
        CLASSES[TRAIN],
        (FEATURES[VALID], CLASSES[VALID]),
        settings,
        threads=1,
        seed=seed,
        device=torch.device("cpu"),
    )


@pytest.fixture(scope="module")
def fitted() -> FittedNet:
    return fit()


# --- Standardizer ---------------------------------------------------------------------


# Standardizer.fit's np.errstate does not silence numpy's warnings for an all-NaN column.
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:Degrees of freedom")
def test_standardizer_ignores_nan_and_maps_it_to_zero():
    features = np.array(
        [[1.0, 5.0, np.nan], [3.0, 5.0, np.nan], [np.nan, 5.0, np.nan], [5.0, 5.0, np.nan]],
        dtype=np.float32,
    )
    standardizer = Standardizer.fit(features)
    # Column 0: mean and std of 1, 3, 5 only.
    np.testing.assert_allclose(standardizer.mean, [3.0, 5.0, 0.0])
    np.testing.assert_allclose(standardizer.scale, [np.std([1.0, 3.0, 5.0]), 1.0, 1.0])
    scaled = standardizer.transform(features)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled[:, 0], [-1.2247449, 0.0, 0.0, 1.2247449], rtol=1e-6)
    assert scaled[2, 0] == 0.0  # NaN becomes the mean
    assert (scaled[:, 1] == 0.0).all()  # a constant column scales by 1 around its mean
    assert (scaled[:, 2] == 0.0).all()  # an all-NaN column is all zeros


def test_standardizer_maps_unseen_nan_and_infinities_to_zero():
    standardizer = Standardizer.fit(np.array([[0.0], [2.0]], dtype=np.float32))
    scaled = standardizer.transform(np.array([[np.nan], [np.inf], [-np.inf], [3.0]]))
    np.testing.assert_array_equal(scaled[:, 0], [0.0, 0.0, 0.0, 2.0])
    assert scaled.dtype == np.float32


def test_standardized_training_columns_have_zero_mean_and_unit_scale():
    rng = np.random.default_rng(1)
    features = (rng.normal(size=(500, 3)) * [1.0, 100.0, 0.01] + [0.0, -50.0, 7.0]).astype(
        np.float32
    )
    scaled = Standardizer.fit(features).transform(features)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-4)


# --- fitting --------------------------------------------------------------------------


def test_learns_a_separable_problem(fitted):
    predicted = fitted.predict_proba(FEATURES[TEST]).argmax(axis=1)
    assert np.mean(predicted == CLASSES[TEST]) > 0.9


def test_probabilities_are_distributions_one_row_per_input(fitted):
    proba = fitted.predict_proba(FEATURES[TEST], batch_size=64)  # several batches
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert fitted.predict_proba(FEATURES[:0]).shape == (0, 3)


def test_keeps_the_epoch_with_the_lowest_validation_loss(fitted):
    """The returned network is the best epoch's: its validation loss is the one reported."""
    assert 1 <= fitted.best_epoch <= SETTINGS.max_epochs
    proba = fitted.predict_proba(FEATURES[VALID])
    loss = -np.mean(np.log(proba[np.arange(proba.shape[0]), CLASSES[VALID]]))
    assert loss == pytest.approx(fitted.validation_loss, rel=1e-4)


def test_same_seed_and_one_thread_give_identical_weights():
    first, second = fit(seed=11).network.state_dict(), fit(seed=11).network.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    other = fit(seed=12).network.state_dict()
    assert not all(torch.equal(first[name], other[name]) for name in first)


# --- saving and loading ---------------------------------------------------------------


def test_save_and_load_give_identical_probabilities(fitted, tmp_path):
    fitted.save(tmp_path / "mlp")
    loaded = load_neural_net(tmp_path / "mlp")
    np.testing.assert_array_equal(
        loaded.predict_proba(FEATURES[TEST]), fitted.predict_proba(FEATURES[TEST])
    )
    assert loaded.settings == fitted.settings
    assert loaded.best_epoch == fitted.best_epoch
    assert loaded.validation_loss == fitted.validation_loss
    np.testing.assert_array_equal(loaded.standardizer.mean, fitted.standardizer.mean)
    np.testing.assert_array_equal(loaded.standardizer.scale, fitted.standardizer.scale)


def test_weights_file_is_a_plain_dict_of_tensors(fitted, tmp_path):
    fitted.save(tmp_path / "mlp")
    state = torch.load(tmp_path / "mlp" / WEIGHTS_FILE, weights_only=True)
    assert type(state) is dict
    assert state.keys() == fitted.network.state_dict().keys()
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    assert all(value.device.type == "cpu" for value in state.values())


class _CreatesFileWhenUnpickled:
    """Unpickling this calls Path.touch(marker): stands in for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_weights_file_holding_a_pickled_object_is_refused(fitted, tmp_path):
    directory = tmp_path / "mlp"
    fitted.save(directory)
    marker = tmp_path / "code_ran"
    torch.save({"0.weight": _CreatesFileWhenUnpickled(marker)}, directory / WEIGHTS_FILE)
    with pytest.raises(pickle.UnpicklingError):
        load_neural_net(directory)
    assert not marker.exists()
    # The same file read without weights_only runs the code: the guard is what stops it.
    torch.load(directory / WEIGHTS_FILE, weights_only=False)
    assert marker.exists()


def test_a_weights_file_holding_a_pickled_module_is_refused(fitted, tmp_path):
    directory = tmp_path / "mlp"
    fitted.save(directory)
    torch.save(fitted.network, directory / WEIGHTS_FILE)
    with pytest.raises(pickle.UnpicklingError):
        load_neural_net(directory)


def test_spec_file_is_json_with_architecture_and_standardization(fitted, tmp_path):
    fitted.save(tmp_path / "mlp")
    spec = json.loads((tmp_path / "mlp" / SPEC_FILE).read_text())
    assert spec["inputs"] == 5
    assert spec["settings"]["hidden"] == [32]
    assert len(spec["mean"]) == len(spec["scale"]) == 5


# --- a spec that does not describe the saved weights ----------------------------------


RUN_ID = str(uuid.UUID(int=7))


def _saved_with_spec(fitted, tmp_path, edit) -> Path:
    """`fitted` saved in a model-store run folder, its network.json changed by `edit`."""
    directory = tmp_path / "models" / "EURUSD" / RUN_ID / "final" / "mlp"
    fitted.save(directory)
    spec = json.loads((directory / SPEC_FILE).read_text())
    edit(spec)
    (directory / SPEC_FILE).write_text(json.dumps(spec))
    return directory


def _refusal(directory: Path) -> str:
    with pytest.raises(StoredDataError) as info:
        load_neural_net(directory)
    message = str(info.value)
    assert message.startswith(f"asset trained_models partition EURUSD: {directory / SPEC_FILE} ")
    assert "dagster asset materialize -m forex_assets --select trained_models" in message
    assert "\n" not in message
    return message


def test_a_spec_asking_for_160_gb_is_refused_before_allocating(fitted, tmp_path):
    def huge(spec):
        spec["inputs"] = 200_000
        spec["settings"]["hidden"] = [200_000]
        spec["mean"] = spec["scale"] = [0.0] * 200_000

    message = _refusal(_saved_with_spec(fitted, tmp_path, huge))
    assert "need 40,000,800,003 parameters (160.0 GB as float32)" in message
    assert (
        f"{WEIGHTS_FILE} beside it holds 291 (1,164 bytes; 0.bias: spec (200000,), file (32,))"
        in (message)
    )


def test_a_spec_of_another_network_is_refused_naming_the_first_mismatch(fitted, tmp_path):
    def other_run(spec):
        spec["settings"]["hidden"] = [32, 16]

    message = _refusal(_saved_with_spec(fitted, tmp_path, other_run))
    assert "(inputs=5, hidden=[32, 16])" in message
    assert "3.bias: spec (16,), file (3,)" in message and "not one network" in message


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda spec: spec.pop("settings"), "no network spec: KeyError"),
        (lambda spec: spec["settings"].update(hidden=[-4]), "hidden=[-4] must be whole numbers"),
        (lambda spec: spec.update(inputs=2.5), "inputs=2.5 and hidden=[32] must be whole"),
        (lambda spec: spec.update(mean=[0.0]), "mean and scale have 1 and 5 entries for inputs=5"),
    ],
)
def test_a_damaged_spec_is_refused_naming_the_file(fitted, tmp_path, edit, problem):
    assert problem in _refusal(_saved_with_spec(fitted, tmp_path, edit))


def test_a_spec_that_is_not_json_is_refused_naming_the_file(fitted, tmp_path):
    directory = _saved_with_spec(fitted, tmp_path, lambda spec: None)
    (directory / SPEC_FILE).write_bytes(b"\x89PNG\r\n")
    assert "no network spec: UnicodeDecodeError" in _refusal(directory)
