"""`python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR` (see cli.py)."""

from absl import app, flags

from tfopt.train import cli

__doc__ = cli.__doc__   # absl prints the main module's docstring as the usage text

if __name__ == "__main__":
    cli.define_flags()
    flags.adopt_module_key_flags(cli)   # --helpshort lists the training flags
    app.run(cli._main, flags_parser=cli._parse)
