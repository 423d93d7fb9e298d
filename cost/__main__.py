"""python -m cost: a stage's idle monthly cost and cost per million predictions, itemised.

python -m cost                                  # default stage and model (cdk.json)
python -m cost --stage prod --model digits --region eu-west-1
python -m cost --compare                        # every stage in cdk.json, side by side
python -m cost --compare dev,prod --chart docs/cost.png
python -m cost -c stage=prod -c max_instances=8 # the deploy's own -c arguments
python -m cost --json                           # for machines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cost import bench, render
from cost.estimate import DEFAULT_S3_GB, Estimate, estimate
from cost.prices import PriceError, priced_regions, region_prices
from cost.synth import project_context, synthesize
from cost.template import TemplateError, read_template
from stacks.config import parse_context

DESCRIPTION = """\
Estimate what a serving stack costs, from its synthesized CloudFormation template (synthesized
here, in-process: no AWS calls) and the price table in cost/prices.json.

Two figures, itemised: the monthly cost when idle (deployed, no requests: endpoint instances at
the configured minimum, provisioned concurrency, KMS keys, alarms, dashboard, S3), and the cost
per million predictions (instance time at the throughput bench/ measured for the model, Lambda
requests and duration, API Gateway, X-Ray, logs). The endpoint at its configured maximum is
shown too.

The prices are list prices entered by hand from the AWS pricing pages, with each one's source
and date; they are never fetched. Re-check them before relying on an estimate. No free tier or
discount is subtracted.
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cost",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", help="stage to price (default: cdk.json's default_stage)")
    parser.add_argument("--model", help="model to price (default: cdk.json's default_model)")
    parser.add_argument(
        "--region",
        help="region whose prices to use (default: -c region, else AWS_REGION / "
        f"AWS_DEFAULT_REGION, else us-east-1); priced: {', '.join(priced_regions())}",
    )
    parser.add_argument(
        "--compare",
        nargs="?",
        const="",
        metavar="STAGES",
        help="price several stages side by side: a comma-separated list (default: every "
        "stage in cdk.json)",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, as for cdk (make deploy passes its own -c arguments)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--chart", type=Path, help="also write a PNG chart here (needs matplotlib)")
    parser.add_argument(
        "--throughput-rps",
        type=float,
        help="predictions/s of one instance, instead of bench's measurement (e.g. from a load "
        "test of the deployed endpoint)",
    )
    parser.add_argument(
        "--s3-gb",
        type=float,
        default=DEFAULT_S3_GB,
        help=f"GB kept in the stack's bucket (default {DEFAULT_S3_GB:g}, an assumption)",
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="price this synthesized template (e.g. cdk.out/MlServing-dev-digits.template.json) "
        "instead of synthesizing",
    )
    return parser.parse_args(argv)


def _region(args: argparse.Namespace, context: dict[str, str]) -> str:
    return (
        args.region
        or context.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )


def run(args: argparse.Namespace) -> list[Estimate]:
    context = parse_context(args.context)
    serving = project_context().get("ml-serving", {})
    context_model, context_stage = context.pop("model", None), context.pop("stage", None)
    model = args.model or context_model or serving.get("default_model", "digits")
    stage = args.stage or context_stage or serving.get("default_stage", "dev")
    region = _region(args, context)
    prices = region_prices(region)  # an unpriced region fails before the synth
    if args.compare is not None:
        stages = [s for s in args.compare.split(",") if s] or list(serving.get("stages", {}))
    else:
        stages = [stage]
    if args.template:
        templates = {stage: json.loads(args.template.read_text(encoding="utf-8"))}
    else:
        templates = synthesize(stages, model, region, {**context, "region": region})
    throughput = bench.serving_throughput(model)
    if args.throughput_rps:
        throughput = bench.Throughput(
            rps=bench.Figure(args.throughput_rps, "--throughput-rps (per instance)", True),
            cpus=1,
            model_ms=throughput.model_ms,
        )
    return [
        estimate(
            read_template(template),
            prices,
            stage=name,
            model=model,
            throughput=throughput,
            handler_ms=bench.handler_ms(),
            overhead_ms=bench.sagemaker_overhead_ms(),
            s3_gb=args.s3_gb,
        )
        for name, template in templates.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        estimates = run(args)
    except (PriceError, TemplateError, LookupError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out: Any = [e.to_dict() for e in estimates]
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    elif len(estimates) > 1:
        print(render.comparison(estimates))
    else:
        print(render.table(estimates[0]))
    if args.chart:
        render.chart(estimates, args.chart)
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
