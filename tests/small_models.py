"""Small functional models shared by the compression tests."""

from tfopt._keras import keras, layers


def conv_dw_grouped_dense():
    """Conv 432 + depthwise 144 + grouped 1x1 128 = 704 conv weights; dense 320 (8x8x3 input)."""
    i = keras.Input((8, 8, 3))
    x = layers.Conv2D(16, 3, padding="same", name="c1")(i)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(32, 1, groups=4, name="g")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(10, name="fc")(x))
