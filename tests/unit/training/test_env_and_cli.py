"""Script-mode plumbing: SageMaker env vars with local fallbacks, SageMaker's flag forms."""

import argparse
from pathlib import Path

import pytest

from training.common import cli, env


@pytest.fixture
def no_sagemaker(monkeypatch):
    for var in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_TRAINING_ENV", "SM_HOSTS",
                "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALID", "SM_CHANNEL_TEST", "SM_NUM_GPUS"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)


def test_local_fallbacks_outside_sagemaker(no_sagemaker, tmp_path):
    assert env.default_model_dir("s") == Path("runs/s/model")
    assert env.default_output_dir("s") == Path("runs/s/output")
    if not env.SM_FAILURE_FILE.parent.is_dir():
        assert env.default_failure_file(tmp_path) == tmp_path / "failure"
    assert env.sm_hosts() == ["localhost"] and env.num_gpus_from_env() is None


def test_sagemaker_variables_win(no_sagemaker, monkeypatch, tmp_path):
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_NUM_GPUS", "4")
    assert env.default_model_dir("s") == Path("/opt/ml/model")
    assert env.default_checkpoint_dir("s") == Path("/opt/ml/checkpoints")
    assert env.default_failure_file(tmp_path) == Path("/opt/ml/output/failure")
    assert env.sm_hosts() == ["algo-1", "algo-2"] and env.num_gpus_from_env() == 4


def test_bad_sagemaker_values_are_usage_errors(no_sagemaker, monkeypatch):
    monkeypatch.setenv("SM_HOSTS", "algo-1")
    with pytest.raises(env.UsageError, match="SM_HOSTS"):
        env.sm_hosts()


def test_channels_flag_then_env_then_data_folder(no_sagemaker, monkeypatch, tmp_path):
    for name in ("train", "valid", "test", "elsewhere"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("SM_CHANNEL_VALID", str(tmp_path / "elsewhere"))
    resolved = env.resolve_channels(tmp_path, {"test": tmp_path / "train"})
    assert resolved == {
        "train": tmp_path / "train",
        "valid": tmp_path / "elsewhere",
        "test": tmp_path / "train",
    }
    with pytest.raises(env.UsageError, match="no train data.*--data DIR"):
        env.resolve_channels(tmp_path / "elsewhere", {})


def test_write_failure_never_raises(tmp_path):
    env.write_failure(tmp_path / "deep" / "failure", "x" * 5000)
    assert len((tmp_path / "deep" / "failure").read_text()) == 1024
    env.write_failure(Path("/proc/not/writable/failure"), "ignored")  # logged, not raised


def parser():
    p = argparse.ArgumentParser()
    cli.add(p, "--batch-size", type=cli.positive_int, default=1)
    cli.add(p, "--freeze", type=cli.boolean, default=False)
    cli.add(p, "--amp", type=cli.auto_boolean, default=None)
    cli.add(p, "--arch", type=cli.text, default="a")
    return p


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--batch_size", "8"], {"batch_size": 8}),
        (["--batch-size", '"8"'], {"batch_size": 8}),
        (["--freeze"], {"freeze": True}),
        (["--freeze", "False"], {"freeze": False}),
        (["--freeze", '"true"'], {"freeze": True}),
        (["--amp", "auto"], {"amp": None}),
        (["--amp", "false"], {"amp": False}),
        (["--arch", '"resnet50"'], {"arch": "resnet50"}),  # SDK 2.x JSON-encodes strings
        (["--arch", "resnet50"], {"arch": "resnet50"}),
    ],
)
def test_sagemaker_hyperparameter_forms(argv, expected):
    args = vars(parser().parse_args(argv))
    assert {k: args[k] for k in expected} == expected


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--freeze", "maybe"]])
def test_bad_flag_values_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "expected" in err or "must be" in err


def test_several_instances_without_torchrun_are_refused(no_sagemaker, monkeypatch):
    env.require_one_host_unless_distributed("x.py", distributed=False)  # one host: fine
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    env.require_one_host_unless_distributed("x.py", distributed=True)
    with pytest.raises(env.UsageError, match="2 instances.*algo-2.*torchrun"):
        env.require_one_host_unless_distributed("x.py", distributed=False)
