"""Zoo models for the per-variant deployment tests (QAT, int8, TFLite Micro) on a 2-core CPU.

Whether a variant quantizes, converts and runs on TFLite Micro depends on its layer types and
how they connect, not on how often a stage repeats its identity-shaped block. So every
ResNet-101 variant is built here with at most three blocks per stage (the first, downsampling
block and the last two: variants 06-09 downsample in the last one, and one identity block
stays), at 1/8 width: the same block kinds, shape transitions, shortcut convs, heads and quirks
(tests/test_models_resnet101.py checks that), at about a third of the graph size. VGG-19 and
VGG-16 keep the first two conv slots of each stage (the channel-changing slot and a same-shape
one, at every stage's map size: 10 of VGG-19's 16 slots, tests/test_models_zoo.py checks that);
the other OCNNA bases are built as they are. `FULL_DEPTH_CHECK` names the variant that the
deployment tests also run at the paper's full depth.
"""

from tfopt.models import build_model, get_variant
from tfopt.models.resnet import resnet
from tfopt.models.vgg import vgg

VGG_SLOTS_PER_STAGE = 2

FULL_DEPTH_CHECK = "resnet101_v13"


def build_small(variant_id: str, *, num_classes: int = 10, input_shape=(32, 32, 3),
                full_depth: bool = False):
    """`variant_id` at width 0.125; ResNet-101 variants with three blocks per stage and VGGs with
    two conv slots per stage unless full_depth."""
    row = get_variant(variant_id)
    if row.base in ("vgg19", "vgg16") and not full_depth:
        return vgg(row.techniques, num_classes=num_classes, input_shape=input_shape,
                   width_multiplier=0.125, base=row.base, name=variant_id,
                   max_slots_per_stage=VGG_SLOTS_PER_STAGE)
    if row.base != "resnet101" or full_depth:
        return build_model(variant_id, num_classes=num_classes, input_shape=input_shape,
                           width_multiplier=0.125)
    return resnet(row.techniques, num_classes=num_classes, input_shape=input_shape,
                  width_multiplier=0.125, name=variant_id, max_blocks_per_stage=3)
