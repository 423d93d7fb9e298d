"""The launcher passes transfer-learning models their pretrained weights as the ``pretrained``
channel by default, and says clearly when a choice cannot work."""

from __future__ import annotations

import pytest

from training.launch import cli, plans, pretrained
from training.launch.models import get_model
from training.launch.settings import LaunchError

ROLE = "arn:aws:iam::123456789012:role/MlServing-dev-digits-TrainingRole"
BUCKET = "mlserving-dev-digits-bucket"
WEIGHTS = f"s3://{BUCKET}/training/input/weights"


@pytest.fixture(autouse=True)
def no_aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)


def plan(model: str, *extra: str):
    args = cli.build_parser().parse_args(
        ["train", "--model", model, "--role", ROLE, "--bucket", BUCKET, "--region", "eu-west-1",
         *extra]
    )  # fmt: skip
    return plans.build_train_plan(args)


def test_transfer_models_get_their_architectures_weights_as_a_channel() -> None:
    dogs = plan("dog-breeds")
    assert dogs.channels["pretrained"] == f"{WEIGHTS}/resnet50/resnet50-11ad3fa6.pth"
    assert dogs.pretrained is not None and dogs.pretrained.weights.name == "resnet50"
    assert "pretrained-weights" not in dogs.hyperparameters
    # The weights follow the architecture the job trains.
    assert plan("dog-breeds", "--hp", "arch=resnet18").channels["pretrained"] == (
        f"{WEIGHTS}/resnet18/resnet18-f37072fd.pth"
    )
    malaria = plan("malaria")
    assert malaria.channels["pretrained"] == (
        f"{WEIGHTS}/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    )


def test_models_without_a_pretrained_backbone_get_no_channel() -> None:
    for model in ("digits", "sentiment"):
        job = plan(model)
        assert "pretrained" not in job.channels and job.pretrained is None
        assert "pretrained-weights" not in job.hyperparameters


def test_none_tells_the_script_it_is_on_purpose() -> None:
    job = plan("dog-breeds", "--pretrained-weights", "none")
    assert "pretrained" not in job.channels and job.pretrained is None
    assert job.hyperparameters["pretrained-weights"] == "none"


def test_own_weights_in_s3_are_passed_as_they_are() -> None:
    uri = f"s3://{BUCKET}/my/weights.pth"
    job = plan("dog-breeds", "--pretrained-weights", uri)
    assert job.channels["pretrained"] == uri
    assert job.pretrained is not None and job.pretrained.weights is None  # nothing to upload
    # an explicit --channel pretrained=... wins over the default
    job = plan("dog-breeds", "--channel", f"pretrained={uri}")
    assert job.channels["pretrained"] == uri and job.pretrained is None


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("malaria", ["--pretrained-weights", "resnet50"],
         "resnet50 are pytorch weights; malaria trains with tensorflow"),
        ("dog-breeds", ["--pretrained-weights", "vgg16"],
         "--pretrained-weights 'vgg16': use one of auto, none, efficientnet_b0"),
        ("malaria", ["--hp", "alpha=0.35"], "published MobileNetV2 weights in the table are alpha"),
        ("dog-breeds", ["--pretrained-weights", "s3://"], "is not an S3 URI"),
    ],
)  # fmt: skip
def test_impossible_choices_are_clear_errors(model, extra, message, capsys) -> None:
    code = cli.main(["train", "--model", model, "--role", ROLE, "--bucket", BUCKET,
                     "--region", "eu-west-1", *extra, "--dry-run"])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err


def test_ec2_gives_the_script_its_weights_flag(tmp_path) -> None:
    dogs = get_model("dog-breeds")
    assert pretrained.script_args_for_local_run("none", dogs, []) == [
        "--pretrained-weights",
        "none",
    ]
    assert pretrained.script_args_for_local_run("none", get_model("digits"), []) == []
    own = tmp_path / "w.pth"
    own.write_bytes(b"x")
    assert pretrained.script_args_for_local_run(str(own), dogs, []) == [
        "--pretrained-weights", str(own),
    ]  # fmt: skip
    # the user's own script flag wins; nothing is fetched
    assert pretrained.script_args_for_local_run("auto", dogs, ["--backbone-weights", "x"]) == []
    with pytest.raises(LaunchError, match="or an existing local file"):
        pretrained.script_args_for_local_run(str(tmp_path / "nope.pth"), dogs, [])


def test_none_with_a_width_the_table_has_no_weights_for_is_fine() -> None:
    job = plan("malaria", "--pretrained-weights", "none", "--hp", "alpha=0.35")
    assert job.hyperparameters["pretrained-weights"] == "none" and job.pretrained is None
