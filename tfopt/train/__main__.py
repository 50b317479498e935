"""`python -m tfopt.train --model=ID --dataset=NAME --epochs=N --workdir=DIR` (see cli.py)."""

from tfopt.train.cli import main

if __name__ == "__main__":
    main()
