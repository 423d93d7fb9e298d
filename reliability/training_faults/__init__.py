"""Training faults: a real training run SIGKILLed at random steps and resumed, then its newest
checkpoint truncated and resumed again; the result compared with an uninterrupted run.

Each attempt is the same command line (as a spot restart or `training.launch ec2` on a new
instance runs it). The step an attempt died at is the last ``step i/n`` progress line it logged
(``--progress log --log-every-steps 1``; the line is written after the optimizer step and before
that step's checkpoint), and the step it resumed from is the ``resuming from ckpt-e<E>-s<STEP>``
line of the next attempt; damaged checkpoints it skipped are its ``skipping corrupt checkpoint``
warnings.
"""

from reliability.training_faults.exercise import kill_targets
from reliability.training_faults.scenario import SEED, run

__all__ = ["SEED", "kill_targets", "run"]
