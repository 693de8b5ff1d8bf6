"""The distillation teacher: a logistic regression on the unigrams and hashed bigrams present in a review.

On aclImdb it is the strongest cheap model (``bench/baselines.py``). ``--unlabeled`` fits it on the fit split,
and its probabilities on the unlabelled reviews become the BiLSTM's soft targets for them. Imports TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np

BUCKETS = 2**20
PRIME = 1_000_003


def ngram_features(ids: np.ndarray) -> np.ndarray:
    """Unique hashed unigram and bigram ids (+1; 0 is padding) of each row of post-padded ``ids``."""
    rows = []
    for row in ids:
        tokens = row[row != 0].astype(np.int64)
        grams = np.concatenate([tokens, tokens[:-1] * PRIME + tokens[1:] + 7]) % (BUCKETS - 1) + 1
        rows.append(np.unique(grams))
    out = np.zeros((len(rows), max(1, max((len(r) for r in rows), default=1))), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def logistic_regression(learning_rate: float = 1e-3) -> keras.Model:
    """One weight per present n-gram, summed, plus a bias: P(class 1)."""
    features = keras.Input(shape=(None,), dtype="int32")
    weights = keras.layers.Embedding(BUCKETS, 1, embeddings_initializer="zeros")(features)
    present = keras.ops.cast(keras.ops.not_equal(features, 0), "float32")[..., None]
    score = keras.layers.Activation("sigmoid")(keras.layers.Dense(1)(keras.ops.sum(weights * present, axis=1)))
    model = keras.Model(features, score, name="ngram_logistic_regression")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit_teacher(fit: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray], seed: int,
                verbose: int = 2) -> tuple[keras.Model, dict[str, float]]:
    """Fit on ``fit`` (token ids, labels) with early stopping on ``validation``; (model, its figures)."""
    keras.utils.set_random_seed(seed)
    model = logistic_regression()
    x_fit, x_val = ngram_features(fit[0]), ngram_features(validation[0])
    stop = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x_fit, fit[1], validation_data=(x_val, validation[1]), epochs=30, batch_size=64,
                        callbacks=[stop], verbose=verbose)
    loss, accuracy = model.evaluate(x_val, validation[1], batch_size=512, verbose=0)
    return model, {"validation_loss": float(loss), "validation_accuracy": float(accuracy),
                   "epochs": len(history.history["loss"])}


def soft_targets(teacher: keras.Model, ids: np.ndarray) -> np.ndarray:
    """The teacher's P(class 1) for each row of ``ids`` (float32)."""
    return teacher.predict(ngram_features(ids), batch_size=512, verbose=0)[:, 0].astype(np.float32)
