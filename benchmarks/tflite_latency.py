"""float32 vs int8 TFLite: latency (LiteRT, 1 thread), file size and TFLM arena, per zoo variant.

    python benchmarks/tflite_latency.py                       # default variants, width 0.25
    python benchmarks/tflite_latency.py --variants=vgg19_v01,tiny_cnn --width=0.5 --runs=100

Models have random (untrained) weights: latency and size do not depend on the values; int8
is calibrated on 16 synthetic images. Latency is the median of `--runs` invocations after
10 warm-up ones (LiteRT default kernels, i.e. XNNPACK, batch 1, 32x32x3 input). Targets
(issue 6): int8/float32 latency <= 0.5 at 1 thread, int8 bytes / float32 bytes <= 0.27.
Prints a markdown table (paste it into README / docs/deployment.md with the command line).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_VARIANTS = ("tiny_cnn", "vgg19_v01", "vgg19_v13", "resnet101_v01", "resnet101_v15",
                    "mobilenet_v1", "resnet50")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="comma-separated zoo ids (unknown ids are listed and skipped)")
    p.add_argument("--width", type=float, default=0.25, help="width_multiplier")
    p.add_argument("--runs", type=int, default=50, help="timed invocations (>= 50)")
    p.add_argument("--image_size", type=int, default=32)
    args = p.parse_args(argv)
    if args.runs < 50:
        p.error(f"--runs={args.runs}; need >= 50")

    import numpy as np

    from tfopt.models import build_model, list_variants
    from tfopt.tflite import micro
    from tfopt.tflite.convert import convert
    from tfopt.tflite.evaluate import latency

    known = set(list_variants())
    wanted = [v for v in args.variants.split(",") if v]
    missing = [v for v in wanted if v not in known]
    shape = (args.image_size, args.image_size, 3)
    x = np.random.default_rng(0).standard_normal((16,) + shape).astype(np.float32)
    rows = []
    for vid in (v for v in wanted if v in known):
        t0 = time.time()
        model = build_model(vid, num_classes=10, input_shape=shape, width_multiplier=args.width)
        f32 = convert(model, "float32", name=vid)
        i8 = convert(model, "int8", representative_data=x, name=vid)
        lat_f = latency(f32.content, num_threads=1, runs=args.runs, warmup=10)["median_ms"]
        lat_i = latency(i8.content, num_threads=1, runs=args.runs, warmup=10)["median_ms"]
        arena = None
        if micro.micro_available():
            arena = micro.run_micro(i8.content, num_samples=1, compare=False,
                                    name=vid).arena_bytes
        rows.append((vid, f32.size_bytes, i8.size_bytes, lat_f, lat_i, arena))
        print(f"# {vid}: {time.time() - t0:.1f} s", file=sys.stderr)

    print(f"LiteRT {platform.machine()}, {os.cpu_count()} CPUs, 1 thread, width "
          f"{args.width}, input {shape}, median of {args.runs} runs\n")
    print("| variant | float32 B | int8 B | int8/f32 bytes | float32 ms | int8 ms "
          "| int8/f32 latency | TFLM arena B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for vid, fb, ib, lf, li, arena in rows:
        print(f"| {vid} | {fb:,} | {ib:,} | {ib / fb:.3f} | {lf:.3f} | {li:.3f} | "
              f"{li / lf:.2f} | {'n/a' if arena is None else f'{arena:,}'} |")
    if missing:
        print(f"\nnot in the zoo (skipped): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
