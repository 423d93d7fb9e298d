"""Getting an AWS account ready for this project's stacks, without synthesizing them.

* :mod:`account_setup.doctor` (``make doctor``, run first by ``make deploy``): reads the
  deployment's config from ``cdk.json`` and checks credentials, region, the CDK bootstrap stack,
  the Lambda concurrency and the SageMaker instance quota the stage needs; every shortfall comes
  with the command or console page that raises it.
* :mod:`account_setup.execution_policy` (``make bootstrap``): the managed policies the
  CloudFormation execution role gets instead of AdministratorAccess, kept as JSON beside it.

Only boto3 and the standard library are imported here (plus ``stacks.config``, which needs only
pydantic): no CDK, no ML frameworks, so a check takes seconds.
"""
