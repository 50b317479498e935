"""Convergence check on Fashion-MNIST: the stop rule, a matched control and repeated seeds.

Per seed: (1) train the baseline with early stopping on a held-out tail of the train split
(--optimizer capped at --epochs, patience --patience, best epoch kept); (2) the paper's global
pruning series (--sparsities), each step fine-tuned by `tfopt.train.plateau_finetune`
(ReduceLROnPlateau + early stopping on the held-out split, capped at --finetune_epochs);
(3) the matched control: the same baseline fine-tuned with the same schedule, once per step,
without pruning. The test split is evaluated once per model, never during training. Prints
epochs, times and test accuracies per seed, then mean ± std, controlled drops and
significance marks (tfopt.stats). This is the measurement behind docs/trustworthy_ablation.md.

Run:  python benchmarks/convergence_check.py [--model=vgg19_v01 --seeds=0,1 --limit=13200]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model", "vgg19_v01", "Registry model id.")
flags.DEFINE_float("width_multiplier", 0.125, "Channel scale.")
flags.DEFINE_list("seeds", ["0", "1"], "Seeds (one baseline/series/control each).")
flags.DEFINE_integer("limit", 13200, "Train images before the hold-out.", lower_bound=100)
flags.DEFINE_float("val_fraction", 1 / 11, "Held-out fraction of those.")
flags.DEFINE_integer("test_limit", None, "Test images (default: all 10,000).")
flags.DEFINE_integer("epochs", 10, "Baseline epoch cap.", lower_bound=1)
flags.DEFINE_integer("patience", 2, "Baseline early-stopping patience.", lower_bound=0)
flags.DEFINE_string("optimizer", "sgd_plateau", "Baseline recipe: sgd_plateau (SGD, LR x0.1 "
                    "after patience-1 epochs without a better val accuracy) or sgd_onecycle.")
flags.DEFINE_float("max_lr", 0.05, "Baseline (peak) learning rate.")
flags.DEFINE_boolean("augment", False, "Paper augmentation (pad 4, crop, flip) on the train part.")
flags.DEFINE_integer("batch_size", 64, "Images per step.", lower_bound=1)
flags.DEFINE_list("sparsities", ["0.2", "0.36", "0.488", "0.59"], "Pruning series ('' = none).")
flags.DEFINE_integer("finetune_epochs", 4, "Fine-tuning epoch cap per step.", lower_bound=1)
flags.DEFINE_integer("finetune_patience", 1, "Fine-tuning early-stopping patience.",
                     lower_bound=0)
flags.DEFINE_float("finetune_lr", 1e-3, "Fine-tuning SGD learning rate.")
FLAGS = flags.FLAGS


def _copy(model):
    from tfopt._keras import keras
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def run_seed(seed: int) -> dict:
    """Baseline, pruning series and control for one seed -> accuracies (%) and epoch counts."""
    import tfopt.data as data
    import tfopt.train as train
    from tfopt._keras import keras
    from tfopt.compress import pruning
    from tfopt.compress.global_pruning import GlobalPruner
    from tfopt.models import build_model

    kw = dict(image_size=32, to_rgb=True)
    train_ds, val_ds, info = train.holdout_split(
        "fashion_mnist", val_fraction=FLAGS.val_fraction, limit=FLAGS.limit, seed=seed,
        batch_size=FLAGS.batch_size, augment=FLAGS.augment, **kw)
    test_ds, _ = data.load("fashion_mnist", "test", batch_size=500, limit=FLAGS.test_limit, **kw)
    keras.utils.set_random_seed(seed)
    base = build_model(FLAGS.model, num_classes=10, input_shape=info.image_shape,
                       width_multiplier=FLAGS.width_multiplier)
    config = train.TrainConfig(epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                               optimizer=FLAGS.optimizer, max_lr=FLAGS.max_lr, lr=FLAGS.max_lr,
                               plateau_patience=max(1, FLAGS.patience - 1), seed=seed,
                               verbose=0, early_stopping_patience=FLAGS.patience,
                               monitor="val_accuracy")
    start = time.perf_counter()
    out = train.fit(base, train_ds, config, val_ds=val_ds)
    k = min(3, FLAGS.patience) if FLAGS.patience >= 1 else 3   # k <= patience: see convergence
    converged, gain = train.convergence(out, k=k)
    test = lambda m: 100 * train.evaluate(m, test_ds)["accuracy"]  # noqa: E731
    res = {"seed": seed, "base_s": time.perf_counter() - start, "base_epochs": out["epochs"],
           "base_best_epoch": out["best_epoch"], "base_val": 100 * max(
               out["history"]["val_accuracy"]), "base_test": test(base),
           "converged": converged, "gain_pp": gain, "pruned": [], "control": [],
           "pruned_epochs": [], "control_epochs": []}
    print("val accuracy per epoch", [round(100 * v, 2) for v in out["history"]["val_accuracy"]],
          "lr", sorted(set(out["history"]["lr"]), reverse=True))
    print(f"seed {seed}: baseline {res['base_epochs']} epochs (best {res['base_best_epoch']}), "
          f"{res['base_s']:.0f} s, val {res['base_val']:.2f} %, test {res['base_test']:.2f} %, "
          f"converged={converged} ({gain:+.2f} pp in the last {k})", flush=True)
    ft = train.plateau_finetune(FLAGS.finetune_epochs, FLAGS.finetune_patience,
                                lr=FLAGS.finetune_lr, batch_size=FLAGS.batch_size, seed=seed,
                                verbose=0)
    targets = [float(s) for s in FLAGS.sparsities if s]
    start = time.perf_counter()
    pruner = GlobalPruner(base)
    for target in targets:
        pruner.step(sparsity=target)
        r = train.fit(pruner.model, train_ds, ft, val_ds=val_ds,
                      extra_callbacks=pruner.callbacks())
        pruning.apply_masks(pruner.model)
        res["pruned"].append(test(pruner.stripped()))
        res["pruned_epochs"].append(r["epochs"])
    res["pruned_s"] = time.perf_counter() - start
    start = time.perf_counter()
    control = _copy(base)
    for _ in targets:
        r = train.fit(control, train_ds, ft, val_ds=val_ds)
        res["control"].append(test(control))
        res["control_epochs"].append(r["epochs"])
    res["control_s"] = time.perf_counter() - start
    print(f"seed {seed}: pruned {[round(a, 2) for a in res['pruned']]} "
          f"(epochs {res['pruned_epochs']}, {res['pruned_s']:.0f} s); control "
          f"{[round(a, 2) for a in res['control']]} (epochs {res['control_epochs']}, "
          f"{res['control_s']:.0f} s)", flush=True)
    return res


def main(argv):
    del argv
    from tfopt import stats
    start = time.perf_counter()
    runs = [run_seed(int(s)) for s in FLAGS.seeds]
    base = stats.summarize(r["base_test"] for r in runs)
    print(f"\nbaseline test accuracy {base.text()} %; epochs "
          f"{[r['base_epochs'] for r in runs]}; converged {[r['converged'] for r in runs]}")
    for k, target in enumerate(float(s) for s in FLAGS.sparsities if s):
        pruned = {r["seed"]: r["pruned"][k] for r in runs}
        control = {r["seed"]: r["control"][k] for r in runs}
        raw = stats.matched_drop({r["seed"]: r["base_test"] for r in runs}, pruned)
        drop = stats.matched_drop(control, pruned)
        sig = stats.compare(list(control.values()), list(pruned.values())).significant
        mark = {True: "significant", False: "not significant", None: "n=1"}[sig]
        print(f"sparsity {100 * target:.1f} %: pruned {stats.summarize(pruned.values()).text()}"
              f", control {stats.summarize(control.values()).text()}, drop vs baseline "
              f"{raw.mean:+.2f} ± {raw.std or 0:.2f}, controlled drop {drop.mean:+.2f} ± "
              f"{drop.std or 0:.2f} (paired={drop.paired}, {mark})")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    app.run(main)
