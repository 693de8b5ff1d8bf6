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


def combined_model(bilstm: keras.Model, bag: keras.Model, weight: float) -> keras.Model:
    """One graph scoring ``sigmoid(weight * BiLSTM logit + (1 - weight) * bag logit)`` (two classes).

    The two trained models' weights are copied; the mixing weight is folded into their last Dense layers,
    so the graph has no other op than the two branches and one Add. Embedding dropout (identity at inference)
    is left out.
    """
    from train.bag import NgramBag

    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embedding = bilstm.get_layer("embedding")
    x = keras.layers.Embedding.from_config(embedding.get_config())(token_ids)
    recurrent = bilstm.get_layer("bidirectional")
    x = keras.layers.Bidirectional.from_config(recurrent.get_config())(x)
    lstm_logit = keras.layers.Dense(1, name="bilstm_logit")(x)
    source_bag = bag.get_layer("ngram_bag")
    bag_logit = keras.layers.Dense(1, name="ngram_bag_logit")(NgramBag.from_config(source_bag.get_config())(token_ids))
    score = keras.layers.Activation("sigmoid", name="score")(keras.layers.Add(name="mixed_logit")([lstm_logit,
                                                                                                    bag_logit]))
    model = keras.Model(token_ids, score, name="sentiment_bilstm_ngram_bag")
    model.get_layer("embedding").set_weights(embedding.get_weights())
    model.get_layer("bidirectional").set_weights(recurrent.get_weights())
    model.get_layer("ngram_bag").set_weights(source_bag.get_weights())
    for name, source, share in (("bilstm_logit", bilstm.get_layer("score"), weight),
                                ("ngram_bag_logit", bag.get_layer("ngram_bag_logit"), 1.0 - weight)):
        kernel, bias = source.get_weights()
        model.get_layer(name).set_weights([kernel * share, bias * share])
    return model


def load_classifier(path) -> keras.Model:
    """Load a trained ``model.keras`` (``safe_mode``), with the n-gram bag layer registered first."""
    import train.bag  # noqa: F401 - registers NgramBag

    return keras.models.load_model(path, safe_mode=True)
