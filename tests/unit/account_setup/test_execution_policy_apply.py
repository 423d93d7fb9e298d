"""`make bootstrap`'s first step: the execution policies created or updated in the account (Stubber)."""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pytest
from botocore.stub import Stubber

from account_setup import execution_policy as ep

ACCOUNT = "123456789012"
DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "A",
            "Effect": "Allow",
            "Action": ["s3:CreateBucket"],
            "Resource": "arn:aws:s3:::mlserving-*",
        }
    ],
}


def clients(partition: str = "aws"):
    session = boto3.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
    )
    iam, sts = session.client("iam"), session.client("sts")
    iam_stub, sts_stub = Stubber(iam), Stubber(sts)
    sts_stub.add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:{partition}:iam::{ACCOUNT}:user/admin", "UserId": "AIDA"},
        {},
    )
    iam_stub.activate()
    sts_stub.activate()
    return iam, sts, iam_stub, sts_stub


def text(document: dict, partition: str = "aws") -> str:
    return json.dumps(document, separators=(",", ":")).replace('"arn:aws:', f'"arn:{partition}:')


def test_missing_policies_are_created_and_their_arns_returned():
    iam, sts, stub, sts_stub = clients()
    arns = []
    for name in ("part-1", "part-2"):
        arn = f"arn:aws:iam::{ACCOUNT}:policy/MlServingCdkExecution-{name}"
        arns.append(arn)
        stub.add_client_error(
            "get_policy", "NoSuchEntity", http_status_code=404, expected_params={"PolicyArn": arn}
        )
        stub.add_response(
            "create_policy",
            {"Policy": {"PolicyName": f"MlServingCdkExecution-{name}", "Arn": arn}},
            {
                "PolicyName": f"MlServingCdkExecution-{name}",
                "PolicyDocument": text(DOC),
                "Description": "CloudFormation execution policy for the ml-serving stacks "
                "(account_setup/cdk-execution-policy)",
            },
        )

    log = io.StringIO()
    assert ep.apply(iam, sts, {"part-1": DOC, "part-2": DOC}, log=log) == arns
    stub.assert_no_pending_responses()
    sts_stub.assert_no_pending_responses()
    assert log.getvalue().count("created ") == 2


def _existing(stub: Stubber, arn: str, current: dict, versions: int) -> None:
    stub.add_response(
        "get_policy",
        {"Policy": {"Arn": arn, "DefaultVersionId": f"v{versions}"}},
        {"PolicyArn": arn},
    )
    stub.add_response(
        "get_policy_version",
        {
            "PolicyVersion": {
                "Document": json.dumps(current),
                "VersionId": f"v{versions}",
                "IsDefaultVersion": True,
            }
        },
        {"PolicyArn": arn, "VersionId": f"v{versions}"},
    )


def test_an_unchanged_policy_is_left_alone():
    iam, sts, stub, _ = clients()
    arn = f"arn:aws:iam::{ACCOUNT}:policy/MlServingCdkExecution-part-1"
    _existing(stub, arn, DOC, versions=1)

    assert ep.apply(iam, sts, {"part-1": DOC}, log=io.StringIO()) == [arn]
    stub.assert_no_pending_responses()  # and no create_policy_version was called


def test_a_changed_policy_gets_a_new_default_version_dropping_the_oldest_of_five():
    iam, sts, stub, _ = clients()
    arn = f"arn:aws:iam::{ACCOUNT}:policy/MlServingCdkExecution-part-1"
    old = {**DOC, "Statement": [{**DOC["Statement"][0], "Action": ["s3:DeleteBucket"]}]}
    _existing(stub, arn, old, versions=5)
    stub.add_response(
        "list_policy_versions",
        {
            "Versions": [
                {
                    "VersionId": f"v{i}",
                    "IsDefaultVersion": i == 5,
                    "CreateDate": dt.datetime(2026, 1, i, tzinfo=dt.UTC),
                }
                for i in (3, 1, 5, 2, 4)
            ]
        },
        {"PolicyArn": arn},
    )
    stub.add_response("delete_policy_version", {}, {"PolicyArn": arn, "VersionId": "v1"})
    stub.add_response(
        "create_policy_version",
        {"PolicyVersion": {"VersionId": "v6", "IsDefaultVersion": True}},
        {"PolicyArn": arn, "PolicyDocument": text(DOC), "SetAsDefault": True},
    )

    log = io.StringIO()
    assert ep.apply(iam, sts, {"part-1": DOC}, log=log) == [arn]
    stub.assert_no_pending_responses()
    assert f"updated {arn}" in log.getvalue()


def test_arns_follow_the_accounts_partition():
    iam, sts, stub, _ = clients("aws-cn")
    arn = f"arn:aws-cn:iam::{ACCOUNT}:policy/MlServingCdkExecution-part-1"
    stub.add_client_error(
        "get_policy", "NoSuchEntity", http_status_code=404, expected_params={"PolicyArn": arn}
    )
    stub.add_response(
        "create_policy",
        {"Policy": {"Arn": arn}},
        {
            "PolicyName": "MlServingCdkExecution-part-1",
            "PolicyDocument": text(DOC, "aws-cn"),
            "Description": "CloudFormation execution policy for the ml-serving stacks "
            "(account_setup/cdk-execution-policy)",
        },
    )

    assert ep.apply(iam, sts, {"part-1": DOC}, log=io.StringIO()) == [arn]
    stub.assert_no_pending_responses()


def test_apply_without_iam_rights_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert ep.main(["apply"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no ARNs for cdk bootstrap to use
    assert (
        "could not create the execution policies" in captured.err
        and "iam:CreatePolicy" in captured.err
    )


def test_the_committed_documents_are_loadable_policies():
    docs = ep.load_documents()
    assert docs and all(d["Version"] == "2012-10-17" and d["Statement"] for d in docs.values())
