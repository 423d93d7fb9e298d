#!/usr/bin/env bash
# After `cdk destroy`: check each candidate listed by leftovers.py (CHECK<TAB>ID<TAB>WHY lines in
# the file given as $1) and report the ones that still exist, as workflow warnings and in the job
# summary. Reads go through the read-only `cdk-lookup` profile (cdk_role_profiles.sh).
# Exit status 0 either way: a retained bucket is by design (prod keeps its data), not a failure.
set -euo pipefail

list="${1:?usage: report_leftovers.sh LEFTOVERS.tsv}"
summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"
aws_ro=(aws --profile cdk-lookup)
left=0

exists() {
  local check="$1" id="$2"
  case "$check" in
    s3-bucket) "${aws_ro[@]}" s3api head-bucket --bucket "$id" >/dev/null 2>&1 ;;
    log-group)
      "${aws_ro[@]}" logs describe-log-groups --log-group-name-prefix "$id" \
        --query 'logGroups[].logGroupName' --output text | tr '\t' '\n' | grep -Fxq -- "$id"
      ;;
    log-group-nocase)
      "${aws_ro[@]}" logs describe-log-groups --log-group-name-prefix "${id%/*}/" \
        --query 'logGroups[].logGroupName' --output text | tr '\t' '\n' | grep -Fxiq -- "$id"
      ;;
    kms-key)
      state="$("${aws_ro[@]}" kms describe-key --key-id "$id" --query KeyMetadata.KeyState \
        --output text 2>/dev/null || echo gone)"
      [ "$state" != gone ] && [ "$state" != PendingDeletion ]
      ;;
    *) return 0 ;; # unknown kind: report it, someone should look
  esac
}

{
  echo "### Left behind after destroy"
  echo
} >>"$summary"
while IFS=$'\t' read -r check id why; do
  [ -n "${check}" ] || continue
  if exists "$check" "$id"; then
    left=$((left + 1))
    echo "::warning title=Left behind::${id} (${why})"
    echo "- \`${id}\`: ${why}" >>"$summary"
  fi
done <"$list"
if [ "$left" -eq 0 ]; then
  echo "Nothing: the stack removed everything it made." >>"$summary"
  echo "nothing left behind"
else
  {
    echo
    echo "Retained on purpose (DeletionPolicy) or created at run time; delete them by hand when"
    echo "their data is no longer needed (e.g. \`aws s3 rb s3://BUCKET --force\`; versioned"
    echo "buckets need their object versions deleted first)."
  } >>"$summary"
  echo "${left} resource(s) left behind: see the job summary"
fi
