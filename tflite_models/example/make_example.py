"""Regenerates this folder: a tiny int8 Fashion-MNIST classifier and its firmware files.

    .venv/bin/python tflite_models/example/make_example.py      # ~1 min on 2 CPU cores

tiny_cnn (tfopt/models/tiny.py) at width 0.125 on 28x28x1 input, trained 2 epochs (Adam 3e-3,
batch 64) on the first 10,000 train images, int8 calibrated on 200 train images, accuracy
measured with LiteRT on the first 2,000 test images; arena bytes from TFLite Micro.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfopt import data
from tfopt._keras import keras
from tfopt.models import build_model
from tfopt.tflite import convert_model, evaluate_tflite, export_model

HERE = pathlib.Path(__file__).resolve().parent


def main():
    keras.utils.set_random_seed(0)
    x_tr, y_tr, _ = data.load_arrays("fashion_mnist", "train", limit=10_000)
    x_te, y_te, _ = data.load_arrays("fashion_mnist", "test", limit=2_000)
    model = build_model("tiny_cnn", num_classes=10, input_shape=(28, 28, 1),
                        width_multiplier=0.125)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=64, epochs=2, verbose=2)
    result = convert_model(model, "int8", representative_data="fashion_mnist",
                     name="fmnist_tiny_int8")
    report = evaluate_tflite(result.content, x_te, y_te, keras_model=model, latency_runs=0)
    print(f"int8 {report.accuracy:.4f} vs keras {report.keras_accuracy:.4f} "
          f"({report.accuracy_diff_pp:+.2f} pp)")
    export_model(result.content, HERE, name="fmnist_tiny_int8", x=x_te, y=y_te)


if __name__ == "__main__":
    main()
