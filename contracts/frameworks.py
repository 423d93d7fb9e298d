"""Which framework versions train and serve the models: the one table of them.

The exporter writes ``SERVING[framework]`` into an artifact's manifest (model_export), the CDK app
resolves the serving image from the manifest's image family and version (stacks/artifact.py),
and the launcher picks the training image from ``TRAINING`` (training/launch/models.py).
"""

from __future__ import annotations

# The serving containers targeted, each by its sagemaker-core image family and version. PyTorch:
# AWS's Ray Serve DLC, pinned to v1.4 (Ray 2.57.0, torch 2.10, Python 3.13; the PyTorch inference
# DLC with TorchServe reached end of support on 2026-06-30). TF 2.20: the newest TF Serving DLC in
# sagemaker-core's offline image list, the closest to the TF 2.21 that writes the SavedModel.
SERVING: dict[str, dict[str, str]] = {
    "pytorch": {
        "image_family": "ray-serve",
        "framework_version": "1.4",
        "py_version": "py313",
        "image_repository": "ray",
        "model_server": "ray-serve 2.57.0 (serve run config.yaml + the container's adapter)",
    },
    "tensorflow": {
        "image_family": "tensorflow",
        "framework_version": "2.20",
        "py_version": "py312",
        "image_repository": "tensorflow-inference",
        "model_server": "tensorflow-serving (nginx + gunicorn python service)",
    },
}

# sagemaker-core's image family of each framework's serving container.
IMAGE_FAMILY: dict[str, str] = {fw: serving["image_family"] for fw, serving in SERVING.items()}

# The SageMaker training images (AWS DLC): the newest of each, so the container is as close as it
# gets to the local torch 2.13 / TensorFlow 2.21 the scripts are tested with.
TRAINING: dict[str, dict[str, str]] = {
    "pytorch": {"framework_version": "2.10", "py_version": "py313"},
    "tensorflow": {"framework_version": "2.21", "py_version": "py312"},
}
