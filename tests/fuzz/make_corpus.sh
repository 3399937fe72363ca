#!/usr/bin/env bash
# tests/fuzz/make_corpus.sh: writes the small hand-made seed corpora.
# ws_frame inputs start with a configuration byte (see fuzz_ws_frame.c).
set -euo pipefail
cd "$(dirname "$0")/corpus"
mkdir -p ws_frame eio_payload
w() { printf "$2" >"$1"; }

# Config 0x01: require_mask, no size limits.
w ws_frame/masked_hello '\x01\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'
w ws_frame/fragments_ping '\x01\x01\x82\x01\x02\x03\x04\x49\x67\x89\x80\x00\x00\x00\x00\x80\x81\xaa\xbb\xcc\xdd\xc2'
w ws_frame/close_1000 '\x01\x88\x85\x00\x00\x00\x00\x03\xe8\x62\x79\x65'
w ws_frame/len16 '\x01\x82\xfe\x00\x7e\x00\x00\x00\x00'
w ws_frame/len64 '\x01\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04'
# Config 0x00: unmasked server frames; 0x05: max_payload 125.
w ws_frame/server_text '\x00\x81\x02hi\x8a\x00'
w ws_frame/too_big '\x05\x82\xfe\x00\x7e\x01\x02\x03\x04'
w ws_frame/bad_rsv '\x01\xc1\x80\x00\x00\x00\x00'

w eio_payload/one_message '4hello'
w eio_payload/mixed '4hello\x1ebAQIDBA==\x1e2\x1e6'
w eio_payload/open '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000}'
w eio_payload/binary_empty 'b\x1ebAQ'
w eio_payload/trailing_sep '4a\x1e'
w eio_payload/bad_type '7x'
w eio_payload/v3_text '6:4hello2:4\xc3\xa93:4\xf0\x9f\x98\x80'
w eio_payload/v3_b64 '10:b4AQIDBA==1:20:'
w eio_payload/v3_binary '\x00\x06\xff4hello\x01\x05\xff\x04\x01\x02\x03\x04'

# Config 0x20/0x21: permessage-deflate negotiated. RFC 7692 7.2.3's "Hello"
# compressed, whole, in two fragments, and masked (a zero key).
w ws_frame/deflate_hello '\x20\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00'
w ws_frame/deflate_fragments '\x20\x41\x03\xf2\x48\xcd\x80\x04\xc9\xc9\x07\x00'
w ws_frame/deflate_masked '\x21\xc1\x87\x00\x00\x00\x00\xf2\x48\xcd\xc9\xc9\x07\x00'
