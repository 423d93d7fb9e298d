"""Small helpers shared by the constructs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import IConstruct

# The settings CloudWatch Logs accepts, in days.
_SETTINGS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention setting that keeps logs at least ``days`` days."""
    for setting_days, setting in _SETTINGS.items():
        if setting_days >= days:
            return setting
    return logs.RetentionDays.TEN_YEARS


def data_removal_policy(retain_data: bool) -> cdk.RemovalPolicy:
    """What happens to a resource holding data (bucket, log group, key) when the stack goes.

    Retained: kept on delete and on replacement, but deleted when the stack's first create fails
    and rolls back (CloudFormation's RetainExceptOnCreate). A plain Retain would leave the
    resources of a failed create behind, and those with fixed names (the endpoint's log group)
    would collide with the retry.
    """
    return (
        cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain_data else cdk.RemovalPolicy.DESTROY
    )


def nag_resource(scope: IConstruct, arn: str) -> str:
    """``arn`` as cdk-nag names it in a finding id (tokens as <LogicalId> / <Id.Attr>)."""
    return _nag_form(cdk.Stack.of(scope).resolve(arn))


def _nag_form(value: Any) -> str:
    """cdk-nag's ``flattenCfnReference``: Join joined, Ref/GetAtt and Sub's ${X} as <X>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_nag_form(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target, attribute = value["Fn::GetAtt"]
        return f"<{target}.{attribute}>"
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        # The bootstrap bucket of an environment-agnostic stack: cdk-nag writes
        # 'cdk-...-assets-${AWS::AccountId}-...' as 'cdk-...-assets-<AWS::AccountId>-...'.
        return str(value["Fn::Sub"]).replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return _nag_form(value["Fn::ImportValue"])
    raise ValueError(f"nag_resource: cannot render {value!r}")


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of ``construct``'s default child (for nag acknowledgments)."""
    return cdk.Stack.of(construct).get_logical_id(construct.node.default_child)  # type: ignore[arg-type]
