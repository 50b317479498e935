"""README.md's two commands are the contract with users and CI: keep them true."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_starts_with_setup_and_test_commands():
    setup, tests = _readme_commands()
    assert "apt-get install" in setup and "dataset-fashion-mnist" in setup
    assert "pip install -e" in setup
    assert "python -m tfopt.experiments.ablation --flagfile=experiments/fashion_mnist_quick.cfg" in setup
    assert "pytest" in tests


def test_ci_runs_exactly_readmes_test_command():
    _, tests = _readme_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci_lines, f"{tests!r} not a line of .ci/run"


def test_main_flagfile_exists():
    assert (ROOT / "experiments" / "fashion_mnist_quick.cfg").is_file()


def test_readme_zoo_table_shows_the_reference_counts():
    # The README table is CLI output; its integers must be the ones the exactness test asserts.
    import json

    reference = json.loads((ROOT / "tests" / "data" / "reference_figures.json").read_text())["models"]
    rows = re.findall(r"^\| ((?:resnet101|vgg19)_v\d\d) \| [^|]+ \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$",
                      (ROOT / "README.md").read_text(), flags=re.M)
    assert len(rows) == 28
    for variant, params, flops, macs in rows:
        want = reference[variant]["10"]
        got = [int(v.replace(",", "")) for v in (params, flops, macs)]
        assert got == [want["params"], want["flops"], want["macs"]], variant
