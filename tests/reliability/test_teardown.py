"""`cdk destroy` completeness, checked on the synthesized dev and prod templates."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from reliability import teardown
from reliability.report import Section


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Section, Path]:
    workdir = tmp_path_factory.mktemp("teardown")
    return teardown.run(quick=True, workdir=workdir), workdir


def template(workdir: Path, stage: str) -> dict:
    return teardown.load_template(workdir / f"cdk.out-{stage}")


def of_type(tpl: dict, kind: str) -> list[str]:
    return [k for k, r in tpl["Resources"].items() if r["Type"] == kind]


def test_dev_deletes_everything_and_prod_retains_its_data(run):
    section, _ = run
    assert section.passed, section.failures()
    dev_table, prod_table, outside = section.tables
    # Every bucket, log group and key is in the tables, with the stage's policy.
    assert {r[1] for r in dev_table.rows} >= {
        "AWS::S3::Bucket",
        "AWS::Logs::LogGroup",
        "AWS::KMS::Key",
    }
    assert all(r[2] == "Delete" for r in dev_table.rows if r[1] in teardown.DATA_TYPES)
    assert all(r[4] == "yes" for r in dev_table.rows if r[1] == "AWS::S3::Bucket")
    assert all(
        (r[2], r[3]) == ("RetainExceptOnCreate", "Retain")
        for r in prod_table.rows
        if r[1] in teardown.DATA_TYPES
    )
    assert any("bootstrap bucket" in row[0] for row in outside.rows)


def test_a_retained_endpoint_or_an_unemptied_dev_bucket_fails_the_checks(run):
    _, workdir = run
    dev = copy.deepcopy(template(workdir, "dev"))
    # Given a dev template whose endpoint is retained and whose buckets are not emptied
    (endpoint,) = of_type(dev, "AWS::SageMaker::Endpoint")
    dev["Resources"][endpoint]["DeletionPolicy"] = "Retain"
    for custom in of_type(dev, "Custom::S3AutoDeleteObjects"):
        del dev["Resources"][custom]
    # Then both show as left behind
    bad = {r.logical_id: r.verdict for r in teardown.classify(dev, "dev") if not r.ok}
    assert "LEFT BEHIND" in bad[endpoint]
    for bucket in of_type(dev, "AWS::S3::Bucket"):
        assert "auto-delete off" in bad[bucket]


def test_prod_data_with_auto_delete_or_delete_on_replace_fails(run):
    _, workdir = run
    prod = copy.deepcopy(template(workdir, "prod"))
    bucket, _ = of_type(prod, "AWS::S3::Bucket")
    prod["Resources"]["Emptier"] = {
        "Type": "Custom::S3AutoDeleteObjects",
        "Properties": {"ServiceToken": "x", "BucketName": {"Ref": bucket}},
    }
    key, *_ = of_type(prod, "AWS::KMS::Key")
    prod["Resources"][key]["UpdateReplacePolicy"] = "Delete"
    # A plain Retain keeps the data but leaves a failed first create's resources behind.
    (group, *_) = of_type(prod, "AWS::Logs::LogGroup")
    prod["Resources"][group]["DeletionPolicy"] = "Retain"
    bad = {r.logical_id: r.verdict for r in teardown.classify(prod, "prod") if not r.ok}
    assert bad.keys() == {bucket, key, group}
    assert "auto-delete empties it" in bad[bucket]
    assert "failed first create leaves it behind" in bad[group]


def test_a_lambda_without_a_declared_log_group_is_reported(run):
    _, workdir = run
    dev = copy.deepcopy(template(workdir, "dev"))
    for function in of_type(dev, "AWS::Lambda::Function"):
        dev["Resources"][function]["Properties"].pop("LoggingConfig", None)
    unowned = [s.what for s in teardown.service_log_groups(dev) if not s.owned]
    assert len(unowned) == len(of_type(dev, "AWS::Lambda::Function")) == 2
