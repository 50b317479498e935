"""tfopt.core: the TensorFlow-free typed core (closed value sets, recipes, trial results).

Importing this package (or any module in it) never imports TensorFlow, Keras or numpy: the
flag checks of every CLI and the report readers depend on that. Sub-modules are loaded on
first attribute access.
"""

from __future__ import annotations

from tfopt.core.lazy import lazy_getattr

_LAZY = {
    "choices": "tfopt.core.choices",
    "recipe": "tfopt.core.recipe",
    "results": "tfopt.core.results",
    "env": "tfopt.core.env",
    "lazy": "tfopt.core.lazy",
    "Recipe": "tfopt.core.recipe",
    "parse_recipe": "tfopt.core.recipe",
    "TrialResult": "tfopt.core.results",
    "train_config": "tfopt.core.train_config",
    "TrainConfig": "tfopt.core.train_config",
}


__getattr__ = lazy_getattr("tfopt.core", _LAZY)
