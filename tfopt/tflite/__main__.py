"""Command line for deployment.

    python -m tfopt.tflite convert MODEL_DIR_OR_H5 --mode=int8 --dataset=fashion_mnist --out=m.tflite
    python -m tfopt.tflite evaluate MODEL.tflite --dataset=fashion_mnist [--limit=N] [--micro]
    python -m tfopt.tflite export MODEL.tflite --out=tflite_models [--dataset=NAME] [--metadata]
    python -m tfopt.tflite inspect MODEL.tflite [--format=json] [--no_profile] [--no_micro]

User mistakes (a missing or corrupt file, a dataset whose images do not fit the model) end
with one line on stderr (`error: FILE: ...`) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tfopt import modelfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _image_size(text: str | None):
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        sizes = [int(p) for p in parts if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--image_size={text!r}; expected N or HxW") from None
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tfopt.tflite", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="Keras model (SavedModel dir, .keras or .h5) -> .tflite")
    c.add_argument("model")
    c.add_argument("--mode", default="int8", help="float32, float16, dynamic or int8")
    c.add_argument("--dataset", help="tfopt.data source: int8 calibration (train split), labels "
                                     "and normalisation")
    c.add_argument("--num_calibration_samples", type=int, default=200)
    c.add_argument("--image_size", type=_image_size, help="resize dataset images: N or HxW")
    c.add_argument("--to_rgb", action="store_true", help="repeat grey images to 3 channels")
    c.add_argument("--out", help="output .tflite (default: MODEL stem + .MODE.tflite)")
    modelfile.add_unsafe_load_flag(c)

    e = sub.add_parser("evaluate", help="accuracy, size, ops and latency with LiteRT")
    e.add_argument("model")
    e.add_argument("--dataset", help="tfopt.data source name (omit for size/ops/latency only)")
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int, help="evaluate the first N examples")
    e.add_argument("--runs", type=int, default=50, help="timed invocations per thread setting")
    e.add_argument("--micro", action="store_true",
                   help="also run on TFLite Micro: arena bytes and LSB difference vs LiteRT")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")

    x = sub.add_parser("export", help=".tflite -> NAME.tflite/.cc/.h/_op_resolver.h/.json")
    x.add_argument("model")
    x.add_argument("--out", default="tflite_models", help="output folder")
    x.add_argument("--name", help="base name (default: the file stem)")
    x.add_argument("--dataset", help="measure accuracy on this tfopt.data source")
    x.add_argument("--split", default="test")
    x.add_argument("--limit", type=int)
    x.add_argument("--no_micro", action="store_true", help="skip the TFLM arena measurement")
    x.add_argument("--metadata", action="store_true",
                   help="also write NAME.mediapipe.tflite: float32 I/O + TFLite Metadata (labels, "
                        "normalisation, name, version) for MediaPipe's ImageClassifier")
    x.add_argument("--model_version", default="1", help="version string in the TFLite Metadata")

    i = sub.add_parser("inspect", help="bytes by category, ops, int8 coverage, per-op latency "
                                       "share, TFLM arena and the tensors at its peak")
    i.add_argument("model")
    i.add_argument("--format", choices=("text", "json"), default="text")
    i.add_argument("--no_profile", action="store_true", help="skip the per-op LiteRT timing")
    i.add_argument("--no_micro", action="store_true", help="skip the TFLM arena measurement")
    i.add_argument("--runs", type=int, default=10, help="timed invocations per op")
    return p


def _load_keras(path: str, *, unsafe_load: bool = False):
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such Keras model file or folder")
    modelfile.check_safe(path, unsafe_load=unsafe_load)  # before anything is deserialised
    import contextlib

    from tfopt._keras import keras

    from tfopt.compress import pruning, qat

    with contextlib.ExitStack() as stack:
        # Saved pruned / QAT models need the wrappers' (and tfopt's) custom objects to load.
        stack.enter_context(qat.quantize_scope())
        stack.enter_context(pruning.prune_scope())
        try:
            return keras.models.load_model(path, compile=False, safe_mode=not unsafe_load)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot load as a Keras model "
                             f"({str(err).splitlines()[0][:200]})") from err


def _convert(args) -> int:
    from tfopt.tflite.convert import convert

    model = _load_keras(args.model, unsafe_load=args.unsafe_load)
    preprocessing = {k: v for k, v in (("image_size", args.image_size),
                                       ("to_rgb", args.to_rgb or None)) if v is not None}
    result = convert(model, args.mode, representative_data=args.dataset,
                     num_calibration_samples=args.num_calibration_samples,
                     preprocessing=preprocessing)
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

    if args.runs < 1:
        raise ValueError(f"--runs={args.runs}; expected >= 1")
    result = inspect_tflite(args.model, profile=not args.no_profile, micro=not args.no_micro,
                            runs=args.runs)
    print(json.dumps(result.to_dict(), indent=2) if args.format == "json" else format_text(result))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from tfopt.tflite.micro import MicroUnavailableError

    try:
        return {"convert": _convert, "evaluate": _evaluate, "export": _export,
                "inspect": _inspect}[args.command](args)
    except (ValueError, FileNotFoundError, MicroUnavailableError) as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
