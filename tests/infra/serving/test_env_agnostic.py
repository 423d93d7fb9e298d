"""`make synth` and `make local` on a machine without AWS credentials: the CDK CLI then knows no
account, so the stack is environment-agnostic and the model's CDK asset lies in a bootstrap bucket
whose name is a `Fn::Sub` of `${AWS::AccountId}`. Synth (and its cdk-nag checks, whose
acknowledgments name that bucket) must pass all the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_an_environment_agnostic_dev_stack_with_a_local_artifact_synthesizes(tmp_path):
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"not read at synth")
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "framework_version": "1.4",
                "content_type": "application/json",
                "container": {"image_family": "ray-serve"},
            }
        )
    )
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context.update({"stage": "dev", "model": "digits", "artifact_path": str(artifact)})
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_DEFAULT_ACCOUNT", "AWS_PROFILE")}
    env.update(
        {
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path / "cdk.out"),
            "CDK_DEFAULT_REGION": "us-east-1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )

    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "cdk.out" / "MlServing-dev-digits.template.json").read_text())
    role_policies = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ReadModelVersions"
    ]
    (read,) = role_policies
    assert "${AWS::AccountId}" in json.dumps(read["Resource"])  # the bootstrap bucket, unresolved
