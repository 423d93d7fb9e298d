"""Command-line plumbing shared by the training scripts.

SageMaker passes hyperparameters as ``--key value`` pairs, JSON-encoded by the SDK (``--freeze
"true"``, ``--arch "\\"resnet50\\""`` with SDK 2.x, raw strings with 3.x), and users spell keys
with dashes or underscores; every flag here accepts all of these forms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.common import env

log = logging.getLogger(__name__)

EXIT_FAILURE = 1
EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every flag's default in --help and keeps the description's line breaks."""


def _unquote(value: str) -> str:
    """``"resnet50"`` (JSON-encoded by the SageMaker SDK) -> ``resnet50``."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, str):
            return decoded
    return value


def text(value: str) -> str:
    return _unquote(value)


def boolean(value: str) -> bool:
    lowered = _unquote(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def auto_boolean(value: str) -> bool | None:
    """``auto`` -> None (decided at run time, e.g. by whether a GPU is present)."""
    if _unquote(value).strip().lower() == "auto":
        return None
    return boolean(value)


def _number(kind: Callable[[str], Any], minimum: float | None, name: str) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            number = kind(_unquote(value))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected {name}, got {value!r}") from exc
        if minimum is not None and number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value!r}")
        return number

    return parse


def positive_int(value: str) -> int:
    return _number(int, 1, "an integer")(value)


def non_negative_int(value: str) -> int:
    return _number(int, 0, "an integer")(value)


def positive_float(value: str) -> float:
    number = _number(float, None, "a number")(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
    return number


def non_negative_float(value: str) -> float:
    return _number(float, 0, "a number")(value)


def path(value: str) -> Path:
    return Path(_unquote(value)).expanduser()


def add(
    parser: argparse._ActionsContainer, name: str, *, aliases: Sequence[str] = (), **kwargs: Any
) -> None:
    """Add ``--some-flag`` together with its SageMaker-style spelling ``--some_flag`` (and each
    alias, e.g. another project's name for the same flag, in both spellings)."""
    names: list[str] = []
    for flag in (name, *aliases):
        names.append(flag)
        if "-" in flag[2:]:
            names.append("--" + flag[2:].replace("-", "_"))
    if kwargs.get("type") in (boolean, auto_boolean) and "nargs" not in kwargs:
        # `--flag` alone means true; `--flag false` (SageMaker's form) also works.
        kwargs.setdefault("nargs", "?")
        kwargs.setdefault("const", True)
    parser.add_argument(*names, **kwargs)


def add_common_arguments(parser: argparse.ArgumentParser, stem: str, defaults: dict) -> None:
    """The flags every training script shares: data, outputs, schedule, spot safety, health."""
    io = parser.add_argument_group("data and outputs (SageMaker's SM_* variables when set)")
    add(io, "--data", type=path, help="folder holding train/, valid/ and test/")
    for channel in env.CHANNELS:
        add(
            io,
            f"--{channel}",
            type=path,
            help=f"the {channel} data folder; default SM_CHANNEL_{channel.upper()}, else "
            f"DATA/{channel}",
        )
    add(
        io,
        "--model-dir",
        type=path,
        default=env.default_model_dir(stem),
        help="where the best model is saved (SM_MODEL_DIR when set)",
    )
    add(
        io,
        "--output-dir",
        type=path,
        default=env.default_output_dir(stem),
        help="curves, health report, profile (SM_OUTPUT_DATA_DIR when set)",
    )
    add(
        io,
        "--checkpoint-dir",
        type=path,
        default=env.default_checkpoint_dir(stem),
        help="checkpoints for resuming (/opt/ml/checkpoints in SageMaker)",
    )
    add(
        io,
        "--failure-file",
        type=path,
        default=None,
        help="where to write the reason of a fatal error (default /opt/ml/output/failure in "
        "SageMaker, OUTPUT_DIR/failure otherwise)",
    )

    train = parser.add_argument_group("training")
    add(train, "--epochs", type=positive_int, default=defaults["epochs"], help="epochs to train")
    add(
        train,
        "--batch-size",
        type=positive_int,
        default=defaults["batch_size"],
        help="samples per step (per process under torchrun)",
    )
    add(
        train,
        "--lr",
        aliases=("--learning-rate",),
        type=positive_float,
        default=defaults["lr"],
        help="peak learning rate",
    )
    add(train, "--seed", type=non_negative_int, default=42, help="random seed (reproducible runs)")
    add(
        train,
        "--gpu-count",
        type=non_negative_int,
        default=None,
        help="0 trains on the CPU, 1 or more on the GPU (one per process: torchrun starts a "
        "process per GPU); None: a GPU when there is one",
    )
    add(
        train,
        "--smoke",
        type=boolean,
        default=False,
        help="tiny fast run for CI: 1 epoch of a few steps on a few samples",
    )

    serving = parser.add_argument_group("serving artifact")
    add(
        serving,
        "--export",
        type=boolean,
        default=True,
        help="write the serving layout (python -m model_export's, verified) into --model-dir at "
        "the end, so a SageMaker job's model.tar.gz deploys as it is",
    )
    add(
        serving,
        "--serving-name",
        type=text,
        default="model",
        help="the model's name in the serving layout (TF Serving's model name); the launcher "
        "passes the model's name",
    )

    spot = parser.add_argument_group("checkpoints (spot-safe)")
    add(
        spot,
        "--checkpoint-every-steps",
        type=non_negative_int,
        default=0,
        help="also checkpoint every N steps (0: only at the end of each epoch)",
    )
    add(
        spot,
        "--keep-checkpoints",
        type=positive_int,
        default=2,
        help="how many recent checkpoints to keep (2 or more lets a resume fall back past a "
        "damaged newest one)",
    )
    add(
        spot,
        "--resume",
        type=boolean,
        default=True,
        help="resume from the newest checkpoint in --checkpoint-dir when there is one",
    )

    health = parser.add_argument_group("training health and profiling")
    add(
        health,
        "--health-fatal",
        type=boolean,
        default=False,
        help="stop the run (exit 1, failure file) on the first health finding",
    )
    add(
        health,
        "--health-every-steps",
        type=positive_int,
        default=10,
        help="check gradient norms and the input pipeline every N steps",
    )
    add(
        health,
        "--health-patience-epochs",
        type=positive_int,
        default=2,
        help="epochs without improvement (train loss) or of rising valid loss before a finding",
    )
    add(
        health,
        "--health-exploding-grad-norm",
        type=positive_float,
        default=1e3,
        help="a global gradient L2 norm above this is 'exploding'",
    )
    add(
        health,
        "--health-vanishing-grad-norm",
        type=positive_float,
        default=1e-7,
        help="a global gradient L2 norm below this is 'vanishing'",
    )
    add(
        health,
        "--health-max-data-wait-fraction",
        type=positive_float,
        default=0.5,
        help="a stalled input pipeline: more than this fraction of step time waiting for data",
    )
    add(
        health,
        "--profile",
        type=boolean,
        default=False,
        help="record a framework profile (TensorBoard) and a data-vs-compute time summary",
    )
    add(
        health,
        "--profile-steps",
        type=positive_int,
        default=20,
        help="steps recorded by --profile (after 2 warm-up steps)",
    )
    add(
        health,
        "--progress",
        choices=["auto", "bar", "log"],
        default="auto",
        help="progress display: a bar in a terminal (auto), always a bar, or log lines",
    )
    add(
        health,
        "--log-every-steps",
        type=positive_int,
        default=50,
        help="with log-line progress, log every N steps",
    )


def setup_logging(rank: int = 0) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    prefix = f"[rank {rank}] " if rank else ""
    logging.basicConfig(
        level=level if rank == 0 else "WARNING",
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def run(main: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run ``main(args)`` with the script-mode error contract; return the exit status.

    A :class:`env.UsageError` is logged as one line (exit 2); anything else with its traceback
    (exit 1). Both write the failure file SageMaker reports as the job's FailureReason.
    """
    failure_file = args.failure_file or env.default_failure_file(args.output_dir)
    try:
        return int(main(args) or 0)
    except env.UsageError as exc:
        log.error("%s", exc)
        env.write_failure(failure_file, f"UsageError: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        env.write_failure(failure_file, "interrupted (KeyboardInterrupt)")
        return EXIT_FAILURE
    except Exception as exc:
        log.exception("training failed")
        env.write_failure(failure_file, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        return EXIT_FAILURE
