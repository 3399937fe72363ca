#!/usr/bin/env bash
# ctest report_quick: `tests/report/run.sh --quick` into a temporary directory
# (never over the committed docs/TEST_RESULTS.md); run.sh ends with check.py,
# which fails when a section is empty or a template blank is left; and
# every test of the plan must have passed.
set -euo pipefail
out=$(mktemp -d "${TMPDIR:-/tmp}/spaces-report-quick-XXXXXX")
trap 'rm -rf "$out"' EXIT
"$(dirname "$0")/run.sh" --quick --out "$out"
for f in TEST_RESULTS.md TEST_RESULTS.html; do
  [ -s "$out/$f" ] || { echo "report_quick: $f was not written" >&2; exit 1; }
done
grep -E '^### (Tests Passed|Pass Rate)' "$out/TEST_RESULTS.md"
# The seed plan passes against this server: a failure in the report is a
# failure here (the registration limit once made most of it fail unseen).
if ! grep -qE '^### Tests Failed: 0 /' "$out/TEST_RESULTS.md"; then
  echo "report_quick: the seed plan did not pass:" >&2
  grep -nE 'FAIL' "$out/TEST_RESULTS.md" | head -40 >&2
  exit 1
fi
