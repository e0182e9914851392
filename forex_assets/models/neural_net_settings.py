"""The MLP's settings, importable without torch.

Every process that loads the code location reads these defaults; importing torch there
would cost each step process about a second and a few hundred MB, and only the training
workers need it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NeuralNetSettings:
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 30
    patience: int = 4
