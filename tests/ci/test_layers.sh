#!/usr/bin/env bash
# ci/check_layers.py: the tree's includes follow ci/layers.txt, and the check
# does fail on an upward include, another layer's internal header and a
# folder the file does not name (on a small tree made here).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
check="$root/ci/check_layers.py"

# 1. The tree itself.
python3 "$check" "$root"

# 2. A fixture: low < high; tests/unit/low may use low's internals.
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/ci" "$t/low" "$t/high" "$t/tests/unit/low" "$t/tests/bench"
cat >"$t/ci/layers.txt" <<'TXT'
# layer  folder  prefix  below  public headers
low      low     -       -      low.h
high     high    -       low    high.h
tests/unit/low   internal:low own
tests/bench      public own
TXT
printf '#include "low_internal.h"\n' >"$t/low/low.h"
printf '/* internal */\n' >"$t/low/low_internal.h"
printf '#include "low.h"\n#include "low_internal.h"\n' >"$t/low/low.c"
printf '#include "low.h"\n' >"$t/high/high.h"
printf '#include "high.h"\n#include "low.h"\n' >"$t/high/high.c"
printf '#include "low_internal.h"\n#include "low.h"\n' >"$t/tests/unit/low/test_low.c"
printf '#include "high.h"\n' >"$t/tests/bench/bench.c"
python3 "$check" "$t"

expect_fail() { # what, the line expected in the report
	local out
	if out=$(python3 "$check" "$t" 2>&1); then
		echo "FAIL: $1 passed the check" >&2
		exit 1
	fi
	grep -F -- "$2" <<<"$out" >/dev/null || {
		echo "FAIL: $1: expected '$2' in: $out" >&2
		exit 1
	}
	echo "refused as expected: $1"
}

# An upward include: low includes high.
printf '#include "high.h"\n' >>"$t/low/low.c"
expect_fail "upward include" 'low/low.c:3: #include "high.h": high is not below low'
printf '#include "low.h"\n#include "low_internal.h"\n' >"$t/low/low.c"

# Another layer's internal header.
printf '#include "low_internal.h"\n' >>"$t/high/high.c"
expect_fail "internal header of a layer below" 'high/high.c:3: #include "low_internal.h"'
printf '#include "high.h"\n#include "low.h"\n' >"$t/high/high.c"

# A bench including an internal header (only public ones are allowed there).
printf '#include "low/low_internal.h"\n' >>"$t/tests/bench/bench.c"
expect_fail "bench with an internal header" 'tests/bench/bench.c:2'
printf '#include "high.h"\n' >"$t/tests/bench/bench.c"

# A folder that is in no row.
mkdir -p "$t/other" && printf '#include "low.h"\n' >"$t/other/x.c"
expect_fail "unlisted folder" 'other/x.c: folder other is not in ci/layers.txt'
rm -r "$t/other"

python3 "$check" "$t" >/dev/null
echo "ok"
