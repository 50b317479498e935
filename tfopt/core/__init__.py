"""tfopt.core: the TensorFlow-free typed core (closed value sets, recipes, trial results).

Importing this package (or any module in it) never imports TensorFlow, Keras or numpy: the
flag checks of every CLI and the report readers depend on that. Sub-modules are loaded on
first attribute access.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "choices": "tfopt.core.choices",
    "recipe": "tfopt.core.recipe",
    "results": "tfopt.core.results",
    "env": "tfopt.core.env",
    "Recipe": "tfopt.core.recipe",
    "parse_recipe": "tfopt.core.recipe",
    "TrialResult": "tfopt.core.results",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if _LAZY[name].endswith("." + name) else getattr(module, name)
    raise AttributeError(f"module 'tfopt.core' has no attribute {name!r}")
