"""tfopt training: the paper's recipe (SGD + coupled L2 2e-5 + one-cycle LR/momentum, batch
128, seed 0) around `model.fit`, with per-epoch checkpoints and exact resume.

    config = tfopt.train.TrainConfig(epochs=30)
    metrics = tfopt.train.fit(model, train_ds, config, val_ds=test_ds, workdir="runs/r01")
    tfopt.train.evaluate(model, test_ds)   # {"accuracy": ..., "loss": ..., "num_examples": ...}

CLI: python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR
"""

from tfopt.train.config import OPTIMIZERS, TrainConfig
from tfopt.train.trainer import LogitsCrossEntropy, check_workdir, evaluate, fit, make_optimizer

__all__ = ["OPTIMIZERS", "LogitsCrossEntropy", "TrainConfig", "check_workdir", "evaluate", "fit",
           "make_optimizer"]
