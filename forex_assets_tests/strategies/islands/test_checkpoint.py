"""Island-search checkpoints: one directory per island layout, sealed epoch files, and
recovery from truncated, forged or foreign files by setting them aside (never deleting).

The searches are tiny (two dimensions, four epochs of five generations) and run in this
process (a budget of one thread), so every test takes well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.strategies.islands.checkpoint import (
    DAMAGED_FOLDER,
    MANIFEST_NAME,
    CheckpointWarning,
    DamagedFile,
    _seal,
    _unseal,
    epoch_path,
)
from forex_assets.strategies.islands.replay import ReplayMismatchError
from forex_assets.strategies.islands.result import SearchResult
from forex_assets.strategies.islands.search import island_search
from forex_assets.strategies.islands.settings import IslandSettings

# `train` on a small budget and the pipeline on a larger one: other island layouts.
TRAIN_LAYOUT = IslandSettings(
    islands=1, lower=np.zeros(2), upper=np.ones(2), migration_interval=5, max_generations=20
)
PIPELINE_LAYOUT = IslandSettings(
    islands=2,
    population_sizes=(6, 9),
    lower=np.zeros(2),
    upper=np.ones(2),
    migration_interval=5,
    max_generations=20,
)


def bowl(X: np.ndarray) -> np.ndarray:
    return np.sum((X - 0.3) ** 2, axis=1)


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "1")


@pytest.fixture(scope="module")
def uninterrupted() -> SearchResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STEP_THREADS_ENV, "1")
        return island_search(bowl, 2, PIPELINE_LAYOUT)


def killed_after(epochs: int, root: Path) -> Path:
    """A pipeline-layout search stopped after `epochs` epochs; its search directory."""
    result = island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=root, stop_after_epochs=epochs)
    return result.checkpoint.directory


def assert_same_result(a: SearchResult, b: SearchResult) -> None:
    assert np.array_equal(a.best_x, b.best_x)
    assert (a.best_f, a.best_island, a.history) == (b.best_f, b.best_island, b.history)
    assert (a.evaluations, a.generations, a.restarts) == (b.evaluations, b.generations, b.restarts)


def reseal(path: Path, edit) -> None:
    """Edit an epoch file's payload and seal it again, as a careful forger would."""
    document = json.loads(path.read_text())
    edit(document["payload"])
    body = {k: v for k, v in document.items() if k not in ("sha256", "format")}
    path.write_bytes(_seal(body))


def resume_warning(root: Path) -> tuple[SearchResult, list[str]]:
    with pytest.warns(CheckpointWarning) as caught:
        result = island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=root)
    return result, [str(w.message) for w in caught]


# ------------------------------------------------------------------- layouts


def test_other_layouts_on_one_root_each_resume_their_own_search(tmp_path, uninterrupted):
    train = island_search(bowl, 2, TRAIN_LAYOUT, checkpoint_root=tmp_path, stop_after_epochs=2)
    pipeline = island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=tmp_path)

    assert pipeline.checkpoint.directory != train.checkpoint.directory
    assert pipeline.checkpoint.resumed_epochs == 0
    assert pipeline.checkpoint.other_searches == (
        (train.checkpoint.directory.name, ("islands", "population_sizes")),
    )
    described = pipeline.checkpoint.describe()
    assert described.startswith(f"island search started afresh in {pipeline.checkpoint.directory}")
    assert "differs in islands, population_sizes" in described
    assert_same_result(pipeline, uninterrupted)

    # The train layout, re-executed after its kill, resumes its own two epochs.
    resumed = island_search(bowl, 2, TRAIN_LAYOUT, checkpoint_root=tmp_path)
    assert resumed.checkpoint.directory == train.checkpoint.directory
    assert resumed.checkpoint.resumed_epochs == 2
    assert "resumed from its 2 logged epoch(s)" in resumed.checkpoint.describe()
    assert_same_result(resumed, island_search(bowl, 2, TRAIN_LAYOUT))
    assert not any(tmp_path.rglob(DAMAGED_FOLDER))


def test_a_finished_search_resumes_to_its_result_without_evaluating(tmp_path, uninterrupted):
    island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=tmp_path)
    again = island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=tmp_path)
    assert again.checkpoint.resumed_epochs == 4
    assert_same_result(again, uninterrupted)


# -------------------------------------------------------------- damaged epochs


def test_truncated_epoch_is_set_aside_and_the_search_resumes_before_it(tmp_path, uninterrupted):
    directory = killed_after(3, tmp_path)
    truncated = epoch_path(directory, 1)
    truncated.write_bytes(truncated.read_bytes()[:200])

    result, messages = resume_warning(tmp_path)

    assert result.checkpoint.resumed_epochs == 1
    assert_same_result(result, uninterrupted)
    damaged = directory / DAMAGED_FOLDER
    assert sorted(p.name for p in damaged.iterdir()) == ["epoch_00001.json", "epoch_00002.json"]
    assert len((damaged / "epoch_00001.json").read_bytes()) == 200  # kept as it was found
    assert len(messages) == 2
    assert messages[0].startswith(f"island-search checkpoint file {truncated} is not valid JSON")
    assert "of its 200 bytes), so it was truncated or overwritten" in messages[0]
    assert f"moved it to {damaged / 'epoch_00001.json'}" in messages[0]
    assert "resumed from its 1 logged epoch(s)" in messages[0]
    assert "continues from epoch 1, which is missing or was set aside" in messages[1]
    # The epochs were recomputed and sealed again: the next resume is clean.
    assert (
        island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=tmp_path).checkpoint.set_aside == ()
    )


def test_forged_fitness_is_set_aside_and_recomputed(tmp_path, uninterrupted):
    directory = killed_after(2, tmp_path)
    path = epoch_path(directory, 1)
    document = json.loads(path.read_text())
    generation = next(e for e in document["payload"]["islands"][0] if e["kind"] == "generation")
    generation["f"][0] = -1e9  # a fitness no candidate reaches
    path.write_text(json.dumps(document))

    result, messages = resume_warning(tmp_path)

    assert "does not match the sha256 it carries" in messages[0]
    assert str(path) in messages[0]
    assert result.best_f > -1e9 and result.checkpoint.resumed_epochs == 1
    assert_same_result(result, uninterrupted)
    assert (directory / DAMAGED_FOLDER / "epoch_00001.json").exists()


def test_all_epochs_damaged_restarts_cleanly(tmp_path, uninterrupted):
    directory = killed_after(2, tmp_path)
    epoch_path(directory, 0).write_bytes(b"\x00" * 64)

    result, messages = resume_warning(tmp_path)

    assert "is not valid JSON" in messages[0] or "is not UTF-8 text" in messages[0]
    assert result.checkpoint.resumed_epochs == 0
    assert "started afresh" in messages[0]
    assert_same_result(result, uninterrupted)
    assert len(list((directory / DAMAGED_FOLDER).iterdir())) == 2


def test_set_aside_files_never_overwrite_earlier_ones(tmp_path):
    directory = killed_after(1, tmp_path)
    for _ in range(2):
        epoch_path(directory, 0).write_text("{")
        resume_warning(tmp_path)
    kept = sorted(p.name for p in (directory / DAMAGED_FOLDER).iterdir())
    # The first resume logged epochs 1-3 on the second's bad epoch 0: set aside with it.
    assert kept == [
        "epoch_00000.json",
        "epoch_00000.json.1",
        "epoch_00001.json",
        "epoch_00002.json",
        "epoch_00003.json",
    ]
    assert (directory / DAMAGED_FOLDER / "epoch_00000.json").read_text() == "{"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"epoch": 0, "islands": [[], []], "elapsed_s": 1.0}', "is not a format-2 epoch file"),
        (b"[1, 2, 3]", "is not a format-2 epoch file"),
    ],
)
def test_file_of_another_format_is_set_aside(tmp_path, uninterrupted, content, problem):
    directory = killed_after(1, tmp_path)
    epoch_path(directory, 0).write_bytes(content)
    result, messages = resume_warning(tmp_path)
    assert problem in messages[0]
    assert_same_result(result, uninterrupted)


def test_resealed_log_of_the_wrong_shape_is_set_aside(tmp_path, uninterrupted):
    directory = killed_after(2, tmp_path)
    reseal(epoch_path(directory, 1), lambda payload: payload["islands"].pop())
    result, messages = resume_warning(tmp_path)
    assert "holds a log of the wrong shape: expected a list of 2 island logs" in messages[0]
    assert_same_result(result, uninterrupted)


def test_resealed_edit_of_a_solution_fails_the_replay_naming_the_directory(tmp_path):
    directory = killed_after(1, tmp_path)

    def shift(payload: dict) -> None:
        generation = next(e for e in payload["islands"][0] if e["kind"] == "generation")
        generation["X"][0][0] += 0.01

    reseal(epoch_path(directory, 0), shift)
    with pytest.raises(ReplayMismatchError, match="island 0, generation 1: replaying") as error:
        island_search(bowl, 2, PIPELINE_LAYOUT, checkpoint_root=tmp_path)
    assert f"the log in {directory} cannot be resumed: move that directory aside" in str(
        error.value
    )


def test_damaged_manifest_sets_the_search_aside_and_restarts(tmp_path, uninterrupted):
    directory = killed_after(2, tmp_path)
    (directory / MANIFEST_NAME).write_text('{"format": 2')
    result, messages = resume_warning(tmp_path)
    assert messages[0].startswith(f"island-search checkpoint file {directory / MANIFEST_NAME}")
    assert f"belongs to a search whose manifest {MANIFEST_NAME} was set aside" in messages[1]
    assert result.checkpoint.resumed_epochs == 0
    assert_same_result(result, uninterrupted)
    assert (directory / MANIFEST_NAME).exists()


# --------------------------------------------------------------- sealed files

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(payload=json_values, where=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255))
def test_any_changed_byte_is_caught_or_changes_nothing(tmp_path_factory, payload, where, byte):
    path = tmp_path_factory.mktemp("sealed") / "epoch_00000.json"
    sealed = _seal({"kind": "epoch", "epoch": 0, "payload": payload})
    path.write_bytes(sealed)
    assert _unseal(path, "epoch", 0) == payload
    position = int(where * len(sealed))
    path.write_bytes(sealed[:position] + bytes([byte]) + sealed[position + 1 :])
    with contextlib.suppress(DamagedFile):
        assert _unseal(path, "epoch", 0) == payload  # e.g. 1e-05 spelled 1E-05
    path.write_bytes(sealed[:position])
    with pytest.raises(DamagedFile):
        _unseal(path, "epoch", 0)


def test_seal_hashes_the_canonical_payload(tmp_path):
    sealed = json.loads(_seal({"kind": "manifest", "payload": {"b": 1.5, "a": [1, 2]}}))
    body = {k: v for k, v in sealed.items() if k != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert sealed["sha256"] == hashlib.sha256(canonical).hexdigest()
