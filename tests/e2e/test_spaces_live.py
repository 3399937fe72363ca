"""What a request's card and a space's badge are told, live (issue 14):
queue positions, "waiting at the app, N ahead", processing, final states,
the estimated wait, notices of requeues and timeouts, space counts, cancel
and retry; and /websockets/status saying what the live event says.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_spaces_live.py

A real PostgreSQL cluster and spaces-server; apps are tests/clients/
programs in their own processes (mock_app.py, which works through its
requests one at a time like the original; websocket_integration_client.py
--control where a test must see what the app receives); the browser is a
python-socketio client on the namespace "/spaces" with a user's cookie.
"""

import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402
import socketio  # noqa: E402

PYTHON = harness.PYTHON
CLIENTS = os.path.join(SOURCE, "tests", "clients")
MOCK_APP = os.path.join(CLIENTS, "mock_app.py")
CONTROL_APP = os.path.join(CLIENTS, "websocket_integration_client.py")
WAIT = 30.0
NOTICE_REQUEUED = "The app disconnected; back in the queue."


@pytest.fixture(scope="module")
def env():
    argv = harness.spaces_server_command()
    if "/" in argv[0] and not os.path.exists(argv[0]):
        pytest.fail("%s does not exist: build it" % argv[0])
    pg = harness.PgCluster()
    server = None
    try:
        server = harness.start_spaces_server(pg.url, extra_args=["--handshake-rate", "0"])
        yield pg, server, harness.SpacesSite(server.url, pg)
    finally:
        if server is not None and server.alive():
            server.stop()
        pg.close()


@pytest.fixture
def children():
    kids = []
    yield kids
    for c in kids:
        try:
            c.close()
        except Exception:
            pass


def child(children, argv, name):
    c = harness.ChildProcess([PYTHON] + argv, limit=240, name=name)
    children.append(c)
    return c


def mock_app(children, server, space_name, *extra):
    app = child(children, [MOCK_APP, "--host", server.url, "--space", space_name] +
                list(extra), "mock_app")
    app.wait_line(r"Registration successful", timeout=WAIT)
    return app


def control_app(children, server, space_name):
    app = child(children, [CONTROL_APP, "--control", "--host", server.url, "--space",
                           space_name], "control_app")
    _, _, ev = app.wait_event("register_response", timeout=WAIT)
    assert ev["data"].get("success") is True, ev
    return app


class Browser:
    """A page's socket on "/spaces": every request_update and space_state it gets."""

    def __init__(self, url, cookie):
        self.events = []  # (name, data)
        self.cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        for name in ("request_update", "space_state"):
            self.sio.on(name, self._recorder(name), namespace="/spaces")
        self.sio.connect(url, headers={"Cookie": "spaces_session=" + cookie},
                         namespaces=["/spaces"], transports=["websocket"], wait_timeout=10)

    def _recorder(self, name):
        def rec(data):
            with self.cond:
                self.events.append((name, data))
                self.cond.notify_all()
        return rec

    def follow_space(self, space_id):
        assert self.sio.call("follow_space", space_id, namespace="/spaces", timeout=10) is True

    def wait(self, name, pred, what, timeout=WAIT, start=0):
        """(index, data) of the first event `name` from start on with pred(data)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.events)):
                    n, d = self.events[i]
                    if n == name and isinstance(d, dict) and pred(d):
                        return i, d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s: %s within %.0f s; got:\n%s" % (
                        name, what, timeout, "\n".join(repr(e) for e in self.events[-40:])))
                self.cond.wait(left)

    def update(self, rid, what, timeout=WAIT, start=0, **want):
        return self.wait("request_update",
                         lambda d: d.get("request_id") == rid and
                         all(d.get(k) == v for k, v in want.items()),
                         "%s (%s)" % (what, want), timeout, start)

    def updates(self, rid):
        with self.cond:
            return [(i, d) for i, (n, d) in enumerate(self.events)
                    if n == "request_update" and d.get("request_id") == rid]

    def mark(self):
        with self.cond:
            return len(self.events)

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def browsers():
    made = []
    yield made
    for b in made:
        try:
            b.close()
        except Exception:
            pass


def browser(browsers, server, user):
    b = Browser(server.url, user.cookie)
    browsers.append(b)
    return b


def post(site, user, path):
    r = user.session.post(site.url + path, timeout=30)
    return r.status_code, r.json()


def db_status(pg, rid):
    return pg.sql("SELECT status FROM requests WHERE id = :'id'", id=rid)[0][0]


# ---------------------------------------------------------------------------


def test_positions_then_processing_in_order(env, children, browsers):
    """Three submissions to an app that works on one at a time: the first is
    processing, the others waiting with 1 and 2 ahead; each becomes
    processing only after the one before it completed, and all complete in
    order. space_state counts what the apps hold."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    mock_app(children, server, name, "--delay", "1.5")
    b = browser(browsers, server, user)
    b.follow_space(space_id)
    b.wait("space_state", lambda d: d.get("space_id") == space_id and d.get("apps") == 1 and
           d.get("queued") == 0, "the space with its app and counts")
    ids = [site.submit_ok(user, space_id, "live %d" % i) for i in range(3)]
    b.update(ids[0], "the first is being worked on", state="processing", status="processing")
    b.update(ids[1], "the second waits behind one", state="waiting", ahead=1)
    b.update(ids[2], "the third waits behind two", state="waiting", ahead=2)
    b.wait("space_state", lambda d: d.get("space_id") == space_id and
           d.get("processing") == 3 and d.get("queued") == 0, "three held by the app")
    done = [b.update(rid, "completed", state="completed", status="completed")[0] for rid in ids]
    assert done == sorted(done), "completed out of order"
    for k in (1, 2):
        started = b.update(ids[k], "processing", state="processing")[0]
        assert started > done[k - 1], (
            "request %d said processing before request %d completed" % (k + 1, k))
        # Until then it was waiting.
        for i, d in b.updates(ids[k]):
            if i < done[k - 1]:
                assert d["state"] == "waiting", d
    b.update(ids[2], "waiting behind one, after the first completed", state="waiting", ahead=1)
    b.wait("space_state", lambda d: d.get("space_id") == space_id and
           d.get("processing") == 0 and d.get("queued") == 0, "nothing held any more")


def test_status_equals_the_live_event(env, children, browsers):
    """/websockets/status and /api/requests give the fields the live
    request_update gave (an app that never answers keeps them still)."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    mock_app(children, server, name, "--no-answer")
    b = browser(browsers, server, user)
    ids = [site.submit_ok(user, space_id, "still %d" % i) for i in range(3)]
    _, last = b.update(ids[2], "waiting behind two", state="waiting", ahead=2)
    code, body = site.status(ids[2], user)
    assert code == 200
    assert body == last, (body, last)
    r = user.session.get(site.url + "/api/requests", params={"space_id": space_id}, timeout=10)
    assert r.status_code == 200
    listed = {d["request_id"]: d for d in r.json()["requests"]}
    assert listed[ids[2]] == last
    assert [d["request_id"] for d in r.json()["requests"]] == ids[::-1]
    assert listed[ids[0]]["state"] == "processing" and "ahead" not in listed[ids[0]]
    assert listed[ids[1]]["state"] == "waiting" and listed[ids[1]]["ahead"] == 1
    # Another user's list does not show them.
    other = site.user()
    r = other.session.get(site.url + "/api/requests", params={"space_id": space_id}, timeout=10)
    assert r.status_code == 200 and r.json()["requests"] == []


def test_eta_after_three_completions(env, children, browsers):
    """No estimated wait before the space has 3 completions; after them, a
    request waiting at the app and the space_state carry one."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    mock_app(children, server, name, "--delay", "0.6")
    b = browser(browsers, server, user)
    b.follow_space(space_id)
    for i in range(3):
        rid = site.submit_ok(user, space_id, "warm %d" % i)
        b.update(rid, "completed", state="completed")
        for _, d in b.updates(rid):
            assert "eta_seconds" not in d, ("an estimate before 3 completions", d)
    mark = b.mark()
    ids = [site.submit_ok(user, space_id, "timed %d" % i) for i in range(2)]
    _, d = b.wait("request_update", lambda d: d.get("request_id") == ids[1] and
                  d.get("state") == "waiting" and "eta_seconds" in d,
                  "the second waiting with an estimate", start=mark)
    assert isinstance(d["eta_seconds"], int) and d["eta_seconds"] >= 1, d
    _, st = b.wait("space_state", lambda d: d.get("space_id") == space_id and
                   "eta_seconds" in d, "space_state with an estimate", start=mark)
    assert st["eta_seconds"] >= 1


def test_app_killed_mid_request_back_in_queue(env, children, browsers):
    """The app dies while working on a request: the card is told it is back
    in the queue, at position 1, with a notice; another app finishes it."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    app = mock_app(children, server, name, "--delay", "20")
    b = browser(browsers, server, user)
    rid = site.submit_ok(user, space_id, "doomed")
    b.update(rid, "processing", state="processing", progress=25)
    mark = b.mark()
    app.signal(signal.SIGKILL)
    _, d = b.update(rid, "back in the queue", start=mark, state="queued", position=1,
                    status="queued")
    assert d.get("notice") == NOTICE_REQUEUED, d
    assert db_status(pg, rid) == "queued"
    code, body = site.status(rid, user)
    assert code == 200 and body["state"] == "queued" and body["position"] == 1 and \
        body["notice"] == NOTICE_REQUEUED, body
    mock_app(children, server, name, "--delay", "0.3")
    _, d = b.update(rid, "completed by the next app", state="completed")
    # The notice was about the queue: a finished request no longer says it.
    assert "notice" not in d, d
    code, body = site.status(rid, user)
    assert code == 200 and body["state"] == "completed" and "notice" not in body, body


def test_timeout_is_pushed(env, children, browsers):
    pg, server, site = env
    space_id, name = site.create_space(timeout_seconds=2)
    user = site.user()
    mock_app(children, server, name, "--no-answer")
    b = browser(browsers, server, user)
    rid = site.submit_ok(user, space_id, "never answered")
    _, d = b.update(rid, "timed out", state="timeout", status="failed")
    assert d.get("reason") == "timeout" and d.get("notice") == "Timed out after 2 s.", d
    code, body = site.status(rid, user)
    assert code == 200 and body["status"] == "failed" and body["reason"] == "timeout"
    assert body["state"] == "timeout" and body["notice"] == d["notice"]


def test_cancel_queued_and_running(env, children, browsers):
    """Cancel a queued request (the one behind it moves up) and a running one
    (its app gets cancel_request; the result it sends later is ignored);
    the database says cancelled, the status route failed/cancelled."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    app = control_app(children, server, name)
    b = browser(browsers, server, user)
    ids = [site.submit_ok(user, space_id, "c%d" % i) for i in range(3)]
    for rid in ids:
        app.wait_event("inference_request", timeout=WAIT,
                       pred=lambda e, rid=rid: e["data"].get("request_id") == rid)
    # The app goes: all three back in the queue, positions 1..3.
    app.send({"op": "exit"})
    for pos, rid in enumerate(ids, 1):
        b.update(rid, "queued", state="queued", position=pos)
    mark = b.mark()
    code, body = post(site, user, "/websockets/cancel/" + ids[0])
    assert code == 200 and body == {"success": True}, body
    _, d = b.update(ids[0], "cancelled", start=mark, state="cancelled", status="failed")
    assert d["reason"] == "cancelled"
    b.update(ids[1], "moved up", start=mark, state="queued", position=1)
    b.update(ids[2], "moved up", start=mark, state="queued", position=2)
    assert db_status(pg, ids[0]) == "cancelled"
    code, body = site.status(ids[0], user)
    assert code == 200 and body["status"] == "failed" and body["reason"] == "cancelled"
    assert body["state"] == "cancelled"
    # Not twice, not someone else's.
    assert post(site, user, "/websockets/cancel/" + ids[0])[0] == 409
    assert post(site, site.user(), "/websockets/cancel/" + ids[1])[0] == 404
    # A new app takes the two left; cancel the second while its app holds it.
    app2 = control_app(children, server, name)
    for rid in ids[1:]:
        app2.wait_event("inference_request", timeout=WAIT,
                        pred=lambda e, rid=rid: e["data"].get("request_id") == rid)
    assert not [e for e in app2.events_named("inference_request")
                if e["data"].get("request_id") == ids[0]], "a cancelled request was sent"
    mark = b.mark()
    assert post(site, user, "/websockets/cancel/" + ids[2]) == (200, {"success": True})
    app2.wait_event("cancel_request", timeout=WAIT,
                    pred=lambda e: e["data"] == {"request_id": ids[2]})
    b.update(ids[2], "cancelled while running", start=mark, state="cancelled")
    # Its result comes anyway: ignored. The other one's is taken.
    app2.send({"op": "result", "request_id": ids[2], "status": "completed",
               "result": {"text_output": "too late"}})
    app2.send({"op": "result", "request_id": ids[1], "status": "completed",
               "result": {"text_output": "fine"}})
    b.update(ids[1], "completed", state="completed")
    assert db_status(pg, ids[2]) == "cancelled"
    row = pg.sql("SELECT result->>'reason' FROM requests WHERE id = :'id'", id=ids[2])
    assert row == [["cancelled"]]
    assert site.status(ids[2], user)[1]["status"] == "failed"


def test_retry_submits_the_same_inputs(env, children, browsers):
    """Retry of a cancelled and of a timed-out request: a new request with
    the same inputs (the uploaded file too, still fetchable by the app);
    an open or completed one is refused."""
    pg, server, site = env
    space_id, name = site.create_space(enable_file_upload=True, timeout_seconds=2)
    user = site.user()
    app = control_app(children, server, name)
    code, body = site.submit(user, space_id, "with a file",
                             files={"other_file": ("notes.txt", b"retry me", "text/plain")})
    assert code == 200, body
    first = body["request_id"]
    _, _, ev = app.wait_event("inference_request", timeout=WAIT,
                              pred=lambda e: e["data"].get("request_id") == first)
    sent = ev["data"]["payload"]
    assert post(site, user, "/websockets/retry/" + first)[0] == 409  # still open
    assert post(site, user, "/websockets/cancel/" + first)[0] == 200
    assert post(site, site.user(), "/websockets/retry/" + first)[0] == 404
    code, body = post(site, user, "/websockets/retry/" + first)
    assert code == 200 and body["success"] is True and body["request_id"] != first, body
    second = body["request_id"]
    _, _, ev = app.wait_event("inference_request", timeout=WAIT,
                              pred=lambda e: e["data"].get("request_id") == second)
    again = ev["data"]["payload"]
    assert {k: v for k, v in again.items() if k != "timestamp"} == \
        {k: v for k, v in sent.items() if k != "timestamp"}
    r = user.session.get(again["file"], timeout=10)
    assert r.status_code == 200 and r.content == b"retry me"
    assert pg.sql("SELECT count(*) FROM uploads WHERE request_id = :'id'", id=second) == [["1"]]
    # It times out (the app never answers); retried again, it runs.
    site.wait_status(second, want=("failed",), timeout=WAIT)
    code, body = post(site, user, "/websockets/retry/" + second)
    assert code == 200, body
    third = body["request_id"]
    app.wait_event("inference_request", timeout=WAIT,
                   pred=lambda e: e["data"].get("request_id") == third)
    app.send({"op": "result", "request_id": third, "status": "completed",
              "result": {"text_output": "ok"}})
    site.wait_status(third, want=("completed",), timeout=WAIT)
    assert post(site, user, "/websockets/retry/" + third)[0] == 409  # completed


def test_space_counts_on_the_spaces_list(env, children, browsers):
    """A browser following a space from the list (not a user of it) gets
    queued and apps counts live: a request queued after its app left."""
    pg, server, site = env
    space_id, name = site.create_space()
    user = site.user()
    watcher = browser(browsers, server, site.user())
    watcher.follow_space(space_id)
    watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                 d.get("apps") == 0 and d.get("queued") == 0, "no app, nothing queued")
    app = control_app(children, server, name)
    watcher.wait("space_state", lambda d: d.get("space_id") == space_id and d.get("apps") == 1,
                 "its app")
    rid = site.submit_ok(user, space_id, "counted")
    app.wait_event("inference_request", timeout=WAIT,
                   pred=lambda e: e["data"].get("request_id") == rid)
    watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                 d.get("processing") == 1, "one held")
    app.send({"op": "exit"})
    watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                 d.get("apps") == 0 and d.get("queued") == 1 and d.get("processing") == 0,
                 "the app gone, its request queued")
    # The watcher is not told about the request itself.
    assert not [e for e in watcher.events if e[0] == "request_update"]


def test_cluster_states_reach_the_browsers_of_every_node(children, browsers):
    """Two nodes on one database: the app on A, the user and a watcher on B.
    Positions, ahead and counts read on A reach B's browsers (through the
    cluster broadcast), and B's status route says what they were told."""
    pg = harness.PgCluster()
    servers = []
    try:
        for node in ("a", "b"):
            servers.append(harness.start_spaces_server(
                pg.url, extra_args=["--node-id", "live-" + node, "--node-timeout", "10",
                                    "--handshake-rate", "0"]))
        a, b = servers
        site = harness.SpacesSite(b.url, pg)
        space_id, name = site.create_space()
        user = site.user()
        app = control_app(children, a, name)
        page = browser(browsers, b, user)
        watcher = browser(browsers, b, site.user())
        watcher.follow_space(space_id)
        watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                     d.get("apps") == 1, "the app of node A, seen on B")
        ids = [site.submit_ok(user, space_id, "across %d" % i) for i in range(2)]
        for rid in ids:
            app.wait_event("inference_request", timeout=WAIT,
                           pred=lambda e, rid=rid: e["data"].get("request_id") == rid)
        page.update(ids[0], "processing at A's app", state="processing")
        page.update(ids[1], "waiting at A's app", state="waiting", ahead=1)
        watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                     d.get("processing") == 2 and d.get("queued") == 0, "two held on A")
        mark = page.mark()
        app.send({"op": "exit"})
        for pos, rid in enumerate(ids, 1):
            _, d = page.update(rid, "back in the queue", start=mark, state="queued",
                               position=pos)
            assert d.get("notice") == NOTICE_REQUEUED, d
        watcher.wait("space_state", lambda d: d.get("space_id") == space_id and
                     d.get("queued") == 2 and d.get("apps") == 0, "two queued, no app")
        code, body = site.status(ids[1], user)
        assert code == 200 and body["state"] == "queued" and body["position"] == 2, body
    finally:
        for s in servers:
            if s.alive():
                s.stop()
        pg.close()
