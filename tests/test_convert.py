"""export.convert.unmasked_twin on small untrained models: the same layers and weights without the mask.

It walks the Keras graph through public API only (``layer.input``, ``layer.output``); these tests fail if a
Keras version changes what those hold. No training, no data: seconds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import skip_module_without_train_extra

skip_module_without_train_extra()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from export.convert import unmasked_twin  # noqa: E402
from train.bag import build_bag_model  # noqa: E402
from train.model import build_model, combined_model  # noqa: E402
from train.presets import PRESETS  # noqa: E402

pytestmark = pytest.mark.needs_tf
VOCAB = 300


def _masked_models() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(3)
    settings = PRESETS["default"].with_overrides(vocab_size=VOCAB, units=4, embedding_dim=8)
    bilstm = build_model(settings, compile=False)
    three = build_model(settings, compile=False, classes=3)
    return {"bilstm": bilstm, "three_labels": three,
            "bilstm_and_bag": combined_model(bilstm, build_bag_model(VOCAB, 4, 64), 0.7)}


@pytest.mark.parametrize("name", ["bilstm", "three_labels", "bilstm_and_bag"])
def test_twin_scores_like_the_model_without_padding_and_has_no_mask(name):
    model = _masked_models()[name]
    twin = unmasked_twin(model)
    assert sorted(layer.name for layer in twin.layers) == sorted(layer.name for layer in model.layers)
    assert twin.get_layer("embedding").mask_zero is False and twin.input_shape == (None, None)
    for source in model.layers:
        copy = twin.get_layer(source.name)
        assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), source.get_weights())), source.name

    ids = np.random.default_rng(0).integers(1, VOCAB, size=(6, 25)).astype("int32")  # no padding id 0
    np.testing.assert_allclose(twin(ids).numpy(), model(ids).numpy(), atol=1e-6)
    padded = np.concatenate([ids, np.zeros((6, 15), dtype="int32")], axis=1)
    np.testing.assert_allclose(model(padded).numpy(), model(ids).numpy(), atol=1e-6)  # the mask at work
    assert np.abs(twin(padded).numpy() - model(padded).numpy()).max() > 1e-4  # the twin reads the padding
