"""The training scripts' own flags, parsed by the scripts themselves (importing them imports
torch or TensorFlow; the shared plumbing: tests/unit/training/test_env_and_cli.py)."""

import pytest


@pytest.fixture
def no_sagemaker(monkeypatch):
    for var in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_TRAINING_ENV", "SM_HOSTS",
                "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALID", "SM_CHANNEL_TEST", "SM_NUM_GPUS"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    "script", ["image_classifier_torch", "image_classifier_keras", "sentiment_lstm_keras"]
)
def test_the_seed_scripts_flag_spellings_are_aliases(script, no_sagemaker):
    import importlib

    module = importlib.import_module(f"training.{script}")
    for argv in (
        ["--learning-rate", "0.01", "--gpu-count", "0", "--epochs", "3"],
        ["--learning_rate", "0.01", "--gpu_count", "0", "--epochs", "3"],  # SageMaker's form
    ):
        args = module.parse_args(argv)
        assert (args.lr, args.gpu_count, args.epochs) == (0.01, 0, 3)
    if script == "image_classifier_torch":
        assert module.parse_args(["--gpu-count", "0"]).device == "cpu"
        assert module.parse_args(["--gpu-count", "2"]).device == "cuda"
        assert module.parse_args([]).device == "auto"


def test_gpu_count_contradicting_device_is_a_usage_error(no_sagemaker, capsys):
    from training import image_classifier_torch

    with pytest.raises(SystemExit) as info:
        image_classifier_torch.parse_args(["--gpu-count", "0", "--device", "cuda"])
    assert info.value.code == 2
    assert "--gpu-count 0 contradicts --device cuda" in capsys.readouterr().err
