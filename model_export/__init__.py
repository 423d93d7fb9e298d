"""Model export: trained model -> ``model.tar.gz`` its SageMaker serving container loads as is.

``python -m model_export pytorch|keras ...`` writes ``artifacts/<name>/model.tar.gz`` and
``manifest.json`` beside it; ``python -m model_export verify <tarball>`` checks one.
``model_export.containers`` serves an unpacked artifact in-process with each container's request
semantics, through the local model server's handlers (used by ``verify``). Importing this package
is cheap: torch and TensorFlow load only when a command needs them.
"""
