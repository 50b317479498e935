"""tfopt training: the paper's recipe (SGD + coupled L2 2e-5 + one-cycle LR/momentum, batch
128, seed 0) around `model.fit`, with per-epoch checkpoints and exact resume; early stopping
on a held-out validation split with restore-best; the paper's plateau fine-tuning recipe.

    config = tfopt.train.TrainConfig(epochs=30)
    metrics = tfopt.train.fit(model, train_ds, config, val_ds=test_ds, workdir="runs/r01")
    tfopt.train.evaluate(model, test_ds)   # {"accuracy": ..., "loss": ..., "num_examples": ...}

    # Converged baseline: stop on the held-out val accuracy, keep the best epoch's weights.
    train_ds, val_ds, info = tfopt.train.holdout_split("fashion_mnist", val_fraction=0.1)
    config = tfopt.train.TrainConfig(epochs=30, early_stopping_patience=3,
                                     monitor="val_accuracy")
    metrics = tfopt.train.fit(model, train_ds, config, val_ds=val_ds)
    tfopt.train.convergence(metrics)       # (converged, gain of the last 3 epochs in pp)
    # Fine-tuning after compression: up to 50 epochs, ReduceLROnPlateau + early stopping.
    tfopt.train.fit(pruned, train_ds, tfopt.train.plateau_finetune(50, 5), val_ds=val_ds)

CLI: python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR
     [--val_fraction=0.1 --early_stopping_patience=3]
"""

from tfopt.stats import convergence
from tfopt.train.config import MONITORS, OPTIMIZERS, TrainConfig, plateau_finetune
from tfopt.train.holdout import holdout_size, holdout_split
from tfopt.train.trainer import LogitsCrossEntropy, check_workdir, evaluate, fit, make_optimizer

__all__ = ["MONITORS", "OPTIMIZERS", "LogitsCrossEntropy", "TrainConfig", "check_workdir",
           "convergence", "evaluate", "fit", "holdout_size", "holdout_split", "make_optimizer",
           "plateau_finetune"]
