"""Memory roofline of CPU training: a two-term cost fit and a bandwidth probe.

Used by benchmarks/train_speed.py (its last lines; docs/training_speed.md, last section). Kept
apart from that script so that tests can import it without its absl flags.
"""

from __future__ import annotations

import os
import time


def cost_fit(samples, ref_flops_per_act: float, target_ratio: float = 0.30):
    """Fit seconds per training image ≈ a·activations + c·FLOPs over measured models.

    samples: (forward FLOPs per image, activation elements per image, images/s) per model.
    Least squares on the relative error. Returns (a [s per element], c [s per FLOP], median
    |relative error|, a_needed): under the fit, a model with the lowest FLOPs per activation of
    the samples reaches `target_ratio` of the train GFLOP/s of a model with
    `ref_flops_per_act` (ResNet-8) only if a falls to a_needed (None when no a > 0 does)."""
    import numpy as np
    flops, acts, ips = (np.array(col, float) for col in zip(*samples))
    design = np.stack([acts * ips, flops * ips], axis=1)  # (a·A + c·F) / seconds ≈ 1
    (a, c), *_ = np.linalg.lstsq(design, np.ones(len(ips)), rcond=None)
    error = float(np.median(np.abs(design @ np.array([a, c]) - 1.0)))
    p, q, r = float((flops / acts).min()), ref_flops_per_act, target_ratio
    # ratio = (p / (a + c p)) / (q / (a + c q)) = r  =>  a = c p q (r - 1) / (p - r q)
    a_needed = c * p * q * (r - 1) / (p - r * q) if p < r * q else None
    return float(a), float(c), error, a_needed


def needed_with_fixed_reference(c: float, flops: float, acts: float, ref_flops: float,
                                ref_ips: float, target_ratio: float = 0.30) -> float | None:
    """Activation cost [s per element] at which a model of `flops` FLOPs and `acts` activation
    elements per image reaches `target_ratio` of the train GFLOP/s of a reference measured at
    `ref_ips` images/s with `ref_flops` FLOPs, when the reference keeps its measured speed (a fast
    path for the zoo leaves the plain-Keras ResNet-8 unchanged) and the FLOPs still cost c each.
    None when the FLOPs alone already take longer than the time allowed."""
    allowed = flops / (target_ratio * ref_flops * ref_ips)  # seconds per image
    left = allowed - c * flops
    return left / acts if left > 0 else None


def copy_bandwidth(mib: int = 256, rounds: int = 5) -> float:
    """DRAM bandwidth [bytes/s, read + write] of `np.copyto` of `mib` MiB split over one
    thread per core (numpy releases the GIL while it copies); best of `rounds`."""
    import threading

    import numpy as np
    threads = os.cpu_count() or 1
    srcs = [np.ones(mib * 2**20 // 4 // threads, np.float32) for _ in range(threads)]
    dsts = [np.empty_like(src) for src in srcs]
    best = 0.0
    for _ in range(rounds + 1):  # the first round faults the pages in
        workers = [threading.Thread(target=np.copyto, args=(dst, src))
                   for src, dst in zip(srcs, dsts)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, 2 * mib * 2**20 / (time.perf_counter() - start))
    return best
