"""The seed paper's classifier: MobileNetV2 → GAP → Dense(128, ReLU) → Dense(K) → softmax.

Imports Keras, so import this module only where TensorFlow is wanted (training, export, the
``.keras`` serving path). Layers are named so that the rest of ``ml`` finds them by name:

- ``image``: input, RGB float32 in [0, 1] (the paper's contract, see ``ml.preprocessing``);
- ``to_backbone_range``: maps [0, 1] to the [-1, 1] MobileNetV2 was trained on, inside the
  model so that training and serving cannot disagree;
- ``backbone``: MobileNetV2 without its top; its output (``out_relu``, the last convolutional
  feature maps) is the Grad-CAM target;
- ``pool``, ``hidden`` (128, ReLU), ``logits`` (K, no activation) and ``probabilities``.

The logits are a layer of their own so that temperature scaling and Grad-CAM can use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

BACKBONE = "backbone"
# The fine-tune recipe unfreezes the 7×7 stage: blocks 14–16 and Conv_1. Its input is this
# layer's output (block 14 has a residual connection, but onto this very tensor).
FINETUNE_CUT = "block_13_project_BN"


def build_classifier(
    num_classes: int,
    *,
    weights: str | Path | None,
    input_size: Sequence[int] = (224, 224),
    alpha: float = 1.0,
    hidden_units: int = 128,
) -> keras.Model:
    """Build the paper's model with a frozen backbone.

    Args:
        num_classes: K, the number of output classes.
        weights: path to MobileNetV2 no-top ImageNet weights (``.h5``), or None for random
            initialisation (tests). ``"imagenet"`` would try to download, so it is refused.
        input_size: (height, width); the weights work for any size of at least 32×32.
        alpha: MobileNetV2 width multiplier (the shared weights are for 1.0).

    Raises:
        ValueError: ``weights="imagenet"`` or a weights path that does not exist.
    """
    if weights is not None:
        if str(weights) == "imagenet":
            raise ValueError(
                'weights="imagenet" downloads from the internet; pass the path of the no-top '
                "weights file instead (e.g. --backbone-weights PATH)"
            )
        if not Path(weights).is_file():
            raise ValueError(f"backbone weights file not found: {weights}")
        weights = str(weights)
    height, width = int(input_size[0]), int(input_size[1])
    backbone = keras.applications.MobileNetV2(
        input_shape=(height, width, 3),
        alpha=alpha,
        include_top=False,
        weights=weights,
        name=BACKBONE,
    )
    backbone.trainable = False

    image = keras.Input(shape=(height, width, 3), dtype="float32", name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_backbone_range")(image)
    # training=False keeps BatchNormalization in inference mode even when the top of the
    # backbone is unfrozen later: its statistics are folded ImageNet ones, and batches of 16
    # are too small to re-estimate them.
    features = backbone(x, training=False)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    hidden = layers.Dense(hidden_units, activation="relu", name="hidden")(pooled)
    logits = layers.Dense(num_classes, name="logits")(hidden)
    probabilities = layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(image, probabilities, name="cxr_mobilenetv2")


def unfreeze_top(model: keras.Model, from_layer: str = "block_14_expand") -> int:
    """Make the backbone trainable from ``from_layer`` on, BatchNormalization excluded.

    Returns the number of layers unfrozen. BatchNormalization layers stay frozen (in
    Keras 3 a frozen BN layer also runs in inference mode), the usual fine-tuning choice.
    """
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = True
    names = [layer.name for layer in backbone.layers]
    if from_layer not in names:
        raise ValueError(f"layer {from_layer!r} is not in the backbone")
    start = names.index(from_layer)
    unfrozen = 0
    for index, layer in enumerate(backbone.layers):
        trainable = index >= start and not isinstance(layer, layers.BatchNormalization)
        layer.trainable = trainable
        unfrozen += int(trainable and bool(layer.weights))
    return unfrozen


class GradCamWeights(layers.Layer):
    """Grad-CAM channel weights for every class, in closed form from the head's weights.

    With GAP → Dense(ReLU) → Dense, the gradient of logit c with respect to the pooled
    features is ``W1 · (mask ⊙ W2[:, c])``, where ``mask`` marks the active hidden units;
    Grad-CAM's weights are that gradient divided by the number of feature-map positions, a
    constant that the final [0, 1] normalisation cancels. Output: (batch, channels, classes).
    Computing it in the graph lets the LiteRT model serve Grad-CAM without autodiff.
    """

    def __init__(self, hidden: layers.Dense, logits: layers.Dense, **kwargs):
        super().__init__(**kwargs)
        self._hidden = hidden
        self._logits = logits

    def call(self, hidden_activations: Any) -> Any:  # a backend tensor
        mask = ops.cast(ops.greater(hidden_activations, 0.0), hidden_activations.dtype)
        masked = ops.expand_dims(self._hidden.kernel, 0) * ops.expand_dims(mask, 1)
        return ops.matmul(masked, self._logits.kernel)


def serving_model(model: keras.Model) -> keras.Model:
    """Rewire a trained classifier to output ``[logits, features, gradcam_weights]``.

    The layers are shared with ``model`` (no copy). Probabilities are left out on purpose:
    the server applies the temperature to the logits and then the softmax.
    """
    image = model.input
    x = model.get_layer("to_backbone_range")(image)
    features = model.get_layer(BACKBONE)(x, training=False)
    hidden_layer = model.get_layer("hidden")
    logits_layer = model.get_layer("logits")
    hidden = hidden_layer(model.get_layer("pool")(features))
    logits = logits_layer(hidden)
    weights = GradCamWeights(hidden_layer, logits_layer, name="gradcam_weights")(hidden)
    return keras.Model(image, [logits, features, weights], name="cxr_serving")
