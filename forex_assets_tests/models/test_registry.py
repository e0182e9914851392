"""The model-type registry: discovery from one module per type, and the contract every
registered type keeps (a new type is tested here by being registered).

The contract problem is the models' own: three classes by the size of feature 0, four
noise features, 1,400 training rows, 300 for early stopping and 300 to score, spilled as a
run's training data and prepared by each type's hook before any fit, as training does.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from forex_assets.models.dataset import TrainingData
from forex_assets.models.model_spec import AnySpec, Fitted, PreparedDataError, TrainingRows
from forex_assets.models.registry import ModelTypeError, discover, model_spec, model_specs
from forex_assets.storage.damage import StoredDataError

NAMES = tuple(f"f{i}" for i in range(5))
INNER, VALIDATION = np.arange(1400), np.arange(1400, 1700)


def separable_problem(rows: int = 2000, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5)).astype(np.float32)
    classes = np.where(features[:, 0] < -0.5, 0, np.where(features[:, 0] > 0.5, 2, 1))
    times = np.arange(rows, dtype=np.int64)  # unused by the models
    return TrainingData(features, classes.astype(np.int64), times, times + 1, np.zeros(rows), NAMES)


DATA = separable_problem()
TEST = DATA.features[1700:]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The problem as a run's spilled training data, prepared by every type with a hook."""
    directory = tmp_path_factory.mktemp("training_data")
    DATA.save(directory)
    for spec in model_specs():
        if spec.prepare is not None:
            spec.prepare(directory, spec.settings(), 1)
    return directory


@pytest.fixture(scope="module")
def train(data_dir) -> TrainingRows:
    return TrainingRows(data_dir, INNER, VALIDATION)


@pytest.fixture(scope="module", params=[spec.name for spec in model_specs()])
def fitted(request, train) -> tuple[AnySpec, Fitted]:
    """Each registered type fitted once with its default settings, on one thread."""
    spec = model_spec(request.param)
    return spec, spec.fit(train, spec.settings(), 1, 11)


# --- the project's registry ------------------------------------------------------------


def test_the_registered_types_are_found_in_name_order():
    assert [spec.name for spec in model_specs()] == ["lightgbm", "mlp"]
    assert len({spec.file for spec in model_specs()}) == len(model_specs())


def test_discovering_every_type_imports_no_torch():
    """Every process of the code location discovers the types; torch would cost each
    about a second, so only what fits or loads a network may import it."""
    code = "import sys; from forex_assets.models.registry import model_specs; model_specs(); "
    code += "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_an_unknown_name_lists_the_registered_types():
    with pytest.raises(ModelTypeError, match=r"no model type is named 'xgboost'.*'lightgbm'"):
        model_spec("xgboost")


# --- discovery ------------------------------------------------------------------------

_COPY_OF_LIGHTGBM = """
import dataclasses
from forex_assets.models.registry import model_spec
SPEC = dataclasses.replace(model_spec("lightgbm"), name={name!r})
"""


def _package(tmp_path: Path, monkeypatch, modules: dict[str, str]) -> ModuleType:
    """A real package of model type modules, importable under a name of its own."""
    name = f"types_{uuid.uuid4().hex[:12]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_every_module_with_a_spec_is_discovered_in_name_order(tmp_path, monkeypatch):
    package = _package(
        tmp_path,
        monkeypatch,
        {
            "first": _COPY_OF_LIGHTGBM.format(name="zeta"),
            "second": _COPY_OF_LIGHTGBM.format(name="alpha"),
        },
    )
    assert [spec.name for spec in discover(package)] == ["alpha", "zeta"]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"helper": "VALUE = 1\n"}, r"types_\w+\.helper defines SPEC=None"),
        (
            {
                "one": _COPY_OF_LIGHTGBM.format(name="same"),
                "two": _COPY_OF_LIGHTGBM.format(name="same"),
            },
            r"'same' is defined by both types_\w+\.one and types_\w+\.two",
        ),
        ({}, "registers no model type"),
    ],
    ids=["no spec", "one name twice", "empty"],
)
def test_a_package_that_does_not_register_one_spec_per_module_is_refused(
    tmp_path, monkeypatch, modules, message
):
    package = _package(tmp_path, monkeypatch, modules)
    with pytest.raises(ModelTypeError, match=message):
        discover(package)


# --- the contract of every registered type --------------------------------------------


def test_probabilities_are_float32_distributions_one_row_per_input(fitted):
    spec, fit = fitted
    proba = spec.predict_proba(fit.model, TEST)
    assert proba.dtype == np.float32 and proba.shape == (TEST.shape[0], 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert spec.predict_proba(fit.model, TEST[:0]).shape == (0, 3)
    # Every type learns the planted rule with its default settings.
    truth = np.where(TEST[:, 0] < -0.5, 0, np.where(TEST[:, 0] > 0.5, 2, 1))
    assert np.mean(proba.argmax(axis=1) == truth) > 0.85


def test_the_fit_reports_what_the_ledger_records(fitted):
    spec, fit = fitted
    assert fit.best_iteration >= 1
    assert np.isfinite(fit.validation_loss) and fit.validation_loss > 0
    assert fit.device in {"cpu", "cuda"}
    assert fit.importance is None or list(fit.importance) == list(NAMES)
    assert spec.inputs(fit.model) == len(NAMES)


def test_save_then_load_gives_identical_probabilities_without_unpickling(
    fitted, tmp_path, monkeypatch
):
    spec, fit = fitted
    path = tmp_path / "split_00" / spec.file
    spec.save(fit.model, path)
    assert path.exists()
    assert not [p for p in tmp_path.rglob("*.tmp")]  # atomic writes leave no temp files

    def refuse(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    with monkeypatch.context() as patch:
        for name in ("load", "loads", "Unpickler"):
            patch.setattr(pickle, name, refuse)
        with pytest.raises(AssertionError, match="unpickled"):
            pickle.loads(b"\x80\x04K\x01.")  # the guard is in force
        loaded = spec.load(path)
    np.testing.assert_array_equal(
        spec.predict_proba(loaded, TEST), spec.predict_proba(fit.model, TEST)
    )
    assert spec.inputs(loaded) == len(NAMES)


def test_the_same_seed_gives_the_same_model(fitted, train):
    spec, fit = fitted
    again = spec.fit(TrainingRows(train.data_dir, INNER, VALIDATION), spec.settings(), 1, 11)
    np.testing.assert_array_equal(
        spec.predict_proba(again.model, TEST), spec.predict_proba(fit.model, TEST)
    )


def test_a_missing_file_is_refused_naming_it(fitted, tmp_path):
    spec, _ = fitted
    with pytest.raises(StoredDataError, match=str(tmp_path / "split_00")):
        spec.load(tmp_path / "split_00" / spec.file)


@pytest.mark.parametrize("name", [spec.name for spec in model_specs() if spec.prepare is not None])
def test_a_fit_refuses_a_folder_its_prepare_hook_has_not_seen_naming_it(name, tmp_path):
    """Training runs every hook before any fit; a fit without what its hook writes must
    say which file is missing, never fit on something else."""
    spec = model_spec(name)
    DATA.save(tmp_path)
    with pytest.raises(PreparedDataError, match=str(tmp_path)):
        spec.fit(TrainingRows(tmp_path, INNER, VALIDATION), spec.settings(), 1, 11)
