"""Board profiles (tfopt.tflite.boards) and `recommend --board=NAME` (TensorFlow-free)."""

import json
import os
import subprocess
import sys

import pytest

from tfopt.experiments.recommend import board_limits, recommend
from tfopt.tflite import boards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "data", "results_fixture.jsonl")
KB = 1024


@pytest.mark.parametrize("name,flash,sram", [
    ("nano33ble", 1024 * KB, 256 * KB),
    ("esp32s3", 8 * 1024 * KB, 512 * KB),
    ("stm32f746", 1024 * KB, 320 * KB),
    ("pico", 2 * 1024 * KB, 264 * KB),
    ("phone", None, None),
])
def test_profiles_state_the_datasheet_figures_and_their_source(name, flash, sram):
    b = boards.get_board(name)
    assert (b.flash_bytes, b.sram_bytes) == (flash, sram)
    assert b.source and b.title
    assert (b.latency_ms is not None) == (name == "phone")


def test_budget_keeps_the_reserve_of_sram_and_flash():
    b = boards.budget("nano33ble")  # default 20 %
    assert b.reserve == 0.2
    assert b.max_arena_bytes == int(262_144 * 0.8) == 209_715
    assert b.max_flash_bytes == int(1_048_576 * 0.8)
    assert boards.budget("nano33ble", reserve=0.5).max_arena_bytes == 131_072
    assert boards.budget("nano33ble", reserve=0).max_arena_bytes == 262_144
    phone = boards.budget("phone")
    assert (phone.max_flash_bytes, phone.max_arena_bytes, phone.max_latency_ms) == (None, None, 33.0)


def test_fit_and_margin():
    b = boards.budget("nano33ble")
    ok = boards.check_fit(b, flash_bytes=96_016, arena_bytes=53_264)
    assert ok.fits and ok.flash_margin_bytes == b.max_flash_bytes - 96_016
    assert ok.arena_margin_bytes == 209_715 - 53_264
    assert "156,451 B left" in boards.format_margin(b, ok)
    # resnet101_v13's int8 arena (331 KB, issue 16) exceeds a 256 KB-SRAM board
    over = boards.check_fit(b, flash_bytes=300_000, arena_bytes=331 * KB)
    assert not over.fits and over.arena_margin_bytes < 0
    assert over.reasons == (f"arena {331 * KB:,} B > 209,715 B",)
    assert "OVER" in boards.format_margin(b, over)
    assert not boards.check_fit(b, flash_bytes=10, arena_bytes=None).fits  # arena unmeasured
    phone = boards.budget("phone")
    assert boards.check_fit(phone, flash_bytes=10**9, arena_bytes=None, latency_ms=5.0).fits
    assert not boards.check_fit(phone, flash_bytes=1, arena_bytes=None, latency_ms=40.0).fits


def test_bad_board_and_reserve_are_one_line_errors():
    with pytest.raises(ValueError, match=r"board='nano33' is unknown \(did you mean nano33ble\?\); "
                                         r"boards: nano33ble, esp32s3, stm32f746, pico, phone"):
        boards.get_board("nano33")
    for bad in (1.0, -0.1, "x"):
        with pytest.raises(ValueError, match="expected a fraction in"):
            boards.budget("pico", reserve=bad)


def test_board_limits_translate_and_explicit_flags_win():
    lim = board_limits("stm32f746", 0.2)
    assert lim["max_arena_kb"] * 1024 == int(320 * KB * 0.8)
    assert lim["max_flash_kb"] * 1024 == int(1024 * KB * 0.8)
    assert board_limits("stm32f746", 0.2, max_arena_kb=64)["max_arena_kb"] == 64
    assert board_limits("phone", 0.2)["max_latency_ms"] == 33.0
    assert board_limits(None, 0.2) == {"max_flash_kb": None, "max_arena_kb": None}


def _row(tid, acc, int8_bytes, arena, lat):  # synthetic
    return {"trial_id": tid, "variant": tid.split("__")[0], "recipe": "none", "status": "ok",
            "keras_accuracy_pct": acc, "params": 10, "nonzero_params": 10, "flops": 100,
            "reference_variant": "big",
            "tflite": {"int8": {"status": "ok", "bytes": int8_bytes, "accuracy_pct": acc,
                                "latency_1t_median_ms": lat}},
            "micro": {"status": "ok", "arena_bytes": arena}}


def test_recommend_filters_by_latency_budget():
    rows = [_row("big__none", 90.0, 4000, 9000, 50.0), _row("small__none", 89.5, 9000, 4000, 2.0)]
    assert recommend(rows, max_accuracy_drop=1).best.trial_id == "big__none"
    rec = recommend(rows, max_accuracy_drop=1, max_latency_ms=33)
    assert rec.best.trial_id == "small__none" and "latency 2.000 ms <= 33 ms" in rec.reason


def _recommend(*args):
    return subprocess.run([sys.executable, "-m", "tfopt.experiments.recommend",
                           f"--results={FIXTURE}", "--max_accuracy_drop=1", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_recommend_cli_answers_with_the_margin_left_on_the_board():
    out = _recommend("--board=nano33ble")
    assert out.returncode == 0, out.stderr
    assert "board: nano33ble (Arduino Nano 33 BLE Sense): flash 1,048,576 B -> 838,860 B" in out.stdout
    margin = next(line for line in out.stdout.splitlines() if line.startswith("margin: "))
    assert "flash " in margin and " B left" in margin and "arena " in margin
    js = _recommend("--board=pico", "--reserve=0.5", "--json")
    data = json.loads(js.stdout)
    assert data["board"]["fits"] is True
    assert data["board"]["arena_margin_bytes"] == int(264 * KB * 0.5) - data["best"]["arena_bytes"]
    bad = _recommend("--board=esp32")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "did you mean esp32s3" in bad.stderr
