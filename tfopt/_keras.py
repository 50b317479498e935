"""The one Keras import of tfopt: Keras 2 (`tf_keras`), never Keras 3.

Every other module does `from tfopt._keras import keras, layers`.
"""

import tfopt  # noqa: F401  (sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads)
import tf_keras as keras

layers = keras.layers

__all__ = ["keras", "layers"]
