"""Keras pieces of a resumable, reproducible fit (imports TensorFlow: import this module late).

A run killed after epoch n and resumed continues exactly as the uninterrupted run: the batches of each
epoch depend only on (seed, epoch), the checkpoint restores the model variables (dropout RNG state
included) and the optimizer's, and EarlyStopping's state (wait, best, best epoch, best weights) is part
of the same checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edge_infer.storage import atomic_write_text
from train.checkpoint import CheckpointError, ResumeState, commit

log = logging.getLogger(__name__)


class EpochBatches(keras.utils.PyDataset):
    """Training batches whose order is a function of (seed, epoch) only; :class:`ShuffleEachEpoch` sets the epoch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                 sample_weights: np.ndarray | None = None) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.sample_weights = sample_weights
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.sample_weights is None:
            return self.x[rows], self.y[rows]
        return self.x[rows], self.y[rows], self.sample_weights[rows]


class LengthBatches(EpochBatches):
    """:class:`EpochBatches` of rows of similar length, each cut to its longest row.

    Exact for a masked model fed post-padded rows: the trailing padding cut off is masked anyway. Each epoch
    shuffles the rows by (seed, epoch), sorts each window of ``WINDOW`` batches by length, cuts it into
    batches and shuffles the batches. ``shuffle=False`` keeps one fixed order (for validation).
    """

    WINDOW = 50

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                 sample_weights: np.ndarray | None = None, shuffle: bool = True) -> None:
        self.lengths = np.maximum(1, (x != 0).sum(axis=1))
        self.shuffle = shuffle
        super().__init__(x, y, batch_size, seed, sample_weights)

    def set_epoch(self, epoch: int) -> None:
        size = self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            self.batches = [order[i:i + size] for i in range(0, len(order), size)]
            return
        rng = np.random.default_rng([self.seed, epoch])
        order, batches = rng.permutation(len(self.x)), []
        for start in range(0, len(order), size * self.WINDOW):
            window = order[start:start + size * self.WINDOW]
            window = window[np.argsort(self.lengths[window], kind="stable")]
            batches += [window[i:i + size] for i in range(0, len(window), size)]
        self.batches = [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        rows = self.batches[index]
        x = self.x[rows, :int(self.lengths[rows].max())]
        if self.sample_weights is None:
            return x, self.y[rows]
        return x, self.y[rows], self.sample_weights[rows]

    def dataset(self):
        """A ``tf.data.Dataset`` over the batches of the current epoch, with a free length dimension (a
        ``PyDataset`` would fix the shape seen in its first two batches)."""
        import tensorflow as tf

        def batches():
            for index in range(len(self)):
                yield self[index]

        first = self[0]
        signature = tuple(tf.TensorSpec((None,) * a.ndim, tf.as_dtype(a.dtype)) for a in first)
        dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


class ShuffleEachEpoch(keras.callbacks.Callback):
    """Tells :class:`EpochBatches` which epoch starts (fit counts epochs from ``initial_epoch`` on resume)."""

    def __init__(self, batches: EpochBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.set_epoch(epoch)


class EarlyStop(keras.callbacks.Callback):
    """EarlyStopping on ``val_loss`` that keeps the best epoch's weights, with a state that survives a resume.

    Same rule as ``keras.callbacks.EarlyStopping(patience=p, restore_best_weights=True)``: stop once the
    validation loss has not improved for ``patience`` epochs; at the end, put back the best epoch's weights.
    """

    def __init__(self, patience: int, resume: ResumeState | None = None) -> None:
        super().__init__()
        self.patience = patience
        state = resume.early_stopping if resume else {}
        self.wait: int = state.get("wait", 0)
        self.best: float | None = state.get("best")
        self.best_epoch: int | None = state.get("best_epoch")  # 1-based
        self.stopped: bool = state.get("stopped", False)
        self.best_weights = resume.load_best_weights() if resume else None
        self.improved = False

    def state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch, "stopped": self.stopped}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = float((logs or {})["val_loss"])
        self.improved = self.best is None or current < self.best
        if self.improved:
            self.best, self.best_epoch, self.wait = current, epoch + 1, 0
            self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped = True
            self.model.stop_training = True
            log.info("early stopping after epoch %d: no better validation loss for %d epochs", epoch + 1, self.wait)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            log.info("keeping the weights of epoch %s (validation loss %.4f)", self.best_epoch, self.best)


class Checkpoint(keras.callbacks.Callback):
    """Commits, at the end of each epoch, the model and optimizer variables and :class:`EarlyStop`'s state.

    Must come after :class:`EarlyStop` in the callback list, so that it saves that epoch's decision.
    """

    def __init__(self, backup: Path, early_stop: EarlyStop) -> None:
        super().__init__()
        self.backup, self.early_stop = backup, early_stop

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        commit(self.backup, epoch + 1, [v.numpy() for v in self.model.variables],
               [v.numpy() for v in self.model.optimizer.variables], self.early_stop.state(),
               self.early_stop.best_weights if self.early_stop.improved else None)


class TrainingClock(keras.callbacks.Callback):
    """Saves, each epoch, the seconds this run has trained so far.

    ``earlier_s`` is the time spent by earlier, interrupted processes of the same run, so the report's
    wall time covers the whole run after a resume.
    """

    def __init__(self, path: Path, started: float) -> None:
        super().__init__()
        self.path, self.started = path, started
        self.earlier_s = json.loads(path.read_text())["seconds"] if path.exists() else 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        atomic_write_text(self.path, json.dumps({"seconds": self.earlier_s + time.time() - self.started}))


def _assign(variables: list, values: list[np.ndarray], what: str, resume: ResumeState) -> None:
    shapes = [tuple(v.shape) for v in variables]
    if shapes != [a.shape for a in values]:
        raise CheckpointError(f"{resume.backup.parent}: the checkpoint's {what} variables do not fit this model; "
                              "add --restart to discard it and start over")
    for variable, value in zip(variables, values):
        variable.assign(value)


def restore(model: keras.Model, resume: ResumeState) -> None:
    """Put back the model variables (dropout RNG state included) and optimizer state of ``resume``."""
    model_values, optimizer_values = resume.load_variables()
    model.optimizer.build(model.trainable_variables)
    _assign(model.variables, model_values, "model", resume)
    _assign(model.optimizer.variables, optimizer_values, "optimizer", resume)
