"""The sagemaker-runtime client: explicit timeouts, standard-mode retries, created once at init."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ReadTimeoutError

from .config import Config


def create_runtime_client(config: Config, session: Any = None) -> Any:
    """The sagemaker-runtime client for ``config``.

    botocore's session is used directly (it is what boto3.client wraps) because `import boto3`
    adds ~10% to the cold start for nothing this function uses. Pass `session` to reuse one
    session's loaded service data (tests, benchmarks).
    """
    import botocore.session
    from botocore.config import Config as BotoConfig

    session = session or botocore.session.get_session()
    client = session.create_client(
        "sagemaker-runtime",
        region_name=config.region,
        config=BotoConfig(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            # Standard mode retries throttling, 500/502/503/504 and connection errors only,
            # with jittered backoff; ModelError and ValidationError are never retried.
            retries={"mode": "standard", "total_max_attempts": config.max_attempts},
            tcp_keepalive=True,
        ),
    )
    client.meta.events.register_first(
        "needs-retry.sagemaker-runtime.InvokeEndpoint", _never_retry_read_timeouts
    )
    return client


def _never_retry_read_timeouts(caught_exception: Exception | None = None, **_: Any) -> None:
    """Stop standard mode from retrying a read timeout.

    A second attempt after a read timeout would run past API Gateway's 29 s and the client would
    get API Gateway's bare timeout instead of our 504. Raising here ends the retry loop with the
    original exception (botocore's public event hook; no veto value works on every version).
    """
    if isinstance(caught_exception, ReadTimeoutError):
        raise caught_exception
