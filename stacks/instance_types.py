"""Facts about SageMaker instance types that the templates are sized from (no AWS calls)."""

from __future__ import annotations

# vCPUs of an instance by size, and GiB of memory per vCPU by CPU family (EC2's published sizes).
_VCPUS_BY_SIZE = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32}
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
# The share of an instance's memory one model copy asks for: more than half, so one copy fills
# one instance (copies scale out instance by instance), and room for SageMaker's own agents.
COPY_MEMORY_SHARE = 0.6


def is_gpu(instance_type: str) -> bool:
    """Whether a SageMaker instance type has NVIDIA GPUs (sagemaker-core picks CUDA images)."""
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return family.startswith(("g", "p"))


def copy_resources(instance_type: str) -> tuple[int, int]:
    """(CPU cores, memory MiB) one inference-component copy asks for: one copy per instance.

    Sized from the instance type because SageMaker places copies by these numbers
    (ComputeResourceRequirements): asking for the whole instance fails placement (the host keeps
    some for itself), asking for less than half would pack two copies on one instance.
    """
    family, _, size = instance_type.removeprefix("ml.").partition(".")
    letter = family[:1]
    if size not in _VCPUS_BY_SIZE or letter not in _GIB_PER_VCPU or is_gpu(instance_type):
        raise ValueError(
            f"capacity_mode scale_to_zero sizes a model copy from the instance "
            f"type, and knows the CPU families c, m and r in sizes {', '.join(_VCPUS_BY_SIZE)}; "
            f"{instance_type!r} is not one of them (use capacity_mode always_on for it)"
        )
    vcpus = _VCPUS_BY_SIZE[size]
    memory_mb = int(vcpus * _GIB_PER_VCPU[letter] * 1024 * COPY_MEMORY_SHARE)
    return max(1, vcpus // 2), memory_mb
