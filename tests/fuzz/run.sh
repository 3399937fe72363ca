#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET SECONDS BUILD_DIR
#
# Builds tests/fuzz/fuzz_TARGET.c with clang and libFuzzer (plus ASan and
# UBSan) into BUILD_DIR/fuzz/, then fuzzes a copy of its seed corpus for
# SECONDS. Fails on any crash, leak, sanitizer report or invariant abort.
# The repository is never written: new inputs go to the copy, crash files
# to BUILD_DIR/fuzz/.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 TARGET SECONDS BUILD_DIR   (TARGET: ws_frame | eio_payload | sio_packet | sio_msgpack)" >&2
  exit 2
fi
target=$1
seconds=$2
build=$3
root=$(cd "$(dirname "$0")/../.." && pwd)

libs=()
case $target in
ws_frame)
  srcs=(engineio/http/ws_frame.c engineio/http/ws_deflate.c engineio/base/utf8.c engineio/base/buf.c engineio/base/chunk.c engineio/base/alloc.c engineio/base/log.c engineio/base/slice.c)
  libs=(-lz)
  ;;
eio_payload) srcs=(engineio/packet.c engineio/packet_v3.c engineio/base/base64.c engineio/base/buf.c engineio/base/alloc.c engineio/base/log.c engineio/base/slice.c) ;;
sio_packet) srcs=(socketio/json.c socketio/packet.c engineio/base/buf.c engineio/base/alloc.c engineio/base/log.c engineio/base/slice.c) ;;
sio_msgpack)
  srcs=(socketio/msgpack.c socketio/json.c socketio/packet.c engineio/base/buf.c engineio/base/alloc.c engineio/base/log.c engineio/base/slice.c engineio/base/utf8.c)
  libs=(-lmsgpackc -lm)
  ;;
*)
  echo "run.sh: unknown target '$target'" >&2
  exit 2
  ;;
esac

out=$(mkdir -p "$build/fuzz" && cd "$build/fuzz" && pwd)
bin=$out/fuzz_$target
(cd "$root" && clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -g -O1 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
  -I engineio -I . "tests/fuzz/fuzz_$target.c" "${srcs[@]}" "${libs[@]}" -o "$bin")

work=$(mktemp -d "$out/corpus-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$root/tests/fuzz/corpus/$target/"* "$work/"

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$out/crash-$target-" "$work"
echo "fuzz $target: no crash in ${seconds}s"
