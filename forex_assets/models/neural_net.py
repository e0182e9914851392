"""A torch MLP on the triple-barrier classes: GPU when present, CPU otherwise.

Saved as a `state_dict` plus a JSON file with the architecture and the standardization,
and loaded with ``torch.load(weights_only=True)``, so reading a model file can never
execute code (a pickled module could). Loading checks the JSON against the weights
before it builds the network: a spec that does not describe the saved tensors (edited,
or from another run; one whose layers would take 160 GB) is refused naming the file,
instead of allocating that network or failing in `load_state_dict`.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forex_assets.compute.task_grants import granted_threads
from forex_assets.models.dataset import CLASSES
from forex_assets.models.neural_net_settings import NeuralNetSettings
from forex_assets.storage.atomic import atomic_write_bytes
from forex_assets.storage.model_store import unreadable_model

WEIGHTS_FILE = "weights.pt"
SPEC_FILE = "network.json"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and scale from the training rows; NaN becomes the mean (0)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Standardizer:
        # An all-NaN column (a feature undefined on every training row) is expected: it
        # gets mean 0 and scale 1 below, so numpy's warnings about it are noise.
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(features, axis=0, dtype=np.float64)
            scale = np.nanstd(features, axis=0, dtype=np.float64)
        mean = np.nan_to_num(mean)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, features: np.ndarray) -> np.ndarray:
        # One float32 copy, scaled in place: the feature matrix is the biggest thing a
        # training worker holds, and temporaries would double it.
        scaled = np.array(features, dtype=np.float32, copy=True)
        scaled -= self.mean
        scaled /= self.scale
        return np.nan_to_num(scaled, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def build_network(inputs: int, settings: NeuralNetSettings) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for hidden in settings.hidden:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(settings.dropout)]
        width = hidden
    layers.append(nn.Linear(width, len(CLASSES)))
    return nn.Sequential(*layers)


@dataclass
class FittedNet:
    network: nn.Sequential
    standardizer: Standardizer
    settings: NeuralNetSettings
    best_epoch: int
    validation_loss: float

    @torch.no_grad()
    def predict_proba(self, features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        self.network.eval()
        device = next(self.network.parameters()).device
        scaled = self.standardizer.transform(features)
        out = []
        for start in range(0, scaled.shape[0], batch_size):
            batch = torch.from_numpy(scaled[start : start + batch_size]).to(device)
            out.append(torch.softmax(self.network(batch), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), dtype=np.float32)

    def save(self, directory: Path) -> None:
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        # Serialized in memory: saved to the temporary file, the archive inside would be
        # named after that random name, and the same network would differ byte by byte.
        weights = io.BytesIO()
        torch.save(state, weights)
        atomic_write_bytes(directory / WEIGHTS_FILE, weights.getvalue())
        spec = {
            "inputs": int(self.standardizer.mean.size),
            "settings": asdict(self.settings),
            "mean": self.standardizer.mean.tolist(),
            "scale": self.standardizer.scale.tolist(),
            "best_epoch": self.best_epoch,
            "validation_loss": self.validation_loss,
        }
        atomic_write_bytes(directory / SPEC_FILE, json.dumps(spec).encode())


class _SpecError(ValueError):
    """Why a saved network's files do not describe one loadable network."""


@dataclass(frozen=True)
class _Spec:
    inputs: int
    settings: NeuralNetSettings
    mean: list
    scale: list
    best_epoch: int
    validation_loss: float


def _read_spec(path: Path) -> _Spec:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        raw = dict(document["settings"])
        settings = NeuralNetSettings(**{**raw, "hidden": tuple(raw["hidden"])})
        spec = _Spec(
            document["inputs"],
            settings,
            list(document["mean"]),
            list(document["scale"]),
            document["best_epoch"],
            document["validation_loss"],
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise _SpecError(f"no network spec: {type(error).__name__}: {error}") from None
    sizes = [spec.inputs, *settings.hidden]
    if not all(type(size) is int and size >= 1 for size in sizes):
        raise _SpecError(
            f"inputs={spec.inputs!r} and hidden={list(settings.hidden)!r} must be whole "
            "numbers >= 1"
        )
    if not len(spec.mean) == len(spec.scale) == spec.inputs:
        raise _SpecError(
            f"mean and scale have {len(spec.mean)} and {len(spec.scale)} entries for "
            f"inputs={spec.inputs}"
        )
    return spec


def _size(parameters: int) -> str:
    """Float32 bytes of `parameters`, in the unit a reader compares with their memory."""
    nbytes = 4 * parameters
    if nbytes >= 1e8:
        return f"{nbytes / 1e9:,.1f} GB"
    return f"{nbytes / 1e6:,.1f} MB" if nbytes >= 1e5 else f"{nbytes:,} bytes"


def _check_weights(inputs: int, settings: NeuralNetSettings, state: object) -> None:
    """Refuse `state` unless it holds exactly the tensors the spec's network has; the
    network is built on the meta device for this, which allocates no memory."""
    with torch.device("meta"):
        skeleton = build_network(inputs, settings)
    expected = {key: tuple(value.shape) for key, value in skeleton.state_dict().items()}
    hidden = settings.hidden
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _SpecError(f"{WEIGHTS_FILE} beside it is not a state_dict of tensors")
    found = {key: tuple(value.shape) for key, value in state.items()}
    if found == expected:
        return
    wanted = sum(int(np.prod(shape)) for shape in expected.values())
    held = sum(int(np.prod(shape)) for shape in found.values())
    first = next((k for k in sorted({*expected, *found}) if expected.get(k) != found.get(k)), "?")
    raise _SpecError(
        f"its layers (inputs={inputs}, hidden={list(hidden)}) need {wanted:,} parameters "
        f"({_size(wanted)} as float32) but {WEIGHTS_FILE} beside it holds "
        f"{held:,} ({_size(held)}; {first}: spec {expected.get(first, 'none')}, file {found.get(first, 'none')}); "
        "the two files are not one network"
    )


def load_neural_net(directory: Path) -> FittedNet:
    """Rebuild a saved network; weights are loaded with weights_only=True (no unpickling).

    The spec is checked against the saved tensors before the network is allocated; a
    mismatch raises `StoredDataError` naming `network.json` and the rebuild command.
    """
    spec_path = directory / SPEC_FILE
    try:
        spec = _read_spec(spec_path)
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        _check_weights(spec.inputs, spec.settings, state)
    except _SpecError as error:
        raise unreadable_model(spec_path, "a torch MLP spec", error) from None
    network = build_network(spec.inputs, spec.settings)
    network.load_state_dict(state)
    standardizer = Standardizer(
        np.asarray(spec.mean, dtype=np.float32), np.asarray(spec.scale, dtype=np.float32)
    )
    return FittedNet(network, standardizer, spec.settings, spec.best_epoch, spec.validation_loss)


def fit_neural_net(
    features: np.ndarray,
    classes: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    settings: NeuralNetSettings,
    threads: int,
    seed: int,
    device: torch.device | None = None,
) -> FittedNet:
    """Adam on cross-entropy, keeping the epoch with the lowest validation loss."""
    device = device or default_device()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    standardizer = Standardizer.fit(features)
    # Training rows are standardized batch by batch: a standardized copy of the whole
    # matrix would double the largest thing a training worker holds.
    raw = torch.from_numpy(np.asarray(features, dtype=np.float32))
    mean = torch.from_numpy(standardizer.mean).to(device)
    scale = torch.from_numpy(standardizer.scale).to(device)
    y = torch.from_numpy(np.asarray(classes, dtype=np.int64)).to(device)
    x_val = torch.from_numpy(standardizer.transform(validation[0])).to(device)
    y_val = torch.from_numpy(np.asarray(validation[1], dtype=np.int64)).to(device)
    network = build_network(raw.shape[1], settings).to(device)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_fn = nn.CrossEntropyLoss()
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    for epoch in range(1, settings.max_epochs + 1):
        network.train()
        order = torch.randperm(raw.shape[0], generator=generator)
        for start in range(0, raw.shape[0], settings.batch_size):
            if granted_threads(threads) > threads:  # cores the task was granted since
                threads = granted_threads(threads)
                torch.set_num_threads(threads)
            batch = order[start : start + settings.batch_size]
            x = torch.nan_to_num((raw[batch].to(device) - mean) / scale, 0.0, 0.0, 0.0)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(network(x), y[batch.to(device)]).backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            loss = float(loss_fn(network(x_val), y_val))
        if loss < best_loss - 1e-6:
            best_loss, best_epoch, stale = loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    network.load_state_dict(best_state)
    return FittedNet(network, standardizer, settings, best_epoch, best_loss)
