#!/usr/bin/env bash
# Set up AWS CLI profiles for this account's CDK bootstrap roles, assumed with the credentials in
# the environment: `cdk-lookup` (read-only) and, when asked for, `cdk-deploy`. The workflows' deploy
# role may assume these roles and nothing else, so reads (stack outputs, the API key value, what a
# destroy left behind) go through `aws --profile cdk-lookup ...`.
# Usage: cdk_role_profiles.sh [lookup] [deploy]   (default: lookup)
# Needs AWS_REGION (set by configure-aws-credentials); CDK_QUALIFIER defaults to hnb659fds.
set -euo pipefail

region="${AWS_REGION:?set AWS_REGION}"
qualifier="${CDK_QUALIFIER:-hnb659fds}"
caller_arn="$(aws sts get-caller-identity --query Arn --output text)"
partition="$(cut -d: -f2 <<<"$caller_arn")"
account="$(cut -d: -f5 <<<"$caller_arn")"

for kind in "${@:-lookup}"; do
  case "$kind" in
    lookup | deploy) ;;
    *) echo "unknown CDK role '$kind': use lookup or deploy" >&2; exit 2 ;;
  esac
  profile="cdk-${kind}"
  aws configure set "profile.${profile}.role_arn" \
    "arn:${partition}:iam::${account}:role/cdk-${qualifier}-${kind}-role-${account}-${region}"
  aws configure set "profile.${profile}.credential_source" Environment
  aws configure set "profile.${profile}.region" "$region"
  aws configure set "profile.${profile}.role_session_name" "github-${GITHUB_RUN_ID:-local}-${kind}"
  # Fail here, naming the role, rather than in the first real call.
  aws --profile "$profile" sts get-caller-identity --query Arn --output text
done
