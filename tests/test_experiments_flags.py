"""Flags, flagfiles and ExperimentConfig/Recipe validation of the ablation driver (TF-free)."""

import os
import subprocess
import sys

import pytest

from tfopt.experiments import config as cfg
from tfopt.experiments.grid import plan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kw):
    base = dict(variants=("tiny_cnn",), recipes=("none",), workdir="/tmp/unused")
    base.update(kw)
    return cfg.ExperimentConfig(**base)


# ---- recipes --------------------------------------------------------------------------------


def test_split_recipe_list_keeps_series_and_arguments_together():
    got = cfg.split_recipe_list(
        [
            "none,prune_global:0.2,0.36,0.488,qat,ocnna:k=30,scope=global",
            "prune_global:0.2,0.36+qat",
            "kd:t=3,alpha=0.5",
        ]
    )
    assert got == [
        "none",
        "prune_global:0.2,0.36,0.488",
        "qat",
        "ocnna:k=30,scope=global",
        "prune_global:0.2,0.36+qat",
        "kd:t=3,alpha=0.5",
    ]


@pytest.mark.parametrize(
    "text,spec",
    [
        ("none", "none"),
        ("QAT", "qat"),
        ("prune_poly:0.8", "prune_poly:0.8"),
        ("prune_const:0.50", "prune_const:0.5"),
        ("ocnna:30", "ocnna:k=30"),
        ("ocnna_l1:k=30,scope=global", "ocnna_l1:k=30,scope=global"),
        ("ocnna_random:k=10", "ocnna_random:k=10"),
        ("kd", "kd"),
        ("kd:t=2,alpha=0.5", "kd:t=2,alpha=0.5"),
        ("prune_global:0.2,0.36+qat", "prune_global:0.2,0.36+qat"),
        ("ocnna:k=30+kd", "ocnna:k=30+kd"),
    ],
)
def test_parse_recipe_canonical_spec_round_trips(text, spec):
    recipe = cfg.parse_recipe(text)
    assert recipe.spec() == spec
    assert cfg.parse_recipe(spec) == recipe


@pytest.mark.parametrize(
    "text,match",
    [
        ("qta", r"recipe='qta' is unknown \(did you mean qat\?\)"),
        ("prune_global:0.2,1.2", r"sparsity 1.2 .* 0 < s < 1"),
        ("prune_global:0.36,0.2", "strictly increase"),
        ("prune_poly:0.5,0.6", "takes one sparsity"),
        ("prune_poly", "needs sparsities"),
        ("ocnna", "needs k"),
        ("ocnna:k=100", r"k in \[0, 100\)"),
        ("ocnna:k=30,scpe=global", r"did you mean scope"),
        ("ocnna:k=30,scope=globl", r"did you mean global"),
        ("kd:alpha=1.5", "alpha"),
        ("none+qat", "cannot be combined"),
        ("qat+prune_const:0.5", "qat must be the last step"),
    ],
)
def test_parse_recipe_rejects_with_one_line(text, match):
    with pytest.raises(ValueError, match=match) as err:
        cfg.parse_recipe(text)
    assert "\n" not in str(err.value)


def test_series_expands_into_one_trial_per_step_each_built_on_the_previous():
    c = _config(variants=("tiny_cnn", "vgg16"), recipes=("prune_global:0.2,0.36,0.488+qat",))
    trials = {t.id: t for t in plan(c)}
    assert set(trials) == {
        f"{v}__{r}"
        for v in ("tiny_cnn", "vgg16")
        for r in (
            "none",
            "prune_global_0.2",
            "prune_global_0.2_0.36",
            "prune_global_0.2_0.36_0.488",
            "prune_global_0.2_0.36_0.488__qat",
            "control_1",  # matched controls: the recipe fine-tunes 4 times (3 steps + qat)
            "control_2",
            "control_3",
            "control_4",
        )
    }
    assert trials["tiny_cnn__prune_global_0.2_0.36"].control == "tiny_cnn__control_2"
    assert trials["tiny_cnn__prune_global_0.2_0.36_0.488__qat"].control == "tiny_cnn__control_4"
    assert trials["tiny_cnn__control_1"].parent == "tiny_cnn__none"
    assert trials["tiny_cnn__control_2"].parent == "tiny_cnn__control_1"
    assert not trials["tiny_cnn__control_4"].requested
    t = trials["tiny_cnn__prune_global_0.2_0.36_0.488__qat"]
    assert t.parent == "tiny_cnn__prune_global_0.2_0.36_0.488" and t.requested
    assert trials["tiny_cnn__prune_global_0.2_0.36"].parent == "tiny_cnn__prune_global_0.2"
    assert not trials["tiny_cnn__none"].requested
    order = [t.id for t in plan(c)]
    for tr in plan(c):  # every trial after its dependencies
        assert all(order.index(d) < order.index(tr.id) for d in tr.deps)


def test_seeds_plan_every_trial_per_seed_on_its_own_baseline():
    c = _config(variants=("tiny_cnn",), recipes=("none", "qat"), seeds=(0, 2))
    trials = plan(c)
    ids = [t.id for t in trials]
    assert ids == ["tiny_cnn__none", "tiny_cnn__qat", "tiny_cnn__control_1",
                   "tiny_cnn__none__s2", "tiny_cnn__qat__s2", "tiny_cnn__control_1__s2"]
    by = {t.id: t for t in trials}
    assert by["tiny_cnn__qat__s2"].seed == 2 and by["tiny_cnn__qat__s2"].parent == "tiny_cnn__none__s2"
    assert by["tiny_cnn__qat__s2"].control == "tiny_cnn__control_1__s2"
    assert by["tiny_cnn__control_1__s2"].control is None
    assert c.for_seed(2).seed == 2 and c.for_seed(2).fingerprint() != c.fingerprint()
    # the seeds list is grid membership: adding a seed keeps the run's fingerprint
    assert _config(variants=("tiny_cnn",), recipes=("none",), seeds=(0, 1, 2)).fingerprint() == \
        _config(variants=("tiny_cnn",), recipes=("none",)).fingerprint()


@pytest.mark.parametrize("kw,match", [
    (dict(seeds=()), "seeds is empty"),
    (dict(seeds=(0, 0)), "twice"),
    (dict(seeds=(-1,)), "seeds=-1"),
    (dict(val_fraction=0.7), "val_fraction"),
    (dict(finetune_patience=-1), "finetune_patience"),
])
def test_trust_settings_rejected_with_one_line(kw, match):
    with pytest.raises(ValueError, match=match):
        _config(**kw)


def test_standalone_kd_depends_on_the_teacher_baseline():
    c = _config(variants=("tiny_cnn",), recipes=("kd", "ocnna:k=30+kd"), kd_teacher="vgg16")
    trials = {t.id: t for t in plan(c)}
    assert trials["tiny_cnn__kd"].teacher == "vgg16__none"
    assert trials["tiny_cnn__kd"].parent is None
    assert trials["tiny_cnn__ocnna_k_30__kd"].teacher == "tiny_cnn__ocnna_k_30"


# ---- ExperimentConfig ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,match",
    [
        (
            dict(variants=("resnet101_v1",)),
            r"unknown variant 'resnet101_v1'; did you mean resnet101_v",
        ),
        (dict(variants=()), "variants is empty"),
        (dict(variants=("tiny_cnn", "tiny_cnn")), "twice"),
        (dict(train_epochs=0), r"train_epochs=0; expected an integer >= 1"),
        (dict(finetune_epochs=-1), "finetune_epochs=-1"),
        (dict(width_multiplier=0.0), "width_multiplier=0.0"),
        (dict(dataset="fashion_mnst"), r"did you mean fashion_mnist"),
        (dict(dataset="folder:/no/such/dir"), "does not exist"),
        (dict(convert_modes=("int8", "fp16")), r"convert_modes='fp16' is unknown"),
        (dict(calibration="kl"), r"calibration='kl' is unknown.*percentile"),
        (dict(convert_modes=("float32",)), "eval_micro=True needs 'int8'"),
        (dict(train_optimizer="sgd_onecylce"), r"did you mean sgd_onecycle"),
        (dict(executor="slurm"), "executor='slurm' is unknown"),
        (dict(ray_address="auto"), "add --executor=ray"),
        (dict(recipes=("kd",)), "needs --kd_teacher"),
        (dict(reference_variant="vgg16"), "is not in variants"),
    ],
)
def test_config_rejects_bad_values_with_one_line(kw, match):
    with pytest.raises(ValueError, match=match) as err:
        _config(**kw)
    assert "\n" not in str(err.value)


def test_fingerprint_ignores_execution_fields_and_grid_but_not_settings():
    a = _config()
    assert (
        a.fingerprint()
        == _config(
            variants=("tiny_cnn", "vgg16"),
            executor="ray",
            workdir="/elsewhere",
            recipes=("none", "qat"),
        ).fingerprint()
    )
    assert a.fingerprint() != _config(train_epochs=2).fingerprint()
    assert cfg.ExperimentConfig.from_dict(a.to_dict()) == a


def test_known_variant_ids_are_the_registry_ids():
    from tfopt.models import list_variants

    assert tuple(list_variants()) == cfg.KNOWN_VARIANT_IDS


# ---- flags -> config ----------------------------------------------------------------------


def test_config_from_flags_reads_a_flagfile(tmp_path):
    from absl import flags
    from tfopt.experiments import flags as tf_flags

    ff = tmp_path / "run.cfg"
    ff.write_text(
        "# comment\n--variants=tiny_cnn\n--recipes=none,prune_global:0.2,0.36\n"
        "--recipes=ocnna:k=30\n"
        f"--workdir={tmp_path / 'wd'}\n--train_epochs=2\n--convert_modes=float32,int8\n"
    )
    fv = flags.FlagValues()
    for name in tf_flags._FIELD_FLAGS:  # a private copy of the real definitions
        fv[name] = tf_flags.FLAGS[name]
    try:
        fv(["prog", f"--flagfile={ff}"])
        c = tf_flags.config_from_flags(fv)
    finally:
        fv.unparse_flags()
    assert c.variants == ("tiny_cnn",)
    assert [r.spec() for r in c.recipes] == ["none", "prune_global:0.2,0.36", "ocnna:k=30"]
    assert c.train_epochs == 2 and c.convert_modes == ("float32", "int8")
    assert os.path.isdir(tmp_path / "wd")


BAD = {
    "unknown variant": ("--variants=resnet101_v99", "unknown variant 'resnet101_v99'"),
    "sparsity 1.2": ("--recipes=prune_global:0.2,1.2", "sparsity 1.2"),
    "epochs 0": ("--train_epochs=0", "train_epochs=0"),
    "missing dataset": ("--dataset=folder:/no/such/data", "does not exist"),
    "unwritable workdir": ("--workdir=/proc/tfopt_cannot_write_here", "a writable folder"),
    "unknown flag": ("--trian_epochs=3", "trian_epochs"),
    "bad technique field": ("--variants=resnet101[blok=ghost]", "unknown resnet101 field 'blok'"),
    "bad technique value": ("--variants=vgg19[unit=dwz]", "unit='dwz' is not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_flagfile_fails_fast_with_one_line(tmp_path, case):
    flag, expect = BAD[case]
    ff = tmp_path / "bad.cfg"
    ff.write_text(
        f"--variants=tiny_cnn\n--recipes=none\n--workdir={tmp_path / 'wd'}\n"
        f"--train_epochs=1\n{flag}\n"
    )
    # Fast because nothing heavy is imported before validation: a `tensorflow` that fails to
    # import turns any TensorFlow import on the error path into a traceback (no wall-time
    # assert: it is flaky on a loaded machine).
    no_tf = tmp_path / "no_tf" / "tensorflow"
    no_tf.mkdir(parents=True)
    (no_tf / "__init__.py").write_text("raise ImportError('tensorflow imported too early')\n")
    path = os.pathsep.join(p for p in (str(no_tf.parent), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "tfopt.experiments.ablation", f"--flagfile={ff}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert expect in lines[0]
    assert not os.path.exists(tmp_path / "wd" / "results.jsonl")


def test_driver_module_does_not_import_tensorflow_before_validation():
    code = (
        "import sys; from tfopt.experiments import ablation, flags, config, grid, store, "
        "executors, recommend; assert 'tensorflow' not in sys.modules, 'tf imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_compress_variants_limit_compression_to_some_variants():
    c = _config(
        variants=("tiny_cnn", "vgg16", "vgg19_v01"),
        recipes=("none", "qat"),
        compress_variants=("vgg16",),
    )
    ids = {t.id for t in plan(c)}
    assert ids == {"tiny_cnn__none", "vgg16__none", "vgg19_v01__none", "vgg16__qat",
                       "vgg16__control_1"}
    with pytest.raises(ValueError, match="'resnet50' is not in variants"):
        _config(variants=("tiny_cnn",), compress_variants=("resnet50",))
    with pytest.raises(ValueError, match="unknown variant 'vgg61'"):
        _config(variants=("tiny_cnn",), compress_variants=("vgg61",))


@pytest.mark.parametrize(
    "name", sorted(f for f in os.listdir(os.path.join(REPO, "experiments")) if f.endswith(".cfg"))
)
def test_every_shipped_flagfile_validates_and_has_a_header(tmp_path, name):
    from absl import flags
    from tfopt.experiments import flags as tf_flags

    path = os.path.join(REPO, "experiments", name)
    text = open(path).read()
    header = text.split("\n--", 1)[0].lower()
    for word in ("purpose", "command", "expected time"):
        assert word in header, f"{name}: header lacks {word!r}"
    assert f"--flagfile=experiments/{name}" in text
    for line in text.splitlines():
        assert not (line.startswith("--") and "#" in line), f"{name}: comment after a flag"
    fv = flags.FlagValues()
    for flag in tf_flags._FIELD_FLAGS:
        fv[flag] = tf_flags.FLAGS[flag]
    try:
        fv(["prog", f"--flagfile={path}", f"--workdir={tmp_path / 'wd'}"])
        c = tf_flags.config_from_flags(fv)
    finally:
        fv.unparse_flags()
    assert plan(c)


def test_every_config_field_has_a_flag_and_data_fields_are_fields():
    import dataclasses

    from tfopt.experiments import config as cfg
    from tfopt.experiments import flags as exp_flags
    names = [f.name for f in dataclasses.fields(cfg.ExperimentConfig)]
    missing = [n for n in names if n not in exp_flags.FLAGS]
    assert not missing, f"ExperimentConfig fields without a flag: {missing}"
    assert set(cfg.DATA_FIELDS) <= set(names)
