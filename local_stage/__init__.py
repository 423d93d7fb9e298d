"""The local stage: the synthesized stack (model server, SageMaker Runtime API, API Gateway + Lambda
front) on one machine, without AWS or Docker. ``python -m local_stage --help``."""
