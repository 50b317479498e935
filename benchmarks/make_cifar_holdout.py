"""Make a train/ + test/ image-folder layout with a stratified held-out test part (issue #15).

The CIFAR-10 archive the project develops with holds only the training split
(`SRC/train/<class>/<nnnn>.jpg`, 5,000 per class). This script hard-links (copies if the
target is on another file system) the LAST `--per_class` images of every class (sorted by file
name) into `DST/test/<class>/` and the rest into `DST/train/<class>/`, so every tfopt tool reads
`--dataset=folder:DST` with a fixed, disjoint, class-stratified test part: the figures reported
on it are on a held-out part of the training split, not the CIFAR-10 test split.

    mkdir -p /tmp/cifar10 && tar -xzf cifar10-train.tar.gz -C /tmp/cifar10
    python benchmarks/make_cifar_holdout.py --src=/tmp/cifar10 --dst=/tmp/cifar10_holdout
    # -> /tmp/cifar10_holdout/train (45,000) and /tmp/cifar10_holdout/test (5,000 = 500/class)

Re-running with the same arguments is a no-op; a DST that holds other files is refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys


def _link(src: str, dst: str) -> None:
    if os.path.exists(dst):
        if os.path.samefile(src, dst) or os.path.getsize(src) == os.path.getsize(dst):
            return
        raise ValueError(f"{dst} exists and differs from {src}; use an empty --dst")
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_holdout(src: str, dst: str, per_class: int) -> dict[str, tuple[int, int]]:
    """Link the split; return {class: (n_train, n_test)}. ValueError on a bad layout."""
    train_dir = os.path.join(src, "train")
    if not os.path.isdir(train_dir):
        raise ValueError(f"--src={src}: no train/ folder (expected SRC/train/<class>/<image>)")
    classes = sorted(d for d in os.listdir(train_dir)
                     if os.path.isdir(os.path.join(train_dir, d)) and not d.startswith("."))
    if not classes:
        raise ValueError(f"--src={src}: train/ has no class folders")
    counts = {}
    for name in classes:
        files = sorted(f for f in os.listdir(os.path.join(train_dir, name))
                       if not f.startswith("."))
        if len(files) <= per_class:
            raise ValueError(f"--per_class={per_class}: class {name!r} has only {len(files)} "
                             "images; pass a smaller number")
        cut = len(files) - per_class
        for part, chosen in (("train", files[:cut]), ("test", files[cut:])):
            out = os.path.join(dst, part, name)
            os.makedirs(out, exist_ok=True)
            for f in chosen:
                _link(os.path.join(train_dir, name, f), os.path.join(out, f))
        counts[name] = (cut, per_class)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", required=True, help="folder holding train/<class>/<image>")
    p.add_argument("--dst", required=True, help="target folder (train/ and test/ are made)")
    p.add_argument("--per_class", type=int, default=500, help="held-out images per class")
    a = p.parse_args(argv)
    if a.per_class < 1:
        print(f"error: --per_class={a.per_class}; expected an integer >= 1", file=sys.stderr)
        return 2
    if os.path.abspath(a.src) == os.path.abspath(a.dst):
        print("error: --dst must differ from --src (train/ would hold the test images)",
              file=sys.stderr)
        return 2
    try:
        counts = make_holdout(a.src, a.dst, a.per_class)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n_train = sum(c[0] for c in counts.values())
    n_test = sum(c[1] for c in counts.values())
    print(f"{a.dst}: train/ {n_train} images, test/ {n_test} ({a.per_class} per class, "
          f"{len(counts)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
