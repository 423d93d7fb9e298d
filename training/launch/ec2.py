"""``ec2``: run a training script on this machine with its data, checkpoints and model in S3.

What SageMaker does for a spot training job, on a plain (spot) EC2 instance:

1. sync ``--data`` down to ``WORK/data`` (one folder per channel);
2. sync ``OUTPUT/checkpoints/`` down to ``WORK/checkpoints``: the script resumes from the newest
   checkpoint there, so a replacement instance carries on where an interrupted one stopped;
3. run ``training/<script>.py`` with local paths (``--train/--valid/--test``, ``--model-dir``,
   ``--output-dir``, ``--checkpoint-dir``), the model's default hyperparameters, then any
   arguments given after ``--``;
4. while it runs, sync checkpoints up every ``--checkpoint-sync-s``, at once on a spot
   interruption notice (``--spot-notice-poll-s``), and on SIGTERM/SIGINT (the instance shutting
   down), after passing the signal on to the script;
5. when the script succeeds, upload the model dir as ``OUTPUT/model.tar.gz`` (files at the archive
   root, like SageMaker) and the output dir as ``OUTPUT/output.tar.gz``; print ``model_data=...``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from training.launch import s3sync
from training.launch.models import ModelSpec
from training.launch.settings import LaunchError, parse_s3_uri
from training.launch.source import TRAINING_DIR

log = logging.getLogger(__name__)

# How long the script gets to finish after SIGTERM before it is killed: EC2 gives two minutes
# between the spot notice and the reclaim; leave time for the final checkpoint upload.
SCRIPT_STOP_GRACE_S = 60.0
IMDS_DEFAULT = "http://169.254.169.254"


class CheckpointSyncer:
    """Uploads the checkpoint folder when asked and every ``interval_s`` in the background."""

    def __init__(self, s3: Any, root: Path, bucket: str, prefix: str, interval_s: float) -> None:
        self.s3, self.root, self.bucket, self.prefix = s3, root, bucket, prefix
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="checkpoint-sync", daemon=True)

    def sync(self, reason: str) -> None:
        with self._lock:  # one sync at a time: the timer, a spot notice and SIGTERM can overlap
            keys = s3sync.upload_dir(self.s3, self.root, self.bucket, self.prefix, workers=4)
            stale = set(s3sync.list_objects(self.s3, self.bucket, self.prefix)) - set(
                s3sync.local_files(self.root)
            )
            # The script prunes old checkpoints; mirror that so a resume picks from the same set.
            for relative in sorted(stale):
                self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + relative)
            if keys or stale:
                log.info("checkpoint sync (%s): %d up, %d removed", reason, len(keys), len(stale))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sync("periodic")
            except Exception:  # a failed periodic sync must not stop training; retried next tick
                log.exception("periodic checkpoint sync failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _imds_get(base: str, path: str, timeout_s: float = 2.0) -> tuple[int, str]:
    """IMDSv2: a session token first, then the GET (the instance may require v2)."""
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"the metadata endpoint {base!r} must be an http(s) URL")
    # S310: the scheme is checked just above.
    token_request = urllib.request.Request(  # noqa: S310
        f"{base}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    )
    with urllib.request.urlopen(token_request, timeout=timeout_s) as response:  # noqa: S310
        token = response.read().decode()
    request = urllib.request.Request(  # noqa: S310
        f"{base}{path}", headers={"X-aws-ec2-metadata-token": token}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def watch_spot_notice(
    syncer: CheckpointSyncer, interval_s: float, stop: threading.Event
) -> threading.Thread:
    """Poll ``spot/instance-action``; on a notice (HTTP 200), upload checkpoints at once."""
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", IMDS_DEFAULT).rstrip("/")

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                status, body = _imds_get(base, "/latest/meta-data/spot/instance-action")
            except (OSError, urllib.error.URLError) as exc:
                log.debug("spot notice poll failed: %s", exc)
                continue
            if status == 200:
                log.warning("spot interruption notice: %s; uploading checkpoints", body.strip())
                syncer.sync("spot notice")
                return

    thread = threading.Thread(target=loop, name="spot-notice", daemon=True)
    thread.start()
    return thread


def script_command(
    script: Path,
    model: ModelSpec,
    data_dir: Path,
    model_dir: Path,
    output_dir: Path,
    checkpoint_dir: Path,
    script_args: list[str],
) -> list[str]:
    channels = [name for name in model.channels if (data_dir / name).is_dir()]
    data_args = (
        [arg for name in channels for arg in (f"--{name}", str(data_dir / name))]
        if channels
        else ["--data", str(data_dir)]
    )
    hp_args = [
        arg for key, value in model.job_hyperparameters.items() for arg in (f"--{key}", str(value))
    ]
    return [
        sys.executable,
        str(script),
        *data_args,
        "--model-dir",
        str(model_dir),
        "--output-dir",
        str(output_dir),
        "--checkpoint-dir",
        str(checkpoint_dir),
        *hp_args,
        *script_args,  # last: argparse keeps the last value, so these override the defaults
    ]


def _tar_gz(folder: Path, destination: Path) -> None:
    with tarfile.open(destination, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)


def _upload_tarball(s3: Any, folder: Path, bucket: str, key: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        _tar_gz(folder, archive)
        s3.upload_file(str(archive), bucket, key, Config=s3sync.TRANSFER)
    return f"s3://{bucket}/{key}"


def run(
    *,
    model: ModelSpec,
    data_uri: str,
    output_uri: str,
    region: str,
    work_dir: Path,
    checkpoint_sync_s: float,
    spot_notice_poll_s: float,
    entry_script: Path | None,
    script_args: list[str],
    s3: Any = None,
) -> int:
    data_bucket, data_prefix = parse_s3_uri(data_uri, "--data")
    out_bucket, out_prefix = parse_s3_uri(output_uri, "--output")
    out_prefix = out_prefix.strip("/")
    if not out_prefix:
        raise LaunchError(f"--output {output_uri} needs a prefix for this run, e.g. s3://b/runs/1")
    if checkpoint_sync_s <= 0:
        raise LaunchError("--checkpoint-sync-s must be positive")
    script = (entry_script or TRAINING_DIR / model.entry_script).resolve()
    if not script.is_file():
        raise LaunchError(f"training script {script} not found: pass --entry-script")
    if s3 is None:
        import boto3

        s3 = boto3.Session(region_name=region).client("s3")
    checkpoint_prefix = f"{out_prefix}/checkpoints/"
    data_dir, model_dir = work_dir / "data", work_dir / "model"
    output_dir, checkpoint_dir = work_dir / "output", work_dir / "checkpoints"
    # A fresh model and output per run; checkpoints stay (they are what a resume needs).
    for folder in (model_dir, output_dir):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in (data_dir, model_dir, output_dir, checkpoint_dir):
        folder.mkdir(parents=True, exist_ok=True)

    s3sync.download_prefix(s3, data_bucket, data_prefix, data_dir)
    if not s3sync.local_files(data_dir):
        raise LaunchError(f"no data under --data {data_uri}: run upload-data first")
    restored = s3sync.download_prefix(s3, out_bucket, checkpoint_prefix, checkpoint_dir)
    if restored:
        log.info("restored %d checkpoint file(s): the script resumes from them", restored)

    command = script_command(
        script, model, data_dir, model_dir, output_dir, checkpoint_dir, script_args
    )
    syncer = CheckpointSyncer(s3, checkpoint_dir, out_bucket, checkpoint_prefix, checkpoint_sync_s)
    stopping = threading.Event()
    children: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.warning("%s: stopping the script and saving checkpoints", signal.Signals(signum).name)
        for running in children:
            running.send_signal(signal.SIGTERM)

    # Handlers first: a SIGTERM right after the start must still reach the script.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("running %s", " ".join(command))
    child = subprocess.Popen(command)
    children.append(child)
    if stopping.is_set():
        child.send_signal(signal.SIGTERM)
    syncer.start()
    notice_stop = threading.Event()
    if spot_notice_poll_s > 0:
        watch_spot_notice(syncer, spot_notice_poll_s, notice_stop)
    try:
        while True:
            try:
                returncode = child.wait(timeout=SCRIPT_STOP_GRACE_S if stopping.is_set() else None)
                break
            except subprocess.TimeoutExpired:
                log.error("the script did not stop within %.0f s: killing it", SCRIPT_STOP_GRACE_S)
                child.kill()
    finally:
        notice_stop.set()
        syncer.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    syncer.sync("final")

    if stopping.is_set():
        log.warning("interrupted; checkpoints are in s3://%s/%s", out_bucket, checkpoint_prefix)
        return 128 + signal.SIGTERM
    if returncode != 0:
        failure = output_dir / "failure"
        reason = failure.read_text().strip() if failure.is_file() else "see the log above"
        log.error("the training script failed (exit %d): %s", returncode, reason)
        return returncode
    if not s3sync.local_files(model_dir):
        log.error("the training script succeeded but wrote nothing to %s", model_dir)
        return 1
    model_data = _upload_tarball(s3, model_dir, out_bucket, f"{out_prefix}/model.tar.gz")
    if s3sync.local_files(output_dir):
        _upload_tarball(s3, output_dir, out_bucket, f"{out_prefix}/output.tar.gz")
    summary = {"model_data": model_data, "checkpoints": f"s3://{out_bucket}/{checkpoint_prefix}"}
    log.info("run finished: %s", json.dumps(summary))
    print(f"model_data={model_data}")
    return 0
