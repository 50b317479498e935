"""`TrainConfig`: every setting of a training run, validated on construction (TF-free).

Defined in the core so that TF-free code (the experiment config, fit, recommend) can build and
check one without importing TensorFlow; `tfopt.train` re-exports it.
"""

from __future__ import annotations

import dataclasses

from tfopt.core.choices import MONITORS, OPTIMIZERS

# Learning rate when `lr` is None (sgd_onecycle uses `max_lr` instead). sgd_plateau's 0.01 and
# its momentum 0.9 are the reference's unused alternative path (reference-variants.md §5).
DEFAULT_LR = {"sgd_plateau": 0.01, "adam": 1e-3, "sgd": 0.01}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults are the paper's recipe (reference-variants.md §5).

    Attributes:
      epochs: Total epochs of the run (a resumed run continues up to this).
      batch_size: Images per step (the data pipeline batches; recorded here for the CLI/report).
      optimizer: "sgd_onecycle" (paper: SGD + one-cycle LR and momentum, stepped per batch),
        "sgd_plateau" (SGD, ReduceLROnPlateau + EarlyStopping on the train loss),
        "adam" (Adam, constant LR) or "sgd" (SGD, constant LR and momentum; for fine-tuning).
      max_lr: Peak learning rate of sgd_onecycle.
      lr: Learning rate of the other optimizers; None = DEFAULT_LR[optimizer].
      weight_decay: Coupled L2 coefficient (PyTorch style: wd*w added to every gradient).
      momentum: SGD momentum for sgd / sgd_plateau (sgd_onecycle cycles it instead).
      pct_start, div_factor, final_div_factor, base_momentum, max_momentum: one-cycle shape.
      plateau_factor, plateau_patience, min_lr: sgd_plateau's ReduceLROnPlateau (patience in
        epochs).
      early_stopping_patience: Stop after this many epochs without improvement of `monitor`.
        None: sgd_plateau stops with patience 10, the other optimizers never stop early.
        An int: every optimizer stops early (0 stops at the first epoch that does not improve).
      monitor: What plateau and early stopping watch: "loss" (train loss, the paper's choice),
        "val_accuracy" or "val_loss" (need `val_ds` in `fit`: a held-out split, never test).
      restore_best_weights: With early stopping on: when training ends (stopped or at the
        epoch cap) the model gets the weights of its best epoch by `monitor`.
      seed: Seed the CLI sets before building the model and passes to `tfopt.data.load`
        (`fit` itself never touches global seeds).
      steps_per_epoch: Needed only when the dataset's length is unknown.
      verbose: Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch.
      mixed_precision: "auto" (mixed_float16 when a GPU is present), "on" or "off". Used by the
        CLI, which must set the policy before building the model.
    """

    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd_onecycle"
    max_lr: float = 0.0125
    lr: float | None = None
    weight_decay: float = 2e-5
    momentum: float = 0.9
    pct_start: float = 0.1
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    min_lr: float = 1e-5
    early_stopping_patience: int | None = None
    monitor: str = "loss"
    restore_best_weights: bool = True
    seed: int = 0
    steps_per_epoch: int | None = None
    verbose: int = 1
    mixed_precision: str = "auto"

    def __post_init__(self):
        def need(name, ok, allowed):
            value = getattr(self, name)
            if isinstance(value, bool) or not ok(value):
                raise ValueError(f"{name}={value!r}; expected {allowed}")

        is_int = lambda v: isinstance(v, int)  # noqa: E731
        is_num = lambda v: isinstance(v, (int, float))  # noqa: E731
        need("epochs", lambda v: is_int(v) and v >= 1, "an int >= 1")
        need("batch_size", lambda v: is_int(v) and v >= 1, "an int >= 1")
        if self.optimizer not in OPTIMIZERS:
            import difflib
            near = difflib.get_close_matches(str(self.optimizer), OPTIMIZERS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"optimizer={self.optimizer!r}{hint}; expected one of {OPTIMIZERS}")
        need("max_lr", lambda v: is_num(v) and v > 0, "a number > 0")
        need("lr", lambda v: v is None or (is_num(v) and v > 0), "None or a number > 0")
        need("weight_decay", lambda v: is_num(v) and v >= 0, "a number >= 0")
        need("momentum", lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)")
        need("pct_start", lambda v: is_num(v) and 0 < v < 1, "a number in (0, 1)")
        need("div_factor", lambda v: is_num(v) and v > 0, "a number > 0")
        need("final_div_factor", lambda v: is_num(v) and v > 0, "a number > 0")
        need("base_momentum", lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)")
        need("max_momentum", lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)")
        need("plateau_factor", lambda v: is_num(v) and 0 < v < 1, "a number in (0, 1)")
        need("plateau_patience", lambda v: is_int(v) and v >= 0, "an int >= 0")
        need("min_lr", lambda v: is_num(v) and v >= 0, "a number >= 0")
        need("early_stopping_patience", lambda v: v is None or (is_int(v) and v >= 0),
             "None or an int >= 0")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor={self.monitor!r}; expected one of {MONITORS}")
        if not isinstance(self.restore_best_weights, bool):
            raise ValueError(f"restore_best_weights={self.restore_best_weights!r}; "
                             "expected True or False")
        need("seed", is_int, "an int")
        need("steps_per_epoch", lambda v: v is None or (is_int(v) and v >= 1),
             "None or an int >= 1")
        need("verbose", lambda v: v in (0, 1, 2), "0, 1 or 2")
        if self.mixed_precision not in ("auto", "on", "off"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; "
                             "expected 'auto', 'on' or 'off'")

    @property
    def stopping_patience(self) -> int | None:
        """Early-stopping patience in epochs in effect (None: no early stopping)."""
        if self.early_stopping_patience is not None:
            return self.early_stopping_patience
        return 10 if self.optimizer == "sgd_plateau" else None

    @property
    def learning_rate(self) -> float:
        """The (peak) learning rate this config trains with."""
        if self.optimizer == "sgd_onecycle":
            return self.max_lr
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


def plateau_finetune(epochs: int, patience: int, *, lr: float = 1e-4,
                     monitor: str = "val_accuracy", weight_decay: float = 5e-4,
                     **overrides) -> TrainConfig:
    """The paper's fine-tuning recipe (reference-variants.md §6) as a TrainConfig.

    SGD (lr 1e-4, momentum 0.9, coupled L2 5e-4, fresh state), ReduceLROnPlateau (factor 0.1,
    min_lr 1e-5) and early stopping with restore-best, capped at `epochs` (the paper: 50).
    Deviations, both stated: the paper watches the train loss with plateau patience = stop
    patience = 5, so its LR drop can never act before the stop; here `monitor` defaults to the
    held-out val accuracy and the plateau patience is max(1, patience // 2), so the LR drops
    once before training stops.

    Args:
      epochs: Epoch cap (the ablation's --finetune_epochs).
      patience: Early-stopping patience in epochs (--finetune_patience).
      lr: Starting learning rate (the peak when `optimizer="sgd_onecycle"` is overridden).
      monitor: See TrainConfig.monitor.
      weight_decay: Coupled L2 coefficient.
      **overrides: Any other TrainConfig field (batch_size, seed, verbose, ...).
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"patience={patience!r}; expected an int >= 0")
    fields = dict(epochs=epochs, optimizer="sgd_plateau", lr=lr, momentum=0.9,
                  weight_decay=weight_decay, plateau_factor=0.1,
                  plateau_patience=max(1, patience // 2), min_lr=1e-5,
                  early_stopping_patience=patience, monitor=monitor, restore_best_weights=True)
    fields.update(overrides)
    if fields["optimizer"] == "sgd_onecycle" and "max_lr" not in overrides:
        fields["max_lr"] = lr  # one-cycle reads its peak, not `lr`
    return TrainConfig(**fields)
