"""The Keras model: Embedding -> [SpatialDropout1D] -> Bidirectional(LSTM|GRU) -> Dropout -> Dense.

Two classes: ``Dense(1, sigmoid)``, P(class 1), binary cross-entropy (the seed notebook's head). Three or
more: ``Dense(N, softmax)``, the N class probabilities, sparse categorical cross-entropy.
"""

from __future__ import annotations

import keras

from train.presets import Settings


def build_model(settings: Settings, compile: bool = True, classes: int = 2) -> keras.Model:
    """Functional BiLSTM/BiGRU classifier; input ``token_ids`` (int32), output P(class 1) for two classes,
    else the ``classes`` probabilities."""
    length = None if settings.mask_zero else settings.max_len
    constraint = keras.constraints.MaxNorm(settings.max_norm) if settings.max_norm else None
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[settings.cell]

    token_ids = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(settings.vocab_size, settings.embedding_dim, mask_zero=settings.mask_zero,
                               name="embedding")(token_ids)
    if settings.embedding_dropout:
        # Drops whole embedding channels for a review; identity at inference, passes the mask on.
        x = keras.layers.SpatialDropout1D(settings.embedding_dropout, name="embedding_dropout")(x)
    x = keras.layers.Bidirectional(
        cell(settings.units, kernel_constraint=constraint, recurrent_constraint=constraint),
        name="bidirectional",
    )(x)
    x = keras.layers.Dropout(settings.dropout, name="dropout")(x)
    binary = classes == 2
    score = keras.layers.Dense(1 if binary else classes, activation="sigmoid" if binary else "softmax",
                               kernel_constraint=constraint, name="score")(x)

    model = keras.Model(token_ids, score, name=f"sentiment_bi{settings.cell}")
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(settings.learning_rate, weight_decay=settings.weight_decay),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model
