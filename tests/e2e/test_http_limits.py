"""Memory bounded by what clients send (issue 10), against the real
spaces-server and a throwaway PostgreSQL cluster:

- bodies that announce a huge Content-Length and stall hold only the bytes
  that came: nine of them do not stop a login or an app's 200 KB result;
- each route class has its body limit, and a Content-Length over it is
  answered 413 from the headers, before the body is sent;
- a body that stalls is dropped (408) at the body timeout;
- Engine.IO handshakes are bounded by --max-sessions and by a rate per
  client address; a session never used expires at pingInterval+pingTimeout;
- after a spike of sessions the process gives its memory back (VmRSS);
- running out of file descriptors (EMFILE on accept) is logged, rate
  limited, and the server serves again once descriptors are free.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_http_limits.py

    SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug)
    SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server

Each test starts its own server with the flags it needs (one cluster for the
module); every server must exit 0 on SIGTERM with no sanitizer report.
"""

import json
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from test_http_robustness import Raw, request_bytes  # noqa: E402

WAIT = 10.0
POLLING = "/socket.io/?EIO=4&transport=polling"
CONTROL_APP = os.path.join(SOURCE, "tests", "clients", "websocket_integration_client.py")


@pytest.fixture(scope="module")
def pg():
    yield from harness.module_pg(require_server=False)


@pytest.fixture(scope="module")
def default_srv(pg):
    """A server with the default limits, shared by the tests that need no flags."""
    with Server(pg) as srv:
        yield srv
        srv.proc.assert_alive()


class Server:
    """A spaces-server with extra flags; stopped (and checked) on exit."""

    def __init__(self, pg, *args, prefix=()):
        self.proc = harness.start_server_ex(
            list(prefix) + harness.spaces_server_command()
            + ["--database-url", pg.url, "--legacy-open-spaces",
               "--data-dir", harness.spaces_data_dir()] + list(args),
            port_args=lambda p: ["--listen", "127.0.0.1:%d" % p],
            ready_check=lambda s: _healthz(s.url) == 200)
        self.url = self.proc.url
        self.port = self.proc.port

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.proc.__exit__(exc_type, exc, tb)
        return False

    def pid(self):
        """The server's pid (under prlimit, which execs it, the same)."""
        return self.proc.proc.pid

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid()) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for the server")


def _healthz(url):
    try:
        return requests.get(url + "/healthz", timeout=2).status_code
    except requests.RequestException:
        return None


def handshake(url):
    """A polling handshake: (status, parsed body)."""
    r = requests.get(url + POLLING, timeout=WAIT)
    try:
        body = json.loads(r.text[1:]) if r.status_code == 200 else json.loads(r.text)
    except ValueError:
        body = {"_text": r.text}
    return r.status_code, body


def read_responses(conn, n, timeout=60.0):
    """n (status, body) pairs read from a raw keep-alive connection."""
    out = []
    for _ in range(n):
        status, _, body = conn.read_response(timeout=timeout)
        assert status is not None, "connection closed after %d responses" % len(out)
        out.append((status, body))
    return out


def pipelined_handshakes(port, n):
    """n polling handshakes pipelined on one keep-alive connection."""
    c = Raw(port, timeout=60)
    try:
        c.send(request_bytes("GET", POLLING) * n)
        return read_responses(c, n)
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Request bodies


def raw_login(port, name, password):
    """POST /login with the head and the body in two writes, as browsers
    often send them (the body is then kept by the server between reads)."""
    body = ("username=%s&password=%s" % (name, password)).encode()
    c = Raw(port)
    try:
        c.send(request_bytes("POST", "/login", {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body))}))
        time.sleep(0.2)
        c.send(body)
        status, headers, _ = c.read_response(timeout=30)
        return status, headers
    finally:
        c.close()


def test_stalled_huge_bodies_do_not_starve_a_login_and_a_result(pg, default_srv):
    srv = default_srv
    site = harness.SpacesSite(srv.url, pg)
    user = site.user()
    space_id, space_name = site.create_space()
    app = harness.ChildProcess([harness.PYTHON, CONTROL_APP, "--control", "--host",
                                srv.url, "--space", space_name], limit=90, name="app")
    stalled = []
    try:
        reg = app.wait_event("register_response", timeout=20)[2]["data"]
        assert reg.get("success") is True, reg
        request_id = site.submit_ok(user, space_id, "big answer please")
        app.wait_event("inference_request", timeout=20)
        # Nine bodies announced at 79 MB each, 110 bytes of each sent: 990 bytes.
        for i in range(9):
            c = Raw(srv.port, timeout=60)
            c.send(request_bytes("POST", "/websockets/submit/%s" % space_id, {
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": "79000000"}) + b"prompt=" + b"s" * 103)
            stalled.append(c)
        time.sleep(0.5)
        # A normal user logs in...
        status, headers = raw_login(srv.port, user.name, user.password)
        assert status == 302 and "spaces_session=" in headers.get("set-cookie", ""), \
            "login while nine bodies stall: %r %r" % (status, headers)
        # ...and the app sends a 200 KB result, which is stored.
        text = "r" * 200000
        app.send({"op": "result", "request_id": request_id,
                  "result": {"text_output": text}})
        body = site.wait_status(request_id, timeout=30)
        assert body["status"] == "completed", body
        assert body["result"]["text_output"] == text
        # The stalled uploads were not refused either: they are still waiting.
        for c in stalled:
            assert not c.readable(0), "a stalled upload was answered: %r" % c.buf[:200]
    finally:
        for c in stalled:
            c.close()
        app.close()


@pytest.mark.parametrize("path,length", [
    ("/login", 1000000),
    ("/register", 1000000),
    ("/logout", 100000),
    ("/admin/space/add", 5000000),
    (POLLING + "&sid=nosuchsid", 2000000),
    ("/websockets/submit/1", 80000000),
])
def test_body_over_its_route_limit_is_413_before_it_is_sent(default_srv, path, length):
    srv = default_srv
    c = Raw(srv.port)
    try:
        # The head only: the answer must not wait for the body.
        c.send(request_bytes("POST", path, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(length)}))
        status, _ = c.read_response_head(timeout=WAIT)
        assert status == 413, "POST %s announcing %d bytes: %r" % (path, length, status)
    finally:
        c.close()


def test_stalled_body_is_dropped_at_the_body_timeout(pg):
    with Server(pg, "--body-timeout", "2") as srv:
        c = Raw(srv.port, timeout=30)
        try:
            started = time.monotonic()
            c.send(request_bytes("POST", "/login", {"Content-Length": "1000"}) + b"user")
            status, _ = c.read_response_head(timeout=30)
            elapsed = time.monotonic() - started
            assert status == 408, status
            assert elapsed >= 1.5, "dropped after %.1f s, before the body timeout" % elapsed
            c.read_to_eof(timeout=WAIT)
        finally:
            c.close()
        assert _healthz(srv.url) == 200


# ---------------------------------------------------------------------------
# Engine.IO sessions


def test_sessions_are_bounded_by_max_sessions(pg):
    with Server(pg, "--max-sessions", "20", "--handshake-rate", "0") as srv:
        sids = []
        for _ in range(20):
            status, body = handshake(srv.url)
            assert status == 200, (status, body)
            sids.append(body["sid"])
        status, body = handshake(srv.url)
        assert status == 403 and body == {"code": 4, "message": "Too many sessions"}, \
            (status, body)
        # A session that ends makes room for another.
        r = requests.post("%s%s&sid=%s" % (srv.url, POLLING, sids[0]), data=b"1",
                          timeout=WAIT)
        assert r.status_code == 200, r.text
        status, body = harness.wait_until(
            "a handshake once a session ended",
            lambda: (lambda sb: sb if sb[0] == 200 else None)(handshake(srv.url)), WAIT)
        assert re.search(r"handshake refused: Too many sessions", srv.proc.stderr())


def test_handshakes_are_rate_limited_per_address(pg):
    with Server(pg, "--handshake-rate", "5") as srv:
        started = time.monotonic()
        answers = pipelined_handshakes(srv.port, 100)
        elapsed = time.monotonic() - started
        ok = [b for s, b in answers if s == 200]
        refused = [b for s, b in answers if s != 200]
        # A burst of 10 (twice the rate), then 5 a second.
        assert len(ok) >= 10, "only %d handshakes of 100 allowed" % len(ok)
        assert len(ok) <= 10 + 5 * (elapsed + 1), \
            "%d handshakes allowed in %.1f s at 5/s" % (len(ok), elapsed)
        assert refused, "no handshake refused"
        for s, b in answers:
            if s != 200:
                assert s == 403 and json.loads(b) == {
                    "code": 4, "message": "Too many handshakes"}, (s, b)
        # Refusals are logged, not once each.
        lines = srv.proc.stderr().count("handshake refused")
        assert 1 <= lines <= 3, "%d log lines for %d refusals" % (lines, len(refused))


def test_unused_sessions_expire_at_ping_interval_plus_timeout(pg):
    with Server(pg, "--ping-interval", "300", "--ping-timeout", "200") as srv:
        sids = [handshake(srv.url)[1]["sid"] for _ in range(5)]
        # Never polled again: gone once the ping goes unanswered.
        time.sleep(0.5)

        def gone(sid):
            r = requests.get("%s%s&sid=%s" % (srv.url, POLLING, sid), timeout=WAIT)
            return r.status_code == 400 and json.loads(r.text).get("code") == 1

        harness.wait_until("unused sessions gone", lambda: all(gone(s) for s in sids), WAIT)


def test_memory_returns_after_a_spike_of_sessions(pg):
    with Server(pg, "--ping-interval", "1000", "--ping-timeout", "1000",
                "--handshake-rate", "0", "--max-sessions", "200000",
                "--max-connections", "200000") as srv:
        # Warm up (first-use allocations), then the baseline.
        pipelined_handshakes(srv.port, 2000)
        time.sleep(3)
        base = srv.rss_kib()
        sids = []
        for _ in range(6):
            answers = pipelined_handshakes(srv.port, 5000)
            assert all(s == 200 for s, _ in answers)
            sids.append(json.loads(answers[-1][1][1:])["sid"])
        peak = srv.rss_kib()
        growth = peak - base
        assert growth > 10 * 1024, "30000 sessions grew RSS by only %d KiB" % growth
        # The sessions expire (never used: pingInterval + pingTimeout after
        # their handshake, 2 s here), then the memory goes back.
        harness.wait_until(
            "the last spike session expired",
            lambda: requests.get("%s%s&sid=%s" % (srv.url, POLLING, sids[-1]),
                                 timeout=WAIT).status_code == 400, 40, interval=0.5)
        harness.wait_until(
            "RSS back below baseline + half the spike (base %d KiB, peak %d KiB)"
            % (base, peak),
            lambda: srv.rss_kib() < base + growth // 2, 40, interval=0.5,
            context=lambda: "RSS now %d KiB" % srv.rss_kib())
        for sid in sids:
            r = requests.get("%s%s&sid=%s" % (srv.url, POLLING, sid), timeout=WAIT)
            assert r.status_code == 400, "a spike session is still there: %r" % r.text


# ---------------------------------------------------------------------------
# Out of file descriptors


def test_out_of_file_descriptors_is_logged_and_survived(pg):
    with Server(pg, prefix=["prlimit", "--nofile=64:64"]) as srv:
        conns = []
        try:
            refused = 0
            for _ in range(150):
                try:
                    conns.append(socket.create_connection(("127.0.0.1", srv.port),
                                                          timeout=WAIT))
                except OSError:
                    refused += 1
            # The server has taken what it could and closed the rest.
            harness.wait_until("an EMFILE log line",
                               lambda: re.search(r"accept: too many open files",
                                                 srv.proc.stderr()), WAIT)
            for s in conns:
                try:
                    s.settimeout(0.0)
                    if s.recv(1) == b"":
                        refused += 1
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    refused += 1
            assert refused > 0, "no connection was refused at 64 descriptors"
        finally:
            for s in conns:
                s.close()
        # Logged once a while, not once per refused connection.
        lines = len(re.findall(r"accept: ", srv.proc.stderr()))
        assert lines <= 2, "%d log lines for %d refused connections" % (lines, refused)
        harness.wait_until("serving again", lambda: _healthz(srv.url) == 200, WAIT)
        status, _ = handshake(srv.url)
        assert status == 200
