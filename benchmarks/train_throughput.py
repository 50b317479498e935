"""Training throughput: tfopt's pipeline + trainer vs plain `model.fit` on in-memory tensors.

  (a) tfopt: `tfopt.data.load("fashion_mnist", ...)` (IDX files -> tf.data, shuffled, normalised
      on the fly, prefetched) trained by `tfopt.train.fit` (coupled-L2 SGD, one-cycle schedule).
  (b) plain: the same images decoded once into normalised numpy arrays, `model.fit(x, y,
      batch_size=B, shuffle=True)` with Keras's own SGD(momentum=0.9) and cross-entropy.
Same model, batch size and number of steps. Images/s is measured over the epochs after the
first (which includes tracing); each side is run --repeats times, alternating, best kept.
Target: ratio (a)/(b) >= 0.90.

Run:  python benchmarks/train_throughput.py [--model=tiny_cnn --batch_size=128 --epochs=3]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model", "tiny_cnn", "Registry model id.")
flags.DEFINE_integer("batch_size", 128, "Images per step.", lower_bound=1)
flags.DEFINE_integer("epochs", 3, "Epochs per measurement (the first is warm-up).", lower_bound=2)
flags.DEFINE_integer("limit", None, "Train images used (default: all 60,000).", lower_bound=1)
flags.DEFINE_integer("repeats", 2, "Alternating measurements per side; the best is kept.",
                     lower_bound=1)
flags.DEFINE_boolean("augment", False, "Also apply the paper augmentation in (a).")
FLAGS = flags.FLAGS


class _EpochTimes:
    def __init__(self):
        from tfopt._keras import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(s, epoch, logs=None):
                s.t = time.perf_counter()

            def on_epoch_end(s, epoch, logs=None):
                self.times.append(time.perf_counter() - s.t)
        self.times = []
        self.callback = Timer()


def run_tfopt(num_examples: int) -> float:
    import tfopt.data
    import tfopt.train
    from tfopt._keras import keras
    from tfopt.models import build_model
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    ds, info = tfopt.data.load("fashion_mnist", "train", batch_size=FLAGS.batch_size,
                               limit=FLAGS.limit, augment=FLAGS.augment)
    model = build_model(FLAGS.model, num_classes=info.num_classes, input_shape=info.image_shape)
    timer = _EpochTimes()
    tfopt.train.fit(model, ds, tfopt.train.TrainConfig(epochs=FLAGS.epochs,
                                                      batch_size=FLAGS.batch_size, verbose=0),
                    extra_callbacks=[timer.callback])
    return num_examples * (len(timer.times) - 1) / sum(timer.times[1:])


def run_plain(x, y, num_classes: int) -> float:
    from tfopt._keras import keras
    from tfopt.models import build_model
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(FLAGS.model, num_classes=num_classes, input_shape=x.shape[1:])
    model.compile(keras.optimizers.SGD(0.0125, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    timer = _EpochTimes()
    model.fit(x, y, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs, shuffle=True, verbose=0,
              callbacks=[timer.callback])
    return len(x) * (len(timer.times) - 1) / sum(timer.times[1:])


def main(argv):
    del argv
    import platform

    import tfopt.data
    x, y, info = tfopt.data.load_arrays("fashion_mnist", "train", limit=FLAGS.limit)
    a, b = [], []
    for _ in range(FLAGS.repeats):
        a.append(run_tfopt(len(x)))
        b.append(run_plain(x, y, info.num_classes))
    best_a, best_b = max(a), max(b)
    print(f"model {FLAGS.model}, batch {FLAGS.batch_size}, {len(x)} images/epoch, "
          f"{FLAGS.epochs - 1} timed epochs x {FLAGS.repeats} repeats, "
          f"{platform.machine()} {os.cpu_count()} cores")
    print(f"(a) tfopt pipeline + fit: {best_a:8.0f} images/s  (all: {[round(v) for v in a]})")
    print(f"(b) plain model.fit:      {best_b:8.0f} images/s  (all: {[round(v) for v in b]})")
    print(f"ratio (a)/(b): {best_a / best_b:.3f}  (target >= 0.90)")


if __name__ == "__main__":
    app.run(main)
