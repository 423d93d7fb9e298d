"""Command line: ``python -m model_export <pytorch|keras|verify> ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path

from model_export.errors import ExportError
from model_export.manifest import DEFAULT_ATOL
from model_export.serve_config import ServeSettings

log = logging.getLogger("model_export")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir",
        type=Path,
        required=True,
        help="the trained model folder (model.pth or model.keras, model_config.json, "
        "metrics.json). Required.",
    )
    parser.add_argument(
        "--name",
        required=True,
        help="model name: the artifacts/<name>/ folder and the TF Serving model name. Required.",
    )
    parser.add_argument(
        "--version",
        type=_positive_int,
        default=1,
        help="model version (the TF Serving version folder). Default: 1.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder for model.tar.gz and manifest.json. Default: artifacts/<name>.",
    )
    parser.add_argument(
        "--atol",
        type=_tolerance,
        default=DEFAULT_ATOL,
        help=f"tolerance on class probabilities for every parity check. Default: {DEFAULT_ATOL}.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_export",
        description="Turn a trained model into a model.tar.gz that its SageMaker serving "
        "container loads as is, and verify it before deploying.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        help="logging level. Default: $LOG_LEVEL or INFO.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    torch_parser = sub.add_parser(
        "pytorch",
        help="export a PyTorch image classifier (state_dict + code/ + Ray Serve config.yaml)",
        description="Export model.pth + model_config.json for AWS's Ray Serve container.",
    )
    _common(torch_parser)
    torch_parser.add_argument(
        "--arch-module",
        type=Path,
        default=None,
        help="the module defining build_model(arch, num_classes); copied into code/. "
        "Default: the project's training/torch_models.py.",
    )
    torch_parser.add_argument(
        "--example-image",
        type=Path,
        default=None,
        help="an image for the manifest's example request. Default: a synthetic picture.",
    )
    torch_parser.add_argument(
        "--torch-export",
        action="store_true",
        help="also put a torch.export program (model.pt2) in the tarball. Default: off.",
    )
    torch_parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write model.onnx beside the tarball (parity-checked). Default: off.",
    )
    defaults = ServeSettings()
    serve = torch_parser.add_argument_group(
        "Ray Serve settings", "written to the artifact's config.yaml (the stack's serve_* keys)"
    )
    serve.add_argument(
        "--replicas",
        type=_positive_int,
        default=defaults.replicas,
        help=f"model replicas per instance. Default: {defaults.replicas}.",
    )
    serve.add_argument(
        "--cpus-per-replica",
        type=_tolerance,
        default=defaults.cpus_per_replica,
        help="CPUs each replica reserves (also its torch threads). "
        f"Default: {defaults.cpus_per_replica:g}.",
    )
    serve.add_argument(
        "--max-ongoing-requests",
        type=_positive_int,
        default=defaults.max_ongoing_requests,
        help=f"requests a replica takes at once. Default: {defaults.max_ongoing_requests}.",
    )
    serve.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=defaults.max_batch_size,
        help=f"requests per predict_fn call at most. Default: {defaults.max_batch_size}.",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=defaults.batch_wait_ms,
        help="how long a batch waits for more requests while others are in flight "
        f"(a lone request never waits). Default: {defaults.batch_wait_ms:g}.",
    )

    keras_parser = sub.add_parser(
        "keras",
        help="export a Keras model as a TF Serving SavedModel",
        description="Export model.keras (or architecture JSON + HDF5 weights) as a SavedModel "
        "under <name>/<version>/ with code/inference.py for the TF Serving container.",
    )
    _common(keras_parser)
    keras_parser.add_argument(
        "--layout",
        choices=("name", "servo"),
        default="name",
        help="name: <name>/<version>/ ; servo: the legacy export/Servo/<version>/. Default: name.",
    )
    keras_parser.add_argument(
        "--architecture-json",
        type=Path,
        default=None,
        help="older models: the architecture JSON (model.to_json()); needs --weights-h5. "
        "Default: read model.keras from --model-dir.",
    )
    keras_parser.add_argument(
        "--weights-h5",
        type=Path,
        default=None,
        help="older models: the HDF5 weights for --architecture-json. Default: none.",
    )
    keras_parser.add_argument(
        "--example-image",
        type=Path,
        default=None,
        help="image models: an image for the example request. Default: a synthetic picture.",
    )
    keras_parser.add_argument(
        "--example-text",
        default=None,
        help="text models: the example request's text. Default: a fixed airline-review sentence.",
    )
    keras_parser.add_argument(
        "--no-handler",
        action="store_true",
        help="leave out code/inference.py (clients then send TF Serving JSON). Default: included.",
    )
    keras_parser.add_argument(
        "--tflite",
        action="store_true",
        help="also write model.tflite beside the tarball (image models; parity-checked). "
        "Default: off.",
    )

    verify_parser = sub.add_parser(
        "verify",
        help="check an artifact against its container's rules and the original model",
        description="Unpack, check the layout, load it the way the container would, run the "
        "manifest's example and compare with the original model's answer.",
    )
    verify_parser.add_argument(
        "tarball", type=Path, help="model.tar.gz (or an unpacked artifact folder)"
    )
    verify_parser.add_argument(
        "--atol",
        type=_tolerance,
        default=None,
        help="tolerance on probabilities. Default: the manifest's (1e-4 unless exported with "
        "another --atol).",
    )
    verify_parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="the trained model folder: reload the original model and compare with it instead of "
        "the answer recorded at export. Default: use the recorded answer.",
    )
    verify_parser.add_argument(
        "--arch-module",
        type=Path,
        default=None,
        help="PyTorch, with --model-dir: the build_model module. Default: the artifact's "
        "code/torch_models.py.",
    )
    verify_parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="PyTorch: skip the second run of the example through real Ray Serve and the "
        "container's adapter (about 10 s). Default: both runs.",
    )
    context_parser = sub.add_parser(
        "context",
        help="print the CDK context (-c framework=... ...) for an artifact already in S3",
        description="Read manifest.json from inside an s3://.../model.tar.gz (a training job's "
        "output) with your AWS credentials and print the CDK context that picks its serving "
        "container; `make deploy MODEL_DATA_URL=...` runs this before `cdk deploy`.",
    )
    context_parser.add_argument("url", help="s3://<bucket>/<key>.tar.gz")
    context_parser.add_argument(
        "--smoke-case",
        type=Path,
        default=None,
        help="also write a smoke case (.github/smoke/<model>.json's format) from the manifest's "
        "example request to this file. Default: none.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _summary(result) -> None:
    print(f"artifact: {result.tarball}")
    print(f"sha256:   {result.sha256}")
    print(f"manifest: {result.manifest_path}")
    for name, info in result.edge.items():
        print(f"{name}: {info['path']} (max |delta p| {info['max_abs_diff']:.2e})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "pytorch":
            from model_export.pytorch_export import export_pytorch

            _summary(
                export_pytorch(
                    args.model_dir,
                    name=args.name,
                    version=args.version,
                    out_dir=args.out,
                    arch_module=args.arch_module,
                    example_image=args.example_image,
                    torch_export=args.torch_export,
                    onnx=args.onnx,
                    atol=args.atol,
                    serve=ServeSettings(
                        replicas=args.replicas,
                        cpus_per_replica=args.cpus_per_replica,
                        max_ongoing_requests=args.max_ongoing_requests,
                        max_batch_size=args.max_batch_size,
                        batch_wait_ms=args.batch_wait_ms,
                    ),
                )
            )
            return 0
        if args.command == "keras":
            from model_export.keras_export import export_keras

            _summary(
                export_keras(
                    args.model_dir,
                    name=args.name,
                    version=args.version,
                    out_dir=args.out,
                    layout=args.layout,
                    architecture_json=args.architecture_json,
                    weights_h5=args.weights_h5,
                    example_image=args.example_image,
                    example_text=args.example_text,
                    handler=not args.no_handler,
                    tflite=args.tflite,
                    atol=args.atol,
                )
            )
            return 0
        if args.command == "context":
            import json

            from model_export.remote import cdk_context, read_manifest, smoke_case

            manifest = read_manifest(args.url)
            if args.smoke_case is not None:
                case = smoke_case(manifest, args.url)
                args.smoke_case.write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")
            print(" ".join(cdk_context(manifest)))
            return 0
        from model_export.verify import verify

        # The original model is rebuilt from the project's architectures when they are
        # importable (a checkout), else from the artifact's own code/torch_models.py.
        arch_spec = importlib.util.find_spec("training.torch_models")
        report = verify(
            args.tarball,
            args.atol,
            args.model_dir,
            args.arch_module
            or (Path(arch_spec.origin) if arch_spec and arch_spec.origin else None),
            ray_serve=not args.in_process_only,
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report.notes:
        print(f"ok: {line}")
    for line in report.warnings:
        print(f"warning: {line}")
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    print(f"{args.tarball}: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
