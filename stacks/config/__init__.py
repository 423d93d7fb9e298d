"""The one typed, frozen, validated configuration of a deployment.

`app.py` builds a :class:`ServingConfig` once from `cdk.json` context and passes it down; constructs
take typed keyword-only arguments and never read context themselves.

Precedence, lowest first: the `defaults` block, the stage's block (`stages.<stage>`), the model's
block (`models.<model>`), then flat `cdk -c key=value` overrides. Every key is declared once below
(type, default, bounds, description) and validated by pydantic; a wrong key or value raises
:class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from contracts.naming import STAGES
from stacks.config.context import CONTEXT_ROOT, allowed_keys, build_config, parse_context
from stacks.config.errors import ConfigError
from stacks.config.model import ScalingSchedule, ServingConfig, volume_kms_supported

__all__ = [
    "CONTEXT_ROOT",
    "STAGES",
    "ConfigError",
    "ScalingSchedule",
    "ServingConfig",
    "allowed_keys",
    "build_config",
    "parse_context",
    "volume_kms_supported",
]
