"""How a serving stack is named, and the stages it can be deployed as.

``MlServing-<stage>-<model>``: the CDK app names its stacks so (stacks/config.py), the launcher
finds a deploy's outputs under that name in ``cdk-outputs.json`` (training/launch/settings.py), and
the CI roles are scoped to stacks with this prefix (stacks/github_oidc.py).
"""

from __future__ import annotations

STAGES = ("dev", "prod")
STACK_PREFIX = "MlServing-"


def stack_name(stage: str, model: str) -> str:
    return f"{STACK_PREFIX}{stage}-{model}"
