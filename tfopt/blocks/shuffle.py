"""Channel shuffle (ShuffleNet, arXiv:1707.01083 §3.1) from Reshape/Permute layers only.

PyTorch reference: view C as (groups, C/groups), transpose to (C/groups, groups), flatten.
In NHWC: Reshape (H, W, g, C/g) -> Permute (H, W, C/g, g) -> Reshape (H, W, C). With a fixed
batch (`batch_size=1`) this lowers to TFLite RESHAPE + TRANSPOSE only.
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks.conv import spatial_size


def channel_shuffle(x, *, groups: int, name: str):
    """Shuffle channels across `groups` groups; a no-op layer chain is still built for groups=1.

    Layers: `{name}_split`, `{name}_swap`, `{name}_merge` (0 params, 0 FLOPs).
    """
    c = x.shape[-1]
    if groups < 1 or c % groups:
        raise ValueError(f"{name}: groups={groups} must divide the {c} channels")
    h, w = spatial_size(x.shape)
    x = layers.Reshape((h, w, groups, c // groups), name=f"{name}_split")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_swap")(x)
    return layers.Reshape((h, w, c), name=f"{name}_merge")(x)
