#!/usr/bin/env bash
# tests/report/run.sh [--quick] [--out DIR]
#
# Runs the seed test plan for real and writes the test-results document
# (issue 15): DIR/TEST_RESULTS.md, .html, .pdf and DIR/test-results/*.png
# (default DIR: docs/). `make report` and `make report QUICK=1` call it.
#
#   1. tests/report/plan.js     tests 1-7 in Chromium, Firefox ESR and WebKitGTK
#                               (under xvfb-run), response times, server CPU and
#                               memory, connection stability
#   2. tests/bench/spaces_e2e.js  the load test (full: 1..500 users; quick: fewer)
#   3. pytest                    the security checklist's tests (render.py lists them)
#   4. tests/report/render.py    the Markdown and HTML; chromium prints the PDF
#   5. tests/report/check.py     every section filled, no template blank left
#
# The server is $SPACES_BUILD_DIR/spaces-server (default build/release).
# Quick mode: test 7 with a 6 s space timeout, the browsers at once, 2 timing
# runs, a small load, the security tests beside the plan.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
QUICK=""
OUT="$ROOT/docs"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=--quick ;;
    --out) OUT=$2; shift ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT/test-results"
OUT=$(cd "$OUT" && pwd)
export SPACES_BUILD_DIR=${SPACES_BUILD_DIR:-$ROOT/build/release}
SERVER="$SPACES_BUILD_DIR/spaces-server"
[ -x "$SERVER" ] || { echo "report: $SERVER is missing: build first (make release)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spaces-report-XXXXXX")
[ -n "${REPORT_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
rm -f "$OUT"/test-results/*.png "$OUT/TEST_RESULTS.pdf"
t0=$(date +%s)

# 3 (quick mode: started first, it runs beside the plan). The security
# checklist's tests, against the same build.
security() {
  # shellcheck disable=SC2046
  /usr/bin/python3 -m pytest -p no:cacheprovider -v $(/usr/bin/python3 tests/report/render.py --security-tests) \
    > "$WORK/security.txt" 2>&1 || echo "report: a security test failed (see the document)" >&2
}
SECURITY_PID=""
if [ -n "$QUICK" ]; then
  echo "report: the security tests (beside the plan) ..." >&2
  security &
  SECURITY_PID=$!
fi

# 1. The plan. WebKitGTK needs a display: a virtual one when xvfb-run is there.
XVFB=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  XVFB=(xvfb-run -a -s "-screen 0 1280x1024x24")
fi
echo "report: the plan (tests 1-7, three browsers) ..." >&2
"${XVFB[@]}" node tests/report/plan.js --out "$OUT" --json "$WORK/plan.json" $QUICK || \
  echo "report: the plan stopped early (see the document's Issues Found)" >&2
# REPORT_PLAN_JSON=FILE: a copy of the plan's record (report_quick reads it).
[ -z "${REPORT_PLAN_JSON:-}" ] || cp "$WORK/plan.json" "$REPORT_PLAN_JSON"

# 2. The load test.
if [ -n "$QUICK" ]; then LOAD=(--levels 10,50,500 --requests 300 --users 5); else LOAD=(--levels 1,10,50,200,500 --requests 2000); fi
echo "report: the load test (${LOAD[*]}) ..." >&2
l0=$(date +%s)
node tests/bench/spaces_e2e.js --server "$SERVER" "${LOAD[@]}" --follow push > "$WORK/load.txt" 2>&1 || \
  echo "report: the load test failed (see the document)" >&2
{ echo "LOAD seconds=$(( $(date +%s) - l0 ))"; echo "LOAD args=${LOAD[*]} --follow push"; } >> "$WORK/load.txt"

# 3. The security tests (full mode: after the load, so that the plan's and
# the load's figures are not disturbed).
if [ -n "$SECURITY_PID" ]; then
  wait "$SECURITY_PID" || true
else
  echo "report: the security tests ..." >&2
  security
fi

# 4. The document.
/usr/bin/python3 tests/report/render.py --plan "$WORK/plan.json" --load "$WORK/load.txt" \
  --security "$WORK/security.txt" --out "$OUT" ${QUICK:+--quick}
if [ -f "$OUT/TEST_RESULTS.html" ] && command -v chromium >/dev/null; then
  PROFILE="$WORK/chromium-profile"
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
    --no-pdf-header-footer --print-to-pdf="$OUT/TEST_RESULTS.pdf" "file://$OUT/TEST_RESULTS.html" \
    >/dev/null 2>&1 || echo "report: no PDF (chromium --print-to-pdf failed)" >&2
fi
echo "report: $OUT/TEST_RESULTS.md in $(( $(date +%s) - t0 )) s" >&2

# 5. Filled in?
/usr/bin/python3 tests/report/check.py "$OUT"
