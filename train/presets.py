"""Named training recipes. ``seed`` reproduces the seed notebook exactly; ``default`` is the shipped model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

from train.setting_checks import at_least as _at_least
from train.setting_checks import number as _number
from train.setting_checks import option as _option

MAX_SEED = 2**32 - 1
"""numpy's legacy seeding (``keras.utils.set_random_seed``) takes 0 .. 2**32 - 1."""


class SettingsError(ValueError):
    """A setting no model can be trained with; the one-line message names the option."""


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
    validation: Literal["random", "movie", "auto"] = "random"
    """How validation reviews are held out: a stratified random draw, or whole movies (aclImdb only);
    ``auto``: movies when the source names them (aclImdb), else random."""
    patience: int = 2
    seed: int = 1337
    max_samples: int | None = None
    bag_dim: int = 0
    """Width of the n-gram bag branch (``train.bag``) mixed into the score; 0: the BiLSTM alone."""
    bag_buckets: int = 65_536
    bucket_by_length: bool = False
    """Batch rows of similar length, each batch cut to its longest row (masked, post-padded models only):
    the same model function, far fewer steps on short texts; batches differ from an unbucketed run's."""
    calibrate: bool = False
    """Fit a temperature on the validation rows after training and fold it into the last layer(s)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        """Raise :class:`SettingsError` for the first impossible setting (cheap: no TensorFlow needed)."""
        problem = next((p for p in _problems(self) if p), None)
        if problem:
            raise SettingsError(problem)


def _choice(settings: Settings, name: str, choices: tuple) -> str | None:
    value = getattr(settings, name)
    return None if value in choices and type(value) is type(choices[0]) else \
        f"{_option(name)} must be one of {', '.join(map(str, choices))}, not {value!r}"


def _problems(s: Settings) -> list[str | None]:
    problems = [_at_least(s, name, 1) for name in ("epochs", "batch_size", "max_len", "units", "embedding_dim")]
    problems += [
        _at_least(s, "vocab_size", 3, " (padding, out-of-vocabulary and at least one word)"),
        _at_least(s, "patience", 0),
        _at_least(s, "seed", 0),
        None if not isinstance(s.seed, int) or s.seed <= MAX_SEED else f"--seed must be at most {MAX_SEED}",
        None if s.max_samples is None else _at_least(s, "max_samples", 20),
        _number(s, "dropout", 0.0, 1.0),
        _number(s, "embedding_dropout", 0.0, 1.0),
        _number(s, "learning_rate", 0.0, low_open=True),
        None if s.weight_decay is None else _number(s, "weight_decay", 0.0),
        None if s.max_norm is None else _number(s, "max_norm", 0.0, low_open=True),
        _number(s, "validation_fraction", 0.0, 1.0, low_open=True),
        _choice(s, "padding", ("pre", "post")),
        _choice(s, "truncating", ("pre", "post")),
        _choice(s, "cell", ("lstm", "gru")),
        _choice(s, "validation", ("random", "movie", "auto")),
        _at_least(s, "bag_dim", 0), _at_least(s, "bag_buckets", 1),
        None if not s.bag_dim or s.mask_zero is True else "--bag-dim needs a masked model (the default preset's)",
        None if not s.bag_dim or not isinstance(s.vocab_size, int) or s.vocab_size <= 71_000 else
        "--bag-dim hashes bigrams in int32: --vocab-size must be at most 71000",
        _choice(s, "mask_zero", (False, True)),
        _choice(s, "bucket_by_length", (False, True)),
        _choice(s, "calibrate", (False, True)),
        None if not s.bucket_by_length or (s.mask_zero is True and s.padding == "post") else
        "bucketing by length needs a masked, post-padded model (the default and general presets')",
    ]
    return problems


PRESETS: dict[str, Settings] = {
    # The seed notebook: keras pad_sequences defaults (pre-padding, pre-truncation), no mask.
    "seed": Settings(),
    # Longer reviews, larger vocabulary, masked so that trailing padding does not change the output;
    # embedding dropout and decoupled weight decay against the overfitting after epoch 2.
    "default": Settings(
        vocab_size=30_000, max_len=600, padding="post", truncating="pre", mask_zero=True,
        embedding_dim=64, embedding_dropout=0.4, units=32, dropout=0.5, weight_decay=0.3, epochs=8,
        validation="auto",
    ),
    # Everyday text: aclImdb plus product reviews, tweets and sentences (docs/models/general.md). Short texts
    # dominate, so batches are bucketed by length; the probabilities are calibrated on validation.
    "general": Settings(
        vocab_size=40_000, max_len=600, padding="post", truncating="pre", mask_zero=True,
        embedding_dim=64, embedding_dropout=0.3, units=32, dropout=0.5, weight_decay=0.3, epochs=8,
        validation="random", bag_dim=16, bucket_by_length=True, calibrate=True,
    ),
}
