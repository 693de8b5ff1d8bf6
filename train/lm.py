"""The pretraining model: the classifier's embedding and BiLSTM read text as two language models.

The forward LSTM's output at position t predicts token t+1, the backward LSTM's predicts token t-1 (Dai & Le
2015, "Semi-supervised Sequence Learning", LM-LSTM, one per direction). Each direction has its own output
layer, trained with a sampled softmax: the true token against ``negatives`` ids drawn from the log-uniform
(Zipf) distribution, which fits a vocabulary ranked by frequency. The negatives are drawn by numpy from
(seed, epoch, batch), so a resumed run sees the same ones as an uninterrupted run.

The layers named ``embedding`` and ``bidirectional`` have the classifier's shapes (``train.model``); their
weights are the pretraining artifact. Imports TensorFlow: import this module late.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from train.pretrain_settings import PretrainSettings


def log_uniform_log_q(ids, vocab_size: int):
    """log of the expected probability of drawing ``ids`` from the log-uniform sampler (tensor op)."""
    ids = ops.cast(ids, "float32")
    return ops.log(ops.log((ids + 2.0) / (ids + 1.0)) / math.log(vocab_size + 1.0))


def draw_negatives(rng: np.random.Generator, rows: int, count: int, vocab_size: int) -> np.ndarray:
    """``(rows, count)`` int32 ids from the log-uniform distribution over ``[0, vocab_size)``."""
    u = rng.random((rows, count))
    ids = np.floor(np.exp(u * math.log(vocab_size + 1.0))).astype(np.int64) - 1
    return np.clip(ids, 0, vocab_size - 1).astype(np.int32)


class SampledSoftmaxLoss(keras.layers.Layer):
    """Per-row mean sampled-softmax loss of predicting ``targets`` from ``hidden`` (positions where ``valid``)."""

    def __init__(self, vocab_size: int, negatives: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.negatives = vocab_size, negatives

    def build(self, input_shape) -> None:
        dim = input_shape[0][-1]
        self.kernel = self.add_weight(shape=(self.vocab_size, dim), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, inputs):
        hidden, targets, valid, negatives = inputs
        log_s = math.log(self.negatives)
        true_logit = ops.sum(hidden * ops.take(self.kernel, targets, axis=0), axis=-1)
        true_logit = true_logit + ops.take(self.bias, targets) - log_uniform_log_q(targets, self.vocab_size) - log_s
        neg_w = ops.take(self.kernel, negatives, axis=0)  # (batch, S, dim)
        neg_b = ops.take(self.bias, negatives) - log_uniform_log_q(negatives, self.vocab_size) - log_s
        neg_logit = ops.einsum("btd,bsd->bts", hidden, neg_w) + neg_b[:, None, :]
        hit = ops.equal(negatives[:, None, :], targets[:, :, None])  # the true token drawn as a negative
        neg_logit = ops.where(hit, -1e9, neg_logit)
        logits = ops.concatenate([true_logit[..., None], neg_logit], axis=-1)
        loss = ops.logsumexp(logits, axis=-1) - true_logit
        valid = ops.cast(valid, "float32")
        return ops.sum(loss * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)


def _shifted(ids, step: int):
    """ids moved ``step`` positions left (+1: the next token) or right (-1: the previous one), zero-filled."""
    zeros = ops.zeros_like(ids[:, :1])
    return ops.concatenate([ids[:, 1:], zeros], axis=1) if step > 0 else ops.concatenate([zeros, ids[:, :-1]], axis=1)


def _identity_loss(y_true, y_pred):
    return y_pred


def build_language_model(settings: PretrainSettings, compile: bool = True) -> keras.Model:
    """Inputs ``token_ids`` (batch, time) and ``negatives`` (batch, S); output the per-row mean loss of both
    directions (train it with the identity loss)."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    negatives = keras.Input(shape=(settings.negatives,), dtype="int32", name="negatives")
    x = keras.layers.Embedding(settings.vocab_size, settings.embedding_dim, mask_zero=True,
                               name="embedding")(token_ids)
    forward, backward = keras.layers.Bidirectional(
        keras.layers.LSTM(settings.units, return_sequences=True), merge_mode=None, name="bidirectional")(x)
    present = ops.not_equal(token_ids, 0)
    losses = []
    for name, hidden, step in (("next_token", forward, 1), ("previous_token", backward, -1)):
        targets = _shifted(token_ids, step)
        valid = ops.logical_and(present, ops.not_equal(targets, 0))
        losses.append(SampledSoftmaxLoss(settings.vocab_size, settings.negatives, name=name)(
            [hidden, targets, valid, negatives]))
    loss = keras.layers.Average(name="loss")(losses)
    model = keras.Model({"token_ids": token_ids, "negatives": negatives}, loss, name="bilstm_language_model")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate, clipnorm=1.0), loss=_identity_loss)
    return model


class ChunkBatches(keras.utils.PyDataset):
    """Batches of token chunks with their negatives; order and negatives depend on (seed, epoch, batch) only."""

    def __init__(self, chunks: np.ndarray, settings: PretrainSettings, seed: int) -> None:
        super().__init__()
        self.chunks, self.settings, self.seed = chunks, settings, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.chunks))

    def __len__(self) -> int:
        return math.ceil(len(self.chunks) / self.settings.batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        size = self.settings.batch_size
        rows = self.order[index * size:(index + 1) * size]
        x = self.chunks[rows]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        negatives = draw_negatives(rng, len(rows), self.settings.negatives, self.settings.vocab_size)
        return {"token_ids": x, "negatives": negatives}, np.zeros(len(rows), dtype=np.float32)
