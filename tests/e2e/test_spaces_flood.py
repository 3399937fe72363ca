"""One connection cannot take the site down (issue 10).

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_spaces_flood.py

A signed-in browser socket floods ``follow_request``, or an app floods
``inference_progress``, for 10 s while another user loads a space page
every 100 ms: at least 99 % of the loads must be answered 200 within the
latency bound, and the flooder must be disconnected with a logged reason.
``follow_space`` and ``follow_request`` are refused for what does not exist
or is not the user's, and a socket follows at most 64 things.

The latency bound is 100 ms (SPACES_FLOOD_LATENCY_MS overrides it), or
twice the 99th percentile of the same loads without a flood when that is
more (a sanitizer build on a loaded machine answers a page more slowly even
with no flood at all); a run that fails the latency check is tried once
more, as a shared machine stalls now and then. The bound applied and every
load over it are printed. The flooders are raw WebSocket
clients (python3-websocket) sending pre-encoded Socket.IO packets as fast as
they can, much faster than python-socketio would.
"""

import json
import os
import re
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402

FLOOD_SECONDS = 10.0
MAX_FOLLOWS = 64


def latency_bound():
    return float(os.environ.get("SPACES_FLOOD_LATENCY_MS", "100")) / 1000.0


@pytest.fixture(scope="module")
def pg():
    yield from harness.module_pg()


# Enough drops that the flooder keeps at it for a few seconds before it is
# closed; apps get 200 events/s (bursts of 400) instead of the default 5000,
# so that a Python flooder surely goes over it.
FLOOD_DROPS = 5000


@pytest.fixture
def server(pg):
    srv = harness.start_spaces_server(pg.url, extra_args=[
        "--socket-flood-drops", str(FLOOD_DROPS), "--app-event-rate", "200"])
    try:
        yield srv
        srv.stop()  # exit 0, no sanitizer report
    finally:
        if srv.alive():
            srv.kill()


# ---------------------------------------------------------------------------
# A raw Socket.IO client over one WebSocket


class RawSocket:
    """Engine.IO 4 / Socket.IO 5 over a WebSocket, by hand: connects to one
    namespace, sends pre-encoded packets, and collects what comes back in a
    reader thread (answering pings)."""

    def __init__(self, url, nsp="/", cookie=None):
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        header = ["Cookie: spaces_session=%s" % cookie] if cookie else []
        self.ws = websocket.create_connection(ws_url, header=header, timeout=10)
        self.nsp = nsp
        self.prefix = "" if nsp == "/" else nsp + ","
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.packets = []
        self.acks = {}
        self.cond = threading.Condition(self.lock)
        opened = self.ws.recv()
        assert opened.startswith("0"), opened
        self.ws.send("40" + self.prefix)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait(lambda: any(p.startswith("40") for p in self.packets), "CONNECT reply")

    def _read(self):
        try:
            while True:
                msg = self.ws.recv()
                if not msg:
                    break
                if msg == "2":
                    self.ws.send("3")
                    continue
                with self.cond:
                    self.packets.append(msg)
                    m = re.match(r"43" + re.escape(self.prefix) + r"(\d+)(.*)$", msg, re.S)
                    if m:
                        self.acks[int(m.group(1))] = json.loads(m.group(2))
                    self.cond.notify_all()
        except Exception:
            pass
        finally:
            self.closed.set()
            with self.cond:
                self.cond.notify_all()

    def wait(self, pred, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: not within %.0f s; got %r"
                                         % (what, timeout, self.packets[-5:]))
                self.cond.wait(left)

    def emit(self, event, arg, ack_id=None):
        self.send_raw("42%s%s%s" % (self.prefix, "" if ack_id is None else ack_id,
                                    json.dumps([event, arg])))

    def send_raw(self, text):
        self.ws.send(text)

    def events(self, name):
        with self.lock:
            out = []
            for p in self.packets:
                if p.startswith("42" + self.prefix):
                    body = json.loads(p[2 + len(self.prefix):])
                    if body and body[0] == name:
                        out.append(body[1:])
            return out

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def flood(sock, packets, seconds):
    """Sends packets round-robin as fast as possible for seconds or until the
    server closes the connection. Returns (sent, closed by the server)."""
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not sock.closed.is_set():
            for p in packets:
                sock.send_raw(p)
            sent += len(packets)
    except Exception:
        pass
    return sent, sock.closed.wait(1.0)


def _flood_child(connect, packets, seconds, go, out):
    try:
        sock = connect()
    except Exception as e:
        out.put(("connect failed: %r" % e, False))
        return
    out.put("connected")
    go.wait(20)
    out.put(flood(sock, packets, seconds))
    sock.close()


def flood_in_child(connect, packets, seconds, started):
    """flood() in a child process on a connection connect() opens there, so
    that the page loads measured here do not wait for this process's GIL.
    started() is called once the child is connected, as the flood begins."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    out, go = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_flood_child, args=(connect, packets, seconds, go, out))
    child.start()
    try:
        first = out.get(timeout=30)
        if first != "connected":
            return first
        started()
        go.set()
        return out.get(timeout=seconds + 30)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def load_pages(url, session, seconds, results, stop, ready=None):
    """GETs url every 100 ms for seconds; appends (status, elapsed s). With
    ready: one load first that is not counted (a new thread's first request
    is slow on its own), then ready is set and the clock starts."""
    if ready is not None:
        try:
            session.get(url, timeout=10, allow_redirects=False)
        finally:
            ready.set()
    deadline = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < deadline and not stop.is_set():
        t0 = time.monotonic()
        try:
            r = session.get(url, timeout=10, allow_redirects=False)
            results.append((r.status_code, time.monotonic() - t0))
        except requests.RequestException as e:
            results.append((str(e), time.monotonic() - t0))
        nxt += 0.1
        time.sleep(max(0.0, nxt - time.monotonic()))


def check_latency(results, calm, what):
    # On a loaded machine (a sanitizer build, other jobs) a page may take
    # longer than 100 ms with no flood at all: the bound is then twice the
    # 99th percentile of the calm loads. The flood must not make it worse.
    calm_ok = sorted(r[1] for r in calm if r[0] == 200)
    calm_p99 = calm_ok[int(len(calm_ok) * 0.99) - 1] if calm_ok else 0.0
    bound = max(latency_bound(), 2 * calm_p99)
    print("%s: without a flood, p99 %.0f ms of %d loads" % (what, calm_p99 * 1000, len(calm)))
    good = [r for r in results if r[0] == 200 and r[1] <= bound]
    statuses = {}
    for r in results:
        statuses[r[0]] = statuses.get(r[0], 0) + 1
    slowest = sorted(r[1] for r in results)[-5:]
    late = [(i, "%.0f ms" % (r[1] * 1000), r[0]) for i, r in enumerate(results)
            if r[0] != 200 or r[1] > bound]
    print("%s: loads over the bound (index, time, status): %r" % (what, late[:20]))
    print("%s: %d loads, %d answered 200 within %.0f ms; statuses %r; slowest %r"
          % (what, len(results), len(good), bound * 1000, statuses,
             ["%.0f ms" % (s * 1000) for s in slowest]))
    assert len(results) >= 50, "too few page loads: %d" % len(results)
    assert len(good) >= 0.99 * len(results), (
        "%s: only %d of %d page loads answered 200 within %.0f ms (statuses %r)"
        % (what, len(good), len(results), bound * 1000, statuses))


def run_flood(server, site, connect, packets, what, attempts=2):
    """_run_flood, once more when the latency check fails: a machine shared
    with other jobs stalls now and then, with or without a flood. A server
    that does not protect its pages (503s, seconds-long stalls for the whole
    flood) fails every attempt."""
    for attempt in range(1, attempts + 1):
        try:
            return _run_flood(server, site, connect, packets, what)
        except AssertionError as e:
            if attempt == attempts or "page loads answered" not in str(e):
                raise
            print("%s: attempt %d failed the latency check, once more: %s"
                  % (what, attempt, str(e).splitlines()[0]))


def _run_flood(server, site, connect, packets, what):
    viewer = site.user()
    space_id, _ = site.create_space()
    page = server.url + "/ai_project/" + space_id
    r = viewer.session.get(page, timeout=10)
    assert r.status_code == 200, r.status_code
    # The same loads without a flood first: how fast this machine is now.
    calm = []
    load_pages(page, viewer.session, 5.0, calm, threading.Event())
    results, stop, ready = [], threading.Event(), threading.Event()
    loader = threading.Thread(target=load_pages,
                              args=(page, viewer.session, FLOOD_SECONDS, results, stop, ready))

    def start_loads():
        loader.start()
        ready.wait(15)

    try:
        sent, closed = flood_in_child(connect, packets, FLOOD_SECONDS, start_loads)
    finally:
        if loader.ident is not None:
            loader.join(FLOOD_SECONDS + 30)
        stop.set()
    print("%s: %r packets sent, closed by the server: %s" % (what, sent, closed))
    check_latency(results, calm, what)
    return closed


# ---------------------------------------------------------------------------
# Tests


def test_follow_request_flood_does_not_starve_pages(server, pg):
    site = harness.SpacesSite(server.url, pg)
    flooder = site.user()
    packets = ['42/spaces,["follow_request","%s"]' % uuid.uuid4() for _ in range(64)]
    closed = run_flood(server, site,
                       lambda: RawSocket(server.url, "/spaces", cookie=flooder.cookie),
                       packets, "follow_request flood")
    assert closed, "the flooding socket was not disconnected"
    harness.wait_until(
        "a log line saying why the flooder was disconnected",
        lambda: re.search(r"event flood", server.stderr()), 10,
        context=lambda: server.stderr()[-3000:])
    server.assert_alive()


def test_inference_progress_flood_does_not_starve_pages(server, pg):
    site = harness.SpacesSite(server.url, pg)
    _, name = site.create_space()

    def connect():
        app = RawSocket(server.url, "/")
        app.emit("register", {"space_name": name})
        app.wait(lambda: any('"register_response"' in p for p in app.packets),
                 "register_response")
        assert app.events("register_response")[0][0]["success"] is True
        return app

    packets = ['42["inference_progress",{"request_id":"%s","progress":%d}]'
               % (uuid.uuid4(), i % 100) for i in range(64)]
    closed = run_flood(server, site, connect, packets, "inference_progress flood")
    assert closed, "the flooding app was not disconnected"
    harness.wait_until(
        "a log line saying why the flooder was disconnected",
        lambda: re.search(r"event flood", server.stderr()), 10,
        context=lambda: server.stderr()[-3000:])
    server.assert_alive()


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_follow_space_only_for_spaces_that_exist_and_at_most_64(pg):
    # No event rate limit here: this test is about what a follow may join.
    srv = harness.start_spaces_server(pg.url, extra_args=["--socket-event-rate", "0"])
    try:
        site = harness.SpacesSite(srv.url, pg)
        user = site.user()
        sock = RawSocket(srv.url, "/spaces", cookie=user.cookie)
        rss0 = _rss_kb(srv.proc.pid)
        n = 10000
        for i in range(n):
            sock.emit("follow_space", "no_such_%s" % uuid.uuid4().hex, ack_id=i)
        sock.wait(lambda: len(sock.acks) >= n or sock.closed.is_set(),
                  "acks of %d follow_space" % n, timeout=120)
        assert not sock.closed.is_set()
        refused = sum(1 for a in sock.acks.values() if a == [False])
        rss1 = _rss_kb(srv.proc.pid)
        print("10000 unknown spaces: %d refused; RSS %d -> %d kB" % (refused, rss0, rss1))
        assert refused == n, "follow_space of unknown spaces accepted: %d of %d refused" % (
            refused, n)

        # Existing spaces: the first 64 are followed, the rest refused.
        ids = [r[0] for r in pg.sql(
            "INSERT INTO spaces (name) SELECT 'flood_' || g || '_' || :'t' "
            "FROM generate_series(1, 70) g RETURNING id", t=uuid.uuid4().hex[:8])]
        base = n
        for k, sid in enumerate(ids):
            sock.emit("follow_space", sid, ack_id=base + k)
        sock.wait(lambda: all(base + k in sock.acks for k in range(len(ids))),
                  "acks of 70 follow_space")
        accepted = [k for k in range(len(ids)) if sock.acks[base + k] == [True]]
        assert len(accepted) == MAX_FOLLOWS, "followed %d spaces, expected %d" % (
            len(accepted), MAX_FOLLOWS)
        # Following one already followed costs nothing and is still fine.
        sock.emit("follow_space", ids[0], ack_id=base + 100)
        sock.wait(lambda: base + 100 in sock.acks, "ack of a repeated follow")
        assert sock.acks[base + 100] == [True]
        sock.close()

        # follow_request: only the user's own requests.
        other = site.user()
        space_id, _ = site.create_space()
        rid = str(uuid.uuid4())
        pg.sql("INSERT INTO requests (id, space_id, user_id, username) VALUES "
               "(:'r', :'s', :'u', :'n')", r=rid, s=space_id, u=user.id, n=user.name)
        mine = RawSocket(srv.url, "/spaces", cookie=user.cookie)
        theirs = RawSocket(srv.url, "/spaces", cookie=other.cookie)
        anon = RawSocket(srv.url, "/spaces")
        try:
            for i, s in enumerate((mine, theirs, anon)):
                s.emit("follow_request", rid, ack_id=1)
                s.emit("follow_request", str(uuid.uuid4()), ack_id=2)
                s.wait(lambda s=s: 1 in s.acks and 2 in s.acks, "follow_request acks")
            assert mine.acks == {1: [True], 2: [False]}
            assert theirs.acks == {1: [False], 2: [False]}
            assert anon.acks == {1: [False], 2: [False]}
        finally:
            for s in (mine, theirs, anon):
                s.close()
        srv.assert_alive()
        srv.stop()
    finally:
        if srv.alive():
            srv.kill()
