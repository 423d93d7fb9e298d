"""Facts the whole project shares, in one place; standard library only, so anything may import it.

The CDK app (``stacks``), the training code and its launcher (``training``), the exporter
(``model_export``), the local stage and the tests all need a few facts to agree: how a stack is
named, which S3 prefixes the bucket has, which framework versions the serving containers run,
the ImageNet normalisation, the registry of models. Each lives in exactly one module here and is
imported everywhere else. Nothing here imports a third-party package or another project package,
so importing it costs nothing (the import-linter contracts in pyproject.toml check both).

Code shipped inside a model artifact (``model_export/serving/``) runs in AWS's container, where the
project is not installed: it keeps its own copy, and a unit test asserts the copy equals this one.
"""
