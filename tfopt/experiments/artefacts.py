"""A trial's deployable artefacts: each TFLite mode converted, measured and written ONCE.

For every mode of `convert_modes`: convert, measure size, accuracy and latency from the bytes in
memory, write the file. The int8 model runs once on TensorFlow Lite Micro; with `export` on it
is written only into the firmware folder WORKDIR/tflite_models/<id>/ (`<id>.tflite`, `.cc`,
`.h`, `_op_resolver.h`, `.json`), and that manifest records what was measured here (LiteRT
accuracy and the TFLM arena bytes), instead of measuring again. Other modes, and int8 without
export, go to WORKDIR/trials/<id>/<id>.<mode>.tflite. Imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

from tfopt.core import env
from tfopt.core.results import MicroResult, TFLiteResult, failure_message
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial
from tfopt.experiments.trial_data import TrialData
from tfopt.tflite import convert as tfl_convert
from tfopt.tflite import evaluate as tfl_eval
from tfopt.tflite import export as tfl_export
from tfopt.tflite import inspect as tfl_inspect
from tfopt.tflite import micro as tflm
from tfopt.tflite.model_info import inspect_model


def artefact_name(trial: Trial) -> str:
    return trial.id  # '<variant>__<recipe id>', the style guide's artefact naming


def export_dir(config: ExperimentConfig, trial: Trial) -> str:
    return os.path.join(config.workdir, "tflite_models", artefact_name(trial))


def write_artefacts(
    config: ExperimentConfig,
    trial: Trial,
    model,
    data: TrialData,
    trial_dir: str,
    lap: Callable[[str], None] = lambda name: None,
) -> tuple[dict[str, TFLiteResult], MicroResult, str | None]:
    """(TFLite result per mode, the TFLM result, the export folder or None)."""
    results: dict[str, TFLiteResult] = {}
    int8 = None
    for mode in config.convert_modes:
        if trial.recipe.last.kind == "qat" and mode != "int8":
            continue  # a QAT model is meant for int8; float modes repeat its parent
        try:
            with env.filtered_stderr():  # the converter's and LiteRT's C++ chatter
                conv = _convert(config, trial, model, data, mode)
                path = os.path.join(trial_dir, f"{artefact_name(trial)}.{mode}.tflite")
                results[mode] = _measure(config, data, conv, path)
            if mode == "int8":
                int8 = conv
            else:
                conv.save(results[mode].path)
        except Exception as err:  # a conversion failure is recorded per mode; the trial goes on
            results[mode] = TFLiteResult(status="failed", error=failure_message(err))
        lap(f"tflite_{mode}_s")
    micro = MicroResult("skipped")
    if config.eval_micro:
        micro = _micro(int8.content, data, config.seed) if int8 else MicroResult(
            "skipped", error="no int8 model"
        )
    lap("micro_s")
    out_dir = None
    if int8 is not None:
        if config.export:
            out_dir = export_dir(config, trial)
            path = _export(
                int8.content, out_dir, artefact_name(trial), results["int8"], micro, len(data.y_test),
                app_metadata=config.export_metadata,
            )
        else:
            path = int8.save(os.path.join(trial_dir, f"{artefact_name(trial)}.int8.tflite"))
        results["int8"] = _replace_path(results["int8"], str(path))
    lap("export_s")
    return results, micro, out_dir


def _convert(config, trial, model, data, mode):
    return tfl_convert.convert(
        model,
        mode,
        representative_data=data.representative() if mode == "int8" else None,
        num_calibration_samples=config.calibration_samples,
        **({"calibration": config.calibration} if config.calibration else {}),
        normalization=(data.info.mean, data.info.std),
        labels=list(data.info.class_names) if data.info.class_names else None,
        preprocessing=data.pre,
        seed=config.seed,
        name=f"{artefact_name(trial)}.{mode}",
    )


def _measure(config: ExperimentConfig, data: TrialData, conv, path: str) -> TFLiteResult:
    """Bytes, gzip bytes, ops and (if asked) accuracy and latency of one converted model."""
    fields = {
        "path": path,
        "bytes": conv.size_bytes,
        "gzip_bytes": tfl_eval.gzip_size(conv.content),
        "ops": tuple(conv.ops),
        "input_scale": conv.input_scale,
        "input_zero_point": conv.input_zero_point,
    }
    if conv.mode == "int8":
        fields["inspect"] = inspect_summary(conv.content, conv.names, name=path)
    if config.eval_tflite or config.eval_latency:
        rep = tfl_eval.evaluate_tflite(
            conv.content,
            data.x_test if config.eval_tflite else None,
            data.y_test if config.eval_tflite else None,
            latency_runs=config.latency_runs if config.eval_latency else 0,
            name=fields["path"],
        )
        if rep.accuracy is not None:
            fields["accuracy_pct"] = round(100.0 * rep.accuracy, 4)
        latencies = (("latency_1t", rep.latency_1_thread), ("latency_all", rep.latency_all_threads))
        for key, lat in latencies:
            if lat:
                fields[f"{key}_median_ms"] = round(lat["median_ms"], 4)
                fields[f"{key}_p90_ms"] = round(lat["p90_ms"], 4)
                fields[f"{key}_threads"] = lat["num_threads"]
    return TFLiteResult(status="ok", **fields)


PEAK_TENSORS_KEPT = 5


def inspect_summary(content: bytes, names: dict | None = None, *, name: str) -> dict:
    """`tfopt.tflite.inspect` of a converted model for the results row, without what costs
    time (no per-op latency profile; the TFLM arena is measured once, by `_micro`): bytes by
    category (B), op counts, int8 coverage, per-channel tensors, the liveness peak (B) and its
    `PEAK_TENSORS_KEPT` largest tensors. Never raises: {"error": ...} instead."""
    tensor_names = (names or {}).get("subgraphs", [{}])[0].get("tensors")
    try:
        r = tfl_inspect.inspect_tflite(content, profile=False, micro=False, name=name,
                                       tensor_names=tensor_names)
    except Exception as err:  # the trial's measurements must not fail on a report
        return {"error": failure_message(err)}
    d = r.to_dict()
    for key in ("name", "latency_by_op", "arena_bytes"):
        d.pop(key)
    d["peak_tensors"] = d["peak_tensors"][:PEAK_TENSORS_KEPT]
    return d


def _replace_path(result: TFLiteResult, path: str) -> TFLiteResult:
    return dataclasses.replace(result, path=path)


def _micro(content: bytes, data: TrialData, seed: int) -> MicroResult:
    """The int8 model on TensorFlow Lite Micro: arena bytes, status, max diff vs LiteRT."""
    reason = tflm.micro_unavailable_reason()
    if reason:
        return MicroResult("unavailable", error=reason)
    rep = tflm.run_micro(content, data.x_test[:10], num_samples=10, compare=True, seed=seed)
    return MicroResult(
        status="ok" if rep.ok else "failed",
        arena_bytes=rep.arena_bytes,
        flash_bytes=rep.flash_bytes,
        max_diff_lsb=rep.max_diff_lsb,
        num_compared=rep.num_compared,
        unsupported_ops=tuple(rep.unsupported_ops),
        error=rep.error,
    )


def _export(content, out_dir: str, name: str, int8: TFLiteResult, micro: MicroResult, n: int,
            app_metadata: bool = False):
    """Firmware export whose manifest holds the accuracy and arena measured above; with
    `app_metadata`, also NAME.mediapipe.tflite (labels, normalisation; `--export_metadata`).

    tfopt.tflite.export.export_model writes the files; TFLM is not run again (micro=False), so
    the arena bytes of `micro` are written into the header and the JSON afterwards.
    """
    accuracy = None if int8.accuracy_pct is None else int8.accuracy_pct / 100.0
    res = tfl_export.export_model(content, out_dir, name=name, accuracy=accuracy, micro=False,
                                  metadata=app_metadata)
    arena = micro.arena_bytes if micro.status == "ok" else None
    meta = dict(res.metadata, arena_bytes=arena, tflm_error=micro.error)
    if accuracy is not None:
        meta.update(accuracy_split="test", accuracy_examples=n)
    if micro.status in ("ok", "failed"):
        ident = meta["c_identifier"][: -len("_tflite")]
        info = inspect_model(content, name=name)
        res.header.write_text(tfl_export.c_array_header(ident, info, arena_bytes=arena))
    res.metadata_json.write_text(json.dumps(meta, indent=2) + "\n")
    return res.tflite
