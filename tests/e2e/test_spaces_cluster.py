"""Cluster mode of spaces-server: several nodes (``--node-id NAME``) on one
PostgreSQL database. Apps, browsers and users may each be on any node:

  - a request submitted on one node reaches the space's app on another at
    once (NOTIFY, not the next sweep), and its result reaches the user's
    browsers on every node (request_update over spaces/cluster.c);
  - app presence is cluster-wide: the space page, /websockets/submit,
    max_apps and space_state count the apps of every node;
  - a node that stops heartbeating (table nodes) for --node-timeout seconds
    is dead: another node requeues what its apps held, and the requests go
    to the apps left;
  - a node restarting with the same id only recovers what its own previous
    run left; the other nodes' apps and requests are untouched.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_spaces_cluster.py

Same environment variables as test_spaces_protocol.py (SPACES_BUILD_DIR,
SPACES_SERVER). One PostgreSQL cluster for the module; every test starts its
own two nodes (fresh ports, fresh node ids) and makes its own spaces and
users. Apps are tests/clients/websocket_integration_client.py --control
processes; browsers are test_spaces_protocol.py --browser-child processes
(a python-socketio client on /spaces with the session cookie).

The nodes of earlier tests stay in table nodes (a node stopped cleanly
keeps its row), so a test's nodes may take them for dead: a test only ever
looks at what its nodes say about its own node ids.

Robust on a loaded machine: nothing waits a fixed time for something to
have happened; waits are for the event (a heartbeat row, a log line, a
client event) with generous timeouts (WAIT).
"""

import os
import re
import secrets
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

PYTHON = harness.PYTHON
CONTROL_APP = os.path.join(SOURCE, "tests", "clients", "websocket_integration_client.py")
BROWSER = os.path.join(HERE, "test_spaces_protocol.py")  # --browser-child
NODE_TIMEOUT = 3  # --node-timeout of the nodes (seconds), unless a test says otherwise
WAIT = 30.0  # bound on waiting for an event that comes within a second or two when idle
PRESENCE = WAIT  # presence is cluster-wide within ~1 s; the bound, loose for CI
CHILD_LIMIT = 180


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def pg():
    argv = harness.spaces_server_command()
    if "/" in argv[0] and not os.path.exists(argv[0]):
        pytest.fail("%s does not exist: build it (make build)" % argv[0])
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=10)
    if "--node-id" not in out.stdout + out.stderr:
        pytest.fail("%s --help does not list --node-id: no cluster mode in this build"
                    % argv[0])
    cluster = harness.PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


class Node:
    """One spaces-server of the cluster, with a SpacesSite pointed at it."""

    def __init__(self, label, node_id, server, pg, node_timeout=NODE_TIMEOUT):
        self.label = label
        self.node_id = node_id
        self.node_timeout = node_timeout
        self.server = server
        self.url = server.url
        self.port = server.port
        self.site = harness.SpacesSite(server.url, pg)

    def stderr(self):
        try:
            return self.server.stderr()
        except (OSError, ValueError):
            return "(stderr gone)"


class Cluster:
    def __init__(self, pg):
        self.pg = pg
        self.tag = secrets.token_hex(3)
        self.nodes = []
        self.children = []

    # -- nodes ---------------------------------------------------------------

    def _start(self, node_id, port=None, node_timeout=NODE_TIMEOUT):
        return harness.start_spaces_server(
            self.pg.url, port=port,
            extra_args=["--node-id", node_id, "--node-timeout", str(node_timeout)])

    def node(self, label, node_timeout=NODE_TIMEOUT):
        node_id = "%s-%s" % (label, self.tag)
        n = Node(label, node_id, self._start(node_id, node_timeout=node_timeout), self.pg,
                 node_timeout)
        self.nodes.append(n)
        return n

    def restart(self, node, how):
        """Stops node (``how``: "sigterm", checking a clean exit, or
        "sigkill") and starts it again with the same --node-id on the same
        port."""
        if how == "sigterm":
            node.server.stop()
        else:
            harness.sigkill_server(node.server)
        node.server = self._start(node.node_id, port=node.port,
                                  node_timeout=node.node_timeout)

    def stop_all(self):
        """SIGTERM every node still running: exit 0, no sanitizer report."""
        for n in self.nodes:
            if n.server.alive():
                n.server.stop()

    def context(self):
        """Server stderr tails, for assertion messages."""
        parts = []
        for n in self.nodes:
            parts.append("--- node %s (%s) stderr ---\n%s"
                         % (n.label, n.node_id, n.stderr()[-3000:]))
        return "\n".join(parts)

    # -- children ------------------------------------------------------------

    def _child(self, argv, name):
        c = harness.ChildProcess([PYTHON] + argv, limit=CHILD_LIMIT, name=name)
        self.children.append(c)
        return c

    def app(self, node, space_name, *extra, name="app"):
        """An app (--control: JSON events out, JSON commands in) on node."""
        return self._child([CONTROL_APP, "--control", "--host", node.url,
                            "--space", space_name] + list(extra), name)

    def browser(self, node, cookie=None, name="browser"):
        """A browser stand-in on node's /spaces namespace."""
        argv = [BROWSER, "--browser-child", node.url]
        if cookie:
            argv.append("--cookie=" + cookie)
        c = self._child(argv, name)
        c.wait_event("ready", timeout=WAIT)
        return c

    def cleanup(self):
        for c in self.children:
            try:
                c.close()
            except Exception:
                pass
        for n in self.nodes:
            if n.server.alive():
                n.server.kill()


@pytest.fixture
def cluster(pg):
    c = Cluster(pg)
    try:
        yield c
    finally:
        c.cleanup()


# ---------------------------------------------------------------------------
# Helpers


wait_until = harness.wait_until


def registered(app, timeout=WAIT, start=0):
    _, _, ev = app.wait_event("register_response", timeout=timeout, start=start)
    data = ev["data"]
    assert data.get("success") is True, "register failed: %r\n%s" % (data, app.output()[-3000:])
    return data


def got_request(app, rid, timeout=WAIT, start=0):
    """(index, arrival time) of the inference_request for rid."""
    i, t, _ = app.wait_event("inference_request", timeout=timeout, start=start,
                             pred=lambda e: isinstance(e.get("data"), dict) and
                             e["data"].get("request_id") == rid)
    return i, t


def received(app, rid):
    return [ev for ev in app.events_named("inference_request")
            if isinstance(ev.get("data"), dict) and ev["data"].get("request_id") == rid]


def answer(app, rid, text):
    app.send({"op": "result", "request_id": rid, "status": "completed",
              "result": {"text_output": text}})


def page_connected(node, space_id):
    """True/False: what the space page on node says about the space's app."""
    r = requests.get(node.url + "/ai_project/" + space_id, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    if "Not connected" in r.text:
        return False
    assert "Connected" in r.text, r.text[:500]
    return True


def wait_page(node, space_id, connected, cluster, timeout=PRESENCE):
    wait_until("the space page on node %s says %s" % (
        node.label, "Connected" if connected else "Not connected"),
        lambda: page_connected(node, space_id) is connected, timeout, context=cluster.context)


def space_state(browser, connected, apps=None, start=0, timeout=PRESENCE, space_id=None):
    def pred(e):
        d = e["data"][0] if e.get("data") else {}
        return (d.get("connected") is connected and (apps is None or d.get("apps") == apps)
                and (space_id is None or d.get("space_id") == space_id))

    return browser.wait_event("space_state", timeout=timeout, start=start, pred=pred)


def request_row(pg, rid):
    rows = pg.sql("SELECT status, attempts, coalesce(connection_id, ''), "
                  "coalesce(result::text, '') FROM requests WHERE id = :'id'", id=rid)
    assert rows, "request %s is not in the database" % rid
    return dict(zip(("status", "attempts", "connection_id", "result"), rows[0]))


def connection_row(pg, conn_id):
    rows = pg.sql("SELECT node_id, disconnected_at IS NULL FROM app_connections "
                  "WHERE id = :'id'", id=conn_id)
    assert rows, "app connection %s is not in the database" % conn_id
    return {"node_id": rows[0][0], "live": rows[0][1] == "t"}


def db_now(pg):
    """The database's clock (text, for comparing with table nodes)."""
    return pg.sql("SELECT now()")[0][0]


def wait_judged(cluster, nodes, since, check=None):
    """Waits until each of nodes has judged the others at least once since
    ``since`` (a db_now()), and its log is written: a heartbeat that ran
    with a whole node timeout of beats without a gap behind it (table nodes:
    seen_at - up_since > node timeout; that statement deletes the others it
    finds silent), then one more heartbeat (a node sends the next only after
    handling the previous, log included). ``check()`` runs at every poll.
    Returns {node_id: up_since} (the start of the beats without a gap)."""
    pg = cluster.pg
    judged = {}

    def poll():
        if check:
            check()
        for n in nodes:
            after = judged[n.node_id][0] if n.node_id in judged else since
            rows = pg.sql(
                "SELECT seen_at, up_since, seen_at - up_since > make_interval(secs => :t) "
                "FROM nodes WHERE id = :'id' AND seen_at > :'after'::timestamptz",
                id=n.node_id, after=after, t=n.node_timeout)
            if not rows:
                continue
            seen_at, up_since, judging = rows[0]
            if n.node_id not in judged:
                if judging == "t":
                    judged[n.node_id] = (seen_at, up_since)
            elif len(judged[n.node_id]) == 2:
                judged[n.node_id] += ("and beat again",)
        return all(len(judged.get(n.node_id, ())) == 3 for n in nodes)

    wait_until("nodes %s each judge the others once (a node timeout of heartbeats "
               "without a gap) and beat once more" % ", ".join(n.label for n in nodes),
               poll, timeout=max(n.node_timeout for n in nodes) + 2 * WAIT,
               interval=0.2, context=cluster.context)
    return {k: v[1] for k, v in judged.items()}


def taken_for_dead(cluster, node_ids):
    """Log lines of the cluster's nodes saying that one of node_ids was
    taken for dead, by another node ("node(s) ID,... not seen for") or as
    the node itself found out ("node ID was taken for dead")."""
    found = []
    for n in cluster.nodes:
        for line in n.stderr().splitlines():
            m = re.search(r"node\(s\) (\S+) not seen for", line)
            if m and set(m.group(1).split(",")) & set(node_ids):
                found.append("%s: %s" % (n.label, line))
            m = re.search(r"node (\S+) was taken for dead", line)
            if m and m.group(1) in node_ids:
                found.append("%s: %s" % (n.label, line))
    return found


# ---------------------------------------------------------------------------
# Tests


def test_request_submitted_on_b_is_served_by_app_on_a(cluster):
    """The app is on A; the user and their browser are on B. B sees the app,
    accepts the request and A sends it to its app at once; the result is
    read back on B, and B's browser gets request_update completed."""
    pg = cluster.pg
    a, b = cluster.node("a"), cluster.node("b")
    # Both nodes heartbeat in table nodes.
    wait_until("both nodes heartbeat in table nodes", lambda: len(pg.sql(
        "SELECT id FROM nodes WHERE id IN (:'a', :'b') AND seen_at > now() - interval '3 s'",
        a=a.node_id, b=b.node_id)) == 2, WAIT, context=cluster.context)

    sid, name = a.site.create_space()
    app = cluster.app(a, name, name="app@A")
    conn = registered(app)["connection_id"]
    assert connection_row(pg, conn) == {"node_id": a.node_id, "live": True}
    wait_page(b, sid, True, cluster)
    # The admin page of either node names the process that holds the app.
    html = b.site.admin().session.get(b.url + "/admin", timeout=10).text
    assert conn in html and "on " + a.node_id in html, html[-3000:]

    user = b.site.user()
    browser = cluster.browser(b, user.cookie, name="browser@B")
    latencies = []
    for i in range(3):
        t0 = time.monotonic()
        code, body = b.site.submit(user, sid, "cross-node %d" % i)
        assert code == 200 and body.get("success") is True, (
            "submit on B for a space whose app is on A: %d %r\n%s"
            % (code, body, cluster.context()))
        rid = body["request_id"]
        browser.send({"op": "emit", "event": "follow_request", "data": rid})
        # Over NOTIFY, at once (printed below). Not asserted as a time: the
        # sweep (every second) would also bring it within a second or two,
        # so no bound a loaded machine keeps could tell the two apart.
        _, t_got = got_request(app, rid)
        latencies.append(t_got - t0)
        row = request_row(pg, rid)
        assert row["connection_id"] == conn, row
        browser.wait_event("done", pred=lambda e: e["data"] == "follow_request")
        mark = len(browser.events)
        answer(app, rid, "answer %d from A" % i)
        body = b.site.wait_status(rid, timeout=WAIT, user=user)
        assert body["status"] == "completed" and \
            body["result"] == {"text_output": "answer %d from A" % i}, body
        _, _, ev = browser.wait_event(
            "request_update", timeout=WAIT, start=mark,
            pred=lambda e, r=rid: e["data"][0].get("request_id") == r and
            e["data"][0].get("status") == "completed")
        assert ev["data"][0].get("result") == {"text_output": "answer %d from A" % i}, ev
    print("submit on B -> inference_request on A: %s" % ", ".join(
        "%.3f s" % x for x in latencies))
    # Nothing was sent twice.
    for ev in app.events_named("inference_request"):
        assert len(received(app, ev["data"]["request_id"])) == 1, ev
    cluster.stop_all()


def test_presence_and_max_apps_across_nodes(cluster):
    """max_apps 1: an app on A shows as connected on B (space_state, page)
    and takes the space's only slot for B too; when it leaves, B sees the
    space free and an app can register there, which A sees in turn."""
    pg = cluster.pg
    a, b = cluster.node("a"), cluster.node("b")
    sid, name = a.site.create_space(max_apps=1)
    watcher_b = cluster.browser(b, name="watcher@B")
    watcher_a = cluster.browser(a, name="watcher@A")
    for w in (watcher_b, watcher_a):
        w.send({"op": "emit", "event": "follow_space", "data": sid})
        space_state(w, False, apps=0, space_id=sid)

    mark_b = len(watcher_b.events)
    x = cluster.app(a, name, name="X@A")
    registered(x)
    space_state(watcher_b, True, apps=1, start=mark_b, space_id=sid)
    wait_page(b, sid, True, cluster)

    y = cluster.app(b, name, name="Y@B")
    _, _, ev = y.wait_event("register_response", timeout=WAIT)
    data = ev["data"]
    assert data.get("success") is False and \
        "already has a connected app" in data.get("message", "").lower(), (
            "a second app on B for a max_apps=1 space whose app is on A: %r\n%s"
            % (data, cluster.context()))
    live = pg.sql("SELECT node_id FROM app_connections WHERE space_id = :'s' "
                  "AND disconnected_at IS NULL", s=sid)
    assert live == [[a.node_id]], live

    mark_b, mark_a = len(watcher_b.events), len(watcher_a.events)
    x.send({"op": "disconnect"})
    x.wait_event("disconnect", timeout=WAIT)
    space_state(watcher_b, False, apps=0, start=mark_b, space_id=sid)
    wait_page(b, sid, False, cluster)
    user = a.site.user()
    code, body = b.site.submit(user, sid, "nobody home")
    assert code == 503 and "not connected" in body.get("error", "").lower(), (code, body)

    z = cluster.app(b, name, name="Z@B")
    z_conn = registered(z)["connection_id"]
    assert connection_row(pg, z_conn) == {"node_id": b.node_id, "live": True}
    space_state(watcher_a, True, apps=1, start=mark_a, space_id=sid)
    wait_page(a, sid, True, cluster)
    # And the other way round: submitted on A, served on B.
    rid = a.site.submit_ok(user, sid, "from A to B")
    got_request(z, rid)
    answer(z, rid, "served on B")
    body = a.site.wait_status(rid, timeout=WAIT)
    assert body["status"] == "completed" and body["result"] == {"text_output": "served on B"}
    cluster.stop_all()


def test_dead_node_requests_move_to_another_node(cluster):
    """App X on A holds three requests; app Y on B registers (max_apps 2);
    A is killed (SIGKILL, no goodbye). Once A's heartbeat is older than
    --node-timeout, B's sweep marks X gone and requeues its requests, and
    they reach Y on B, which answers: nothing is lost."""
    pg = cluster.pg
    a, b = cluster.node("a"), cluster.node("b")
    sid, name = a.site.create_space(max_apps=2, timeout_seconds=60)
    x = cluster.app(a, name, name="X@A")
    x_conn = registered(x)["connection_id"]
    user = a.site.user()
    ids = [a.site.submit_ok(user, sid, "held by X %d" % i) for i in range(3)]
    for rid in ids:
        got_request(x, rid)
    y = cluster.app(b, name, name="Y@B")
    y_conn = registered(y)["connection_id"]
    for rid in ids:
        assert request_row(pg, rid)["connection_id"] == x_conn
    assert not y.events_named("inference_request"), "Y got a request X holds"

    harness.sigkill_server(a.server)
    killed = time.monotonic()
    arrivals = []
    for rid in ids:
        try:
            _, t = got_request(y, rid, timeout=NODE_TIMEOUT + WAIT)
        except AssertionError as e:
            raise AssertionError("%s\nrequest row: %r\nnodes: %r\n%s" % (
                e, request_row(pg, rid), pg.sql("SELECT id, now() - seen_at FROM nodes"),
                cluster.context()))
        arrivals.append(t - killed)
    print("requests reached Y on B %s s after A was killed (node timeout %d s)"
          % (", ".join("%.2f" % t for t in arrivals), NODE_TIMEOUT))
    assert connection_row(pg, x_conn) == {"node_id": a.node_id, "live": False}
    y.send({"op": "auto_answer", "on": True})
    for rid in ids:
        body = b.site.wait_status(rid, timeout=WAIT)
        assert body["status"] == "completed" and \
            body["result"]["text_output"].startswith("answer to held by X"), body
        row = request_row(pg, rid)
        assert row["connection_id"] == y_conn and row["attempts"] == "2", row
        assert len(received(y, rid)) == 1, "Y got %s more than once" % rid
    assert connection_row(pg, y_conn) == {"node_id": b.node_id, "live": True}
    cluster.stop_all()


class Held:
    """Two nodes A and B, each with an app (X on A, Y on B) of a space of
    its own, each app holding one unanswered request (r_a, r_b)."""

    def __init__(self, cluster, timeout_seconds, node_timeout=NODE_TIMEOUT):
        self.a = cluster.node("a", node_timeout=node_timeout)
        self.b = cluster.node("b", node_timeout=node_timeout)
        self.sid_a, name_a = self.a.site.create_space(timeout_seconds=timeout_seconds)
        self.sid_b, name_b = self.a.site.create_space(timeout_seconds=timeout_seconds)
        self.x = cluster.app(self.a, name_a, name="X@A")
        self.x_conn = registered(self.x)["connection_id"]
        self.y = cluster.app(self.b, name_b, name="Y@B")
        self.y_conn = registered(self.y)["connection_id"]
        user = self.b.site.user()
        self.r_a = self.a.site.submit_ok(user, self.sid_a, "held by X")
        got_request(self.x, self.r_a)
        self.r_b = self.b.site.submit_ok(user, self.sid_b, "held by Y")
        got_request(self.y, self.r_b)


# Restarting an ASan build on a loaded machine can take a few seconds: the
# restart test's nodes have a node timeout a restart stays well within.
RESTART_NODE_TIMEOUT = 10


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_of_one_node_leaves_the_other_alone(cluster, how):
    """App Y on B holds a request; app X on A holds another. A restarts with
    the same --node-id (after SIGTERM, or SIGKILL well within the node
    timeout): X's request goes back to X when it reconnects, while Y's stays
    processing on Y's live connection, untouched, and completes when Y
    answers. Neither node is taken for dead."""
    pg = cluster.pg
    held = Held(cluster, 120, node_timeout=RESTART_NODE_TIMEOUT)
    a, b, x, y = held.a, held.b, held.x, held.y
    x_conn, y_conn, r_a, r_b = held.x_conn, held.y_conn, held.r_a, held.r_b
    before = request_row(pg, r_b)
    assert before["status"] == "processing" and before["connection_id"] == y_conn and \
        before["attempts"] == "1", before

    def y_untouched(when):
        row = request_row(pg, r_b)
        assert row == before, "%s: the request held by Y on B changed: %r -> %r\n%s" % (
            when, before, row, cluster.context())
        conn = connection_row(pg, y_conn)
        assert conn == {"node_id": b.node_id, "live": True}, (
            "%s: Y's connection on B: %r\n%s" % (when, conn, cluster.context()))

    mark_x = len(x.events)
    killed = db_now(pg)
    cluster.restart(a, how)
    y_untouched("right after A restarted")
    # X reconnects to A (same port) and is sent its request again: A's
    # recovery of its own previous run is done by then.
    i_reg, _, _ = x.wait_event("register_response", timeout=2 * WAIT, start=mark_x,
                               pred=lambda e: e["data"].get("connection_id") != x_conn)
    assert x.events[i_reg][1]["data"].get("success") is True, x.events[i_reg]
    i_conn, _, _ = x.wait_event("connect", start=mark_x)
    got_request(x, r_a, start=i_conn)
    assert connection_row(pg, x_conn)["live"] is False
    # Until the restarted A has judged the others (a node timeout of
    # heartbeats since it came back) and B too, nothing happens to B's
    # request or app.
    wait_judged(cluster, (a, b), killed,
                check=lambda: y_untouched("after A restarted, before A judged the others"))
    y_untouched("after A and B judged the others")
    dead = taken_for_dead(cluster, (a.node_id, b.node_id))
    assert not dead, "\n".join(dead) + "\n" + cluster.context()
    assert len(received(y, r_b)) == 1, "Y was sent its request again"
    assert not y.events_named("disconnect"), y.output()[-2000:]

    answer(y, r_b, "Y answers after A's restart")
    body = a.site.wait_status(r_b, timeout=WAIT)
    assert body["status"] == "completed" and \
        body["result"] == {"text_output": "Y answers after A's restart"}, body
    answer(x, r_a, "X answers after A's restart")
    body = b.site.wait_status(r_a, timeout=WAIT)
    assert body["status"] == "completed" and \
        body["result"] == {"text_output": "X answers after A's restart"}, body
    assert request_row(pg, r_a)["attempts"] == "2"
    # A restart under the same id is not another process with that id.
    for n in (a, b):
        assert CLASH not in n.stderr(), n.stderr()[-2000:]
    cluster.stop_all()


CLASH = "another process runs with --node-id"


def test_database_outage_longer_than_the_node_timeout_kills_nobody(cluster):
    """PostgreSQL is away for longer than --node-timeout: every node's
    heartbeat is old when it comes back, but no node takes another for dead
    (a node judges others only after beating without a gap for a whole
    timeout itself): the apps stay connected, their requests stay theirs and
    complete."""
    pg = cluster.pg
    held = Held(cluster, 120)
    a, b, x, y = held.a, held.b, held.x, held.y
    x_conn, y_conn, r_a, r_b = held.x_conn, held.y_conn, held.r_a, held.r_b
    down = db_now(pg)
    t0 = time.monotonic()
    pg.stop()
    time.sleep(NODE_TIMEOUT + 2)  # the outage itself: longer than the node timeout
    pg.start()
    t_back = time.monotonic()
    # Both nodes beat again, and each has since judged the others (a node
    # timeout of heartbeats without a gap): had anyone been taken for dead,
    # it would have been by then.
    up_since = wait_judged(cluster, (a, b), db_now(pg))
    print("database away %.1f s; both nodes judged the others %.1f s after it came back"
          % (t_back - t0, time.monotonic() - t_back))
    # Premise: the heartbeats had a gap longer than the node timeout (every
    # row was old when the database came back).
    for n in (a, b):
        assert pg.sql("SELECT :'u'::timestamptz > :'d'::timestamptz + make_interval(secs => :t)",
                      u=up_since[n.node_id], d=down, t=n.node_timeout) == [["t"]], (
            "node %s beat without a gap through the outage (up since %s, database "
            "stopped at %s)" % (n.label, up_since[n.node_id], down))
    # No node of this test was taken for dead (nodes of earlier tests, left
    # in table nodes, may be: they are not looked at).
    dead = taken_for_dead(cluster, (a.node_id, b.node_id))
    assert not dead, "\n".join(dead) + "\n" + cluster.context()
    assert pg.sql("SELECT count(*) FROM nodes WHERE id IN (:'a', :'b')",
                  a=a.node_id, b=b.node_id) == [["2"]]
    assert connection_row(pg, x_conn) == {"node_id": a.node_id, "live": True}
    assert connection_row(pg, y_conn) == {"node_id": b.node_id, "live": True}
    assert not x.events_named("disconnect") and not y.events_named("disconnect")
    assert request_row(pg, r_a)["connection_id"] == x_conn
    assert request_row(pg, r_b)["connection_id"] == y_conn
    answer(x, r_a, "X after the outage")
    answer(y, r_b, "Y after the outage")
    for node, rid, text in ((b, r_a, "X after the outage"), (a, r_b, "Y after the outage")):
        body = node.site.wait_status(rid, timeout=WAIT)
        assert body["status"] == "completed" and body["result"] == {"text_output": text}, body
    cluster.stop_all()


def test_two_processes_with_one_node_id_are_reported(cluster):
    """A misconfiguration that would make them requeue each other's
    requests: both say so in their logs within a few heartbeats."""
    a = cluster.node("a")
    b = Node("b", a.node_id, cluster._start(a.node_id), cluster.pg)
    cluster.nodes.append(b)
    for n in (a, b):
        wait_until("%s reports the shared --node-id" % n.label,
                   lambda n=n: CLASH in n.stderr(), timeout=WAIT, context=cluster.context)
    cluster.stop_all()


if __name__ == "__main__":
    sys.exit(pytest.main(["-p", "no:cacheprovider", "-v", __file__]))
