"""`tiny_cnn`: a small conv-BN-ReLU CNN for tests, smoke runs and the training benchmark.

Not from the paper. Three 3x3 conv-BN-ReLU stages (16, 32, 32 channels at width 1.0; a 2x2
max-pool after the first two), flatten and a dense layer that outputs logits. At 32x32x3 and
10 classes it has 34,906 trainable parameters (width 1.0): convs 432 + 4,608 + 9,216,
BN 2 x 80, dense 8*8*32*10 + 10 = 20,490. (Flatten rather than global pooling: it learns
Fashion-MNIST to > 80% test accuracy in one epoch on 5,000 images.)

Layer names (the zoo's one scheme): `stem_{conv,bn,relu,pool}`, `s{stage}_b1_{conv,bn,relu}`,
`s1_pool`, `head_*`.
"""

from __future__ import annotations

from tfopt._keras import keras, layers
from tfopt.models.sizing import scale_channels

WIDTHS = (16, 32, 32)   # output channels of the three stages at width_multiplier 1.0
POOLS = (True, True, False)   # a 2x2 max-pool after the stage


def tiny_cnn(techniques: None = None, *, num_classes: int, input_shape=(32, 32, 3),
             width_multiplier: float = 1.0, batch_size: int | None = None,
             base: str = "tiny_cnn", name: str | None = None) -> keras.Model:
    """Build the tiny CNN.

    Args:
      techniques: None (a fixed network; the argument keeps the registry's builder signature).
      num_classes: Logits produced.
      input_shape: (H, W, C) of one image.
      width_multiplier: Scales every conv's channels (`scale_channels`, at least 1 each).
      batch_size: None for training; 1 for the deployment graph.
      base: Ignored (the registry's builder signature).
      name: Model name; None names it "tiny_cnn".
    """
    del techniques, base
    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="image")
    x = inputs
    for i, (width, pool) in enumerate(zip(WIDTHS, POOLS)):
        prefix = "stem" if i == 0 else f"s{i}_b1"
        filters = scale_channels(width, width_multiplier, minimum=1)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{prefix}_bn")(x)
        x = layers.ReLU(name=f"{prefix}_relu")(x)
        if pool:
            x = layers.MaxPooling2D(2, name="stem_pool" if i == 0 else f"s{i}_pool")(x)
    x = layers.Flatten(name="head_flatten")(x)
    outputs = layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name or "tiny_cnn")
