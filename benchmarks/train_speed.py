"""Training speed of every zoo variant relative to a ResNet-8 measured in the same run.

ResNet-8 is MLPerf Tiny's image-classification reference (mlcommons/tiny, `resnet_v1_eembc`:
conv 16 3x3 + BN + ReLU, three residual stacks of 16 / 32 / 64 filters (stride 1 / 2 / 2, a 1x1
projection when the shape changes), 8x8 average pool, dense), built here in plain Keras.

For each model: `model.fit` on random tensors (batch 64, 32x32x3, 10 classes, SGD 0.01,
cross-entropy), the first `--warmup` batches (tracing) excluded from the timing, then
`--steps` timed batches. Each row also gives the forward activations written per image
(`tfopt.metrics.count_activations`) and FLOPs per activation element. ResNet-8 is re-measured
right before every variant (the machine is shared), and each ratio uses that adjacent
measurement. Train GFLOP/s = 3 x fvcore FLOPs (`tfopt.metrics.count_flops`, forward, one image)
x images/s. "÷ ResNet-8" is the ratio of train GFLOP/s, as in issue #12's table (ResNet-8 and
resnet101_v13 have the same FLOPs, so there it equals the images/s ratio, also printed). Then
`min ratio over the 28 paper variants = X (variant)` (the GFLOP/s ratio), and the memory
roofline (benchmarks/roofline.py): a fit of seconds per image ≈ a·activations + c·FLOPs over
every measurement, the copy bandwidth, and the cost per activation element that a model as
activation-heavy as the worst measured would need to reach the 0.30 ratio.

`--qat` measures QAT instead (docs/training_speed.md, "QAT"): per variant, images/s of the float
model (`build_model`, fast grouped convs), of its tfmot QAT copy with the stock grouped
`Conv2D` (`tfopt.compress.qat.quantize(..., grouped_path="native")`) and of the QAT copy with
the fast grouped-conv paths (`grouped_path="auto"`, the default), each with plain `model.fit`
as above, measured one after the other in the same process (also process CPU ms per image, less
sensitive to other jobs on the machine); no ResNet-8. With `--profile`, the
top ops of the float and the fast QAT model.

`--policy=mixed_bfloat16` (or mixed_float16) builds every model, ResNet-8 included, under that
Keras dtype policy: 16-bit activations, float32 weights (docs/training_speed.md, "16-bit
activations").

`--profile` also traces `--profile_steps` steps of each variant with `tf.profiler` and prints
its top TensorFlow ops by summed kernel time (docs/training_speed.md).

Run:  python benchmarks/train_speed.py [--variants=resnet101_v13,vgg19_v08 --steps=10] [--qat]
"""

from __future__ import annotations

import collections
import gc
import glob
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from roofline import (  # noqa: E402  (benchmarks/roofline.py)
    copy_bandwidth, cost_fit, needed_with_fixed_reference)

flags.DEFINE_list("variants", None, "Zoo ids to measure (default: every registered variant).")
flags.DEFINE_integer("steps", 10, "Timed training batches per model.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed batches first (tracing, caches).", lower_bound=1)
flags.DEFINE_integer("batch_size", 64, "Images per batch.", lower_bound=1)
flags.DEFINE_boolean("profile", False, "Also print each variant's top ops (tf.profiler).")
flags.DEFINE_integer("profile_steps", 2, "Batches traced per variant with --profile.",
                     lower_bound=1)
flags.DEFINE_integer("top", 12, "Ops listed per variant with --profile.", lower_bound=1)
flags.DEFINE_boolean("qat", False, "Measure float vs stock QAT vs fast QAT per variant instead "
                     "of the ResNet-8 ratios (module docstring).")
flags.DEFINE_enum("policy", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Keras dtype policy of every model, ResNet-8 included (docs/training_speed.md, "
                  "\"16-bit activations\").")
FLAGS = flags.FLAGS

PAPER_PREFIXES = ("resnet101_v", "vgg19_v")
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def resnet8():
    """MLPerf Tiny ResNet-8 (resnet_v1_eembc): 16-32-64 filters, 3 stacks, plain Keras."""
    from tfopt._keras import keras, layers
    reg = keras.regularizers.l2(1e-4)

    def conv(x, filters, kernel, stride):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same",
                             kernel_initializer="he_normal", kernel_regularizer=reg)(x)

    inputs = keras.Input(INPUT_SHAPE)
    x = layers.ReLU()(layers.BatchNormalization()(conv(inputs, 16, 3, 1)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.ReLU()(layers.BatchNormalization()(conv(x, filters, 3, stride)))
        y = layers.BatchNormalization()(conv(y, filters, 3, 1))
        if stride != 1:
            x = conv(x, filters, 1, stride)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Flatten()(layers.AveragePooling2D(pool_size=int(x.shape[1]))(x))
    outputs = layers.Dense(NUM_CLASSES, activation="softmax",
                           kernel_initializer="he_normal")(x)
    return keras.Model(inputs, outputs, name="resnet8")


def _data(n):
    import tensorflow as tf
    x = tf.random.normal((n, *INPUT_SHAPE), seed=0)
    y = tf.random.uniform((n,), 0, NUM_CLASSES, tf.int32, seed=0)
    return x, y


def _compile(model):
    from tfopt._keras import keras
    last = getattr(model.layers[-1], "layer", model.layers[-1])  # through a QAT wrapper
    from_logits = last.get_config().get("activation") != "softmax"
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))


def images_per_s(model) -> float:
    """Plain `model.fit` throughput after `--warmup` batches (module docstring)."""
    return fit_rates(model)[0]


def fit_rates(model) -> tuple[float, float]:
    """(images/s, process CPU ms per image) of plain `model.fit` after `--warmup` batches.

    The CPU time (all threads of this process) is less sensitive than the wall time to other
    jobs on a shared machine."""
    from tfopt._keras import keras
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append((time.perf_counter(), time.process_time()))

    b = FLAGS.batch_size
    x, y = _data(b * (FLAGS.warmup + FLAGS.steps))
    model.fit(x, y, batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[Stamp()])
    (wall0, cpu0), (wall1, cpu1) = stamps[FLAGS.warmup - 1], stamps[-1]
    images = b * FLAGS.steps
    return images / (wall1 - wall0), 1e3 * (cpu1 - cpu0) / images


def top_ops(model, n_top: int) -> list[tuple[str, float, int]]:
    """(op type, ms per step, calls per step) of the top ops by summed kernel time."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    x, y = _data(FLAGS.batch_size)
    model.train_on_batch(x, y)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(FLAGS.profile_steps):
            model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    ms, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                full = names.get(event.metadata_id, "?")
                if full.startswith("ExecutorState::"):
                    continue  # executor bookkeeping spans that enclose the op kernels
                op = full if "::" in full else full.rsplit(":", 1)[-1]  # "layer/op:OpType"
                ms[op] += event.duration_ps / 1e9 / FLAGS.profile_steps
                calls[op] += 1
    return [(op, t, calls[op] // FLAGS.profile_steps) for op, t in ms.most_common(n_top)]


def forward_costs(model) -> tuple[int, int]:
    """(fvcore FLOPs, activation elements written) of one forward pass of one image, from one
    walk of the layers (`tfopt.metrics.layer_costs`)."""
    from tfopt.metrics import layer_costs
    costs = layer_costs(model)
    return sum(c.flops for c in costs), sum(c.activations for c in costs)


def _row(name, layers, flops, acts, ips, ref_flops, ref_ips) -> float:
    """Print one table row; returns the train GFLOP/s ratio to the adjacent ResNet-8.

    Also prints the forward activations written per image (M elements) and FLOPs per
    activation element: the arithmetic intensity that separates the compute-bound models from
    the memory-bound ones (docs/training_speed.md)."""
    gflops = 3 * flops * ips / 1e9
    ratio = (flops * ips) / (ref_flops * ref_ips)
    print(f"| {name} | {flops / 1e6:.1f} | {layers} | {acts / 1e6:.2f} | "
          f"{flops / acts:.1f} | {ips:.1f} | {gflops:.2f} | {ratio:.3f} | {ips / ref_ips:.3f} |",
          flush=True)
    return ratio


def qat_speeds(variants) -> None:
    """`--qat`: float / stock QAT / fast QAT images/s per variant (module docstring)."""
    import platform

    from tfopt.compress import qat
    from tfopt.models import build_model
    print(f"batch {FLAGS.batch_size}, {INPUT_SHAPE}, {FLAGS.steps} timed steps after "
          f"{FLAGS.warmup} warm-up, {platform.machine()} {os.cpu_count()} cores")
    print("| model | float images/s | stock QAT images/s | fast QAT images/s | fast ÷ stock QAT "
          "| fast QAT ÷ float | CPU ms/image float / stock / fast |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    profiles = {}
    for v in variants:
        model = build_model(v, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)
        ips, cpu = {}, {}
        for kind, path in (("float", None), ("stock", "native"), ("fast", "auto")):
            m = model if path is None else qat.quantize(model, grouped_path=path)
            _compile(m)
            ips[kind], cpu[kind] = fit_rates(m)
            if FLAGS.profile and kind != "stock":
                profiles[f"{v} ({kind})"] = top_ops(m, FLAGS.top)
            if m is not model:
                del m
                gc.collect()
        print(f"| {v} | {ips['float']:.1f} | {ips['stock']:.1f} | {ips['fast']:.1f} | "
              f"{ips['fast'] / ips['stock']:.2f} | {ips['fast'] / ips['float']:.2f} | "
              f"{cpu['float']:.1f} / {cpu['stock']:.1f} / {cpu['fast']:.1f} |", flush=True)
        del model
        gc.collect()
    _print_profiles(profiles)


def _print_profiles(profiles) -> None:
    for v, ops in profiles.items():
        print(f"\ntop ops of {v} (ms per training step, summed over threads):")
        for op, t, n in ops:
            print(f"  {t:9.1f} ms  {n:5d} calls  {op}")


def cpu_flags() -> set[str]:
    """The x86 feature flags of the first CPU in /proc/cpuinfo (empty set elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def main(argv):
    del argv
    import platform

    from tfopt._keras import keras
    from tfopt.models import build_model, list_variants
    keras.mixed_precision.set_global_policy(FLAGS.policy)
    has = cpu_flags()
    print(f"dtype policy {FLAGS.policy}; CPU has avx512_bf16: {'avx512_bf16' in has}, "
          f"amx_bf16: {'amx_bf16' in has}, avx512_fp16: {'avx512_fp16' in has}")
    known = list_variants()
    variants = FLAGS.variants or known
    bad = [v for v in variants if v not in known]
    if bad:
        raise app.UsageError(f"--variants: unknown {bad}; known: {', '.join(known)}")
    if FLAGS.qat:
        qat_speeds(variants)
        return
    ref = resnet8()
    _compile(ref)
    ref_flops, ref_acts = forward_costs(ref)
    print(f"batch {FLAGS.batch_size}, {INPUT_SHAPE}, {FLAGS.steps} timed steps after "
          f"{FLAGS.warmup} warm-up, {platform.machine()} {os.cpu_count()} cores; ResNet-8 is "
          "re-measured before each variant")
    print("| model | FLOPs [M] | layers | activations [M/image] | FLOPs per activation | "
          "images/s | train GFLOP/s | ÷ ResNet-8 | images/s ÷ ResNet-8 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios, profiles, samples = {}, {}, []
    for v in variants:
        ref_ips = images_per_s(ref)
        _row("ResNet-8", len(ref.layers), ref_flops, ref_acts, ref_ips, ref_flops, ref_ips)
        model = build_model(v, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)
        _compile(model)
        ips = images_per_s(model)
        flops, acts = forward_costs(model)
        ratios[v] = _row(v, len(model.layers), flops, acts, ips, ref_flops, ref_ips)
        samples += [(ref_flops, ref_acts, ref_ips), (flops, acts, ips)]
        if FLAGS.profile:
            profiles[v] = top_ops(model, FLAGS.top)
        del model
        gc.collect()
    _print_profiles(profiles)
    paper = {v: r for v, r in ratios.items() if v.startswith(PAPER_PREFIXES)}
    if paper:
        worst = min(paper, key=paper.get)
        scope = "the 28" if len(paper) == 28 else f"{len(paper)} of the 28"
        print(f"min ratio over {scope} paper variants = {paper[worst]:.3f} ({worst})")
    if len(variants) >= 2:
        a, c, error, a_needed = cost_fit(samples, ref_flops / ref_acts)
        print(f"cost fit over the {len(samples)} measurements: seconds per training image ~= "
              f"{a * 1e9:.2f} ns x activation elements + {c * 1e12:.1f} ps x FLOPs "
              f"(median |error| {100 * error:.0f} %)")
        bandwidth = copy_bandwidth()
        print(f"memory bandwidth (np.copyto, 256 MiB, {os.cpu_count()} threads, read + write): "
              f"{bandwidth / 1e9:.1f} GB/s, so a = {a * bandwidth:.1f} bytes of DRAM traffic per "
              "activation element")
        if a_needed is not None:
            print(f"under this fit, ratio 0.30 at the lowest FLOPs per activation measured "
                  f"needs <= {a_needed * 1e9:.2f} ns per activation element "
                  f"({a / a_needed:.1f}x less; {a_needed * bandwidth:.1f} bytes; writing a "
                  "float32 once and reading it back once is 8)")
        worst_flops, worst_acts, _ = min(samples, key=lambda s: s[0] / s[1])
        ref_ips_median = statistics.median(ips for f, _, ips in samples if f == ref_flops)
        fixed = needed_with_fixed_reference(c, worst_flops, worst_acts, ref_flops, ref_ips_median)
        if fixed is not None:
            print(f"with ResNet-8 kept at its measured {ref_ips_median:.0f} images/s (a fast path "
                  f"for the zoo does not change it), the same model needs <= {fixed * 1e9:.2f} ns "
                  f"per activation element ({a / fixed:.1f}x less; {fixed * bandwidth:.1f} bytes)")


if __name__ == "__main__":
    app.run(main)
