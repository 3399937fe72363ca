#!/usr/bin/env bash
# ctest report_quick: `tests/report/run.sh --quick` into a temporary directory
# (never over the committed docs/TEST_RESULTS.md); run.sh ends with check.py,
# which fails when a section is empty or a template blank is left; and
# every test of the plan must have passed (but for its one time bound).
set -euo pipefail
out=$(mktemp -d "${TMPDIR:-/tmp}/spaces-report-quick-XXXXXX")
trap 'rm -rf "$out"' EXIT
REPORT_PLAN_JSON="$out/plan.json" "$(dirname "$0")/run.sh" --quick --out "$out"
for f in TEST_RESULTS.md TEST_RESULTS.html; do
  [ -s "$out/$f" ] || { echo "report_quick: $f was not written" >&2; exit 1; }
done
grep -E '^### (Tests Passed|Pass Rate)' "$out/TEST_RESULTS.md"
# The seed plan passes against this server: a failed test of the plan is a
# failure here (the registration limit once made most of it fail unseen),
# except for the plan's one time bound ("the app receives the request within
# 1 second"): a figure the document reports, never asserted in CI (a loaded
# machine misses it).
/usr/bin/python3 - "$out/plan.json" <<'PY'
import json, sys
TIMING = {"within_1s"}
plan = json.load(open(sys.argv[1]))
bad = []
for name, b in sorted(plan.get("browsers", {}).items()):
    if not b.get("available"):
        bad.append("%s: not available (%s)" % (name, b.get("error")))
    for n, t in sorted(b.get("tests", {}).items()):
        if t.get("error"):
            bad.append("%s test %s: %s" % (name, n, t["error"]))
        for key, c in sorted(t.get("checks", {}).items()):
            if not c.get("ok") and key not in TIMING:
                bad.append("%s test %s: %s: %s" % (name, n, key, c.get("detail")))
        if not t.get("checks"):
            bad.append("%s test %s: no checks ran" % (name, n))
if not plan.get("browsers"):
    bad.append("no browser ran the plan")
if bad:
    print("report_quick: the seed plan did not pass:", file=sys.stderr)
    for line in bad:
        print("  " + line, file=sys.stderr)
    sys.exit(1)
print("report_quick: every test of the plan passed in %d browsers" % len(plan["browsers"]))
PY
