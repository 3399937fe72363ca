#!/usr/bin/env bash
# tests/bench/run.sh [full|quick]: the side-by-side benchmark.
#
# Builds bench-loadgen and bench-limit (Release), then runs every scenario
# against every server in the same run, each server pinned to one core and the
# load generator to the other, after waiting for the machine to be quiet:
#
#   ours   build/release/bench-server, when that program exists
#   node   the reference socket.io 4.8 server (tests/bench/node_bench_server.js)
#   limit  bench-limit, the bare-transport limit (and the load generator's ceiling)
#   floor  bench-floor, broadcasts only: the same number of bare send()s with no
#          server at all, the kernel's own floor under "last receiver" latency
#
# full  (make bench): every scenario, SPACES_BENCH_RUNS runs each (default 3,
#       servers interleaved), then docs/BENCHMARKS.md and docs/bench/*.png.
# quick (make bench-quick): 1k idle, echo 100x10, broadcast to 1k against ours
#       and node, one run each, about a minute; prints the ratios.
#
# Environment: SPACES_BENCH_RUNS, SPACES_BENCH_SERVERS (e.g. "node limit"),
# SPACES_BENCH_ONLY (tags to run, e.g. "echo ack"), SPACES_BENCH_QUIET_MAX
# (seconds to wait for a quiet machine, default 120), SPACES_BENCH_DOC (where
# full writes the report; default docs/BENCHMARKS.md), SPACES_BENCH_OUT (raw
# results directory; default build/bench-results/<mode>-<time>).
# Exit status: 0 when every run passed its own checks (nothing lost).
set -euo pipefail

MODE=${1:-full}
case "$MODE" in
full | quick) ;;
*)
	echo "usage: tests/bench/run.sh [full|quick]" >&2
	exit 2
	;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${SPACES_BENCH_BUILD_DIR:-$ROOT/build/release}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${SPACES_BENCH_OUT:-$ROOT/build/bench-results/$MODE-$STAMP}
QUIET_MAX=${SPACES_BENCH_QUIET_MAX:-120}
QUIET_BUSY=${SPACES_BENCH_QUIET_BUSY:-10}
SERVER_CPU=0
LG_CPU=1
# Both processes at the highest CFS weight when allowed (root): other work on
# a shared machine then takes less from them. SCHED_FIFO is not used: it
# changes how Node's helper threads share the server's core.
NICE=()
if [ "$(id -u)" -eq 0 ]; then NICE=(nice -n "${SPACES_BENCH_NICE:--20}"); fi
if [ "$MODE" = full ]; then RUNS=${SPACES_BENCH_RUNS:-3}; else RUNS=${SPACES_BENCH_RUNS:-1}; fi
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
: >"$OUT/commands.txt"
log() { echo "bench: $*" >&2; }

# ---- Build ----
build() {
	log "building Release into $BUILD"
	if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
		>"$OUT/build.log" 2>&1 &&
		cmake --build "$BUILD" -j "$(nproc)" --target bench-loadgen bench-limit \
			>>"$OUT/build.log" 2>&1; then
		BIN=$BUILD
	else
		# The tree does not include tests/bench yet (or does not build): the
		# load generator and the limit server build on their own.
		log "no bench targets in the tree's build (see $OUT/build.log); building tests/bench alone"
		BIN=$ROOT/build/bench
		cmake -S "$HERE" -B "$BIN" -DCMAKE_BUILD_TYPE=Release >>"$OUT/build.log" 2>&1
		cmake --build "$BIN" -j "$(nproc)" >>"$OUT/build.log" 2>&1 || {
			tail -30 "$OUT/build.log" >&2
			exit 1
		}
	fi
	LG=$BIN/bench-loadgen
	LIMIT=$BIN/bench-limit
	FLOOR=$BIN/bench-floor
	cmake --build "$BIN" -j "$(nproc)" --target bench-floor >>"$OUT/build.log" 2>&1 || FLOOR=
	OURS=
	if cmake --build "$BUILD" -j "$(nproc)" --target bench-server >>"$OUT/build.log" 2>&1; then
		OURS=$(find "$BUILD" -maxdepth 3 -type f -name bench-server -perm -u+x | head -1)
	fi
	[ -n "$OURS" ] || log "no bench-server program yet: measuring node and limit only"
}

# ---- Servers ----
declare -A SERVER_CMD
SERVER_PID=
PORT=
start_server() {
	local name=$1
	local out=$OUT/server-$name.out
	# Gone before the start: the background job truncates it only later, and
	# the previous server's line must not be read as this one's.
	rm -f "$out"
	# shellcheck disable=SC2086
	taskset -c "$SERVER_CPU" "${NICE[@]}" ${SERVER_CMD[$name]} --port 0 >"$out" 2>>"$OUT/server-$name.err" &
	SERVER_PID=$!
	for _ in $(seq 1 200); do
		# The whole line, with this server's pid: a half-written one has no
		# port yet (taskset and nice exec, so the pid is the job's).
		PORT=$(sed -n "s/^listening 127.0.0.1:\([0-9][0-9]*\) pid $SERVER_PID\$/\1/p" "$out" 2>/dev/null)
		[ -z "$PORT" ] || return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	log "server $name did not start:"
	tail -20 "$OUT/server-$name.err" >&2
	exit 1
}
stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
trap stop_server EXIT

# ---- A quiet machine ----
# Percent of all CPUs busy over one second, from /proc/stat.
cpu_busy() {
	local a b
	a=($(head -1 /proc/stat))
	sleep 1
	b=($(head -1 /proc/stat))
	local t0=0 t1=0 i
	for i in 1 2 3 4 5 6 7 8; do
		t0=$((t0 + a[i]))
		t1=$((t1 + b[i]))
	done
	local idle=$(((b[4] + b[5]) - (a[4] + a[5])))
	echo $((100 * ((t1 - t0) - idle) / ((t1 - t0) > 0 ? (t1 - t0) : 1)))
}
# CPU ticks. stat_ticks prints, from /proc/stat: user+nice+system over all
# CPUs (what processes ran), then all busy time of core 0 and of core 1
# (with interrupts, softirq, steal). proc_ticks: one process. The load
# generator's own ticks come from `times`, which must run in this shell (in a
# $(...) subshell it would see no children).
TCK=$(getconf CLK_TCK)
stat_ticks() {
	awk '$1 == "cpu" { p = $2 + $3 + $4 }
		$1 == "cpu0" { c0 = $2 + $3 + $4 + $7 + $8 + $9 }
		$1 == "cpu1" { c1 = $2 + $3 + $4 + $7 + $8 + $9 }
		END { print p, c0, c1 }' /proc/stat
}
proc_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	s=${s##*) }
	set -- $s
	echo $((${12} + ${13}))
}
children_ticks() {
	times >"$OUT/times.txt"
	awk -v t="$TCK" 'function sec(x, m) {
		m = x; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); return m * 60 + x }
		NR == 2 { printf "%d\n", (sec($1) + sec($2)) * t }' "$OUT/times.txt"
}

wait_quiet() {
	local tag=$1 waited=0 busy
	while :; do
		busy=$(cpu_busy)
		if [ "$busy" -le "$QUIET_BUSY" ]; then
			break
		fi
		if [ "$waited" -ge "$QUIET_MAX" ]; then
			log "machine still ${busy}% busy after ${QUIET_MAX}s: running anyway (noted in the report)"
			break
		fi
		[ "$waited" -gt 0 ] || log "waiting for a quiet machine (${busy}% busy)"
		waited=$((waited + 1))
	done
	echo "QUIET tag=$tag busy_pct=$busy waited_s=$waited load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" >>"$RESULTS"
}

# ---- Scenarios: tag | load generator arguments ----
# Broadcasts and binary echo use the generator's raw client: the
# libwebsockets client parses payloads a byte at a time, which caps them below
# the targets (tests/bench/README.md). Everything else goes through lws.
FULL_SCENARIOS=(
	"idle-1k|--scenario idle --conns 1000 --settle 3"
	"idle-5k|--scenario idle --conns 5000 --settle 5 --inflight 500"
	"idle-10k|--scenario idle --conns 10000 --settle 5 --inflight 500"
	"idle-50k|--scenario idle --conns 50000 --settle 5 --inflight 500 --timeout 300"
	"idle-100k|--scenario idle --conns 100000 --settle 5 --inflight 500 --timeout 400"
	"connect|--scenario connect --conns 5000 --inflight 200"
	"connect-up|--scenario connect --conns 5000 --inflight 200 --upgrade"
	"pingpong|--scenario echo --conns 1 --window 1 --duration 5 --warmup 1"
	"echo|--scenario echo --conns 100 --window 10 --duration 10 --warmup 1"
	"echo-deep|--scenario echo --conns 100 --window 100 --duration 5 --warmup 1"
	"ack|--scenario ack --conns 100 --window 10 --duration 10 --warmup 1"
	"bcast-1k|--scenario broadcast --conns 1000 --duration 10 --warmup 1 --client raw"
	"bcast-10k|--scenario broadcast --conns 10000 --duration 10 --warmup 1 --inflight 500 --client raw"
	"bin-1k|--scenario binary --size 1024 --conns 100 --window 10 --duration 10 --warmup 1 --client raw"
	"bin-64k|--scenario binary --size 65536 --conns 20 --window 2 --duration 10 --warmup 1 --client raw"
)
QUICK_SCENARIOS=(
	"idle-1k|--scenario idle --conns 1000 --settle 2"
	"echo|--scenario echo --conns 100 --window 10 --duration 5 --warmup 1"
	"bcast-1k|--scenario broadcast --conns 1000 --duration 5 --warmup 1 --client raw"
)

build
SERVER_CMD[node]="node $HERE/node_bench_server.js"
SERVER_CMD[limit]=$LIMIT
[ -z "$FLOOR" ] || SERVER_CMD[floor]=$FLOOR
[ -z "$OURS" ] || SERVER_CMD[ours]=$OURS
if [ -n "${SPACES_BENCH_SERVERS:-}" ]; then
	SERVERS=($SPACES_BENCH_SERVERS)
elif [ "$MODE" = full ]; then
	SERVERS=(node limit)
	[ -z "$OURS" ] || SERVERS=(ours node limit)
else
	SERVERS=(node)
	[ -z "$OURS" ] || SERVERS=(ours node)
fi
[ -n "${SPACES_BENCH_SERVERS:-}" ] || [ -z "$FLOOR" ] || SERVERS+=(floor)
for s in "${SERVERS[@]}"; do
	[ -n "${SERVER_CMD[$s]:-}" ] || {
		log "unknown or unavailable server $s"
		exit 2
	}
done
if [ "$MODE" = full ]; then SCENARIOS=("${FULL_SCENARIOS[@]}"); else SCENARIOS=("${QUICK_SCENARIOS[@]}"); fi

# Many connections need many descriptors, on both sides.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{
	echo "MODE $MODE"
	echo "RUNS $RUNS"
	echo "SERVERS ${SERVERS[*]}"
	echo "OURS ${OURS:-none}"
	echo "START $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} >"$OUT/meta.txt"

# The kernel floor of a broadcast: the same number of sockets, one bare
# send() each, pinned like the servers and the generator.
run_floor() {
	local tag=$1 args=$2 run=$3 conns
	case "$tag" in bcast-*) ;; *) return 0 ;; esac
	conns=$(sed -n 's/.*--conns \([0-9]*\).*/\1/p' <<<"$args")
	local cmd=("$FLOOR" --conns "$conns" --rounds 500 --sender-cpu "$SERVER_CPU"
		--receiver-cpu "$LG_CPU" --tag "$tag")
	echo "${NICE[*]} ${cmd[*]}" >>"$OUT/commands.txt"
	log "$tag run $run against floor (bare sends)"
	if "${NICE[@]}" "${cmd[@]}" >"$OUT/run.out" 2>"$OUT/run.err"; then
		grep '^RESULT ' "$OUT/run.out" | sed "s/\$/ run=$run/" >>"$RESULTS"
		tail -1 "$OUT/run.out" | sed 's/^/bench:   /' >&2
	else
		echo "RESULT tag=$tag server=floor status=fail run=$run" >>"$RESULTS"
		failed=$((failed + 1))
		log "FAILED: bench-floor for $tag"
		tail -5 "$OUT/run.err" >&2 || true
	fi
}

failed=0
src_block=1
log "servers: ${SERVERS[*]}; $RUNS run(s) per scenario; results in $OUT"
for spec in "${SCENARIOS[@]}"; do
	tag=${spec%%|*}
	args=${spec#*|}
	if [ -n "${SPACES_BENCH_ONLY:-}" ] && ! [[ " $SPACES_BENCH_ONLY " == *" $tag "* ]]; then
		continue
	fi
	conns=$(sed -n 's/.*--conns \([0-9]*\).*/\1/p' <<<"$args")
	if [ -n "$conns" ] && [ $((conns + 1100)) -gt "$(ulimit -Hn)" ]; then
		# Each side holds one descriptor per connection, and raising the
		# hard limit needs CAP_SYS_RESOURCE.
		log "skipping $tag: $conns connections need more descriptors than the hard limit $(ulimit -Hn)"
		echo "SKIP tag=$tag reason=RLIMIT_NOFILE_hard_limit_$(ulimit -Hn)" >>"$RESULTS"
		continue
	fi
	runs=$RUNS
	case "$tag" in idle-*) runs=1 ;; esac
	for run in $(seq 1 "$runs"); do
		wait_quiet "$tag"
		for server in "${SERVERS[@]}"; do
			# The limit server speaks WebSocket only: no polling handshake.
			if [ "$server" = limit ] && [[ "$args" == *--upgrade* ]]; then
				continue
			fi
			if [ "$server" = floor ]; then
				run_floor "$tag" "$args" "$run"
				continue
			fi
			extra=()
			case "$tag" in
			idle-50k | idle-100k | bcast-10k)
				# Fresh source addresses for every big run: the last run's
				# TIME_WAIT sockets still hold ports on the previous ones.
				extra=(--sources "127.0.$src_block.1-127.0.$src_block.8")
				src_block=$((src_block + 1))
				;;
			esac
			start_server "$server"
			cmd=("$LG" --port "$PORT" --server-pid "$SERVER_PID" --server-name "$server"
				--tag "$tag" $args "${extra[@]}" --hist-out "$OUT/hist-$tag-$server-$run.dat")
			echo "taskset -c $LG_CPU ${NICE[*]} ${cmd[*]}" >>"$OUT/commands.txt"
			log "$tag run $run/$runs against $server"
			rc=0
			t0=$(date +%s%N)
			read -r p0 k00 k10 < <(stat_ticks)
			s0=$(proc_ticks "$SERVER_PID")
			children_ticks >"$OUT/ticks.txt"
			read -r c0 <"$OUT/ticks.txt"
			taskset -c "$LG_CPU" "${NICE[@]}" "${cmd[@]}" >"$OUT/run.out" 2>"$OUT/run.err" || rc=$?
			children_ticks >"$OUT/ticks.txt"
			read -r c1 <"$OUT/ticks.txt"
			read -r p1 k01 k11 < <(stat_ticks)
			s1=$(proc_ticks "$SERVER_PID")
			wall=$((($(date +%s%N) - t0) * TCK / 1000000000 + 1))
			# Noise: CPU that processes other than the server and the load
			# generator used while this run lasted, in % of one core. Core
			# busy: all of it, interrupts included, on each core.
			noise=$(((p1 - p0 - (s1 - s0) - (c1 - c0)) * 100 / wall))
			[ "$noise" -ge 0 ] || noise=0
			core0=$(((k01 - k00) * 100 / wall))
			core1=$(((k11 - k10) * 100 / wall))
			cat "$OUT/run.out" >>"$OUT/loadgen.log"
			cat "$OUT/run.err" >>"$OUT/loadgen.log"
			if grep -q '^RESULT ' "$OUT/run.out"; then
				grep '^RESULT ' "$OUT/run.out" |
					sed "s/\$/ run=$run noise_pct=$noise core0_pct=$core0 core1_pct=$core1/" >>"$RESULTS"
				grep '^RESULT ' "$OUT/run.out" | tr ' ' '\n' |
					grep -E '^(rate|p50_us|p99_us|rss_per_conn_b|cpu_client_pct|cpu_server_pct|status)=' |
					tr '\n' ' ' | sed 's/^/bench:   /' >&2
				echo "noise=${noise}% cores=${core0}%/${core1}%" >&2
			else
				echo "RESULT tag=$tag server=$server status=fail run=$run" >>"$RESULTS"
			fi
			if [ "$rc" -ne 0 ]; then
				failed=$((failed + 1))
				log "FAILED: $tag against $server (exit $rc)"
				tail -5 "$OUT/run.err" >&2 || true
			fi
			stop_server
		done
	done
done
echo "END $(date -u '+%Y-%m-%d %H:%M:%S UTC')" >>"$OUT/meta.txt"

if [ "$MODE" = full ]; then
	DOC=${SPACES_BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
	mkdir -p "$(dirname "$DOC")/bench"
	/usr/bin/python3 "$HERE/report.py" --mode full --out "$OUT" --doc "$DOC" \
		--plots "$(dirname "$DOC")/bench" --root "$ROOT" --loadgen "$LG"
	log "wrote $DOC"
else
	/usr/bin/python3 "$HERE/report.py" --mode quick --out "$OUT" --root "$ROOT" --loadgen "$LG"
fi
if [ "$failed" -ne 0 ]; then
	log "$failed run(s) failed their checks"
	exit 1
fi
