"""`TrainConfig` and `plateau_finetune`: defined in the TF-free core (tfopt.core.train_config)."""

from tfopt.core.choices import MONITORS, OPTIMIZERS
from tfopt.core.train_config import DEFAULT_LR, TrainConfig, plateau_finetune

__all__ = ["DEFAULT_LR", "MONITORS", "OPTIMIZERS", "TrainConfig", "plateau_finetune"]
