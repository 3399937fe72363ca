"""Acceptance tests of the Spaces protocol (issue 5, PROTOCOL.md): Python
apps written from the contract (tests/clients/) against the real
spaces-server and a real, throwaway PostgreSQL cluster.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_spaces_protocol.py

    SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug)
    SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server

One cluster and one server for the module; every test makes its own spaces
and users, so tests do not see each other's apps. Every app (and every
browser-side Socket.IO client) runs in its own process under ``timeout``
(python-socketio clients can linger in a polling thread), read line by line
by tests/lib/harness.py. After each test the server must still be alive; at
the end it must exit 0 on SIGTERM with no sanitizer report.

Run as a program with --browser-child, this file is a browser stand-in on
namespace /spaces (see browser_child()).
"""

import base64
import json
import os
import re
import signal
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402

PYTHON = harness.PYTHON
MOCK_APP = harness.MOCK_APP
CONTROL_APP = harness.CONTROL_APP
INTEGRATION = harness.INTEGRATION

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
CHILD_LIMIT = 90  # seconds a child process may live


# ---------------------------------------------------------------------------
# Fixtures


class Env:
    def __init__(self, pg, server, site):
        self.pg = pg
        self.server = server
        self.site = site
        self.children = []

    # -- child processes ----------------------------------------------------

    def _child(self, argv, name):
        c = harness.ChildProcess([PYTHON] + argv, limit=CHILD_LIMIT, name=name)
        self.children.append(c)
        return c

    def control_app(self, space_name, *extra, host=None, name="app"):
        """websocket_integration_client.py --control: JSON events out,
        JSON commands in."""
        argv = [CONTROL_APP, "--control", "--host", host or self.server.url]
        if space_name is not None:
            argv += ["--space", space_name]
        return self._child(argv + list(extra), name)

    def mock_app(self, space_name, *extra, host=None, name="mock_app"):
        argv = [MOCK_APP, "--host", host or self.server.url, "--space", space_name]
        return self._child(argv + list(extra), name)

    def browser(self, cookie=None, name="browser"):
        """A Socket.IO client on /spaces with the site's session cookie."""
        argv = [os.path.abspath(__file__), "--browser-child", self.server.url]
        if cookie:
            argv.append("--cookie=" + cookie)
        c = self._child(argv, name)
        c.wait_event("ready", timeout=10)
        return c

    def close_children(self):
        for c in self.children:
            try:
                c.close()
            except Exception:
                pass
        self.children = []


@pytest.fixture(scope="module")
def env():
    harness.require_spaces_server()
    pg = harness.PgCluster()
    server = None
    try:
        server = harness.start_spaces_server(pg.url)
        e = Env(pg, server, harness.SpacesSite(server.url, pg))
        yield e
        e.close_children()
        print("set-up:", "; ".join(e.site.setup_notes))
        server.stop()  # exit 0, no sanitizer report
    finally:
        if server is not None and server.alive():
            server.kill()
        pg.close()


@pytest.fixture(autouse=True)
def each(env):
    yield
    env.close_children()
    env.server.assert_alive()


# ---------------------------------------------------------------------------
# Helpers


def register_response(app, timeout=10.0):
    return app.wait_event("register_response", timeout=timeout)[2]["data"]


def registered(app, timeout=10.0):
    data = register_response(app, timeout)
    assert data.get("success") is True, "register failed: %r\n%s" % (data, app.output()[-3000:])
    return data


def next_request(app, timeout=5.0, start=0, request_id=None):
    """(index, time, inference_request data)."""
    pred = None
    if request_id:
        pred = lambda ev: isinstance(ev.get("data"), dict) and \
            ev["data"].get("request_id") == request_id  # noqa: E731
    i, t, ev = app.wait_event("inference_request", timeout=timeout, start=start, pred=pred)
    return i, t, ev["data"]


def received_ids(app):
    return [ev["data"]["request_id"] for ev in app.events_named("inference_request")]


def assert_server_disconnects(app, timeout=5.0):
    """The server closes the app's connection (the app itself never does in
    --control mode)."""
    app.wait_event("disconnect", timeout=timeout)


def sync(app, settle=0.3):
    """Waits until the app has carried out every command sent so far (the
    "done" of a ping: an event, not a guess), then gives the server ``settle``
    seconds (scaled by SPACES_TEST_TIMEOUT_MULTIPLIER) to act on what it sent.

    The pause stays because every caller checks that something does NOT
    happen (garbage, a forged or late result, out-of-range progress change
    nothing): no event marks "the server has decided to ignore it", and the
    database write it must not make would be asynchronous."""
    start = len(app.events)
    app.send({"op": "ping"})
    app.wait_event("done", start=start, pred=lambda e: e["data"].get("op") == "ping")
    time.sleep(harness.scaled(settle))


def answer(app, request_id, text="done", status="completed", result=None):
    app.send({"op": "result", "request_id": request_id, "status": status,
              "result": result if result is not None else {"text_output": text}})


def stays(site, request_id, status, seconds=0.8):
    """The request keeps ``status`` for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code, body = site.status(request_id)
        assert code == 200 and body.get("status") == status, \
            "request %s: expected to stay %s, got %d %r" % (request_id, status, code, body)
        time.sleep(0.1)


# ---------------------------------------------------------------------------
# register


def test_register_success(env):
    sid, name = env.site.create_space()
    app = env.control_app(name)
    data = registered(app)
    assert UUID4.match(str(data.get("connection_id"))), data
    assert data.get("space_id") == sid and isinstance(data["space_id"], str), (sid, data)
    assert data.get("message") == 'Successfully connected to space "%s"' % name, data
    rows = env.pg.sql("SELECT space_id::text FROM app_connections WHERE id::text = :'c'",
                      c=data["connection_id"])
    assert rows == [[sid]], "app_connections row for %s: %r" % (data["connection_id"], rows)


def test_register_without_space_name(env):
    app = env.control_app(None, "--no-register")
    app.wait_event("ready")
    for payload in ({}, {"space_name": ""}, {"space_name": None}):
        start = len(app.events)
        app.send({"op": "register", "data": payload})
        _, _, ev = app.wait_event("register_response", start=start)
        data = ev["data"]
        assert data.get("success") is False, (payload, data)
        assert "space_name" in data.get("message", "") and \
            "required" in data["message"].lower(), (payload, data)


def test_register_unknown_space(env):
    name = env.site.unique("NoSuchSpace")
    app = env.control_app(name)
    data = register_response(app)
    assert data.get("success") is False, data
    msg = data.get("message", "")
    assert name in msg and "not found" in msg.lower(), data
    assert_server_disconnects(app)


def test_register_space_that_is_not_websockets(env):
    _, name = env.site.create_space(card_type="standard")
    app = env.control_app(name)
    data = register_response(app)
    assert data.get("success") is False, data
    msg = data.get("message", "")
    assert name in msg and "websocket" in msg.lower(), data
    assert_server_disconnects(app)


def test_second_app_refused_when_max_apps_is_1(env):
    sid, name = env.site.create_space()  # max_apps defaults to 1
    first = env.control_app(name, name="app1")
    registered(first)
    second = env.control_app(name, name="app2")
    data = register_response(second)
    assert data.get("success") is False, data
    assert "already has a connected app" in data.get("message", "").lower(), data
    assert_server_disconnects(second)
    # The first app still serves the space.
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "still yours")
    next_request(first, request_id=rid)
    assert rid not in received_ids(second)


def test_simultaneous_registrations_respect_max_apps(env):
    """Four apps register for a max_apps=1 space at the same moment: exactly
    one gets in."""
    sid, name = env.site.create_space()
    apps = [env.control_app(name, "--no-register", name="racer%d" % i) for i in range(4)]
    for app in apps:
        app.wait_event("ready")
    for app in apps:
        app.send({"op": "register", "data": {"space_name": name}})
    answers = [register_response(app) for app in apps]
    winners = [a for a in answers if a.get("success") is True]
    assert len(winners) == 1, answers
    for app, a in zip(apps, answers):
        if a.get("success") is not True:
            assert "already has a connected app" in a.get("message", "").lower(), a
            assert_server_disconnects(app)


def test_polling_transport(env):
    sid, name = env.site.create_space()
    app = env.control_app(name, "--transports", "polling", "--auto-answer")
    registered(app)
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "over polling")
    next_request(app, request_id=rid)
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and body["result"]["text_output"] == \
        "answer to over polling", body


# ---------------------------------------------------------------------------
# requests and results


def test_mock_app_single_request(env):
    """Seed tests 1 and 2: the mock app registers and prints its ids; a
    prompt reaches it within 1 s; progress 25/50/75; the result is recorded
    with the generated text and the processing time."""
    sid, name = env.site.create_space()
    app = env.mock_app(name, "--delay", "1.2")
    app.wait_line(r"Socket\.IO connection established")
    app.wait_line(r"Registration successful")
    _, _, m = app.wait_line(r"Connection ID: (\S+)")
    assert UUID4.match(m.group(1)), m.group(0)
    _, _, m = app.wait_line(r"Space ID: (\S+)")
    assert m.group(1) == sid
    user = env.site.user()
    mark = len(app.lines)
    t0 = time.monotonic()
    rid = env.site.submit_ok(user, sid, "Generate a haiku")
    assert UUID4.match(rid), rid
    _, t_req, _ = app.wait_line(r"\[REQUEST\] New inference request received", start=mark)
    assert t_req - t0 <= 1.0, "request reached the app after %.3f s" % (t_req - t0)
    app.wait_line(r"Full ID: %s" % rid, start=mark)
    # Delivered and not answered yet: processing (the old server said queued).
    code, body = env.site.status(rid)
    assert code == 200 and body["status"] == "processing", (code, body)
    for pct in (25, 50, 75):
        app.wait_line(r"Progress: %d%%" % pct, start=mark)
    app.wait_line(r"\[RESULT\] Result sent", start=mark, timeout=10)
    body = env.site.wait_status(rid, timeout=30)
    assert body["status"] == "completed", body
    assert body["request_id"] == rid and body.get("created_at") and body.get("updated_at")
    result = body["result"]
    assert result["text_output"] == "[Mock] Generated response for: Generate a haiku", result
    assert isinstance(result["processing_time_seconds"], (int, float)) and \
        result["processing_time_seconds"] >= 1.0, result
    for key in ("confidence", "model_used", "tokens_used", "timestamp"):
        assert key in result, (key, result)


def test_inference_request_fields(env):
    """request_id (uuid4 string), username, payload.prompt, payload.timestamp
    (ISO-8601 UTC), payload.audio with an audio URL."""
    sid, name = env.site.create_space(enable_audio=True)
    app = env.control_app(name)
    registered(app)
    user = env.site.user()
    url = "https://example.com/sound.mp3"
    rid = env.site.submit_ok(user, sid, "With audio", data={"audio_url": url})
    _, _, req = next_request(app, request_id=rid)
    assert isinstance(req["request_id"], str) and UUID4.match(req["request_id"]), req
    assert req.get("username") == user.name, req
    payload = req.get("payload")
    assert isinstance(payload, dict), req
    assert payload.get("prompt") == "With audio", req
    assert isinstance(payload.get("timestamp"), str) and ISO_UTC.match(payload["timestamp"]), req
    assert payload.get("audio") == url, req
    answer(app, rid)
    assert env.site.wait_status(rid)["status"] == "completed"


def test_unicode_and_large_payloads(env):
    """Prompts and results go through unchanged: quotes, markup, non-ASCII,
    a 60 KB prompt (several WebSocket frames' worth) and a 300 KB result."""
    sid, name = env.site.create_space()
    app = env.control_app(name)
    registered(app)
    user = env.site.user()
    tricky = 'Ünïcødé "quotes" \\ back\\slash <b>&amp;</b> 日本語 🎉 tab\there\nnew line'
    big = ("Ｌｏｎｇ prompt with ünïcödé — " * 2000)[:60000]
    result = {"text_output": "ok " + "ẞ" * 150000, "nested": {"list": [1, 2.5, None, True]},
              "echo": tricky}
    for prompt in (tricky, big):
        rid = env.site.submit_ok(user, sid, prompt)
        _, _, req = next_request(app, request_id=rid)
        assert req["payload"]["prompt"] == prompt, (len(req["payload"]["prompt"]), len(prompt))
        answer(app, rid, result=result)
        body = env.site.wait_status(rid)
        assert body["status"] == "completed" and body["result"] == result, \
            (body["status"], str(body["result"])[:200])


def test_integration_script_client_mode(env):
    """tests/clients/test_integration.py --mode client serves a space."""
    sid, name = env.site.create_space()
    app = env._child([INTEGRATION, "--mode", "client", "--host", env.server.url, "--space",
                      name, "--duration", "20"], "integration-client")
    app.wait_line(r"Connected: connection \S+, space %s" % re.escape(sid))
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "served by the integration client")
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and body["result"]["text_output"] == \
        "Integration echo: served by the integration client", body
    app.signal(signal.SIGINT)
    assert app.wait_exit(10) == 0, app.output()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_uploaded_file_reaches_app(env):
    """Seed test 4: a file sent with the request reaches the app, as a URL it
    can fetch or inline (base64)."""
    import requests

    sid, name = env.site.create_space(enable_audio=True, enable_video=True,
                                      enable_file_upload=True)
    app = env.control_app(name)
    registered(app)
    user = env.site.user()
    content = b"ID3\x03\x00fake-mp3-bytes-" + os.urandom(64)
    rid = env.site.submit_ok(user, sid, "Transcribe this",
                             files={"other_file": ("test_audio.mp3", content, "audio/mpeg")})
    _, _, req = next_request(app, request_id=rid)
    found = []
    for s in _strings(req):
        if s.startswith(("http://", "https://", "/")):
            url = s if s.startswith("http") else env.server.url + s
            if url.startswith(env.server.url):
                r = requests.get(url, timeout=10)
                found.append((url, r.status_code, r.content == content))
        elif len(s) >= 40:
            try:
                found.append(("inline", 200, base64.b64decode(s, validate=True) == content))
            except ValueError:
                pass
    assert any(ok for _, _, ok in found), \
        "the file's bytes are not reachable from the inference_request %r (tried %r)" % (
            req, found)
    answer(app, rid)
    assert env.site.wait_status(rid)["status"] == "completed"


def _served(env, connection_id):
    rows = env.pg.sql("SELECT requests_served FROM app_connections WHERE id::text = :'c'",
                      c=connection_id)
    return int(rows[0][0])


def test_result_forms(env):
    """status completed / failed, and the older success: true / false form;
    app_connections.requests_served counts every recorded result."""
    sid, name = env.site.create_space()
    app = env.control_app(name)
    conn_id = registered(app)["connection_id"]
    user = env.site.user()
    cases = [
        ({"status": "completed", "result": {"text_output": "new form"}},
         "completed", {"text_output": "new form"}),
        ({"status": "failed", "result": {"error": "model crashed"}},
         "failed", {"error": "model crashed"}),
        ({"success": True, "result": {"text_output": "old form"}},
         "completed", {"text_output": "old form"}),
        ({"success": False, "result": {"error": "old failure"}},
         "failed", {"error": "old failure"}),
    ]
    for message, want_status, want_result in cases:
        rid = env.site.submit_ok(user, sid, "form %r" % (message,))
        next_request(app, request_id=rid)
        app.send({"op": "emit", "event": "inference_result",
                  "data": dict(message, request_id=rid)})
        body = env.site.wait_status(rid)
        assert body["status"] == want_status and body["result"] == want_result, (message, body)
    # Counted in memory and written at most a second later (the sweep).
    deadline = time.monotonic() + 5
    while _served(env, conn_id) != len(cases):
        assert time.monotonic() < deadline, _served(env, conn_id)
        time.sleep(0.1)
    # A result recorded, then the app leaves at once: the count is written
    # with its disconnection.
    rid = env.site.submit_ok(user, sid, "last one")
    next_request(app, request_id=rid)
    answer(app, rid)
    env.site.wait_status(rid)
    app.close()
    deadline = time.monotonic() + 5
    while _served(env, conn_id) != len(cases) + 1:
        assert time.monotonic() < deadline, _served(env, conn_id)
        time.sleep(0.1)


def test_mock_app_failures_and_legacy_results(env):
    sid, name = env.site.create_space()
    user = env.site.user()
    app = env.mock_app(name, "--delay", "0.1", "--fail-rate", "1")
    app.wait_line(r"Registration successful")
    rid = env.site.submit_ok(user, sid, "doomed")
    body = env.site.wait_status(rid)
    assert body["status"] == "failed" and body["result"] == {
        "error": "Simulated inference failure"}, body
    app.close()
    legacy = env.mock_app(name, "--delay", "0.1", "--legacy-result", name="legacy")
    legacy.wait_line(r"Registration successful", timeout=15)
    rid = env.site.submit_ok(user, sid, "old client")
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and \
        body["result"]["text_output"] == "[Mock] Generated response for: old client", body


def test_results_for_unknown_or_finished_requests_are_ignored(env):
    sid, name = env.site.create_space()
    app = env.control_app(name)
    registered(app)
    bogus = [
        {"request_id": str(uuid.uuid4()), "status": "completed", "result": {}},
        {"request_id": "not-a-uuid", "status": "completed", "result": {}},
        {"request_id": "x" * 5000, "status": "failed", "result": {"error": "long"}},
        {"request_id": 12345, "status": "completed"},
        {"status": "completed", "result": {"text_output": "no id"}},
        {"request_id": None, "success": True},
        "just a string",
        None,
    ]
    for data in bogus:
        app.send({"op": "emit", "event": "inference_result", "data": data})
        app.send({"op": "emit", "event": "inference_progress", "data": data})
    sync(app)
    env.server.assert_alive()
    # The app and the server carry on.
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "after garbage")
    next_request(app, request_id=rid)
    answer(app, rid, "first answer")
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and body["result"] == {"text_output": "first answer"}
    # Out-of-range or malformed progress for a held request is clamped or
    # ignored, never stored out of 0..100.
    rid2 = env.site.submit_ok(user, sid, "odd progress")
    next_request(app, request_id=rid2)
    for value in (150, -5, "50", None, 1e308, [1]):
        app.send({"op": "emit", "event": "inference_progress",
                  "data": {"request_id": rid2, "progress": value}})
        sync(app, 0.1)
        code, body = env.site.status(rid2)
        assert code == 200 and body["status"] == "processing", body
        assert 0 <= int(env.site.request_row(rid2)["progress"]) <= 100, (value, body)
    answer(app, rid2, "fine")
    assert env.site.wait_status(rid2)["status"] == "completed"
    # A second result for a finished request changes nothing.
    answer(app, rid, status="failed", result={"error": "late"})
    sync(app)
    code, body = env.site.status(rid)
    assert body["status"] == "completed" and body["result"] == {"text_output": "first answer"}


def test_result_from_another_connection_is_ignored(env):
    sid, name = env.site.create_space(max_apps=2)
    a = env.control_app(name, name="appA")
    b = env.control_app(name, name="appB")
    registered(a)
    registered(b)
    other_sid, other_name = env.site.create_space()
    c = env.control_app(other_name, name="appC")  # registered for another space
    registered(c)
    d = env.control_app(None, "--no-register", name="appD")  # never registered
    d.wait_event("ready")
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "whose is it")
    deadline = time.monotonic() + 3
    holder = other = None
    while holder is None and time.monotonic() < deadline:
        for x, y in ((a, b), (b, a)):
            if rid in received_ids(x):
                holder, other = x, y
        time.sleep(0.02)
    assert holder is not None, "request %s reached neither app" % rid
    assert rid not in received_ids(other)
    for intruder in (other, c, d):
        answer(intruder, rid, "forged by %s" % intruder.name)
        intruder.send({"op": "progress", "request_id": rid, "progress": 99,
                       "message": "forged"})
        sync(intruder, 0)
    stays(env.site, rid, "processing", 0.8)
    assert env.site.request_row(rid)["progress"] != "99"
    answer(holder, rid, "genuine")
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and body["result"] == {"text_output": "genuine"}, body


def test_three_concurrent_requests_from_three_users(env):
    """Seed test 3: three tabs submit at once; the app's queue grows 1, 2, 3;
    every result goes back to the user who asked."""
    sid, name = env.site.create_space()
    app = env.mock_app(name, "--delay", "0.8")
    app.wait_line(r"Registration successful")
    users = [env.site.user() for _ in range(3)]
    barrier = threading.Barrier(3)
    ids = [None] * 3
    errors = []

    def submit(i):
        try:
            barrier.wait(5)
            ids[i] = env.site.submit_ok(users[i], sid, "Request %d" % (i + 1))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    i = 0
    for n in (1, 2, 3):
        i, _, _ = app.wait_line(r"Queue size: %d$" % n, start=i)
    for i, rid in enumerate(ids):
        body = env.site.wait_status(rid, timeout=30, user=users[i])
        assert body["status"] == "completed", body
        assert body["result"]["text_output"] == \
            "[Mock] Generated response for: Request %d" % (i + 1), (users[i].name, body)
    rows = env.pg.sql("SELECT id::text, username FROM requests WHERE space_id::text = :'s'",
                      s=sid)
    assert sorted(rows) == sorted([rid, users[i].name] for i, rid in enumerate(ids)), rows
    out = app.output()
    for u in users:
        assert "User: %s" % u.name in out


def test_progress_stored_and_forwarded_to_the_right_browser(env):
    sid, name = env.site.create_space()
    app = env.control_app(name)
    registered(app)
    owner, stranger = env.site.user(), env.site.user()
    mine = env.browser(owner.cookie, name="owner-browser")
    theirs = env.browser(stranger.cookie, name="stranger-browser")
    rid = env.site.submit_ok(owner, sid, "show me progress")
    next_request(app, request_id=rid)
    app.send({"op": "progress", "request_id": rid, "progress": 40, "message": "thinking"})
    _, _, ev = mine.wait_event(
        "request_update", timeout=3,
        pred=lambda e: e["data"][0].get("request_id") == rid and
        e["data"][0].get("progress") == 40)
    update = ev["data"][0]
    assert update.get("status") == "processing" and update.get("message") == "thinking", update
    code, body = env.site.status(rid)
    assert code == 200 and body["status"] == "processing", body
    assert body.get("progress") == 40, "status route does not show the progress: %r" % body
    assert env.site.request_row(rid)["progress"] == "40"
    answer(app, rid, "finished")
    _, _, ev = mine.wait_event(
        "request_update", timeout=3,
        pred=lambda e: e["data"][0].get("request_id") == rid and
        e["data"][0].get("status") == "completed")
    assert ev["data"][0].get("result") == {"text_output": "finished"}, ev
    time.sleep(0.3)
    leaked = [e for e in theirs.events_named("request_update")
              if e["data"][0].get("request_id") == rid]
    assert not leaked, "another user's browser got %r" % leaked
    # Following someone else's request is not allowed either.
    theirs.send({"op": "emit", "event": "follow_request", "data": rid})
    theirs.wait_event("done")
    app2_rid = env.site.submit_ok(owner, sid, "second")
    next_request(app, request_id=app2_rid)
    app.send({"op": "progress", "request_id": app2_rid, "progress": 10})
    mine.wait_event("request_update", timeout=3,
                    pred=lambda e: e["data"][0].get("request_id") == app2_rid)
    time.sleep(0.3)
    assert not [e for e in theirs.events_named("request_update")
                if e["data"][0].get("request_id") in (rid, app2_rid)]


def test_timeout(env):
    """Seed test 7, with the space's timeout at 2 s: the request ends failed
    with a timeout error; a late result is ignored; the user can submit
    another request."""
    sid, name = env.site.create_space(timeout_seconds=2)
    app = env.control_app(name)
    registered(app)
    user = env.site.user()
    t0 = time.monotonic()
    rid = env.site.submit_ok(user, sid, "never answered")
    next_request(app, request_id=rid)
    body = env.site.wait_status(rid, want=("completed", "failed"), timeout=10)
    elapsed = time.monotonic() - t0
    assert body["status"] == "failed", body
    assert "timed out" in str(body["result"].get("error", "")).lower(), body
    assert 1.5 <= elapsed <= 6.0, "timed out after %.2f s (timeout 2 s)" % elapsed
    answer(app, rid, "too late")
    sync(app)
    assert env.site.status(rid)[1]["status"] == "failed"
    rid2 = env.site.submit_ok(user, sid, "try again")
    next_request(app, request_id=rid2)
    answer(app, rid2, "on time")
    body = env.site.wait_status(rid2)
    assert body["status"] == "completed" and body["result"] == {"text_output": "on time"}


# ---------------------------------------------------------------------------
# app tokens, max apps


def test_app_token(env):
    token = "s3cr3t-" + uuid.uuid4().hex
    sid, name = env.site.create_space(token=token, max_apps=3)
    base = env.server.url
    refused = [
        ("no token", env.control_app(name, name="no-token")),
        ("wrong ?token=", env.control_app(name, host=base + "/?token=wrong", name="bad-url")),
        ("wrong auth", env.control_app(name, "--token", "wrong", name="bad-auth")),
    ]
    for what, app in refused:
        data = register_response(app)
        assert data.get("success") is False, (what, data)
        assert "token" in data.get("message", "").lower(), (what, data)
        assert_server_disconnects(app)
    by_url = env.control_app(name, host=base + "/?token=" + token, name="url-token")
    by_auth = env.control_app(name, "--token", token, name="auth-token")
    for app in (by_url, by_auth):
        assert registered(app)["space_id"] == sid
    by_url.send({"op": "disconnect"})
    by_url.wait_event("disconnect")
    mock = env.mock_app(name, "--delay", "0.2", host=base + "/?token=" + token)
    mock.wait_line(r"Registration successful")
    # A space without a token takes any app, token or not.
    _, open_name = env.site.create_space()
    registered(env.control_app(open_name, "--token", "whatever", name="open"))


# Runs the program argv[2:] with python-socketio's thread that runs the
# "connect" handler held argv[1] seconds after the handler has returned,
# that is before Client.connect() may set ``connected`` and return: the
# window a loaded machine opens now and then (the scheduler), made wide.
HELD_CONNECT = """
import os, runpy, sys, time
import socketio
hold = float(sys.argv[1])
trigger = socketio.Client._trigger_event
def held(self, event, namespace, *args):
    result = trigger(self, event, namespace, *args)
    if event == "connect":
        os.write(2, b"[test] connect handler thread held\\n")
        time.sleep(hold)
    return result
socketio.Client._trigger_event = held
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_refusal_disconnect_reaches_app_whose_connect_is_slow_to_return(env):
    """The namespace DISCONNECT that follows a refusal reaches the app even
    when the refusal comes before the app's Client.connect() has returned.
    python-socketio 5.7 (Debian's) runs the "connect" handler before
    connect() sets ``connected`` and silently drops a DISCONNECT that comes
    while it is false: an app that registered from its "connect" handler
    could get the refusal but never the disconnect (test_app_token failed
    so once in a full run; 9 refusals in 1440 with four apps at a time).
    websocket_integration_client.py registers once connect() has returned."""
    token = "s3cr3t-" + uuid.uuid4().hex
    _, name = env.site.create_space(token=token, max_apps=3)
    hold = "%.2f" % harness.scaled(1.0)

    def held_app(*extra, app_name):
        argv = ["-c", HELD_CONNECT, hold, CONTROL_APP, "--control", "--host",
                env.server.url, "--space", name] + list(extra)
        return env._child(argv, app_name)

    refused = held_app("--token", "wrong", app_name="held-refused")
    refused.wait_line(r"connect handler thread held")
    data = register_response(refused)
    assert data.get("success") is False and "token" in data.get("message", "").lower(), data
    assert_server_disconnects(refused)
    accepted = held_app("--token", token, app_name="held-accepted")
    accepted.wait_line(r"connect handler thread held")
    registered(accepted)


def test_max_apps_two_least_busy(env):
    sid, name = env.site.create_space(max_apps=2)
    a = env.control_app(name, name="appA")
    b = env.control_app(name, name="appB")
    registered(a)
    registered(b)
    third = env.control_app(name, name="appC")
    data = register_response(third)
    assert data.get("success") is False and \
        "already has a connected app" in data.get("message", "").lower(), data
    assert_server_disconnects(third)
    user = env.site.user()
    first = []
    for i in range(4):
        rid = env.site.submit_ok(user, sid, "spread %d" % i)
        first.append(rid)
        deadline = time.monotonic() + 3
        while rid not in received_ids(a) + received_ids(b) and time.monotonic() < deadline:
            time.sleep(0.02)
    got_a = [r for r in first if r in received_ids(a)]
    got_b = [r for r in first if r in received_ids(b)]
    assert len(got_a) == 2 and len(got_b) == 2, "least busy: A got %d, B got %d" % (
        len(got_a), len(got_b))
    for rid in got_a:
        answer(a, rid)
    for rid in got_a:
        env.site.wait_status(rid)
    time.sleep(0.2)
    # A is idle, B still holds two: the next two go to A.
    more = [env.site.submit_ok(user, sid, "to the idle one %d" % i) for i in range(2)]
    for rid in more:
        next_request(a, request_id=rid)
    assert not set(more) & set(received_ids(b))
    for rid in got_b:
        answer(b, rid)
    for rid in more:
        answer(a, rid)
    for rid in first + more:
        assert env.site.wait_status(rid)["status"] == "completed"


# ---------------------------------------------------------------------------
# app disconnects, redelivery


def test_app_disconnect_requeues_and_redelivers(env):
    """Seed test 5: the app leaves with two unanswered requests: they go back
    to queued, the space shows not connected (live), submit answers 503; the
    next app that registers gets both and answers them."""
    sid, name = env.site.create_space()
    watcher = env.browser(name="watcher")
    watcher.send({"op": "emit", "event": "follow_space", "data": sid})
    first = env.control_app(name, name="first")
    registered(first)
    watcher.wait_event("space_state", timeout=3,
                       pred=lambda e: e["data"][0].get("connected") is True)
    user = env.site.user()
    ids = [env.site.submit_ok(user, sid, "held %d" % i) for i in range(2)]
    for rid in ids:
        next_request(first, request_id=rid)
        assert env.site.status(rid)[1]["status"] == "processing"
    mark = len(watcher.events)
    first.send({"op": "disconnect"})
    for rid in ids:
        env.site.wait_status(rid, want=("queued",), timeout=3)
    watcher.wait_event("space_state", timeout=3, start=mark,
                       pred=lambda e: e["data"][0].get("connected") is False)
    code, body = env.site.submit(user, sid, "nobody home")
    assert code == 503 and body.get("success") is False and \
        "not connected" in body.get("error", "").lower(), (code, body)
    mark = len(watcher.events)
    second = env.control_app(name, "--auto-answer", name="second")
    registered(second)
    watcher.wait_event("space_state", timeout=3, start=mark,
                       pred=lambda e: e["data"][0].get("connected") is True)
    for rid in ids:
        next_request(second, request_id=rid, timeout=3)
    for rid in ids:
        body = env.site.wait_status(rid)
        assert body["status"] == "completed" and body["result"]["text_output"].startswith(
            "answer to held"), body
        assert env.site.request_row(rid)["attempts"] == "2"


def test_killed_mock_app_requeues_and_redelivers(env):
    """The app process dies (SIGKILL, no goodbye): its request is queued
    again and served by the next mock app."""
    sid, name = env.site.create_space()
    doomed = env.mock_app(name, "--no-answer", name="doomed")
    doomed.wait_line(r"Registration successful")
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "survive the crash")
    doomed.wait_line(r"Full ID: %s" % rid)
    doomed.signal(signal.SIGKILL)
    env.site.wait_status(rid, want=("queued",), timeout=5)
    code, body = env.site.submit(user, sid, "nobody home")
    assert code == 503, (code, body)
    fresh = env.mock_app(name, "--delay", "0.2", name="fresh")
    fresh.wait_line(r"Registration successful")
    fresh.wait_line(r"Full ID: %s" % rid, timeout=3)
    body = env.site.wait_status(rid)
    assert body["status"] == "completed" and \
        body["result"]["text_output"] == "[Mock] Generated response for: survive the crash"


def test_mock_app_ctrl_c_exits_cleanly(env):
    sid, name = env.site.create_space()
    app = env.mock_app(name, "--delay", "0.1")
    app.wait_line(r"Registration successful")
    app.signal(signal.SIGINT)
    assert app.wait_exit(10) == 0, app.output()
    user = env.site.user()
    deadline = time.monotonic() + 3
    while True:
        code, body = env.site.submit(user, sid, "after ctrl-c")
        if code == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert code == 503, (code, body)


def test_mock_app_register_failure_exits_nonzero(env):
    app = env.mock_app(env.site.unique("Missing"))
    app.wait_line(r"Registration failed: .*not found")
    assert app.wait_exit(10) != 0


# ---------------------------------------------------------------------------
# HTTP answers the apps' users rely on


def test_submit_errors(env):
    """Seed test 6 and the order of checks: 401, 404, 503, 400, 429."""
    sid, name = env.site.create_space(enable_audio=True, rate_limit_seconds=30)
    user = env.site.user()
    import requests

    code, body = env.site.submit(None, sid, "anonymous", session=requests.Session())
    assert code == 401 and body.get("success") is False, (code, body)
    code, body = env.site.submit(user, "999999999", "nowhere")
    assert code == 404 and body.get("success") is False, (code, body)
    # No app: 503 even though the prompt is empty and audio is enabled.
    code, body = env.site.submit(user, sid, "")
    assert code == 503 and body.get("success") is False and \
        "not connected" in body.get("error", "").lower(), (code, body)
    app = env.control_app(name, "--auto-answer")
    registered(app)
    code, body = env.site.submit(user, sid, "")
    assert code == 400 and body.get("success") is False and body.get("error"), (code, body)
    rid = env.site.submit_ok(user, sid, "first")
    code, body = env.site.submit(user, sid, "too soon")
    assert code == 429 and body.get("success") is False, (code, body)
    assert isinstance(body.get("retry_after"), (int, float)) and \
        0 < body["retry_after"] <= 30, body
    assert env.site.wait_status(rid)["status"] == "completed"


def test_status_route_errors(env):
    import requests

    r = requests.get(env.server.url + "/websockets/status", timeout=10)
    assert r.status_code == 400 and r.json() == {"error": "Missing request_id"}, r.text
    code, body = env.site.status(str(uuid.uuid4()))
    assert code == 404 and body == {"error": "Request not found"}, (code, body)
    code, body = env.site.status("'; DROP TABLE requests; --")
    assert code == 404, (code, body)


def test_integration_script_e2e(env):
    """tests/clients/test_integration.py --mode e2e against the server."""
    sid, name = env.site.create_space()
    user = env.site.user()
    argv = [INTEGRATION, "--mode", "e2e", "--host", env.server.url, "--space", name,
            "--username", user.name, "--password", user.password]
    if not env.site.accounts_over_http():
        argv.append("--session-cookie=" + user.cookie)
    child = env._child(argv, "test_integration")
    code = child.wait_exit(60)
    out = child.output()
    assert code == 0 and re.search(r"Total: (\d+)/\1 tests passed", out), out


# ---------------------------------------------------------------------------
# --browser-child: a browser stand-in on namespace /spaces


def browser_child(url, cookie):
    """Connects to /spaces (polling, then upgrade, as socket.io.js does) with
    the session cookie; prints every event as a JSON line; obeys
    {"op": "emit", "event", "data"} and {"op": "exit"} on stdin."""
    import socketio

    lock = threading.Lock()

    def out(event, data):
        line = json.dumps({"event": event, "data": data, "t": time.time()}) + "\n"
        with lock:
            b = line.encode("utf-8", "replace")
            while b:
                b = b[os.write(1, b):]

    sio = socketio.Client(reconnection=False)
    sio.on("*", lambda event, *args: out(event, list(args)), namespace="/spaces")
    sio.on("connect", lambda: out("connect", None), namespace="/spaces")
    sio.on("disconnect", lambda: out("disconnect", None), namespace="/spaces")
    headers = {"Cookie": "spaces_session=%s" % cookie} if cookie else {}
    try:
        sio.connect(url, headers=headers, namespaces=["/spaces"], wait_timeout=5)
    except Exception as e:
        out("connect_failed", repr(e))
        os._exit(3)
    out("ready", sio.sid)
    for line in sys.stdin:
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        if cmd.get("op") == "exit":
            break
        if cmd.get("op") == "emit":
            sio.emit(cmd["event"], cmd.get("data"), namespace="/spaces")
            out("done", cmd["event"])
    try:
        sio.disconnect()
    finally:
        os._exit(0)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--browser-child", metavar="URL", required=True)
    p.add_argument("--cookie", default=None)
    a = p.parse_args()
    browser_child(a.browser_child, a.cookie)
