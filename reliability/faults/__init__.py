"""Faults under load: a Ray Serve replica killed, the model too slow, the model raising, the
runtime API killed; for each, which requests failed, how, and how long until every request
succeeded again.

The real CDK app is synthesized around the local stage's test model
(``reliability.fault_model``: a tiny model for AWS's Ray Serve container whose
``inference.py`` obeys control inputs: ``sleep_s`` sleeps, ``fail`` raises ``ValueError``) and
served by the local stage with the real Lambda handler, which passes an ``{"instances": ...}``
body to the endpoint byte for byte, so every fault travels the whole path a client's request
takes. A steady load from client threads (each paced) runs below the throttle; mid-run one fault
is injected and every request's send time, end time, status and body are recorded.
"""

from reliability.faults.injections import FAULTS
from reliability.faults.scenario import run

__all__ = ["FAULTS", "run"]
