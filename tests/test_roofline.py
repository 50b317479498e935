"""benchmarks/roofline.py (train_speed.py's last lines): the two-term cost fit and the bandwidth probe."""

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "roofline", os.path.join(REPO, "benchmarks", "roofline.py"))
roofline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(roofline)


def _samples(a, c, models):
    """Exact images/s for (FLOPs, activations) pairs under seconds = a·A + c·F."""
    return [(f, act, 1.0 / (a * act + c * f)) for f, act in models]


def test_cost_fit_recovers_the_costs_and_the_needed_activation_cost():
    a, c = 1.2e-9, 30e-12
    models = [(12.6e6, 0.26e6), (12.8e6, 4.5e6), (46.8e6, 1.15e6), (7.3e6, 2.7e6)]
    fit_a, fit_c, error, a_needed = roofline.cost_fit(_samples(a, c, models), 12.6 / 0.26)
    assert fit_a == pytest.approx(a, rel=1e-6) and fit_c == pytest.approx(c, rel=1e-6)
    assert error < 1e-6
    # with a_needed, the lowest FLOPs-per-activation model is at exactly 0.30 of the reference
    p, q = 7.3 / 2.7, 12.6 / 0.26
    ratio = (p / (a_needed + c * p)) / (q / (a_needed + c * q))
    assert ratio == pytest.approx(0.30, rel=1e-9) and 0 < a_needed < a


def test_cost_fit_needs_no_cut_when_every_model_is_compute_dense():
    models = [(100e6, 0.5e6), (400e6, 1e6)]  # 200 and 400 FLOPs per activation, ref 48
    assert roofline.cost_fit(_samples(1e-9, 3e-11, models), 48.0)[3] is None


def test_needed_with_fixed_reference_puts_the_model_at_the_target_ratio():
    c, flops, acts, ref_flops, ref_ips = 25.8e-12, 7.3e6, 2.72e6, 12.7e6, 1545.7
    a = roofline.needed_with_fixed_reference(c, flops, acts, ref_flops, ref_ips)
    ips = 1.0 / (a * acts + c * flops)
    assert (flops * ips) / (ref_flops * ref_ips) == pytest.approx(0.30, rel=1e-9)
    assert a == pytest.approx(0.386e-9, rel=0.01)  # vgg19_v13, session 14's measurements
    # a model whose FLOPs alone take longer than allowed cannot get there at any activation cost
    assert roofline.needed_with_fixed_reference(1e-9, flops, acts, ref_flops, ref_ips) is None


def test_copy_bandwidth_is_a_plausible_rate():
    bandwidth = roofline.copy_bandwidth(mib=8, rounds=1)
    assert 1e8 < bandwidth < 1e13  # bytes/s
