"""Compression study on a real Fashion-MNIST slice: pruning series, QAT vs float, distillation.

Run: .venv/bin/python benchmarks/compression_study.py [--train_limit=6000 --test_limit=2000]
Expect: a few minutes on 2 shared CPU cores; prints markdown tables (docs/compression.md holds
a measured copy) and writes them with the raw numbers to --out (default runs/compression_study).

Protocol (seeded; `tfopt.data`, `tfopt.train`, `tfopt.compress`):
- data: Fashion-MNIST 28x28x1, normalised; a seeded random --train_limit images of the training
  split, the first --test_limit of the test split, batch 128;
- baseline: `tiny_cnn` (width 1.0), --epochs epochs of Adam (lr 1e-3);
- global pruning series (the paper's scheme: global L1 over all conv kernels, 20% of the
  remaining weights per step, cumulative masks) for --prune_steps steps, each followed by
  --finetune_epochs epoch(s) of Adam (lr 5e-4); test accuracy and the gzip size of the stripped
  model's weights after each step (step 0: the baseline, no extra training);
- tfmot schedules: PolynomialDecay and ConstantSparsity to 80% over 2 epochs, verified;
- QAT: the baseline and the 4-step (59%) pruned model, quantized (PQAT for the pruned one) and
  fine-tuned --qat_epochs epoch(s) (Adam, lr 1e-4); accuracy of the fake-quant Keras model and
  of the int8 TFLite model (direct `tf.lite.TFLiteConverter`, full-integer, int8 I/O,
  200 calibration images);
- distillation: a 1/4-width tiny_cnn student trained --kd_epochs epochs from the same
  initialisation without and with the baseline as teacher (T=4, alpha 0.5 and 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def _ds(x, y, batch=128, shuffle_seed=None):
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(2)


def _tflite_int8_accuracy(model, x_cal, x_test, y_test) -> tuple[float, int, int]:
    """Accuracy (fraction), size and gzip size (bytes) of the full-integer int8 TFLite model."""
    from tfopt.tflite.convert import convert
    from tfopt.tflite.evaluate import evaluate_tflite

    result = convert(model, "int8", representative_data=x_cal)
    report = evaluate_tflite(result.content, x_test, y_test, latency_runs=0)
    return report.accuracy, report.size_bytes, report.gzip_bytes


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train_limit", type=int, default=6000)
    p.add_argument("--test_limit", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--prune_steps", type=int, default=6)
    p.add_argument("--finetune_epochs", type=int, default=1)
    p.add_argument("--qat_epochs", type=int, default=1)
    p.add_argument("--kd_epochs", type=int, default=3)
    p.add_argument("--out", default="runs/compression_study")
    args = p.parse_args(argv)

    from tfopt import data, train
    from tfopt._keras import keras
    from tfopt.compress import distill, global_pruning, pruning, qat
    from tfopt.models import build_model

    t0 = time.perf_counter()
    keras.utils.set_random_seed(0)
    x_all, y_all, info = data.load_arrays("fashion_mnist", "train")
    idx = np.random.default_rng(0).permutation(len(x_all))[:args.train_limit]
    x_train, y_train = x_all[idx], y_all[idx]
    x_test, y_test, _ = data.load_arrays("fashion_mnist", "test", limit=args.test_limit)
    train_ds, test_ds = _ds(x_train, y_train, shuffle_seed=0), _ds(x_test, y_test)
    shape = x_train.shape[1:]

    def cfg(epochs, lr):
        return train.TrainConfig(epochs=epochs, optimizer="adam", lr=lr, weight_decay=0.0,
                                 verbose=0)

    def acc(model):
        return float(train.evaluate(model, test_ds)["accuracy"])

    base = build_model("tiny_cnn", num_classes=info.num_classes, input_shape=shape)
    train.fit(base, train_ds, cfg(args.epochs, 1e-3))
    base_acc = acc(base)
    results: dict = {"baseline_accuracy": base_acc, "train_images": len(x_train),
                     "test_images": len(x_test)}

    # 1. The paper's global pruning series with fine-tuning.
    kept = {}

    def keep_step4(row, pruner):
        if row.step == 4:
            kept["pruned59"] = pruner.stripped()

    rows = global_pruning.run_series(
        base, steps=args.prune_steps, train_ds=train_ds, config=cfg(args.finetune_epochs, 5e-4),
        eval_ds=test_ds, measure_size=True, on_step=keep_step4)
    results["series"] = [r.__dict__ for r in rows]

    # 2. tfmot schedules to 80 % (verified after strip).
    sched_rows = []
    for kind in ("polynomial", "constant"):
        res = pruning.prune_and_finetune(base, train_ds, cfg(2, 5e-4), target_sparsity=0.8,
                                         schedule=kind)
        sched_rows.append({"schedule": kind, "target": 0.8,
                           "achieved": res.achieved_sparsity, "accuracy": acc(res.model),
                           "begin": res.plan.begin_step, "end": res.plan.end_step,
                           "frequency": res.plan.frequency})
    results["schedules"] = sched_rows

    # 3. QAT vs float (and PQAT on the 59 % model), Keras fake-quant and int8 TFLite.
    x_cal = x_train[:200]
    qrows = []
    for name, float_model in (("baseline", base), ("pruned 59%", kept.get("pruned59"))):
        if float_model is None:
            continue
        f_acc = acc(float_model)
        q = qat.quantize(float_model)
        train.fit(q, train_ds, cfg(args.qat_epochs, 1e-4))
        q_acc = acc(q)
        t_acc, t_bytes, t_gzip = _tflite_int8_accuracy(q, x_cal, x_test, y_test)
        qrows.append({"model": name, "float": f_acc, "qat_keras": q_acc, "int8_tflite": t_acc,
                      "tflite_bytes": t_bytes, "tflite_gzip_bytes": t_gzip,
                      "sparsity_after_qat": qat.kernel_sparsity(q)})
    results["qat"] = qrows

    # 4. Distillation: same student init, same epochs, with and without the teacher.
    student0 = build_model("tiny_cnn", num_classes=info.num_classes, input_shape=shape,
                           width_multiplier=0.25)
    init = student0.get_weights()
    plain = keras.models.clone_model(student0)
    plain.set_weights(init)
    train.fit(plain, train_ds, cfg(args.kd_epochs, 1e-3))
    with_teacher = {}
    for alpha in (0.5, 0.9):
        kd_student = keras.models.clone_model(student0)
        kd_student.set_weights(init)
        distill.distill(kd_student, base, train_ds, cfg(args.kd_epochs, 1e-3), temperature=4.0,
                        alpha=alpha)
        with_teacher[alpha] = acc(kd_student)
    from tfopt import metrics
    results["kd"] = {"student_params": metrics.count_params(student0),
                     "teacher_params": metrics.count_params(base),
                     "without_teacher": acc(plain), "with_teacher": with_teacher,
                     "teacher": base_acc, "epochs": args.kd_epochs}
    results["wall_time_s"] = time.perf_counter() - t0

    md = _markdown(results)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write(md + "\n")
    return results


def _markdown(r: dict) -> str:
    pct = lambda v: f"{100 * v:.2f}"
    out = [(f"Fashion-MNIST, {r['train_images']} train / {r['test_images']} test images, "
            f"tiny_cnn baseline {pct(r['baseline_accuracy'])}% "
            f"(wall time {r['wall_time_s']:.0f} s)."), "",
           ("**Global L1 pruning series** (20% of the remaining conv weights per step, "
            "1 epoch fine-tuning per step):"), "",
           "| step | conv sparsity [%] | non-zeroed | accuracy [%] | gzip weights [bytes] |",
           "|---:|---:|---:|---:|---:|"]
    for row in r["series"]:
        out.append(f"| {row['step']} | {pct(row['sparsity'])} | {row['non_zeroed']:,} | "
                   f"{pct(row['accuracy'])} | {row['gzip_bytes']:,} |")
    out += ["", "**tfmot schedules** (target 80% of conv weights, 2 epochs):", "",
            "| schedule | begin/end/frequency [steps] | achieved [%] | accuracy [%] |",
            "|---|---:|---:|---:|"]
    for row in r["schedules"]:
        out.append(f"| {row['schedule']} | {row['begin']}/{row['end']}/{row['frequency']} | "
                   f"{pct(row['achieved'])} | {pct(row['accuracy'])} |")
    out += ["", "**QAT vs float** (1 epoch QAT fine-tuning; int8 = full-integer TFLite):", "",
            ("| model | float [%] | QAT Keras [%] | int8 TFLite [%] | int8 - float [pp] | "
             "conv sparsity after QAT [%] | .tflite [bytes] | gzip .tflite [bytes] |"),
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["qat"]:
        out.append(f"| {row['model']} | {pct(row['float'])} | {pct(row['qat_keras'])} | "
                   f"{pct(row['int8_tflite'])} | "
                   f"{100 * (row['int8_tflite'] - row['float']):+.2f} | "
                   f"{pct(row['sparsity_after_qat'])} | {row['tflite_bytes']:,} | "
                   f"{row['tflite_gzip_bytes']:,} |")
    kd = r["kd"]
    out += ["", (f"**Distillation** (student: tiny_cnn width 0.25, {kd['student_params']:,} "
                 f"params; teacher: the baseline, {kd['teacher_params']:,} params, "
                 f"{pct(kd['teacher'])}%; {kd['epochs']} epochs each, same initialisation, "
                 "T = 4):"), "",
            "| student trained | accuracy [%] |", "|---|---:|",
            f"| without teacher | {pct(kd['without_teacher'])} |"]
    for alpha, a in kd["with_teacher"].items():
        out.append(f"| with teacher, alpha = {alpha} | {pct(a)} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
