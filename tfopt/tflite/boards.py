"""Board profiles: how much flash and SRAM a deployment target offers, as data.

A model fits a board when its `.tflite` (flash bytes) and its TensorFlow Lite Micro arena (SRAM
bytes) fit what is left after the application's reserve. The reserve (default 20 %) is taken
from both: in SRAM it covers the firmware's stack, heap, buffers and the TFLM runtime objects;
in flash it covers the firmware code (TFLM runtime, drivers, radio stack). The `phone` profile
has no flash/SRAM limit, only a latency budget (median ms per image, one thread).

    board = get_board("nano33ble")
    b = budget(board, reserve=0.2)          # max_flash_bytes=838,860, max_arena_bytes=209,715
    check_fit(b, flash_bytes=96_016, arena_bytes=53_264).fits

Units: bytes (1 KB = 1,024 B, as the datasheets count), milliseconds. TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import difflib

KIB = 1024
DEFAULT_RESERVE = 0.20


@dataclasses.dataclass(frozen=True)
class Board:
    """One deployment target. `None` means no limit."""

    name: str
    title: str
    chip: str
    flash_bytes: int | None
    sram_bytes: int | None
    latency_ms: float | None
    source: str
    note: str = ""


_BOARDS = (
    Board("nano33ble", "Arduino Nano 33 BLE Sense", "Nordic nRF52840 (Cortex-M4F, 64 MHz)",
          1024 * KIB, 256 * KIB, None,
          "Arduino Nano 33 BLE Sense product page / datasheet (ABX00031); Nordic nRF52840 "
          "Product Specification v1.7: 1 MB flash, 256 KB RAM"),
    Board("esp32s3", "Espressif ESP32-S3 (DevKitC-1 N8)", "ESP32-S3 (dual Xtensa LX7, 240 MHz)",
          8 * 1024 * KIB, 512 * KIB, None,
          "Espressif ESP32-S3 Series Datasheet: 512 KB internal SRAM; ESP32-S3-DevKitC-1 user "
          "guide: ESP32-S3-WROOM-1-N8 module, 8 MB external SPI flash",
          "the 512 KB SRAM is shared with the instruction cache and Wi-Fi/BLE buffers; "
          "external PSRAM, where fitted, is not counted"),
    Board("stm32f746", "ST STM32F746G-DISCO (32F746GDISCOVERY)",
          "STM32F746NG (Cortex-M7, 216 MHz)", 1024 * KIB, 320 * KIB, None,
          "ST STM32F745xx/STM32F746xx datasheet DS10916: 1 MB flash, 320 KB RAM (incl. 64 KB "
          "DTCM); UM1907 32F746GDISCOVERY user manual"),
    Board("pico", "Raspberry Pi Pico", "RP2040 (dual Cortex-M0+, 133 MHz)",
          2 * 1024 * KIB, 264 * KIB, None,
          "Raspberry Pi RP2040 Datasheet: 264 KB on-chip SRAM; Raspberry Pi Pico Datasheet: "
          "2 MB QSPI flash (W25Q16JV)"),
    Board("phone", "Android/iOS phone (MediaPipe, LiteRT)", "phone SoC (CPU, 1 thread)",
          None, None, 33.0,
          "tfopt choice: 33 ms = one frame of a 30 fps camera stream; no flash/RAM limit "
          "(apps ship models of tens of MB)",
          "latency is the LiteRT median on the measuring machine, not on the phone"),
)
BOARDS: dict[str, Board] = {b.name: b for b in _BOARDS}


def get_board(name: str) -> Board:
    """The profile called `name`; a one-line ValueError listing the boards (close ones first)."""
    if name in BOARDS:
        return BOARDS[name]
    near = difflib.get_close_matches(str(name), list(BOARDS), n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    raise ValueError(f"board={name!r} is unknown{hint}; boards: {', '.join(BOARDS)}")


def check_reserve(reserve: float) -> float:
    """A reserve fraction in [0, 1); a one-line ValueError otherwise."""
    try:
        value = float(reserve)
    except (TypeError, ValueError):
        raise ValueError(f"reserve={reserve!r}; expected a fraction in [0, 1)") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"reserve={reserve!r}; expected a fraction in [0, 1), e.g. 0.2 "
                         "for 20 % of SRAM and flash kept for the application")
    return value


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a model may use on `board` after the application reserve (bytes, ms; None = any)."""

    board: Board
    reserve: float
    max_flash_bytes: int | None
    max_arena_bytes: int | None
    max_latency_ms: float | None

    def describe(self) -> str:
        b = self.board
        parts = []
        if b.flash_bytes is not None:
            parts.append(f"flash {b.flash_bytes:,} B -> {self.max_flash_bytes:,} B")
        if b.sram_bytes is not None:
            parts.append(f"SRAM {b.sram_bytes:,} B -> arena {self.max_arena_bytes:,} B")
        if self.max_latency_ms is not None:
            parts.append(f"latency {self.max_latency_ms:g} ms")
        reserve = (f" after a {100 * self.reserve:g} % application reserve"
                   if b.flash_bytes is not None or b.sram_bytes is not None else "")
        return f"{b.name} ({b.title}): {', '.join(parts)}{reserve}"


def budget(board: Board | str, reserve: float = DEFAULT_RESERVE) -> Budget:
    """The model's budget on `board`: flash and SRAM times (1 - reserve), rounded down."""
    board = get_board(board) if isinstance(board, str) else board
    reserve = check_reserve(reserve)
    keep = lambda total: None if total is None else int(total * (1.0 - reserve))
    return Budget(board, reserve, keep(board.flash_bytes), keep(board.sram_bytes),
                  board.latency_ms)


@dataclasses.dataclass(frozen=True)
class Fit:
    """Whether one model fits a budget, and the bytes (ms) left; negative = over by that much."""

    fits: bool
    flash_margin_bytes: int | None
    arena_margin_bytes: int | None
    latency_margin_ms: float | None
    reasons: tuple[str, ...]


def check_fit(b: Budget, *, flash_bytes: int | None, arena_bytes: int | None,
              latency_ms: float | None = None) -> Fit:
    """Compares measured flash/arena bytes (and latency) with the budget.

    An unmeasured figure that the board limits (e.g. no TFLM arena) does not fit.
    """
    reasons = []

    def margin(limit, value, what, unit):
        if limit is None:
            return None
        if value is None:
            reasons.append(f"{what} not measured")
            return None
        left = limit - value
        if left < 0:
            reasons.append(f"{what} {value:,}{unit} > {limit:,}{unit}")
        return left

    flash = margin(b.max_flash_bytes, flash_bytes, "flash", " B")
    arena = margin(b.max_arena_bytes, arena_bytes, "arena", " B")
    lat = margin(b.max_latency_ms, latency_ms, "latency", " ms")
    return Fit(not reasons, flash, arena, None if lat is None else round(lat, 4), tuple(reasons))


def format_margin(b: Budget, fit: Fit) -> str:
    """One line: what is left on the board, e.g. 'flash 742,844 B left (88.6 %), arena ...'."""
    parts = []
    for what, left, limit, unit in (
            ("flash", fit.flash_margin_bytes, b.max_flash_bytes, "B"),
            ("arena", fit.arena_margin_bytes, b.max_arena_bytes, "B"),
            ("latency", fit.latency_margin_ms, b.max_latency_ms, "ms")):
        if left is None or limit is None:
            continue
        word = "left" if left >= 0 else "OVER"
        amount = f"{abs(left):,.3f} ms" if unit == "ms" else f"{abs(left):,} B"
        parts.append(f"{what} {amount} {word} ({100.0 * left / limit:.1f} % of {limit:,} {unit})")
    text = "; ".join(parts) or "no limit on this board"
    return text if fit.fits else f"{text}; does not fit: {'; '.join(fit.reasons)}"
