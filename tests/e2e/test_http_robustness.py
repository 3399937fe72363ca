"""HTTP and WebSocket robustness of the Engine.IO conformance server: garbage
bytes, malformed requests, huge headers (431), request bodies over
maxPayload (413, as engine.io answers), stalled half-open connections,
abrupt disconnects in the middle of requests and WebSocket frames, and
invalid WebSocket frames. After each attack a normal client must still
complete a handshake and an echo, and the process must still be running
(and, at the end, exit cleanly on SIGTERM with no sanitizer report).

Run against our server (default: $SPACES_BUILD_DIR/conformance-engineio, or
build/debug/conformance-engineio):
    /usr/bin/python3 -m pytest -v tests/e2e/test_http_robustness.py
Run against the reference Node.js server:
    SPACES_ENGINEIO_SERVER=reference /usr/bin/python3 -m pytest -v tests/e2e/test_http_robustness.py
Other knobs (see tests/lib/harness.py): SPACES_ENGINEIO_SERVER="<command>",
SPACES_ENGINEIO_URL=http://127.0.0.1:3000 (a server already running).
"""

import base64
import json
import os
import random
import select
import socket
import struct
import sys
import time

import pytest
import requests
import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import harness  # noqa: E402

MAX_PAYLOAD = 1000000
WAIT = 10.0  # seconds: deadline for anything that should happen quickly
POLLING = "/engine.io/?EIO=4&transport=polling"
WEBSOCKET = "/engine.io/?EIO=4&transport=websocket"


@pytest.fixture(scope="module")
def server():
    srv = harness.start_engineio_server()
    yield srv
    # Raises (an error at teardown) unless the server exits cleanly.
    srv.stop()


# ---------------------------------------------------------------------------
# Raw connections


class Raw:
    """A plain TCP connection with a receive buffer."""

    def __init__(self, port, timeout=WAIT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        """Sends; returns False if the server already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def readable(self, timeout=0.0):
        if self.buf or self.eof:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            if self.eof or not self._fill(deadline):
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, marker, deadline):
        while marker not in self.buf:
            if self.eof or not self._fill(deadline):
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_to_eof(self, timeout=WAIT):
        """Everything until the server closes; raises on timeout."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        out, self.buf = self.buf, b""
        return out

    def read_response_head(self, timeout=WAIT):
        """(status, headers) of the next HTTP response, or (None, {}) if the
        connection closed first."""
        head = self.read_until(b"\r\n\r\n", time.monotonic() + timeout)
        if head is None:
            return None, {}
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0].startswith("HTTP/1."), "not an HTTP response: %r" % lines[0]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers

    def read_response(self, timeout=WAIT):
        """(status, headers, body) with a Content-Length or chunked body."""
        deadline = time.monotonic() + timeout
        status, headers = self.read_response_head(timeout)
        if status is None:
            return None, {}, b""
        if "content-length" in headers:
            body = self.read_exact(int(headers["content-length"]), deadline) or b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self.read_until(b"\r\n", deadline)
                if size_line is None:
                    break
                size = int(size_line.split(b";")[0], 16)
                chunk = self.read_exact(size + 2, deadline)
                if size == 0 or chunk is None:
                    break
                body += chunk[:-2]
        else:
            body = b""
        return status, headers, body

    def reset(self):
        """Closes with an RST instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_bytes(method, target, headers=None, body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"]
    headers = dict(headers or {})
    for k, v in headers.items():
        lines.append("%s: %s" % (k, v))
    framed = {k.lower() for k in headers} & {"content-length", "transfer-encoding"}
    if (body or method == "POST") and not framed:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, declared_len=None):
    """A client frame; declared_len lies about the payload length."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if declared_len is None else declared_len
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


class RawWs(Raw):
    """A WebSocket spoken by hand, after the opening handshake."""

    def __init__(self, port, target=WEBSOCKET):
        super().__init__(port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.send(
            request_bytes(
                "GET",
                target,
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": key,
                    "Sec-WebSocket-Version": "13",
                },
            )
        )
        status, headers = self.read_response_head()
        assert status == 101, "WebSocket handshake answered %r" % status
        assert headers.get("upgrade", "").lower() == "websocket", headers

    def read_frame(self, timeout=WAIT):
        """(fin, opcode, payload), or None once the server has closed."""
        deadline = time.monotonic() + timeout
        head = self.read_exact(2, deadline)
        if head is None:
            return None
        fin, opcode = head[0] >> 7, head[0] & 0x0F
        assert not head[1] & 0x80, "server frames must not be masked"
        n = head[1] & 0x7F
        if n == 126:
            ext = self.read_exact(2, deadline)
            if ext is None:
                return None
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = self.read_exact(8, deadline)
            if ext is None:
                return None
            n = struct.unpack("!Q", ext)[0]
        payload = self.read_exact(n, deadline)
        if payload is None:
            return None
        return fin, opcode, payload

    def read_open_packet(self):
        frame = self.read_frame()
        assert frame is not None, "closed before the open packet"
        assert frame[1] == 1 and frame[2][:1] == b"0", "expected the open packet, got %r" % (frame,)
        return json.loads(frame[2][1:])

    def send_text(self, text):
        return self.send(ws_frame(1, text.encode()))

    def expect_closed(self, what, timeout=WAIT):
        """Answers pings (so only `what` can end the session) and requires the
        server to close the connection (close frame or EOF) in time."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the server kept the connection open after %s" % what)
            try:
                frame = self.read_frame(timeout=remaining)
            except socket.timeout:
                raise AssertionError("the server kept the connection open after %s" % what)
            if frame is None:
                return "eof"
            fin, opcode, payload = frame
            if opcode == 8:
                return "close %r" % (struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if opcode == 1 and payload == b"2":
                self.send(ws_frame(1, b"3"))


# ---------------------------------------------------------------------------
# A normal client, after each attack


def normal_client_works(server):
    """A polling handshake and echo, then a WebSocket session and echo."""
    server.assert_alive()
    r = requests.get(server.url + POLLING, timeout=WAIT)
    assert r.status_code == 200, (r.status_code, r.text)
    sid = json.loads(r.text[1:])["sid"]
    url = "%s%s&sid=%s" % (server.url, POLLING, sid)
    r = requests.post(url, data=b"4still-alive", timeout=WAIT)
    assert r.status_code == 200 and r.text == "ok", (r.status_code, r.text)
    got = []
    deadline = time.monotonic() + WAIT
    while "4still-alive" not in got:
        assert time.monotonic() < deadline, got
        r = requests.get(url, timeout=WAIT)
        assert r.status_code == 200, (r.status_code, r.text)
        for p in r.text.split("\x1e"):
            if p == "2":
                requests.post(url, data=b"3", timeout=WAIT)
            else:
                got.append(p)
    requests.post(url, data=b"1", timeout=WAIT)

    ws = websocket.create_connection(server.ws_url + WEBSOCKET, timeout=WAIT)
    try:
        assert ws.recv().startswith("0")
        ws.send("4ws-alive")
        ws.send_binary(b"\x01\x02\x03")
        text = binary = None
        while text is None or binary is None:
            m = ws.recv()
            if m == "2":
                ws.send("3")
            elif isinstance(m, bytes):
                binary = m
            else:
                text = m
        assert text == "4ws-alive" and binary == b"\x01\x02\x03", (text, binary)
    finally:
        ws.close()
    server.assert_alive()


def new_sid(server):
    r = requests.get(server.url + POLLING, timeout=WAIT)
    assert r.status_code == 200
    return json.loads(r.text[1:])["sid"]


# ---------------------------------------------------------------------------
# HTTP


def test_garbage_bytes(server):
    rng = random.Random(1234)
    blobs = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 7, 64, 1000, 20000)]
    blobs += [b"\x00" * 100, b"\r\n" * 3 + b"\xff\xfe\xfd", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]
    for blob in blobs:
        c = Raw(server.port)
        c.send(blob)
        # Bytes that happen to start a valid request would wait for more:
        # end our side, so the server sees the request cut short.
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            got = c.read_to_eof()
        except socket.timeout:
            raise AssertionError("connection left open after garbage %r" % blob[:20])
        finally:
            c.close()
        if got:
            assert got.startswith(b"HTTP/1.1 400"), "garbage %r answered %r" % (blob[:20], got[:80])
    normal_client_works(server)


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /engine.io/ HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /engine.io/?EIO=4&transport=polling\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=[
        "no-method",
        "no-target",
        "bad-version",
        "header-without-colon",
        "bad-byte-in-target",
        "bad-content-length",
        "length-and-chunked",
        "bad-chunk-size",
    ],
)
def test_malformed_request(server, data):
    c = Raw(server.port)
    try:
        c.send(data)
        status, _ = c.read_response_head()
        assert status == 400, "%r answered %r" % (data[:60], status)
    finally:
        c.close()
    normal_client_works(server)


def send_until_answered(conn, head, filler, total):
    """Sends `head`, then `filler` repeatedly up to `total` bytes, stopping
    early once the server answers or closes. Returns bytes sent."""
    sent = 0
    if not conn.send(head):
        return sent
    while sent < total:
        if conn.readable(0):
            break
        chunk = filler[: total - sent]
        if not conn.send(chunk):
            break
        sent += len(chunk)
    return sent


@pytest.mark.parametrize("shape", ["one-long-header", "many-headers"])
def test_huge_header_is_431(server, shape):
    c = Raw(server.port)
    try:
        head = b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if shape == "one-long-header":
            head += b"X-Big: "
            filler = b"a" * 4096
        else:
            filler = b"".join(b"X-H%05d: v\r\n" % i for i in range(400))
        send_until_answered(c, head, filler, 256 * 1024)
        status, _ = c.read_response_head()
        assert status == 431, "a huge header was answered %r" % status
    finally:
        c.close()
    normal_client_works(server)


def test_post_of_exactly_max_payload_is_accepted(server):
    sid = new_sid(server)
    body = b"4" + b"x" * (MAX_PAYLOAD - 1)
    r = requests.post("%s%s&sid=%s" % (server.url, POLLING, sid), data=body, timeout=30)
    assert r.status_code == 200 and r.text == "ok", (r.status_code, r.text[:200])
    r = requests.get("%s%s&sid=%s" % (server.url, POLLING, sid), timeout=30)
    assert r.status_code == 200
    assert body.decode() in r.text.split("\x1e")
    normal_client_works(server)


@pytest.mark.parametrize("declared", ["content-length", "chunked"])
def test_post_over_max_payload_is_413(server, declared):
    sid = new_sid(server)
    target = "%s&sid=%s" % (POLLING, sid)
    total = MAX_PAYLOAD + 100000
    c = Raw(server.port, timeout=30)
    try:
        if declared == "content-length":
            head = request_bytes("POST", target, {"Content-Length": str(total)})
            filler = b"4" + b"y" * 65535
        else:
            head = request_bytes("POST", target, {"Transfer-Encoding": "chunked"})
            filler = b"10000\r\n" + b"z" * 0x10000 + b"\r\n"
        send_until_answered(c, head, filler, total + 65536)
        status, _ = c.read_response_head(timeout=30)
        assert status == 413, "a body over maxPayload was answered %r" % status
    finally:
        c.close()
    normal_client_works(server)


def test_half_open_connections_do_not_block_others(server):
    conns = []
    try:
        for i in range(150):
            c = Raw(server.port)
            # A request cut in the middle of its headers.
            c.send(b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            conns.append(c)
        for i in range(50):
            conns.append(Raw(server.port))  # connected, silent
        for i in range(30):
            c = Raw(server.port)
            c.send(b"GET " + WEBSOCKET.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            conns.append(c)
        sid = new_sid(server)
        for i in range(20):
            c = Raw(server.port)
            # A complete head promising a body that never comes.
            c.send(request_bytes("POST", "%s&sid=%s" % (POLLING, sid), {"Content-Length": "100"}) + b"4partial")
            conns.append(c)
        started = time.monotonic()
        normal_client_works(server)
        assert time.monotonic() - started < 30
    finally:
        for c in conns:
            c.close()
    normal_client_works(server)


def test_abrupt_disconnects_mid_request(server):
    sid = new_sid(server)
    polling = "%s&sid=%s" % (POLLING, sid)
    cases = [
        b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHo",
        b"POST " + polling.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n4abc",
        b"GET " + WEBSOCKET.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    ]
    for rounds in range(5):
        for data in cases:
            for rst in (False, True):
                c = Raw(server.port)
                c.send(data)
                c.reset() if rst else c.close()
    # A client that goes away while its poll is waiting.
    sid2 = new_sid(server)
    for rst in (False, True):
        c = Raw(server.port)
        c.send(request_bytes("GET", "%s&sid=%s" % (POLLING, sid2)))
        time.sleep(0.05)
        c.reset() if rst else c.close()
    # A client that goes away before reading a large answer.
    sid3 = new_sid(server)
    requests.post("%s%s&sid=%s" % (server.url, POLLING, sid3), data=b"4" + b"q" * 500000, timeout=30)
    c = Raw(server.port)
    c.send(request_bytes("GET", "%s&sid=%s" % (POLLING, sid3)))
    c.reset()
    time.sleep(0.2)
    normal_client_works(server)


# ---------------------------------------------------------------------------
# WebSocket


def test_abrupt_disconnects_mid_websocket_frame(server):
    partials = [
        b"\x81",  # first header byte only
        b"\x81\xfe\x03",  # inside the extended length
        b"\x81\x8a\x01\x02",  # inside the masking key
        ws_frame(1, b"4" + b"a" * 999)[:100],  # inside the payload
        ws_frame(2, b"\x00" * 70000)[:20000],  # inside a 64 KiB+ binary payload
        ws_frame(1, b"4frag", fin=False),  # between fragments
    ]
    for rounds in range(3):
        for data in partials:
            for rst in (False, True):
                ws = RawWs(server.port)
                ws.read_open_packet()
                ws.send(data)
                ws.reset() if rst else ws.close()
    time.sleep(0.2)
    normal_client_works(server)


def long_close_frame():
    return ws_frame(8, struct.pack("!H", 1000) + b"r" * 130)


INVALID_FRAMES = {
    "unmasked": lambda: ws_frame(1, b"4hello", mask=False),
    "reserved-opcode-3": lambda: ws_frame(3, b"4hello"),
    "reserved-opcode-11": lambda: ws_frame(11, b""),
    "rsv1-without-extension": lambda: ws_frame(1, b"4hello", rsv=4),
    "rsv3": lambda: ws_frame(1, b"4hello", rsv=1),
    "control-frame-over-125": lambda: ws_frame(9, b"p" * 126),
    "fragmented-control-frame": lambda: ws_frame(9, b"ping", fin=False),
    "continuation-without-start": lambda: ws_frame(0, b"4hello"),
    "new-message-inside-fragmented": lambda: ws_frame(1, b"4he", fin=False) + ws_frame(1, b"4llo"),
    "invalid-utf8": lambda: ws_frame(1, b"4\xff\xfe\xc3\x28"),
    "length-msb-set": lambda: bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 63) + os.urandom(4),
    "close-payload-of-one-byte": lambda: ws_frame(8, b"\x03"),
    "close-code-invalid": lambda: ws_frame(8, struct.pack("!H", 999)),
    "close-reason-over-125": long_close_frame,
}


@pytest.mark.parametrize("name", sorted(INVALID_FRAMES))
def test_invalid_websocket_frame_closes_the_connection(server, name):
    ws = RawWs(server.port)
    try:
        ws.read_open_packet()
        ws.send(INVALID_FRAMES[name]())
        ws.expect_closed("an invalid frame (%s)" % name)
    finally:
        ws.close()
    normal_client_works(server)


def test_websocket_message_over_max_payload_closes_the_connection(server):
    ws = RawWs(server.port)
    try:
        ws.read_open_packet()
        payload = b"4" + b"m" * MAX_PAYLOAD
        frame = ws_frame(1, payload)
        # The server may close as soon as it sees the length.
        sent = 0
        while sent < len(frame):
            if ws.readable(0) and sent > 0:
                break
            if not ws.send(frame[sent : sent + 65536]):
                break
            sent += 65536
        ws.expect_closed("a message over maxPayload", timeout=30)
    finally:
        ws.close()
    normal_client_works(server)


def test_websocket_ping_frame_is_answered_with_pong(server):
    ws = RawWs(server.port)
    try:
        ws.read_open_packet()
        ws.send(ws_frame(9, b"are-you-there"))
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, "no pong frame"
            frame = ws.read_frame(timeout=deadline - time.monotonic())
            assert frame is not None, "closed instead of answering a ping frame"
            if frame[1] == 1 and frame[2] == b"2":
                ws.send(ws_frame(1, b"3"))
                continue
            assert frame[1] == 10, "expected a pong frame, got %r" % (frame,)
            assert frame[2] == b"are-you-there"
            break
        # A client close frame is answered with a close frame.
        ws.send(ws_frame(8, struct.pack("!H", 1000)))
        assert ws.expect_closed("a close frame").startswith(("close", "eof"))
    finally:
        ws.close()
    normal_client_works(server)


def test_fragmented_websocket_message_is_reassembled(server):
    ws = RawWs(server.port)
    try:
        ws.read_open_packet()
        ws.send(ws_frame(1, b"4frag", fin=False))
        ws.send(ws_frame(9, b"interleaved"))  # a control frame between fragments is legal
        ws.send(ws_frame(0, b"men", fin=False))
        ws.send(ws_frame(0, b"ted", fin=True))
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, "no echo of the fragmented message"
            frame = ws.read_frame(timeout=deadline - time.monotonic())
            assert frame is not None, "closed instead of echoing a fragmented message"
            if frame[1] == 1 and frame[2] == b"2":
                ws.send(ws_frame(1, b"3"))
            elif frame[1] == 1:
                assert frame[2] == b"4fragmented"
                break
    finally:
        ws.close()
    normal_client_works(server)


def test_server_is_still_alive(server):
    server.assert_alive()
    normal_client_works(server)
