"""A stand-in training script for the EC2 runner tests: the runner's contract, nothing more.

Takes the flags the real scripts take, resumes from ``CHECKPOINT_DIR/latest.json``, writes one
checkpoint per "epoch" (atomically, like training/common/checkpoint.py) and prunes old ones, and
records in ``MODEL_DIR/model.json`` which epoch it started from and what data it saw.
"""

import argparse
import json
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
for flag in ("--train", "--valid", "--test", "--data", "--model-dir", "--output-dir"):
    parser.add_argument(flag, type=Path)
parser.add_argument("--checkpoint-dir", type=Path, required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--step-s", type=float, default=0.0)
parser.add_argument("--fail", default="false")
args, _unknown = parser.parse_known_args()

latest = args.checkpoint_dir / "latest.json"
start = json.loads(latest.read_text())["epoch"] if latest.is_file() else 0
print(f"starting at epoch {start}", flush=True)
if args.fail == "true":
    (args.output_dir / "failure").write_text("asked to fail")
    raise SystemExit(3)
for epoch in range(start, args.epochs):
    time.sleep(args.step_s)
    (args.checkpoint_dir / f"epoch-{epoch + 1}.bin").write_bytes(os.urandom(64))
    old = args.checkpoint_dir / f"epoch-{epoch - 1}.bin"
    old.unlink(missing_ok=True)  # keep the newest two, like --keep-checkpoints 2
    tmp = latest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"epoch": epoch + 1}))
    tmp.replace(latest)
    print(f"#metric epoch={epoch + 1} train_loss={1 / (epoch + 2):.4f}", flush=True)
train_files = sorted(p.name for p in args.train.rglob("*") if p.is_file()) if args.train else []
(args.model_dir / "model.json").write_text(
    json.dumps({"started_from": start, "epochs": args.epochs, "train_files": train_files})
)
(args.output_dir / "metrics.json").write_text(json.dumps({"epochs": args.epochs}))
