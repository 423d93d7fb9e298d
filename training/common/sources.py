"""Every file this project downloads from the internet: URL, size and checksums, in one table.

Pretrained weights (``python -m training.weights fetch NAME``) and the reference data sets
(``python -m training.datasets fetch NAME``) come from their publishers' own URLs, never from a
mirror we run. A download is accepted only when it matches what is pinned here:

- ``sha256``: the full SHA-256 of the file. torchvision publishes the first 8 hex digits of it in
  each file name (``resnet50-11ad3fa6.pth``; ``torch.hub`` checks that prefix); the full digests
  pinned here are the ones independent users of those exact files record, and each starts with
  the published prefix, which is checked as well. The data set digests are TensorFlow Datasets'
  (``tensorflow_datasets/url_checksums/``), which also pins the sizes.
- ``sha256_prefix``: what the publisher itself publishes, checked on every download.
- ``md5``: Keras publishes MD5 digests for some applications' weights
  (``keras/src/applications/efficientnet.py``, ``WEIGHTS_HASHES``); checked when set.

Keras publishes no digest for MobileNetV2 (its loader downloads without one), and the airline
tweets CSV has none either. Those entries have ``sha256=None``: the first download records the
digest it got beside the cached file and later uses must match it (trust on first use); the
fetch command prints the digest and says how to pin it (``--sha256``).

Self-contained (standard library only): the training scripts import it as ``common.sources``
inside a job, the launcher and the fetch commands as ``training.common.sources``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The SageMaker input channel that carries pretrained weights into a job (SM_CHANNEL_PRETRAINED).
PRETRAINED_CHANNEL = "pretrained"


@dataclass(frozen=True)
class Download:
    url: str
    file_name: str
    size: int | None = None  # bytes
    sha256: str | None = None  # full digest, lower-case hex
    sha256_prefix: str | None = None  # what the publisher publishes (torchvision's file names)
    md5: str | None = None  # what the publisher publishes (Keras applications)
    origin: str = ""  # where the pinned values come from


@dataclass(frozen=True)
class Weights:
    name: str
    framework: Literal["pytorch", "keras"]
    arch: str  # the training script's --arch / --backbone value these weights fit
    description: str
    download: Download


@dataclass(frozen=True)
class Dataset:
    name: str
    model: str  # the launcher's model name (training/launch/models.py); data goes to data/<model>
    description: str
    downloads: tuple[Download, ...]
    license: str


_TORCHVISION = "https://download.pytorch.org/models/"
_TV_ORIGIN = (
    "torchvision's published sha256 prefix (file name); full digest as recorded by users of "
    "the same file"
)
_KERAS_MOBILENET_V2 = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"

WEIGHTS: dict[str, Weights] = {
    w.name: w
    for w in (
        Weights(
            name="resnet18",
            framework="pytorch",
            arch="resnet18",
            description="torchvision ResNet18_Weights.IMAGENET1K_V1 (ImageNet-1k top-1 69.76%)",
            download=Download(
                url=_TORCHVISION + "resnet18-f37072fd.pth",
                file_name="resnet18-f37072fd.pth",
                size=46_830_571,
                sha256="f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
                sha256_prefix="f37072fd",
                origin=_TV_ORIGIN,
            ),
        ),
        Weights(
            name="resnet34",
            framework="pytorch",
            arch="resnet34",
            description="torchvision ResNet34_Weights.IMAGENET1K_V1 (ImageNet-1k top-1 73.31%)",
            download=Download(
                url=_TORCHVISION + "resnet34-b627a593.pth",
                file_name="resnet34-b627a593.pth",
                sha256="b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f",
                sha256_prefix="b627a593",
                origin=_TV_ORIGIN,
            ),
        ),
        Weights(
            name="resnet50",
            framework="pytorch",
            arch="resnet50",
            # torchvision's DEFAULT for resnet50 (V1 is resnet50-0676ba61.pth, 76.13%).
            description="torchvision ResNet50_Weights.IMAGENET1K_V2 (ImageNet-1k top-1 80.86%)",
            download=Download(
                url=_TORCHVISION + "resnet50-11ad3fa6.pth",
                file_name="resnet50-11ad3fa6.pth",
                size=102_540_417,
                sha256="11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca",
                sha256_prefix="11ad3fa6",
                origin=_TV_ORIGIN,
            ),
        ),
        Weights(
            name="mobilenet_v2",
            framework="keras",
            arch="mobilenet_v2",
            # The file keras.applications.MobileNetV2(alpha=1.0, input 96, include_top=False,
            # weights="imagenet") downloads; its convolutions fit any input size.
            description="Keras applications MobileNetV2 alpha 1.0, 96 px, no top (ImageNet)",
            download=Download(
                url=_KERAS_MOBILENET_V2
                + "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5",
                file_name="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5",
                origin="Keras publishes no digest for MobileNetV2: trust on first use",
            ),
        ),
        Weights(
            name="efficientnet_b0",
            framework="keras",
            arch="efficientnet_b0",
            description="Keras applications EfficientNetB0, no top (ImageNet)",
            download=Download(
                url="https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
                file_name="efficientnetb0_notop.h5",
                md5="50bc09e76180e00e4465e1a485ddc09d",
                origin="keras/src/applications/efficientnet.py WEIGHTS_HASHES (MD5)",
            ),
        ),
    )
}

_TFDS = "tensorflow_datasets/url_checksums/{}.txt"
_DOGS = "http://vision.stanford.edu/aditya86/ImageNetDogs/"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="dog-breeds",
            model="dog-breeds",
            description="Stanford Dogs: 20,580 images of 120 breeds; the official 12,000 / "
            "8,580 train/test split (lists.tar), valid held out from train",
            downloads=(
                Download(
                    url=_DOGS + "images.tar",
                    file_name="images.tar",
                    size=793_579_520,
                    sha256="a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58",
                    origin=_TFDS.format("stanford_dogs"),
                ),
                Download(
                    url=_DOGS + "lists.tar",
                    file_name="lists.tar",
                    size=481_280,
                    sha256="34b47cacd9a98b5d150e084f24d29391c084c55272295ec65c85651bc35f4d6c",
                    origin=_TFDS.format("stanford_dogs"),
                ),
            ),
            license="ImageNet images; for non-commercial research (see the data set's page)",
        ),
        Dataset(
            name="malaria",
            model="malaria",
            description="NIH/NLM malaria cell images: 27,558 thin-smear cell crops, "
            "Parasitized vs Uninfected; split 80/10/10 by a hash of the file name",
            downloads=(
                Download(
                    url="https://data.lhncbc.nlm.nih.gov/public/Malaria/cell_images.zip",
                    file_name="cell_images.zip",
                    size=353_452_851,
                    sha256="0a949556b2414159b5100192609805376654c4266d8d187be9b1922fad43c668",
                    origin=_TFDS.format("malaria"),
                ),
            ),
            license="public (U.S. National Library of Medicine)",
        ),
        Dataset(
            name="airline-sentiment",
            model="sentiment",
            description="Twitter US Airline Sentiment (CrowdFlower / Figure Eight, Feb 2015): "
            "14,640 tweets labelled negative / neutral / positive; split 80/10/10",
            downloads=(
                Download(
                    # The publisher's "Data for Everyone" file; Kaggle's Tweets.csv copy of it
                    # needs a Kaggle login.
                    url="https://d1p17r2m4rzlbo.cloudfront.net/wp-content/uploads/2016/03/"
                    "Airline-Sentiment-2-w-AA.csv",
                    file_name="Airline-Sentiment-2-w-AA.csv",
                    origin="no digest published: trust on first use",
                ),
            ),
            license="CC BY-NC-SA 4.0 (CrowdFlower Data for Everyone)",
        ),
    )
}
