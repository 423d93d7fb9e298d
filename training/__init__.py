"""Training scripts for the reference models; each runs locally, on EC2 and as a SageMaker job.

One import name everywhere: ``training.common``, ``training.torch_models``. In a checkout the
project is installed (``pip install -e .``), so ``python training/<script>.py`` and
``python -m training.<script>`` both import it; in a SageMaker job the launcher's bundle carries
this package and runs it through a generated entry script (training/launch/source.py).
"""
