"""OCNNA scoring cost: scoring time / one forward pass over the same N images (target <= 3).

Run: .venv/bin/python benchmarks/ocnna_cost.py --variant=vgg16 --width=0.25 --n=1000
Expect: well under a minute on 2 CPU cores at width 0.25, 32x32 inputs.

Both timings process the same N images in batches of --batch. "cold" includes building and
tracing the tf.function (the scoring runs a fresh multi-output feature model each call);
"warm" repeats the call. The forward pass is the plain model's logits.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _forward_seconds(model, x, batch):
    import tensorflow as tf

    fn = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        fn(tf.convert_to_tensor(x[i:i + batch])).numpy()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="vgg16", help="registry id (falls back to vgg19_v01)")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--n_components", default="none", help="none, an int or a float in (0, 1)")
    args = p.parse_args(argv)
    import tfopt
    from tfopt.compress import ocnna

    variant = args.variant if args.variant in tfopt.list_variants() else "vgg19_v01"
    model = tfopt.build_model(variant, num_classes=10, width_multiplier=args.width)
    nc = None if args.n_components == "none" else (
        float(args.n_components) if "." in args.n_components else int(args.n_components))
    x = np.random.default_rng(0).normal(size=(args.n,) + model.input_shape[1:]).astype("float32")

    fwd_cold = _forward_seconds(model, x, args.batch)
    fwd_warm = _forward_seconds(model, x, args.batch)
    t0 = time.perf_counter()
    ocnna.score_filters(model, x, batch_size=args.batch, n_components=nc)
    score_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ocnna.score_filters(model, x, batch_size=args.batch, n_components=nc)
    score_second = time.perf_counter() - t0
    fwd_warm = min(fwd_warm, _forward_seconds(model, x, args.batch))

    print(f"model={variant} width={args.width} N={args.n} batch={args.batch} "
          f"n_components={nc} params={model.count_params():,}")
    print(f"forward pass: cold {fwd_cold:.2f} s, warm {fwd_warm:.2f} s")
    print(f"OCNNA scoring: first call {score_cold:.2f} s, second call {score_second:.2f} s")
    print(f"ratio scoring/forward (both cold): {score_cold / fwd_cold:.2f}")
    print(f"ratio scoring (second call) / forward (warm): {score_second / fwd_warm:.2f}  "
          "(target <= 3)")


if __name__ == "__main__":
    main()
