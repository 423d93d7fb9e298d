"""The serving stack's bucket layout under ``training/``: what the training role is scoped to.

The stack grants the training role exactly these prefixes (stacks/training_access.py), the CI
role ``TRAINING_PREFIX`` (stacks/github_oidc.py), and the launcher writes to them
(training/launch/)::

    training/input/datasets/<model>/<channel>/...    data sets (upload-data); read-only to jobs
    training/input/code/<model>/sourcedir-<sha>.tar.gz  the job's code, content-addressed
    training/input/weights/<name>/<file>             pretrained weights (the pretrained channel)
    training/jobs/<job>/output/model.tar.gz          what a job writes, plus the SDK's staged
                                                     drivers (training/jobs/<base>/<job>/input/)
    training/checkpoints/<model>/<run-id>/           one folder per spot job
"""

TRAINING_PREFIX = "training/"
DATA_PREFIX = TRAINING_PREFIX + "input/"
DATASETS_PREFIX = DATA_PREFIX + "datasets/"
WEIGHTS_PREFIX = DATA_PREFIX + "weights/"
CODE_PREFIX = DATA_PREFIX + "code/"
OUTPUT_PREFIX = TRAINING_PREFIX + "jobs/"
CHECKPOINT_PREFIX = TRAINING_PREFIX + "checkpoints/"
