"""tfopt.tflite.micro: int8 models on the real TFLite Micro runtime (tflite-micro package)."""

import pytest
import tflite_fixtures as fx
from zoo_models import FULL_DEPTH_CHECK

from tfopt.tflite import micro
from tfopt.tflite.convert import convert

pytestmark = [
    pytest.mark.micro,
    pytest.mark.skipif(not micro.micro_available(),
                       reason=str(micro.micro_unavailable_reason())),
]


def _zoo_ids():
    from tfopt.models import list_variants

    return list_variants()


def test_trained_int8_model_matches_litert_reference_kernels():
    _, _, x_te, _, _ = fx.fmnist_slice()
    content = fx.fmnist_int8_bytes()
    report = micro.run_micro(content, x_te[:20], num_samples=20, name="fmnist_tiny")
    assert report.ok, report.error
    assert report.num_compared == 20
    assert report.max_diff_lsb is not None and report.max_diff_lsb <= 1
    assert report.flash_bytes == len(content)
    assert 1_000 < report.arena_bytes < 200_000


def test_arena_bytes_is_what_the_allocator_needs():
    content = fx.fmnist_int8_bytes()
    arena = micro.run_micro(content, num_samples=1, compare=False).arena_bytes
    # The captured figure is real: the arena it names (+ alignment slack) loads, half does not.
    micro.load(content, arena_size=arena + 64)
    with pytest.raises(RuntimeError, match="failed to load"):
        micro.load(content, arena_size=arena // 2)


def test_arena_grows_until_the_model_fits(monkeypatch):
    content = fx.fmnist_int8_bytes()
    needed = micro.run_micro(content, num_samples=1, compare=False).arena_bytes
    monkeypatch.setattr(micro, "_START_ARENA", 1000)   # far too small: grows 4x per retry
    report = micro.run_micro(content, num_samples=1, compare=False)
    assert report.ok and report.arena_bytes == needed


def test_squeeze_excite_and_channel_shuffle_run_on_tflm():
    x = fx.synthetic_images(8)
    result = convert(fx.se_shuffle_model(), "int8", representative_data=x)
    assert {"MUL", "LOGISTIC", "MEAN", "TRANSPOSE", "RESHAPE", "DEPTHWISE_CONV_2D"} <= set(
        result.ops)
    report = micro.run_micro(result.content, x, num_samples=8, name="se_shuffle")
    assert report.ok, report.error
    assert report.max_diff_lsb <= 1 and report.num_compared == 8


def test_missing_kernel_is_reported_not_raised():
    content = fx.sparse_tflite_bytes()
    report = micro.run_micro(content, num_samples=1, name="sparse_net")
    assert not report.ok
    assert report.unsupported_ops == ("DENSIFY",)
    assert report.error == "sparse_net: TFLite Micro has no kernel for op(s) ['DENSIFY']"
    # The runtime itself says the same when asked to load it (parsed from its C output).
    with pytest.raises(RuntimeError, match=r"sparse_net: .*no kernel for op\(s\) \['DENSIFY'\]"):
        micro.load(content, name="sparse_net")


def test_float16_model_fails_cleanly_with_the_model_name():
    result = convert(fx.se_shuffle_model(), "float16")
    report = micro.run_micro(result.content, num_samples=1, name="se_fp16")
    assert not report.ok and report.arena_bytes is None
    assert report.error.startswith("se_fp16: TFLite Micro failed to load the model")


def test_capture_fd_output_sees_c_level_writes():
    import os

    def write_fd():
        os.write(1, b"to fd1\n")
        os.write(2, b"to fd2\n")
        return 7

    result, err, text = micro.capture_fd_output(write_fd)
    assert (result, err) == (7, None)
    assert "to fd1" in text and "to fd2" in text


@pytest.mark.slow  # one int8 conversion per zoo variant (width 0.125, 8 synthetic images)
@pytest.mark.parametrize("variant_id", _zoo_ids() + ["full_depth:" + FULL_DEPTH_CHECK])
def test_every_zoo_variant_converts_to_int8_and_runs_on_tflm(variant_id):
    # ResNet-101 variants with three blocks per stage: see tests/zoo_models.py.
    from zoo_models import build_small

    full_depth = variant_id.startswith("full_depth:")
    variant_id = variant_id.removeprefix("full_depth:")
    model = build_small(variant_id, full_depth=full_depth)
    x = fx.synthetic_images(8, (32, 32, 3))
    result = convert(model, "int8", representative_data=x, name=variant_id)
    report = micro.run_micro(result.content, x, num_samples=1, name=variant_id)
    assert report.ok, report.error
    assert report.max_diff_lsb <= 1
