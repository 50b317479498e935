"""Command line for the model zoo: list the variants with their costs, or break one down.

    python -m tfopt.models list [--num_classes=10] [--format=table|json] [--match='resnet101_v*,vgg19_v*']
    python -m tfopt.models summary resnet101_v13 --num_classes=10 [--format=table|json]
    python -m tfopt.models summary 'vgg19[unit=dws,se=True]'   (a technique combination)

`list` builds every matching variant at full width (about 5-15 s each on one CPU core) and
prints id, technique set, trainable params, FLOPs (fvcore convention) and MACs (conv + dense).
`summary` prints the per-block breakdown (stem, s{stage}_b{block}, head, ...).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import sys

_BLOCK = re.compile(r"^(s\d+_b\d+)(?:_|$)")
_PART = re.compile(r"^([A-Za-z]+\d*)")


def describe_techniques(techniques) -> str:
    """The non-default fields of a technique set, e.g. "block=ghost, head=optim_gap"."""
    from tfopt.core.techniques import describe

    return describe(techniques)


def block_of(layer_name: str) -> str:
    """The block a layer belongs to: `s3_b22_conv2` -> `s3_b22`, `head_fc` -> `head`."""
    m = _BLOCK.match(layer_name) or _PART.match(layer_name)
    return m.group(1) if m else layer_name


def _costs(variant_id: str, num_classes: int, width_multiplier: float) -> dict:
    from tfopt import metrics
    from tfopt._keras import keras
    from tfopt.models import build_from_spec, techniques_of

    keras.backend.clear_session()
    model = build_from_spec(variant_id, num_classes=num_classes,
                            width_multiplier=width_multiplier)
    costs = metrics.layer_costs(model)
    row = {"id": variant_id,
           "techniques": describe_techniques(techniques_of(variant_id)[1]),
           "params": metrics.count_params(model),
           "flops": sum(c.flops for c in costs),
           "macs": sum(c.macs for c in costs)}
    return row, costs


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def cmd_list(args) -> int:
    from tfopt.models import list_variants

    patterns = [p.strip() for p in args.match.split(",") if p.strip()]
    ids = [v for v in list_variants() if any(fnmatch.fnmatch(v, p) for p in patterns)]
    if not ids:
        raise ValueError(f"--match={args.match!r} matches no variant; ids: "
                         f"{', '.join(list_variants())}")
    rows = [_costs(v, args.num_classes, args.width_multiplier)[0] for v in ids]
    if args.format == "json":
        print(json.dumps([{k: r[k] for k in ("id", "params", "flops", "macs")} for r in rows],
                         indent=1))
    else:
        print(_table(["id", "techniques", "params", "FLOPs", "MACs"],
                     [(r["id"], r["techniques"], f"{r['params']:,}", f"{r['flops']:,}",
                       f"{r['macs']:,}") for r in rows]))
    return 0


def cmd_summary(args) -> int:
    row, costs = _costs(args.variant, args.num_classes, args.width_multiplier)
    blocks: dict[str, dict] = {}
    for c in costs:
        b = blocks.setdefault(block_of(c.name), {"block": block_of(c.name), "layers": 0,
                                                 "params": 0, "flops": 0, "macs": 0})
        b["layers"] += 1
        b["params"] += c.params
        b["flops"] += c.flops
        b["macs"] += c.macs
    if args.format == "json":
        print(json.dumps({**row, "num_classes": args.num_classes,
                          "blocks": list(blocks.values())}, indent=1))
        return 0
    print(f"{row['id']} ({row['techniques']}), {args.num_classes} classes, width "
          f"{args.width_multiplier}")
    body = [(b["block"], b["layers"], f"{b['params']:,}", f"{b['flops']:,}", f"{b['macs']:,}")
            for b in blocks.values()]
    body.append(("total", len(costs), f"{row['params']:,}", f"{row['flops']:,}",
                 f"{row['macs']:,}"))
    print(_table(["block", "layers", "params", "FLOPs", "MACs"], body))
    return 0


def _flag_values() -> dict:
    """One absl FlagValues per subcommand."""
    from absl import flags

    out = {}
    for name in COMMANDS:
        fv = out[name] = flags.FlagValues()
        flags.DEFINE_integer("num_classes", 10, "classifier outputs (>= 1)", flag_values=fv)
        flags.DEFINE_float("width_multiplier", 1.0, "scale every channel count (> 0)",
                           flag_values=fv)
        flags.DEFINE_enum("format", "table", ["table", "json"], "output format", flag_values=fv)
        if name == "list":
            flags.DEFINE_string("match", "*", "comma-separated fnmatch patterns on ids, e.g. "
                                "'resnet101_v*,vgg19_v*'", flag_values=fv)
    return out


COMMANDS = ("list", "summary")
FLAG_VALUES = _flag_values()


def _args(command: str, rest: list[str]):
    import types

    from tfopt.core import cli

    want = 2 if command == "summary" else 1
    if len(rest) != want:
        what = "one VARIANT argument" if want == 2 else "no positional argument"
        raise ValueError(f"{command}: expected {what}, got {rest[1:] or 'none'}")
    args = types.SimpleNamespace(**FLAG_VALUES[command].flag_values_dict())
    args.variant = rest[1] if want == 2 else None
    if args.num_classes < 1:
        raise cli.bad_value("num_classes", args.num_classes, "an int >= 1")
    if not args.width_multiplier > 0:
        raise cli.bad_value("width_multiplier", args.width_multiplier, "a number > 0")
    return args


def main(argv=None) -> int:
    """`python -m tfopt.models list|summary ...`; returns the exit status."""
    from tfopt.core import cli

    commands = {c: functools.partial(lambda c, rest: (cmd_list if c == "list" else cmd_summary)(
        _args(c, rest)), c) for c in COMMANDS}
    return cli.run_command(argv, doc=__doc__, prog="python -m tfopt.models", commands=commands,
                           flag_values=FLAG_VALUES)


if __name__ == "__main__":
    sys.exit(main())
