"""Shared by the checks: boto3 client settings, calls the credentials may not make, quota links."""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import ClientError

from account_setup.doctor.report import Report

# botocore's error codes for "these credentials may not make this call".
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "NoSuchEntity",
}
CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def could_not(report: Report, check: str, what: str, exc: Exception, by_hand: str) -> None:
    """A call that failed without telling us the answer: a warning that says how to look."""
    if isinstance(exc, ClientError) and error_code(exc) in _DENIED:
        reason = f"not allowed to {what} ({error_code(exc)})"
    else:
        reason = f"could not {what}: {exc}"
    report.add(check, "warn", f"{reason}; not checked", f"check by hand: {by_hand}")


def quota_console_url(region: str, service: str, quota_code: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/servicequotas/home/services/{service}/quotas/"
        f"{quota_code}"
    )


def quota_increase_command(region: str, service: str, quota_code: str, desired: int) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {service} "
        f"--quota-code {quota_code} --desired-value {desired} --region {region}"
    )
