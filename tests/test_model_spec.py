"""Technique-combination variant specs (tfopt.models.spec): grammar, errors, flags, builder."""

import dataclasses

import pytest

from tfopt.experiments import config as cfg
from tfopt.experiments.grid import plan
from tfopt.models import spec


@pytest.mark.parametrize(
    "text,canonical,slug",
    [
        (
            "resnet101[block=ghost,attention=se,head=optim_gap]",
            "resnet101[block=ghost,attention=se,head=optim_gap]",
            "resnet101.block-ghost.attention-se.head-optim_gap",
        ),
        # any order, ';' or ',', spaces, case, default values dropped
        (
            " ResNet101[ head=OPTIM_GAP; attention=se ,block=ghost;stem=conv3x3 ] ",
            "resnet101[block=ghost,attention=se,head=optim_gap]",
            "resnet101.block-ghost.attention-se.head-optim_gap",
        ),
        ("vgg19[unit=dws,se=True]", "vgg19[unit=dws,se=True]", "vgg19.unit-dws.se-True"),
        ("vgg19[se=yes;unit=dws;final_pool=false]", "vgg19[unit=dws,se=True]",
         "vgg19.unit-dws.se-True"),
        ("resnet101[]", "resnet101[]", "resnet101.default"),
        ("resnet101_v13", "resnet101_v13", "resnet101_v13"),
    ],
)
def test_canonical_spec_and_slug(text, canonical, slug):
    assert spec.canonical_spec(text) == canonical
    assert spec.spec_slug(text) == slug
    assert spec.canonical_spec(canonical) == canonical


@pytest.mark.parametrize(
    "text,match",
    [
        ("resnet101[blok=ghost]", (r"unknown resnet101 field 'blok' \(did you mean block\?\); "
                                   r"allowed: stem, block, conv3x3")),
        ("resnet101[block=gost]", (r"block='gost' is not allowed \(did you mean ghost\?\); "
                                   r"allowed: bottleneck, fire, inverted, ghost, dice")),
        ("vgg19[unit=dwz]", r"unit='dwz' is not allowed \(did you mean dws\?\)"),
        ("vgg19[se=maybe]", r"se='maybe' is not allowed; allowed: True, False"),
        ("resnt101[block=ghost]", r"unknown base 'resnt101' \(did you mean resnet101\?\)"),
        ("resnet101[block=ghost,conv3x3=depthwise]", r"conv3x3='depthwise' needs block"),
        ("resnet101[block=ghost,block=fire]", r"field 'block' is given twice"),
        ("vgg19[unit]", r"'unit' must be field=value"),
        ("vgg19[unit=dws", r"not a technique combination"),
    ],
)
def test_bad_specs_fail_with_one_line_naming_the_field_and_the_allowed_values(text, match):
    with pytest.raises(ValueError, match=match) as err:
        cfg.check_variant_id(text, "variants")
    assert "\n" not in str(err.value) and str(err.value).startswith("variants: ")


def test_split_variant_list_keeps_commas_inside_brackets():
    got = spec.split_variant_list(
        ["resnet101[block=ghost", "attention=se]", "tiny_cnn", "vgg19[unit=dws;se=True]", "vgg19[]"]
    )
    assert got == [
        "resnet101[block=ghost,attention=se]", "tiny_cnn", "vgg19[unit=dws;se=True]", "vgg19[]"
    ]


def test_flags_accept_combinations_and_the_config_canonicalises_them(tmp_path):
    from absl import flags

    from tfopt.experiments import flags as tf_flags

    ff = tmp_path / "run.cfg"
    ff.write_text(
        "--variants=tiny_cnn,resnet101[head=optim_gap,block=ghost],vgg19[unit=dws;se=true]\n"
        "--compress_variants=resnet101[block=ghost,head=optim_gap]\n"
        "--reference_variant=vgg19[se=True,unit=dws]\n--recipes=none,qat\n"
        f"--workdir={tmp_path / 'wd'}\n"
    )
    fv = flags.FlagValues()
    for name in tf_flags._FIELD_FLAGS:
        fv[name] = tf_flags.FLAGS[name]
    try:
        fv(["prog", f"--flagfile={ff}"])
        c = tf_flags.config_from_flags(fv)
    finally:
        fv.unparse_flags()
    assert c.variants == ("tiny_cnn", "resnet101[block=ghost,head=optim_gap]",
                          "vgg19[unit=dws,se=True]")
    assert c.compress_variants == ("resnet101[block=ghost,head=optim_gap]",)
    assert c.reference == "vgg19[unit=dws,se=True]"
    assert cfg.ExperimentConfig.from_dict(c.to_dict()) == c  # stored config round-trips
    ids = [t.id for t in plan(c)]
    assert "resnet101.block-ghost.head-optim_gap__qat" in ids
    assert "vgg19.unit-dws.se-True__none" in ids and "vgg19.unit-dws.se-True__qat" not in ids
    assert all("[" not in i and "=" not in i and "," not in i for i in ids)


def test_two_spellings_of_one_combination_are_one_variant():
    with pytest.raises(ValueError, match="lists an id twice"):
        cfg.ExperimentConfig(
            variants=("vgg19[unit=dws]", "vgg19[ unit=DWS; se=False ]"), recipes=("none",),
            workdir="/tmp/unused",
        )


# ---- against the dataclasses (TF-free) and the builders (import TensorFlow) ---------------


def test_field_descriptions_are_read_from_the_technique_dataclasses():
    from tfopt.core import techniques

    for cls, fields in ((techniques.ResNetTechniques, spec.RESNET_FIELDS),
                        (techniques.VggTechniques, spec.VGG_FIELDS)):
        dc_fields = dataclasses.fields(cls)
        assert [f.name for f in dc_fields] == list(fields)
        assert {f.name: f.default for f in dc_fields} == {k: d for k, (_, d) in fields.items()}
    assert spec.VGG_FIELDS["unit"][0] is techniques.VGG_UNITS
    assert spec.VGG_FIELDS["head"][0] is techniques.VGG_HEADS
    assert spec.RESNET_FIELDS["block"][0] is techniques.BLOCKS


def test_techniques_of_and_paper_variant():
    from tfopt.core.techniques import ResNetTechniques, VggTechniques
    from tfopt.models import paper_variant, techniques_of

    v12 = "resnet101[stem=separable,block=ghost,attention=se,head=optim_gap,early_channels=reduced]"
    assert techniques_of(v12) == ("resnet101", ResNetTechniques(
        stem="separable", block="ghost", attention="se", head="optim_gap",
        early_channels="reduced"))
    assert paper_variant(v12) == "resnet101_v12"
    assert paper_variant("vgg19[]") == "vgg19_v02"
    assert paper_variant("resnet101[block=ghost,attention=se,head=optim_gap]") is None
    assert techniques_of("vgg19[unit=dws,se=True]") == ("vgg19", VggTechniques(unit="dws", se=True))


def _params(model):
    return sum(int(w.shape.num_elements()) for w in model.trainable_weights)


def test_build_from_spec_equals_the_family_builder():
    from tfopt.core.techniques import VggTechniques
    from tfopt.models import build_from_spec, get_variant, techniques_of
    from tfopt.models.vgg import vgg

    kw = {"num_classes": 10, "input_shape": (32, 32, 3), "width_multiplier": 0.125}
    m = build_from_spec("vgg19[unit=dws;se=True]", **kw)
    ref = vgg(VggTechniques(unit="dws", se=True), **kw)
    assert m.name == "vgg19.unit-dws.se-True"
    assert _params(m) == _params(ref) and len(m.layers) == len(ref.layers)
    # the combination that equals a paper variant is the same data, so the same network
    assert techniques_of("vgg19[unit=fire_dws,head=conv_bn]") == (
        "vgg19", get_variant("vgg19_v07").techniques)


def test_build_from_spec_resnet_combination_equals_the_dataclass(monkeypatch):
    from tfopt.core import variants
    from tfopt.core.techniques import ResNetTechniques
    from tfopt.models import build_from_spec
    from tfopt.models.resnet import resnet

    monkeypatch.setitem(variants.RESNET_DEPTHS, "resnet101", (1, 2, 2, 2))  # depth is not tested

    kw = {"num_classes": 10, "input_shape": (32, 32, 3), "width_multiplier": 0.125}
    m = build_from_spec("resnet101[block=ghost;attention=se;head=optim_gap]", **kw)
    ref = resnet(ResNetTechniques(block="ghost", attention="se", head="optim_gap"), **kw)
    assert m.name == "resnet101.block-ghost.attention-se.head-optim_gap"
    assert _params(m) == _params(ref) and len(m.layers) == len(ref.layers)


def test_report_and_recommend_with_a_combination_id(tmp_path):
    """The real-run fixture's rows relabelled as a combination: tables, plots and recommend."""
    import json
    import os

    from tfopt import report
    from tfopt.experiments.recommend import format_recommendation, recommend
    from tfopt.experiments.store import read_results

    fixture = os.path.join(os.path.dirname(__file__), "data", "results_fixture.jsonl")
    combo = "resnet101[block=ghost,attention=se]"
    slug = spec.spec_slug(combo)
    with open(fixture) as f:
        text = f.read().replace('"tiny_cnn__', f'"{slug}__')
    text = text.replace('variant": "tiny_cnn"', f'variant": "{combo}"')  # + reference_variant
    results = tmp_path / "results.jsonl"
    results.write_text(text)
    rows = read_results(str(results))
    assert {r.variant for r in rows} == {combo}
    paths = report.write_report(str(results), str(tmp_path / "out"), tensorboard=False)
    with open(paths["markdown"]) as f:
        md = f.read()
    assert f"`{combo}`" in md
    rec = recommend(rows, max_accuracy_drop=5, metric="bytes")
    assert rec.best is not None and rec.best.variant == combo
    assert rec.best.trial_id.startswith(slug + "__")
    assert rec.reference == combo and rec.reference_accuracy_pct is not None
    assert f"model: variant {combo}, recipe " in format_recommendation(rec)
    json.dumps(rec.best.__dict__, default=str)
