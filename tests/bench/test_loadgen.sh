#!/usr/bin/env bash
# Tests bench-loadgen itself: it must count. Each scenario runs briefly
# against the reference server (tests/bench/node_bench_server.js) and must
# pass with exact counts; against tests/bench/faulty_server.js, which loses
# or repeats replies, every run must fail.
#
#   tests/bench/test_loadgen.sh [path/to/bench-loadgen]
#
# The default binary is $SPACES_BUILD_DIR/bench-loadgen.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LG=${1:-${SPACES_BUILD_DIR:-$HERE/../../build/debug}/bench-loadgen}
[ -x "$LG" ] || { echo "test_loadgen: no load generator at $LG" >&2; exit 1; }
# libwebsockets' own leaks are not ours (see lsan.supp).
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

TMP=$(mktemp -d /tmp/test_loadgen.XXXXXX)
SERVER_PID=
cleanup() {
	[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# start_server SCRIPT ARGS...: starts a Node server on a free port; sets PORT.
start_server() {
	stop_server
	rm -f "$TMP/server.out"
	node "$@" --port 0 >"$TMP/server.out" 2>"$TMP/server.err" &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9][0-9]*\) pid [0-9][0-9]*$/\1/p' \
			"$TMP/server.out" 2>/dev/null)
		[ -z "$PORT" ] || return 0
		sleep 0.05
	done
	echo "test_loadgen: server $* did not start" >&2
	cat "$TMP/server.err" >&2
	exit 1
}

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}

# field NAME: the value of NAME= in the last RESULT line.
field() {
	grep '^RESULT ' "$TMP/out" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# run_lg EXPECT NAME ARGS...: runs the load generator; EXPECT is pass or fail.
run_lg() {
	local expect=$1 name=$2
	shift 2
	checks=$((checks + 1))
	local rc=0
	"$LG" --port "$PORT" --timeout 20 "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	if ! grep -q '^RESULT ' "$TMP/out"; then
		fail "$name: no RESULT line (exit $rc)"
		cat "$TMP/err" >&2
		return
	fi
	if grep -q 'Sanitizer' "$TMP/err"; then
		fail "$name: sanitizer report"
		cat "$TMP/err" >&2
	fi
	if [ "$expect" = pass ]; then
		if [ "$rc" -ne 0 ] || [ "$(field status)" != ok ]; then
			fail "$name: expected success, exit $rc"
			cat "$TMP/out" "$TMP/err" >&2
		fi
	else
		if [ "$rc" -eq 0 ] || [ "$(field status)" != fail ]; then
			fail "$name: expected failure, exit $rc"
			cat "$TMP/out" >&2
		fi
	fi
	echo "ok $checks - $name: $(grep '^RESULT ' "$TMP/out" | cut -c1-160)"
}

# expect_field NAME OP VALUE: compares a field of the last run.
expect_field() {
	local v
	v=$(field "$1")
	if ! [ "${v%.*}" "$2" "$3" ]; then
		fail "field $1=$v, expected $2 $3"
	fi
}

# ---- Against the reference server: every scenario passes, counts exact ----
start_server "$HERE/node_bench_server.js"
SPID=$SERVER_PID

run_lg pass idle --scenario idle --conns 50 --settle 0.5 --duration 0 --server-pid "$SPID"
expect_field msgs -eq 50
expect_field rss_after_kb -gt 0

run_lg pass "idle from two source addresses" --scenario idle --conns 40 --settle 0 \
	--duration 0 --sources 127.0.0.2-127.0.0.3
expect_field msgs -eq 40

run_lg pass connect --scenario connect --conns 300 --inflight 50
expect_field msgs -eq 300
expect_field connect_rate -gt 0

run_lg pass "connect through polling and upgrade" --scenario connect --conns 200 --inflight 50 \
	--upgrade
expect_field msgs -eq 200

run_lg pass "echo after polling and upgrade" --scenario echo --conns 5 --window 4 --count 400 \
	--upgrade
expect_field msgs -eq 400

run_lg pass "echo, count-bound" --scenario echo --conns 10 --window 5 --count 2000 --duration 10
expect_field sent -eq 2000
expect_field msgs -eq 2000
expect_field lost -eq 0

run_lg pass "echo, lws framing, padded" --scenario echo --conns 10 --window 3 --duration 0.5 \
	--tx lws --size 3000
expect_field msgs -gt 0

run_lg pass "ack, count-bound" --scenario ack --conns 10 --window 5 --count 2000 --duration 10
expect_field msgs -eq 2000

run_lg pass "ack, lws framing" --scenario ack --conns 5 --window 2 --duration 0.5 --tx lws
expect_field msgs -gt 0

run_lg pass broadcast --scenario broadcast --conns 50 --window 2 --count 200 --duration 10
expect_field sent -eq 200
expect_field deliveries -eq 10000

run_lg pass "binary 1 KiB" --scenario binary --conns 5 --window 2 --size 1024 --count 500 \
	--duration 10
expect_field msgs -eq 500

run_lg pass "binary 64 KiB" --scenario binary --conns 2 --window 2 --size 65536 --duration 0.5
expect_field msgs -gt 0

run_lg pass "binary 64 KiB, lws framing" --scenario binary --conns 2 --window 2 --size 65536 \
	--duration 0.5 --tx lws
expect_field msgs -gt 0

run_lg pass "window of 1 (ping-pong)" --scenario echo --conns 1 --window 1 --count 300
expect_field msgs -eq 300

# The raw client (loadgen_raw.c): the same counts.
run_lg pass "raw: idle from two source addresses" --scenario idle --conns 40 --settle 0 \
	--duration 0 --sources 127.0.0.2-127.0.0.3 --client raw
expect_field msgs -eq 40
run_lg pass "raw: echo, count-bound" --scenario echo --conns 10 --window 5 --count 2000 \
	--client raw
expect_field msgs -eq 2000
run_lg pass "raw: ack" --scenario ack --conns 5 --window 3 --count 600 --client raw
expect_field msgs -eq 600
run_lg pass "raw: broadcast" --scenario broadcast --conns 50 --window 2 --count 100 --client raw
expect_field deliveries -eq 5000
run_lg pass "raw: binary 64 KiB" --scenario binary --conns 2 --window 2 --size 65536 \
	--count 100 --client raw
expect_field msgs -eq 100
stop_server

# ---- Against faulty servers: every run fails ----
faulty() {
	local fault=$1 every=$2 name=$3
	shift 3
	start_server "$HERE/faulty_server.js" --fault "$fault" --every "$every"
	run_lg fail "$name" --duration 1 --drain 0.5 "$@"
}

faulty drop 100 "echo, every 100th reply dropped" --scenario echo --conns 5 --window 2
expect_field lost -gt 0
faulty dup 50 "echo, one reply duplicated" --scenario echo --conns 5 --window 2 --count 400
expect_field dup -eq 1
expect_field lost -eq 0
faulty drop 100 "ack, every 100th dropped" --scenario ack --conns 5 --window 2
expect_field lost -gt 0
faulty dup 50 "ack, one duplicated" --scenario ack --conns 5 --window 2 --count 400
expect_field dup -eq 1
faulty drop 100 "broadcast, every 100th delivery dropped" --scenario broadcast --conns 20 \
	--count 50
expect_field lost -gt 0
faulty dup 50 "broadcast, one delivery duplicated" --scenario broadcast --conns 20 --count 50
expect_field dup -eq 1
faulty drop 20 "binary, every 20th dropped" --scenario binary --conns 2 --window 2 --count 100
expect_field lost -gt 0
faulty drop 100 "raw: echo, every 100th dropped" --scenario echo --conns 5 --window 2 --client raw
expect_field lost -gt 0
faulty dup 50 "raw: broadcast, one delivery duplicated" --scenario broadcast --conns 20 \
	--count 50 --client raw
expect_field dup -eq 1

# The control: the same faulty server with no fault passes.
start_server "$HERE/faulty_server.js" --fault none
run_lg pass "control: faulty server without a fault" --scenario echo --conns 5 --window 2 \
	--count 400
stop_server

# ---- The limit server (built next to the load generator) speaks the contract ----
LIMIT=$(dirname "$LG")/bench-limit
if [ -x "$LIMIT" ]; then
	stop_server
	rm -f "$TMP/server.out"
	"$LIMIT" --port 0 >"$TMP/server.out" 2>"$TMP/server.err" &
	SERVER_PID=$!
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9][0-9]*\) pid [0-9][0-9]*$/\1/p' \
			"$TMP/server.out" 2>/dev/null)
		[ -z "$PORT" ] || break
		sleep 0.05
	done
	run_lg pass "limit: echo" --scenario echo --conns 10 --window 5 --count 2000
	expect_field msgs -eq 2000
	run_lg pass "limit: ack, lws framing" --scenario ack --conns 5 --window 2 --count 500 --tx lws
	expect_field msgs -eq 500
	run_lg pass "limit: binary 64 KiB" --scenario binary --conns 2 --window 2 --size 65536 \
		--count 100
	expect_field msgs -eq 100
	run_lg pass "limit: broadcast" --scenario broadcast --conns 30 --count 50
	expect_field deliveries -eq 1500
	# A clean stop: status 0 on SIGTERM, no sanitizer report.
	kill -TERM "$SERVER_PID"
	rc=0
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	checks=$((checks + 1))
	if [ "$rc" -ne 0 ] || grep -q Sanitizer "$TMP/server.err"; then
		fail "limit server: exit $rc on SIGTERM"
		cat "$TMP/server.err" >&2
	fi
fi

# bench-floor, the kernel's floor under broadcast latency: it must finish,
# count every round and refuse what it cannot do.
FLOOR=$(dirname "$LG")/bench-floor
if [ -x "$FLOOR" ]; then
	for mode in "" "--threads 2" "--uring"; do
		checks=$((checks + 1))
		# shellcheck disable=SC2086
		if "$FLOOR" --conns 50 --rounds 40 $mode >"$TMP/out" 2>"$TMP/err"; then
			[ "$(field status)" = ok ] && [ "$(field rounds)" = 40 ] && [ "$(field conns)" = 50 ] &&
				[ -n "$(field p99_us)" ] || fail "bench-floor $mode: $(cat "$TMP/out")"
		elif [ "$mode" = --uring ] && grep -q "built without liburing" "$TMP/err"; then
			: # no liburing in this build: the refusal is the expected answer
		else
			fail "bench-floor $mode exited with an error: $(cat "$TMP/err")"
		fi
	done
	checks=$((checks + 1))
	if "$FLOOR" --conns 0 >"$TMP/out" 2>"$TMP/err" || ! grep -q "wants a number" "$TMP/err"; then
		fail "bench-floor --conns 0 was not refused"
	fi
else
	fail "no bench-floor next to $LG"
fi

if [ "$failures" -ne 0 ]; then
	echo "test_loadgen: $failures of $checks checks failed" >&2
	exit 1
fi
echo "test_loadgen: all $checks runs as expected"
