"""Fit before train: which (variant, width) candidates fit a board, measured without training.

  python -m tfopt.experiments.fit --board=nano33ble --variants='resnet101_v*,vgg19_v*' \
      --widths=0.25,0.5,1.0 --out=fit_nano33ble.cfg [--reserve=0.2 --input_shape=32,32,3 \
      --num_classes=10]

Every candidate is built untrained (`tfopt.models.build_from_spec`), given trained-like random
weights, converted to int8 (`tfopt.tflite.convert`, random calibration data) and loaded in
TensorFlow Lite Micro for its arena. The `.tflite` bytes and the arena depend on the shapes
only, not on the weight values, *provided no two constants are equal*: a freshly initialised
model has all-zero biases and identity BatchNorm statistics, which the converter deduplicates
and folds away (fewer bytes, fewer ops, a smaller arena than the trained model; measured in
docs/deployment.md), hence the random weights. A candidate whose conv/dense kernels alone
(1 B per int8 weight) exceed the flash budget is not converted.

Each candidate prints one progress line (flash, arena, fit, margin, seconds) and is appended to
`OUT` minus `.cfg` plus `.fit.jsonl` as it finishes; a re-run reuses those rows (any board: the
rows are board-independent). Then `OUT` is written: a flagfile for the ablation driver with the
fitting variants (`--variants`), each at the largest width that fits (`--variant_widths=
VARIANT:WIDTH,...`). `tfopt.experiments.board_fit` runs the same measurement as the ablation
driver's `--board` pre-pass.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sys
import time

from absl import flags

from tfopt.experiments.config import KNOWN_VARIANT_IDS, check_variant_id
from tfopt.models.spec import spec_slug, split_variant_list
from tfopt.tflite import boards

PAPER_VARIANTS = "resnet101_v*,vgg19_v*"
# The tfopt metadata JSON writes scales and zero points as decimal text: its length (and so the
# file's, in 4-byte steps) varies with the values by a few bytes; tests allow this much.
METADATA_SLACK_BYTES = 16
LATENCY_RUNS = 20  # LiteRT invocations timed per candidate for a latency budget (phone)
CACHE_FORMAT = "tfopt-fit/1"

# Its own FlagValues: fit's --variants must not collide with the ablation driver's flags when
# both modules are imported in one process.
FLAGS = flags.FlagValues()

flags.DEFINE_string("board", None, f"Board profile: {', '.join(boards.BOARDS)}.",
                    flag_values=FLAGS)
flags.DEFINE_list("variants", [PAPER_VARIANTS],
                  "Zoo ids, fnmatch patterns over them (resnet101_v*) or technique "
                  "combinations (resnet101[block=ghost,attention=se]).", flag_values=FLAGS)
flags.DEFINE_list("widths", ["0.25", "0.5", "1.0"], "Width multipliers to try.",
                  flag_values=FLAGS)
flags.DEFINE_string("input_shape", "32,32,3", "Model input H,W,C.", flag_values=FLAGS)
flags.DEFINE_integer("num_classes", 10, "Classifier outputs.", flag_values=FLAGS)
flags.DEFINE_float("reserve", boards.DEFAULT_RESERVE,
                   "Fraction of SRAM and flash kept for the application.", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Flagfile to write (e.g. fit_nano33ble.cfg).",
                    flag_values=FLAGS)
flags.DEFINE_integer("calibration_samples", 4, "Random images calibrating the int8 ranges.",
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the random weights and calibration images.",
                     flag_values=FLAGS)
flags.DEFINE_integer("jobs", 1, "Worker processes, one variant each at a time (e.g. the "
                     "number of idle cores); 1 measures in this process.", flag_values=FLAGS)
flags.DEFINE_bool("rerun", False, "Ignore the rows cached beside --out and measure again.",
                  flag_values=FLAGS)


@dataclasses.dataclass(frozen=True)
class FitSpec:
    """The validated grid."""

    board: str
    variants: tuple[str, ...]
    widths: tuple[float, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    reserve: float
    out: str
    calibration_samples: int = 4
    seed: int = 0

    @property
    def cache_path(self) -> str:
        stem = self.out[:-4] if self.out.endswith(".cfg") else self.out
        return stem + ".fit.jsonl"


def expand_variants(values) -> tuple[str, ...]:
    """Zoo ids, patterns (matched against the zoo) and combinations, in order, once each."""
    out: list[str] = []
    for item in split_variant_list(values):
        if any(ch in item for ch in "*?") and "[" not in item:
            ids = [v for v in KNOWN_VARIANT_IDS if fnmatch.fnmatch(v, item)]
            if not ids:
                raise ValueError(f"variants: pattern {item!r} matches no zoo id "
                                 "(list them: python -m tfopt.models list)")
        else:
            ids = [check_variant_id(item, "variants")]
        out += [v for v in ids if v not in out]
    if not out:
        raise ValueError("variants is empty; e.g. --variants='resnet101_v*,vgg19_v*'")
    return tuple(out)


def parse_widths(values) -> tuple[float, ...]:
    widths = []
    for text in values:
        try:
            w = float(text)
        except ValueError:
            raise ValueError(f"widths: {text!r} is not a number; e.g. --widths=0.25,0.5,1.0") from None
        if not 0 < w <= 8:
            raise ValueError(f"widths: {text!r}; expected 0 < width <= 8")
        if w not in widths:
            widths.append(w)
    if not widths:
        raise ValueError("widths is empty; e.g. --widths=0.25,0.5,1.0")
    return tuple(widths)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(p) for p in str(text).replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape={text!r}; expected H,W,C, e.g. 32,32,3")
    return shape


def spec_from_flags(fv=FLAGS) -> FitSpec:
    """The validated `FitSpec` (one-line ValueError on bad input; TensorFlow-free)."""
    if not fv.board:
        raise ValueError(f"--board is required; boards: {', '.join(boards.BOARDS)}")
    boards.get_board(fv.board)
    if not fv.out:
        raise ValueError("--out=FILE.cfg is required")
    out_dir = os.path.dirname(os.path.abspath(fv.out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        raise ValueError(f"out={fv.out!r}: folder {out_dir!r} does not exist or is not writable")
    if fv.num_classes < 1:
        raise ValueError(f"num_classes={fv.num_classes}; expected >= 1")
    if fv.calibration_samples < 1:
        raise ValueError(f"calibration_samples={fv.calibration_samples}; expected >= 1")
    return FitSpec(fv.board, expand_variants(fv.variants), parse_widths(fv.widths),
                   parse_input_shape(fv.input_shape), fv.num_classes,
                   boards.check_reserve(fv.reserve), fv.out, fv.calibration_samples, fv.seed)


def cache_key(variant: str, width: float, input_shape, num_classes: int) -> str:
    h, w, c = input_shape
    return f"{variant}|width={width:g}|input={h}x{w}x{c}|classes={num_classes}"


def kernel_weights(model) -> int:
    """Conv/dense kernel elements: a lower bound of the int8 file in bytes (1 B each)."""
    import numpy as np

    return int(sum(np.prod(v.shape) for v in model.trainable_weights
                   if "kernel" in v.name or "depthwise" in v.name))


def randomise_weights(model, seed: int) -> None:
    """Trained-like weights: every value perturbed, so no constant is all-zero or equal to
    another (variances kept positive)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for v in model.weights:
        w = v.numpy()
        new = w + rng.normal(0.0, 0.05, w.shape).astype(w.dtype)
        if "variance" in v.name:
            new = np.abs(new) + 0.5
        v.assign(new)


def arena_of(content: bytes, name: str) -> tuple[int | None, str | None]:
    """TFLM arena bytes after allocation (no invoke needed), or (None, one-line reason)."""
    from tfopt.tflite import micro

    reason = micro.micro_unavailable_reason()
    if reason:
        return None, reason
    try:
        interp, _ = micro.load(content, name=name)
        return micro.arena_bytes_of(interp), None
    except RuntimeError as err:
        return None, str(err).splitlines()[0]


def measure(variant: str, width: float, spec: FitSpec, max_flash_bytes: int | None,
            latency: bool = False) -> dict:
    """One candidate's row: flash (.tflite bytes), arena bytes, ops, seconds (JSON-ready);
    with `latency`, also the LiteRT median ms per image (1 thread, 20 runs)."""
    import numpy as np

    from tfopt._keras import keras
    from tfopt.models import build_from_spec
    from tfopt.tflite.convert import convert

    start = time.perf_counter()
    cpu = time.process_time()
    row = _row_head(variant, width, spec)
    keras.backend.clear_session()
    try:
        model = build_from_spec(variant, num_classes=spec.num_classes,
                                input_shape=spec.input_shape, width_multiplier=width)
        row.update(params=int(model.count_params()), kernel_weights=kernel_weights(model))
        if max_flash_bytes is not None and row["kernel_weights"] > max_flash_bytes:
            row.update(status="skipped", flash_bytes=None, arena_bytes=None,
                       flash_lower_bound_bytes=row["kernel_weights"], arena_lower_bound_bytes=None,
                       error=f"{row['kernel_weights']:,} int8 kernel weights > flash budget "
                             f"{max_flash_bytes:,} B (not converted)")
        else:
            randomise_weights(model, spec.seed)
            rep = np.random.default_rng(spec.seed).standard_normal(
                (spec.calibration_samples, *spec.input_shape)).astype(np.float32)
            name = f"{spec_slug(variant)}__none.int8"
            conv = convert(model, "int8", representative_data=rep,
                           num_calibration_samples=spec.calibration_samples, seed=spec.seed,
                           name=name)
            arena, error = arena_of(conv.content, name)
            from tfopt.tflite.model_info import with_metadata

            row.update(status="ok", flash_bytes=conv.size_bytes, arena_bytes=arena,
                       graph_bytes=len(with_metadata(conv.content, {})),
                       num_ops=len(conv.info.operators), error=error)
            if latency:
                from tfopt.tflite.evaluate import latency as litert_latency

                row["latency_1t_median_ms"] = round(
                    litert_latency(conv.content, num_threads=1, runs=LATENCY_RUNS)["median_ms"], 4)
    except Exception as err:  # a candidate that cannot be built/converted is a row, not a crash
        lines = str(err).strip().splitlines()
        row.update(status="failed", flash_bytes=None, arena_bytes=None,
                   error=f"{type(err).__name__}: {lines[0] if lines else ''}"[:300])
    row["seconds"] = round(time.perf_counter() - start, 2)
    row["cpu_seconds"] = round(time.process_time() - cpu, 2)
    return row


def _row_head(variant: str, width: float, spec: FitSpec) -> dict:
    return {"format": CACHE_FORMAT, "key": cache_key(variant, width, spec.input_shape,
                                                     spec.num_classes),
            "variant": variant, "width": width, "input_shape": list(spec.input_shape),
            "num_classes": spec.num_classes}


def lower_bounds(row: dict) -> tuple[int | None, int | None]:
    """(flash, arena) bytes this candidate needs at least: measured, or the skip's bounds."""
    if row.get("status") == "ok":
        return row["flash_bytes"], row["arena_bytes"]
    if row.get("status") == "skipped":
        return (row.get("flash_lower_bound_bytes", row.get("kernel_weights")),
                row.get("arena_lower_bound_bytes"))
    return None, None


def exceeds(budget: boards.Budget, bounds: tuple[int | None, int | None]) -> bool:
    """The lower bounds alone break the flash or the arena budget."""
    flash, arena = bounds
    return ((flash is not None and budget.max_flash_bytes is not None
             and flash > budget.max_flash_bytes)
            or (arena is not None and budget.max_arena_bytes is not None
                and arena > budget.max_arena_bytes))


def inferred_skip(variant: str, width: float, spec: FitSpec, smaller: dict) -> dict:
    """A wider candidate than `smaller`, which already breaks the budget: channels, kernels and
    activations grow with the width, so its bounds hold here too; nothing is built."""
    flash, arena = lower_bounds(smaller)
    return {**_row_head(variant, width, spec), "status": "skipped", "flash_bytes": None,
            "arena_bytes": None, "flash_lower_bound_bytes": flash,
            "arena_lower_bound_bytes": arena, "seconds": 0.0, "cpu_seconds": 0.0,
            "error": f"width {smaller['width']:g} already needs "
                     + " and ".join(f"{what} >= {v:,} B" for what, v in (("flash", flash),
                                                                         ("arena", arena)) if v)
                     + " (not built)"}


def read_cache(path: str) -> dict[str, dict]:
    """Rows of earlier runs by key (later rows win; a torn last line is ignored)."""
    rows: dict[str, dict] = {}
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("format") == CACHE_FORMAT and "key" in row:
                rows[row["key"]] = row
    return rows


def reusable(row: dict | None, budget: boards.Budget) -> bool:
    """A cached row answers this board too: a measured row always (given a latency where the
    board has a latency budget), a skip only while its lower bounds still break the budget."""
    if row is None or row.get("status") == "failed":
        return False
    if row.get("status") == "skipped":
        return exceeds(budget, lower_bounds(row))
    return budget.max_latency_ms is None or row.get("latency_1t_median_ms") is not None


def fit_of(budget: boards.Budget, row: dict) -> boards.Fit:
    if row.get("status") != "ok":
        return boards.Fit(False, None, None, None, (row.get("error") or row["status"],))
    return boards.check_fit(budget, flash_bytes=row["flash_bytes"], arena_bytes=row["arena_bytes"],
                            latency_ms=row.get("latency_1t_median_ms"))


def progress_line(i: int, n: int, row: dict, budget: boards.Budget, cached: bool) -> str:
    """`[ 3/84] vgg19_v04 w=0.5: flash 239,752 B, arena 63,504 B: FITS (flash ... left) [1.3 s]`."""
    fit = fit_of(budget, row)
    head = f"[{i:>{len(str(n))}}/{n}] {row['variant']} w={row['width']:g}"
    if row.get("status") == "ok":
        arena = "n/a" if row["arena_bytes"] is None else f"{row['arena_bytes']:,} B"
        sizes = f"flash {row['flash_bytes']:,} B, arena {arena}"
        if row.get("latency_1t_median_ms") is not None:
            sizes += f", latency {row['latency_1t_median_ms']:.3f} ms"
    else:
        sizes = row["status"]
    detail = boards.format_margin(budget, fit) if fit.fits else "; ".join(fit.reasons)
    when = "cached" if cached else f"{row['seconds']:.1f} s"
    return f"{head}: {sizes}: {'FITS' if fit.fits else 'does not fit'} ({detail}) [{when}]"


def variant_rows(variant: str, spec: FitSpec, cache: dict[str, dict],
                 budget: boards.Budget) -> list[tuple[dict, bool]]:
    """(row, from the cache) per width of `variant`, smallest first: once a width breaks the
    flash or arena budget, the wider ones are skipped unbuilt (`inferred_skip`)."""
    out, too_big = [], None  # the widest row so far whose lower bounds break the budget
    for width in sorted(spec.widths):
        key = cache_key(variant, width, spec.input_shape, spec.num_classes)
        cached = reusable(cache.get(key), budget)
        if cached:
            row = {**cache[key], "from_cache": True}
        elif too_big is not None:
            row = inferred_skip(variant, width, spec, too_big)
        else:
            row = measure(variant, width, spec, budget.max_flash_bytes,
                          latency=budget.max_latency_ms is not None)
        if exceeds(budget, lower_bounds(row)):
            too_big = row
        out.append((row, cached))
    return out


def _worker_rows(variant: str, spec: FitSpec, cache: dict[str, dict]) -> list[tuple[dict, bool]]:
    """`variant_rows` in a worker process (`--jobs`), TensorFlow's logging quietened first."""
    from absl import logging

    from tfopt.core import env

    env.quiet_tensorflow(None)
    logging.set_verbosity(logging.WARNING)
    return variant_rows(variant, spec, cache, boards.budget(spec.board, spec.reserve))


def run_fit(spec: FitSpec, *, rerun: bool = False, log=print, jobs: int = 1
            ) -> tuple[list[dict], int]:
    """Measures (or reuses) every candidate, appending each variant's new rows to the cache as
    soon as it is done; with `jobs` > 1, variants run in that many worker processes (spawned;
    rows still come back, and are logged, in order).

    Returns:
      (one row per candidate, variants in order, widths ascending; how many came from the cache).
    """
    budget = boards.budget(spec.board, spec.reserve)
    cache = {} if rerun else read_cache(spec.cache_path)
    n = len(spec.variants) * len(spec.widths)
    rows, reused = [], 0
    pool = None
    if jobs > 1 and len(spec.variants) > 1:
        import concurrent.futures
        import multiprocessing

        pool = concurrent.futures.ProcessPoolExecutor(
            min(jobs, len(spec.variants)), mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_worker_rows, spec.variants, [spec] * len(spec.variants),
                           [cache] * len(spec.variants))
    else:
        results = (variant_rows(v, spec, cache, budget) for v in spec.variants)
    try:
        for pairs in results:
            new = [row for row, cached in pairs if not cached]
            if new:
                with open(spec.cache_path, "a") as f:
                    f.writelines(json.dumps(row, sort_keys=True) + "\n" for row in new)
            for row, cached in pairs:
                rows.append(row)
                reused += cached
                log(progress_line(len(rows), n, row, budget, cached))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return rows, reused


def best_widths(rows: list[dict], budget: boards.Budget) -> dict[str, dict]:
    """Per variant (in order) the row of the largest width that fits."""
    best: dict[str, dict] = {}
    for row in rows:
        if fit_of(budget, row).fits and row["width"] > best.get(row["variant"], {}).get("width", 0):
            best[row["variant"]] = row
    return best


def _main(argv) -> int:
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's converter logs at INFO per model
    spec = spec_from_flags()
    if FLAGS.jobs < 1:
        raise ValueError(f"--jobs={FLAGS.jobs}: expected an integer >= 1")
    budget = boards.budget(spec.board, spec.reserve)
    print(f"board: {budget.describe()}\n{len(spec.variants) * len(spec.widths)} candidates; "
          f"rows stream to {spec.cache_path}", flush=True)
    start = time.perf_counter()
    rows, cached = run_fit(spec, rerun=FLAGS.rerun, log=lambda line: print(line, flush=True),
                           jobs=FLAGS.jobs)
    from tfopt.experiments.fit_output import flagfiles, summary

    command = "python -m tfopt.experiments.fit " + " ".join(sys.argv[1:])
    for path, text in flagfiles(spec, rows, command).items():
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}")
    print(summary(spec, rows, time.perf_counter() - start, cached))
    return 0 if best_widths(rows, budget) else 1


def main(argv=None) -> int:
    """`python -m tfopt.experiments.fit --board=NAME ...` (argv without the program name)."""
    from tfopt.core import cli

    return cli.run(_main, argv, flag_values=FLAGS, doc=__doc__,
                   prog="python -m tfopt.experiments.fit")


if __name__ == "__main__":
    sys.exit(main())
