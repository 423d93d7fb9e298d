"""torch_models: the architectures model_export ships and serving rebuilds."""

import pytest
import torch

from training import torch_models

# torchvision's published parameter counts (torchvision.models docs, "num_params", 1000 classes):
# equal counts with torchvision's key names mean a torchvision checkpoint loads strictly.
TORCHVISION_NUM_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}
TORCHVISION_NUM_KEYS = {"resnet18": 122, "resnet34": 218, "resnet50": 320}


@pytest.fixture(autouse=True)
def _in_project_resnets(monkeypatch):
    monkeypatch.setenv("TORCH_MODELS_NO_TORCHVISION", "1")


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_resnets_match_torchvision_shape_and_keys(arch):
    model = torch_models.build_model(arch, 1000)
    state = model.state_dict()

    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_NUM_PARAMS[arch]
    assert len(state) == TORCHVISION_NUM_KEYS[arch]
    assert list(state)[:2] == ["conv1.weight", "bn1.weight"]
    assert "layer2.0.downsample.0.weight" in state
    assert "layer2.0.downsample.1.running_var" in state
    assert list(state)[-2:] == ["fc.weight", "fc.bias"]
    if arch == "resnet50":
        assert state["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
        # v1.5: the stride is on the 3x3 conv, as in torchvision.
        assert model.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("arch", torch_models.ARCHS)
def test_every_arch_classifies_a_batch(arch):
    model = torch_models.build_model(arch, 7).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 7)


def test_pretrained_backbone_loads_and_head_is_new():
    torch.manual_seed(0)
    imagenet = torch_models.build_model("resnet18", 1000).state_dict()
    torch.manual_seed(1)
    model = torch_models.build_model("resnet18", 5)

    skipped = torch_models.load_backbone_weights(model, imagenet)

    assert sorted(skipped) == ["fc.bias", "fc.weight"]
    loaded = model.state_dict()
    assert torch.equal(loaded["layer3.1.conv2.weight"], imagenet["layer3.1.conv2.weight"])
    assert loaded["fc.weight"].shape == (5, 512)


def test_weights_of_another_arch_are_rejected():
    model = torch_models.build_model("resnet18", 5)
    other = torch_models.build_model("resnet50", 1000).state_dict()
    with pytest.raises(ValueError, match="different architecture|shape"):
        torch_models.load_backbone_weights(model, other)


def test_freeze_backbone_leaves_only_the_head_trainable():
    model = torch_models.build_model("small_cnn", 3)
    torch_models.freeze_backbone(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize(("arch", "classes"), [("vgg16", 3), ("small_cnn", 1)])
def test_bad_arguments_say_what_is_wrong(arch, classes):
    with pytest.raises(ValueError, match="arch|num_classes"):
        torch_models.build_model(arch, classes)
