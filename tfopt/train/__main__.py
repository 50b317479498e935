"""`python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR` (see cli.py)."""

import sys

from tfopt.train import cli

__doc__ = cli.__doc__

if __name__ == "__main__":
    sys.exit(cli.main())
