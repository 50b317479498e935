"""Tests of `python -m tfopt.models` (list / summary), on the small tiny_cnn variant."""

import json

import pytest

from tfopt.core.techniques import ResNetTechniques, VggTechniques
from tfopt.models import __main__ as cli


def test_list_json_has_id_params_flops_macs(capsys):
    assert cli.main(["list", "--match=tiny_cnn", "--format=json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["tiny_cnn"]
    assert set(rows[0]) == {"id", "params", "flops", "macs"}
    assert rows[0]["params"] == 34906  # tiny.py docstring, 10 classes


def test_list_match_takes_comma_separated_patterns(capsys):
    assert cli.main(["list", "--match=nothing_*,nope"]) == 2
    assert "matches no variant" in capsys.readouterr().err
    cli.main(["list", "--match=nothing_*, tiny_*", "--format=json"])
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["tiny_cnn"]


def test_list_table_is_markdown(capsys):
    cli.main(["list", "--match=tiny_cnn", "--num_classes=3"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| id | techniques | params | FLOPs | MACs |"
    assert lines[2].startswith("| tiny_cnn | ")


def test_summary_blocks_add_up_to_the_total(capsys):
    cli.main(["summary", "tiny_cnn", "--num_classes=10", "--format=json"])
    out = json.loads(capsys.readouterr().out)
    assert out["blocks"][0]["block"] == "stem"
    for key in ("params", "flops", "macs"):
        assert sum(b[key] for b in out["blocks"]) == out[key]


def test_unknown_id_is_a_usage_error(capsys):
    assert cli.main(["summary", "resnet101_v5"]) == 2
    assert "resnet101_v05" in capsys.readouterr().err


def test_block_of_groups_layers_by_block():
    assert cli.block_of("s3_b22_conv2") == "s3_b22"
    assert cli.block_of("s5_b4_se_scale") == "s5_b4"
    assert cli.block_of("head_fc") == "head" and cli.block_of("stem_bn") == "stem"


def test_describe_techniques_lists_non_default_fields():
    assert cli.describe_techniques(ResNetTechniques(block="fire")) == "block=fire"
    assert cli.describe_techniques(VggTechniques(unit="dws", se=True)) == "unit=dws, se=True"
    assert cli.describe_techniques(ResNetTechniques()) == "baseline"
    assert cli.describe_techniques(None) == "-"
