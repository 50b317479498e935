"""Command line for deployment.

    python -m tfopt.tflite convert MODEL_DIR_OR_H5 --mode=int8 --dataset=fashion_mnist --out=m.tflite
    python -m tfopt.tflite convert MODEL.keras --mode=int8 --dataset=fashion_mnist --target=tflm
    python -m tfopt.tflite evaluate MODEL.tflite --dataset=fashion_mnist [--limit=N] [--micro]
    python -m tfopt.tflite export MODEL.tflite --out=tflite_models [--dataset=NAME] [--metadata]
    python -m tfopt.tflite inspect MODEL.tflite [--format=json] [--no_profile] [--no_micro]

User mistakes (a missing or corrupt file, a dataset whose images do not fit the model) end
with one line on stderr (`error: FILE: ...`) and exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile

from absl import flags

from tfopt import modelfile
from tfopt.core import cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COMMANDS = ("convert", "evaluate", "export", "inspect")


def _image_size(text: str | None):
    if text is None:
        return None
    sizes = ([int(p) for p in re.split(r"[x,]", text.lower())]
             if re.fullmatch(r"\d+([x,]\d+)?", text.strip().lower()) else [])
    if not sizes or min(sizes) < 1:
        raise cli.bad_value("image_size", text, "N or HxW with N, H, W >= 1")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def _flag_values() -> dict[str, flags.FlagValues]:
    """One absl FlagValues per subcommand (the flag names of the former argparse CLI)."""
    c, e, x, i = (flags.FlagValues() for _ in COMMANDS)
    flags.DEFINE_string("mode", "int8", "float32, float16, dynamic or int8", flag_values=c)
    flags.DEFINE_string("dataset", None, "tfopt.data source: int8 calibration (train split), "
                        "labels and normalisation", flag_values=c)
    flags.DEFINE_integer("num_calibration_samples", 200, "int8 calibration images (>= 1)",
                         flag_values=c)
    flags.DEFINE_string("calibration", "percentile", "int8 activation ranges: percentile (99th "
                        "percentile of each calibration image's extremes), minmax or converter "
                        "(the TFLite converter's own)", flag_values=c)
    flags.DEFINE_string("image_size", None, "resize dataset images: N or HxW", flag_values=c)
    flags.DEFINE_bool("to_rgb", False, "repeat grey images to 3 channels", flag_values=c)
    flags.DEFINE_string("target", "any", "int8 runtime to tune for: any (exact and fast on "
                        "LiteRT and TFLM), tflm (shuffles as GATHER: smaller flash and arena) "
                        "or litert (dense groups, BN multiply-adds as depthwise: faster XNNPACK)",
                        flag_values=c)
    flags.DEFINE_string("out", None, "output .tflite (default: MODEL stem + .MODE.tflite)",
                        flag_values=c)
    modelfile.define_unsafe_load_flag(c)

    flags.DEFINE_string("dataset", None, "tfopt.data source name (omit for size/ops/latency "
                        "only)", flag_values=e)
    flags.DEFINE_string("split", "test", "dataset split", flag_values=e)
    flags.DEFINE_integer("limit", None, "evaluate the first N examples (>= 1)", flag_values=e)
    flags.DEFINE_integer("runs", 50, "timed invocations per thread setting (>= 1)",
                         flag_values=e)
    flags.DEFINE_bool("micro", False, "also run on TFLite Micro: arena bytes and LSB "
                      "difference vs LiteRT", flag_values=e)
    flags.DEFINE_bool("json", False, "print JSON instead of text", flag_values=e)

    flags.DEFINE_string("out", "tflite_models", "output folder", flag_values=x)
    flags.DEFINE_string("name", None, "base name (default: the file stem)", flag_values=x)
    flags.DEFINE_string("dataset", None, "measure accuracy on this tfopt.data source",
                        flag_values=x)
    flags.DEFINE_string("split", "test", "dataset split", flag_values=x)
    flags.DEFINE_integer("limit", None, "evaluate the first N examples (>= 1)", flag_values=x)
    flags.DEFINE_bool("no_micro", False, "skip the TFLM arena measurement", flag_values=x)
    flags.DEFINE_bool("metadata", False, "also write NAME.mediapipe.tflite: float32 I/O + "
                      "TFLite Metadata (labels, normalisation, name, version) for MediaPipe's "
                      "ImageClassifier", flag_values=x)
    flags.DEFINE_string("model_version", "1", "version string in the TFLite Metadata",
                        flag_values=x)

    flags.DEFINE_enum("format", "text", ["text", "json"], "output format", flag_values=i)
    flags.DEFINE_bool("no_profile", False, "skip the per-op LiteRT timing", flag_values=i)
    flags.DEFINE_bool("no_micro", False, "skip the TFLM arena measurement", flag_values=i)
    flags.DEFINE_integer("runs", 10, "timed invocations per op (>= 1)", flag_values=i)
    return dict(zip(COMMANDS, (c, e, x, i)))


FLAG_VALUES = _flag_values()


def _load_keras(path: str, *, unsafe_load: bool = False):
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such Keras model file or folder")
    try:
        modelfile.check_safe(path, unsafe_load=unsafe_load)  # before anything is deserialised
    except KeyError as err:
        raise ValueError(f"{path}: not a Keras model file ({err.args[0]!r} missing)") from None
    import contextlib

    from tfopt._keras import keras

    from tfopt.compress import pruning, qat

    with contextlib.ExitStack() as stack:
        # Saved pruned / QAT models need the wrappers' (and tfopt's) custom objects to load.
        stack.enter_context(qat.quantize_scope())
        stack.enter_context(pruning.prune_scope())
        try:
            return keras.models.load_model(path, compile=False, safe_mode=not unsafe_load)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: cannot load as a Keras model "
                             f"({str(err).splitlines()[0][:200]})") from err


def _convert(args) -> int:
    from tfopt.tflite.convert import convert

    model = _load_keras(args.model, unsafe_load=args.unsafe_load)
    preprocessing = {k: v for k, v in (("image_size", args.image_size),
                                       ("to_rgb", args.to_rgb or None)) if v is not None}
    result = convert(model, args.mode, representative_data=args.dataset,
                     num_calibration_samples=args.num_calibration_samples,
                     preprocessing=preprocessing, target=args.target,
                     calibration=args.calibration)
    out = args.out or f"{os.path.splitext(args.model.rstrip('/'))[0]}.{args.mode}.tflite"
    result.save(out)
    print(f"wrote {out}: {result.size_bytes} B, ops {', '.join(result.ops)}")
    return 0


def _evaluate(args) -> int:
    from tfopt.tflite.evaluate import evaluate_tflite, format_report

    report = evaluate_tflite(args.model, dataset=args.dataset, split=args.split, limit=args.limit,
                             latency_runs=args.runs)
    extra, micro = [], None
    if args.micro:
        from tfopt.tflite import micro as tflm

        x = None
        if args.dataset:
            from tfopt.tflite.evaluate import load_split
            from tfopt.tflite.model_info import inspect_model

            x, _ = load_split(args.dataset, args.split, info=inspect_model(args.model),
                              where=args.model, limit=10)
        micro = tflm.run_micro(args.model, x, num_samples=10)
        extra = [("tflm", "ok" if micro.ok else f"FAILED: {micro.error}"),
                 ("tflm arena", f"{micro.arena_bytes} B"),
                 ("tflm flash", f"{micro.flash_bytes} B"),
                 ("tflm vs LiteRT reference",
                  f"max diff {micro.max_diff_lsb} LSB over {micro.num_compared} inputs")]
    if args.json:
        out = report.to_dict()
        if micro is not None:
            out["micro"] = micro.to_dict()
        print(json.dumps(out, indent=2))
    else:
        print(format_report(report, extra))
    return 0 if micro is None or micro.ok else 1


def _export(args) -> int:
    from tfopt.tflite.export import export_model

    result = export_model(args.model, args.out, name=args.name, dataset=args.dataset,
                          split=args.split, limit=args.limit, micro=not args.no_micro,
                          metadata=args.metadata, model_version=args.model_version)
    for path in (result.tflite, result.source, result.header, result.op_resolver,
                 result.metadata_json, result.app_tflite):
        if path is not None:
            print(f"wrote {path}")
    if result.metadata.get("tflm_error"):
        print(f"warning: {result.metadata['tflm_error']}", file=sys.stderr)
    return 0


def _inspect(args) -> int:
    from tfopt.tflite.inspect import format_text, inspect_tflite

    result = inspect_tflite(args.model, profile=not args.no_profile, micro=not args.no_micro,
                            runs=args.runs)
    print(json.dumps(result.to_dict(), indent=2) if args.format == "json" else format_text(result))
    return 0


def _check(command: str, args) -> None:
    """Every flag and the model path checked before any loading (one-line ValueError)."""
    from tfopt.core.choices import CALIBRATIONS, CONVERT_MODES

    if not os.path.exists(args.model):
        raise FileNotFoundError(2, "no such file or folder", args.model)
    if command != "convert" and not os.path.isfile(args.model):
        raise ValueError(f"{args.model}: expected a .tflite file, not a folder")
    for name in ("runs", "limit", "num_calibration_samples"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise cli.bad_value(name, value, "an int >= 1")
    if command == "convert":
        if args.mode not in CONVERT_MODES:
            raise cli.bad_value("mode", args.mode, f"one of {', '.join(CONVERT_MODES)}")
        args.image_size = _image_size(args.image_size)
        from tfopt.tflite.convert import TARGETS

        if args.target not in TARGETS:
            raise cli.bad_value("target", args.target, f"one of {', '.join(TARGETS)}")
        if args.calibration not in CALIBRATIONS:
            raise cli.bad_value("calibration", args.calibration,
                                f"one of {', '.join(CALIBRATIONS)}")
        if args.mode == "int8" and not args.dataset:
            raise ValueError("--mode=int8 needs --dataset=NAME (the calibration images)")
    out = args.out if command in ("convert", "export") else None
    if out:
        parent = os.path.dirname(os.path.abspath(out)) if command == "convert" else out
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if command == "convert" and os.path.isdir(out):
            raise cli.bad_value("out", out, "a .tflite file path (a folder of that name exists)")
        try:
            with tempfile.TemporaryFile(dir=parent or "."):
                pass
        except OSError as err:
            raise cli.bad_value("out", out, f"a writable path ({parent}: "
                                f"{err.strerror or err})") from None


def _args(command: str, rest: list[str]):
    import types

    if len(rest) != 2:
        raise ValueError(f"{command}: expected one MODEL argument, got {len(rest) - 1}"
                         + (f" ({' '.join(rest[1:])})" if len(rest) > 2 else ""))
    args = types.SimpleNamespace(**FLAG_VALUES[command].flag_values_dict())
    args.model, args.command = rest[1], command
    _check(command, args)
    return args


def main(argv=None) -> int:
    """`python -m tfopt.tflite COMMAND MODEL [--flags]`; returns the exit status."""
    runs = {"convert": _convert, "evaluate": _evaluate, "export": _export, "inspect": _inspect}
    commands = {c: functools.partial(lambda c, rest: runs[c](_args(c, rest)), c) for c in runs}
    return cli.run_command(argv, doc=__doc__, prog="python -m tfopt.tflite", commands=commands,
                           flag_values=FLAG_VALUES)


if __name__ == "__main__":
    sys.exit(main())
