"""The n-gram bag: a fastText-style branch computed from the same ``token_ids`` as the BiLSTM.

Each token contributes a ``dim``-wide embedding of itself plus one of its bigram with the previous token,
hashed into ``buckets`` rows: ``(previous * BIGRAM_PRIME + token) % buckets`` (int32 arithmetic, exact for a
vocabulary under 70,000 ids). The mean over the review's tokens (padding id 0 left out) goes through one
``Dense(1)``: a logit. Everything is Gather, Mul, Add, Mod and sums, so the exported graph stays free of
Loop and Scan. Imports TensorFlow: import this module late.
"""

from __future__ import annotations

import keras
from keras import ops

BIGRAM_PRIME = 30_011
MAX_VOCAB = (2**31 - 1) // BIGRAM_PRIME  # previous * BIGRAM_PRIME + token must fit in int32


@keras.saving.register_keras_serializable(package="edge_infer")
class NgramBag(keras.layers.Layer):
    """token_ids (batch, time) -> the masked mean of unigram + hashed-bigram embeddings (batch, dim)."""

    def __init__(self, vocab_size: int, dim: int, buckets: int, pooling: str = "mean", **kwargs) -> None:
        super().__init__(**kwargs)
        if vocab_size > MAX_VOCAB:
            raise ValueError(f"the n-gram bag hashes bigrams in int32: a vocabulary of at most {MAX_VOCAB}")
        if pooling not in ("mean", "sum"):
            raise ValueError(f"pooling is mean or sum, not {pooling!r}")
        self.vocab_size, self.dim, self.buckets, self.pooling = vocab_size, dim, buckets, pooling

    def build(self, input_shape) -> None:
        self.unigrams = self.add_weight(shape=(self.vocab_size, self.dim), initializer="uniform", name="unigrams")
        self.bigrams = self.add_weight(shape=(self.buckets, self.dim), initializer="uniform", name="bigrams")

    def call(self, token_ids):
        ids = ops.cast(token_ids, "int32")
        previous = ops.concatenate([ops.zeros_like(ids[:, :1]), ids[:, :-1]], axis=1)
        bigram = (previous * BIGRAM_PRIME + ids) % self.buckets
        present = ops.cast(ops.not_equal(ids, 0), "float32")[..., None]
        summed = ops.sum((ops.take(self.unigrams, ids, axis=0) + ops.take(self.bigrams, bigram, axis=0)) * present,
                         axis=1)
        if self.pooling == "sum":
            return summed
        return summed / ops.maximum(ops.sum(present, axis=1), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim, "buckets": self.buckets,
                "pooling": self.pooling}


def bag_logit(token_ids, vocab_size: int, dim: int, buckets: int, dropout: float = 0.0, pooling: str = "mean"):
    """The branch on a ``token_ids`` tensor: its logit, shape (batch, 1)."""
    x = NgramBag(vocab_size, dim, buckets, pooling, name="ngram_bag")(token_ids)
    if dropout:
        x = keras.layers.Dropout(dropout, name="ngram_bag_dropout")(x)
    return keras.layers.Dense(1, name="ngram_bag_logit")(x)


def build_bag_model(vocab_size: int, dim: int = 16, buckets: int = 65_536, learning_rate: float = 1e-2,
                    pooling: str = "mean") -> keras.Model:
    """The bag alone, as a classifier (P(class 1)); the fastText-style baseline."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    score = keras.layers.Activation("sigmoid", name="score")(bag_logit(token_ids, vocab_size, dim, buckets,
                                                                       pooling=pooling))
    model = keras.Model(token_ids, score, name="ngram_bag")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    return model
