"""Command line for the model zoo: list the variants with their costs, or break one down.

    python -m tfopt.models list [--num_classes=10] [--format=table|json] [--match='resnet101_v*,vgg19_v*']
    python -m tfopt.models summary resnet101_v13 --num_classes=10 [--format=table|json]
    python -m tfopt.models summary 'vgg19[unit=dws,se=True]'   (a technique combination)

`list` builds every matching variant at full width (about 5-15 s each on one CPU core) and
prints id, technique set, trainable params, FLOPs (fvcore convention) and MACs (conv + dense).
`summary` prints the per-block breakdown (stem, s{stage}_b{block}, head, ...).
"""

from __future__ import annotations

import argparse
import fnmatch
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
        raise SystemExit(f"--match={args.match!r} matches no variant; ids: {list_variants()}")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfopt.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("list", "every registered variant with params / FLOPs / MACs"),
                        ("summary", "per-block breakdown of one variant")):
        p = sub.add_parser(name, help=help_)
        if name == "summary":
            p.add_argument("variant", help="a variant id (see `list`) or a technique "
                           "combination, e.g. 'vgg19[unit=dws,se=True]'")
        p.add_argument("--num_classes", type=int, default=10, help="classifier outputs")
        p.add_argument("--width_multiplier", type=float, default=1.0)
        p.add_argument("--format", choices=("table", "json"), default="table")
        if name == "list":
            p.add_argument("--match", default="*", help="comma-separated fnmatch patterns on ids, e.g. 'resnet101_v*,vgg19_v*'")
    args = parser.parse_args(argv)
    try:
        return cmd_list(args) if args.command == "list" else cmd_summary(args)
    except ValueError as err:  # unknown id, bad num_classes / width: one line, no traceback
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
