"""Output paths kept inside their output folder (`--out`, `--workdir`). Standard library only."""

from __future__ import annotations

import os
import pathlib


def inside(root: str | os.PathLike, relative: str | os.PathLike, *, flag: str = "--out"
           ) -> pathlib.Path:
    """`root / relative`, resolved (symlinks and `..` followed); ValueError, one line naming the
    path, the folder and `flag`, if it lands outside the resolved `root`."""
    base = pathlib.Path(root).resolve()
    path = (base / relative).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"{os.fspath(relative)!r} resolves to {str(path)!r}, outside "
                         f"{flag}={os.fspath(root)!r}; use a plain file name")
    return path
