"""Teardown: what `cdk destroy` deletes and what it leaves, read from the synthesized templates.

The real app is synthesized for stage dev and stage prod (``harness.synth``, offline). Every
resource that holds data (buckets, log groups, keys, ...) must follow the stage's promise: dev
deletes it (and empties buckets first, or CloudFormation cannot delete them), prod retains it.
Everything that costs money while it exists (the endpoint, provisioned concurrency, alarms, the
dashboard) must be deleted in both stages. Prod retains its data with RetainExceptOnCreate, so a
first create that fails and rolls back leaves nothing that would block the retry. Resources AWS creates on its own for the stack's
resources (log groups of Lambda functions, of the endpoint, of API Gateway execution logging) must
be declared by the stack, or they outlive it; what no template can own is listed separately.
"""

from reliability.teardown.policies import DATA_TYPES, classify, load_template
from reliability.teardown.scenario import run
from reliability.teardown.service_logs import service_log_groups

__all__ = ["DATA_TYPES", "classify", "load_template", "run", "service_log_groups"]
