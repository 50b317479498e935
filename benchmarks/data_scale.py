"""Memory and speed of `folder:` sources as the number of images grows (issue #11).

Generates a synthetic JPEG folder (`--n` images, 10 classes, `--size`x`--size` RGB; default
100,000 at 64x64, about 2 KB each) in a temporary directory, plus a `--n / 10` folder made of hard
links to the first images of every class. Each folder is then measured in a fresh subprocess:
`tfopt.data.load(..., "train", augment=True)` (which runs the one-off decode check and the
statistics pass) and one full epoch iterated; the child reports its peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss`, also as it was at the end of the load), the load time
and images/s of the epoch.
Target: `peak RSS ratio 100k/10k` <= 1.2 (memory does not grow with the number of images).

Run:  python benchmarks/data_scale.py            # 100k vs 10k (about 10 min on 2 cores)
      python benchmarks/data_scale.py --n=5000   # a quick check: 5k vs 500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

CLASSES = 10


def _count(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def make_folder(root: str, n: int, size: int) -> None:
    """root/train/class_<k>/<i>.jpg: a per-class colour gradient plus noise, JPEG quality 90."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for k in range(CLASSES):
        os.makedirs(os.path.join(root, "train", f"class_{k}"), exist_ok=True)
    base = [np.clip(255 * ramp * rng.uniform(0.2, 1.0, 3), 0, 255) for _ in range(CLASSES)]
    for i in range(n):
        k = i % CLASSES
        noise = rng.integers(0, 40, size=(size, size, 3))
        arr = np.clip(np.broadcast_to(base[k], (size, size, 3)) + noise, 0, 255).astype(np.uint8)
        path = os.path.join(root, "train", f"class_{k}", f"{i // CLASSES:06d}.jpg")
        Image.fromarray(arr).save(path, quality=90)


def link_subset(src: str, dst: str, n: int) -> None:
    """dst/train/<class>/: hard links to the first n / 10 files of every class of src."""
    for k in range(CLASSES):
        cls = f"class_{k}"
        os.makedirs(os.path.join(dst, "train", cls))
        for name in sorted(os.listdir(os.path.join(src, "train", cls)))[:n // CLASSES]:
            os.link(os.path.join(src, "train", cls, name), os.path.join(dst, "train", cls, name))


def measure(root: str, batch_size: int, cache_dir: str) -> dict:
    """(in the child) load + one epoch; peak RSS of this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfopt.data
    t0 = time.perf_counter()
    ds, info = tfopt.data.load(f"folder:{root}", "train", batch_size=batch_size, augment=True,
                               cache_dir=cache_dir)
    load_s = time.perf_counter() - t0
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    seen = 0
    for _, y in ds:
        seen += int(y.shape[0])
    epoch_s = time.perf_counter() - t0
    return {"images": info.num_examples, "seen": seen, "load_s": round(load_s, 1),
            "epoch_s": round(epoch_s, 1), "images_per_s": round(seen / epoch_s),
            "peak_rss_after_load_mib": round(load_peak),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child(root: str, batch_size: int, cache_dir: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, __file__, f"--_measure={root}",
                           f"--batch_size={batch_size}", f"--cache_dir={cache_dir}"],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"measurement of {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images in the large folder")
    parser.add_argument("--size", type=int, default=64, help="image height = width (pixels)")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--tmp", default=None, help="where to make the folders (default: a "
                        "new temporary directory, removed afterwards)")
    parser.add_argument("--cache_dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        print(json.dumps(measure(args._measure, args.batch_size, args.cache_dir)))
        return
    if args.n < 10 * CLASSES or args.n % (10 * CLASSES) or args.size < 8:
        parser.error(f"--n={args.n} --size={args.size}: expected --n a multiple of "
                     f"{10 * CLASSES} and --size >= 8")
    tmp = tempfile.mkdtemp(prefix="tfopt_data_scale_", dir=args.tmp)
    try:
        large, small = os.path.join(tmp, "large"), os.path.join(tmp, "small")
        t0 = time.perf_counter()
        make_folder(large, args.n, args.size)
        link_subset(large, small, args.n // 10)
        print(f"generated {args.n} JPEGs {args.size}x{args.size} in "
              f"{time.perf_counter() - t0:.0f} s under {tmp}", flush=True)
        rows = {}
        for name, root in (("small", small), ("large", large)):
            rows[name] = _child(root, args.batch_size, os.path.join(tmp, f"cache_{name}"))
            print(json.dumps(rows[name]), flush=True)
        print(f"{'images':>8} {'peak RSS MiB':>13} {'(after load)':>13} {'load s':>7} "
              f"{'epoch s':>8} {'images/s':>9}")
        for row in rows.values():
            print(f"{row['images']:>8} {row['peak_rss_mib']:>13} "
                  f"{row['peak_rss_after_load_mib']:>13} {row['load_s']:>7} "
                  f"{row['epoch_s']:>8} {row['images_per_s']:>9}")
        ratio = rows["large"]["peak_rss_mib"] / rows["small"]["peak_rss_mib"]
        print(f"peak RSS ratio {_count(args.n)}/{_count(args.n // 10)} = {ratio:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
