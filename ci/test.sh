#!/usr/bin/env bash
# ci/test.sh BUILD_DIR: runs the whole suite through ctest (its last line counts every test).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/debug}
ulimit -n 65536 2>/dev/null || true
exec ctest --test-dir "$dir" --output-on-failure -j "${CTEST_JOBS:-2}" --timeout 600
