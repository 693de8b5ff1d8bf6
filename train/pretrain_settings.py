"""Settings of the pretraining stage (``python -m train pretrain``), checked without TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from train.presets import SettingsError
from train.setting_checks import at_least, number


@dataclass(frozen=True)
class PretrainSettings:
    vocab_size: int = 30_000
    embedding_dim: int = 64
    units: int = 32
    chunk_len: int = 200
    """Reviews are cut into pieces of this many tokens (the language model's unroll length)."""
    negatives: int = 512
    """Sampled-softmax negatives per row."""
    batch_size: int = 128
    epochs: int = 5
    learning_rate: float = 2e-3
    validation_fraction: float = 0.02
    patience: int = 1
    seed: int = 1337
    max_reviews: int | None = None
    """Pretrain on a seeded subset of this many reviews (smoke runs)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides: object) -> PretrainSettings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        """Raise :class:`SettingsError` for the first impossible setting."""
        problems = [at_least(self, name, 1) for name in ("epochs", "batch_size", "embedding_dim", "units")]
        problems += [
            at_least(self, "vocab_size", 3, " (padding, out-of-vocabulary and at least one word)"),
            at_least(self, "chunk_len", 2), at_least(self, "negatives", 1), at_least(self, "patience", 0),
            at_least(self, "seed", 0),
            None if self.max_reviews is None else at_least(self, "max_reviews", 20),
            number(self, "learning_rate", 0.0, low_open=True),
            number(self, "validation_fraction", 0.0, 0.5, low_open=True),
        ]
        problem = next((p for p in problems if p), None)
        if problem:
            raise SettingsError(problem)


PRETRAIN_PRESET = PretrainSettings()
