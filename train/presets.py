"""Named training recipes. ``seed`` reproduces the seed notebook exactly; ``default`` is the shipped model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class Settings:
    vocab_size: int = 10_000
    max_len: int = 200
    padding: Literal["pre", "post"] = "pre"
    truncating: Literal["pre", "post"] = "pre"
    mask_zero: bool = False
    embedding_dim: int = 128
    embedding_dropout: float = 0.0
    cell: Literal["lstm", "gru"] = "lstm"
    units: int = 64
    dropout: float = 0.5
    max_norm: float | None = None
    batch_size: int = 128
    epochs: int = 4
    learning_rate: float = 1e-3
    weight_decay: float | None = None
    validation_fraction: float = 0.1
    patience: int = 2
    seed: int = 1337
    max_samples: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


PRESETS: dict[str, Settings] = {
    # The seed notebook: keras pad_sequences defaults (pre-padding, pre-truncation), no mask.
    "seed": Settings(),
    # Longer reviews, larger vocabulary, masked so that trailing padding does not change the output;
    # embedding dropout and decoupled weight decay against the overfitting after epoch 2.
    "default": Settings(
        vocab_size=30_000, max_len=600, padding="post", truncating="pre", mask_zero=True,
        embedding_dim=64, embedding_dropout=0.4, units=32, dropout=0.5, weight_decay=0.3, epochs=8,
    ),
}
