"""The CLI as `make artifacts` runs it, in fresh processes: export, verify, reproducibility."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import model_dirs as fixtures

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "model_export", "--log-level", "WARNING", *args]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def _run_in_parallel(*commands: list[str]) -> list[tuple[int, str, str]]:
    """Fresh processes side by side: less wall time than one after the other."""
    procs = [
        subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    return results


def _sha(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("sha256:"))


def test_pytorch_export_then_verify_is_reproducible(tmp_path):
    model_dir, arch = fixtures.write_torch_model_dir(tmp_path / "train")
    runs = _run_in_parallel(
        *(
            _command(
                "pytorch",
                "--model-dir",
                str(model_dir),
                "--name",
                "digits",
                "--arch-module",
                str(arch),
                "--out",
                str(tmp_path / out),
            )
            for out in ("a", "b")
        )
    )
    for code, _, err in runs:
        assert code == 0, err
    assert _sha(runs[0][1]) == _sha(runs[1][1])
    checked = _run("verify", str(tmp_path / "a" / "model.tar.gz"))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith("OK")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["artifact"]["sha256"] == _sha(runs[0][1])


def test_keras_export_is_reproducible_across_processes(tmp_path):
    # SavedModel bytes depend on the process (function-name counters, a random fingerprint
    # uuid); fresh processes exporting the same model must still agree byte for byte.
    # In-process: the unit tests have usually imported TensorFlow already.
    model_dir = fixtures.write_keras_text_model_dir(tmp_path / "train")
    runs = _run_in_parallel(
        *(
            _command(
                "keras",
                "--model-dir",
                str(model_dir),
                "--name",
                "sentiment",
                "--out",
                str(tmp_path / out),
            )
            for out in ("a", "b")
        )
    )
    for code, _, err in runs:
        assert code == 0, err
    shas = [_sha(out) for _, out, _ in runs]
    assert shas[0] == shas[1]


def test_verify_failure_exits_1_and_says_why(tmp_path):
    import tarfile

    bad = tmp_path / "model.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        source = tmp_path / "saved_model.pb"
        source.write_bytes(b"\x08\x01")
        tar.add(source, arcname="saved_model.pb")
    done = _run("verify", str(bad))
    assert done.returncode == 1
    assert "saved_model.pb is at the root" in done.stderr
    assert "Traceback" not in done.stderr
