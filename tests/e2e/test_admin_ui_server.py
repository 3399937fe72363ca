"""spaces-server's admin UI options (issue 16): --admin-ui USER:HASH (or
SPACES_ADMIN_UI), --admin-ui-readonly, --admin-ui-mode, and
`spaces-server admin-ui-hash`, against the real server and a throwaway
PostgreSQL, with python-socketio as the dashboard's client (the protocol
itself is compared with Node's in e2e_admin_ui, the dashboard in
browser_admin_ui).

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_admin_ui_server.py
"""

import os
import subprocess
import sys
import threading
import urllib.request

import pytest
import socketio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import harness  # noqa: E402

PASSWORD = "s3cret admin"
ALL = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
       "AGGREGATED_EVENTS", "ALL_EVENTS"]


@pytest.fixture(scope="module")
def pg():
    cluster = harness.PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


def argon2_hash():
    out = subprocess.run(harness.spaces_server_command() + ["admin-ui-hash"], input=PASSWORD + "\n",
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def bcrypt_hash():
    script = ("const b = require(require.resolve('bcryptjs', {paths: [process.argv[1]]}));"
              "console.log(b.hashSync(process.argv[2], 4))")
    out = subprocess.run([harness.node_executable(), "-e", script,
                          os.path.join(HERE, "..", "node_modules"), PASSWORD],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


class Dashboard:
    """A dashboard kept logged in on /admin: every message it hears, in order."""

    EVENTS = ("session", "config", "all_sockets", "server_stats", "socket_connected",
              "socket_disconnected", "room_joined", "room_left")

    def __init__(self, url, auth):
        self.client = socketio.Client(reconnection=False)
        self.got = []
        self.cond = threading.Condition()
        for name in self.EVENTS:
            self.client.on(name, self._recorder(name), namespace="/admin")
        self.client.connect(url, namespaces=["/admin"], auth=auth, transports=["websocket"],
                            wait_timeout=20)

    def _recorder(self, name):
        def on(*args):
            with self.cond:
                self.got.append((name, args))
                self.cond.notify_all()
        return on

    def wait(self, pred, timeout=20, what="a message"):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(n, a) for n, a in self.got), timeout)
            assert ok, "no %s within %ss; heard %r" % (what, timeout, [n for n, _ in self.got])
            return next(a for n, a in self.got if pred(n, a))

    def close(self):
        self.client.disconnect()


def login(url, auth, until="all_sockets"):
    """Connects to /admin, waits for the event `until`; returns what came
    ({event: first arguments}) or raises ConnectionError. Messages come in
    order on one connection: all_sockets right after config, server_stats
    a second or two later."""
    dash = Dashboard(url, auth)
    try:
        dash.wait(lambda name, _: name == until, timeout=30, what=until)
        got = {}
        with dash.cond:
            heard = list(dash.got)
        for name, args in heard:
            if name in ("session", "config", "all_sockets", "server_stats"):
                got.setdefault(name, args[0] if args else None)
        return got
    finally:
        dash.close()


def test_admin_ui_hash_prints_an_argon2id_hash():
    h = argon2_hash()
    assert h.startswith("$argon2id$"), h


def test_off_by_default(pg):
    srv = harness.start_spaces_server(pg.url)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            login(srv.url, {"username": "admin", "password": PASSWORD})
    finally:
        srv.stop()


def test_environment_argon2id_login(pg):
    srv = harness.start_spaces_server(pg.url, env={"SPACES_ADMIN_UI": "ops:" + argon2_hash()})
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            login(srv.url, {"username": "ops", "password": "wrong"})
        with pytest.raises(socketio.exceptions.ConnectionError):
            login(srv.url, {"username": "admin", "password": PASSWORD})
        got = login(srv.url, {"username": "ops", "password": PASSWORD})
        assert len(got["session"]) == 16
        assert got["config"] == {"supportedFeatures": ALL}
        assert any(s["nsp"] == "/admin" for s in got["all_sockets"]), got
        assert "login refused" in srv.stderr()
    finally:
        srv.stop()


def test_flags_bcrypt_readonly_production(pg):
    srv = harness.start_spaces_server(pg.url, extra_args=[
        "--admin-ui", "ops:" + bcrypt_hash(), "--admin-ui-readonly", "--admin-ui-mode",
        "production"])
    try:
        got = login(srv.url, {"username": "ops", "password": PASSWORD}, until="server_stats")
        assert got["config"] == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
        assert "all_sockets" not in got
        names = [n["name"] for n in got["server_stats"]["namespaces"]]
        assert "/" in names and "/spaces" in names and "/admin" in names, names
    finally:
        srv.stop()


def test_a_bad_hash_is_refused_before_start():
    r = subprocess.run(harness.spaces_server_command()
                       + ["config", "check", "--admin-ui", "ops:plaintext"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--admin-ui" in r.stderr and "plaintext" not in r.stderr


def spaces_socket(url):
    c = socketio.Client(reconnection=False)
    c.connect(url, namespaces=["/spaces"], transports=["websocket"], wait_timeout=20)
    return c, c.get_sid(namespace="/spaces")


def test_cluster_dashboard_sees_every_node(pg):
    """Two nodes (--node-id) on one database, the dashboard logged in on A:
    all_sockets lists B's sockets too (fetchSockets, with their client and
    transport), server_stats comes from both nodes (their node ids as
    serverId), and B's sockets connecting and leaving reach it live."""
    tag = os.urandom(3).hex()
    auth = {"username": "ops", "password": PASSWORD}
    admin = ["--admin-ui", "ops:" + bcrypt_hash()]
    ids = ["a-" + tag, "b-" + tag]
    a = harness.start_spaces_server(pg.url, extra_args=admin + ["--node-id", ids[0]])
    b = harness.start_spaces_server(pg.url, extra_args=admin + ["--node-id", ids[1]])
    clients, dash = [], None
    try:
        x, x_sid = spaces_socket(b.url)
        clients.append(x)
        # B takes part in the cluster once its first heartbeat is in: the
        # dashboard's all_sockets asks the nodes A knows; retry until B is one.
        for _ in range(20):
            dash = Dashboard(a.url, auth)
            listed = dash.wait(lambda n, _: n == "all_sockets", what="all_sockets")[0]
            if any(s["id"] == x_sid for s in listed):
                break
            dash.close()
            dash = None
            threading.Event().wait(0.5)
        assert dash, "node B's socket never appeared in all_sockets on A\n" + a.stderr()[-3000:]
        mine = next(s for s in listed if s["id"] == x_sid)
        assert mine["nsp"] == "/spaces"
        assert mine["transport"] == "websocket"
        assert len(mine["clientId"]) == 12, mine
        assert x_sid in mine["rooms"]
        assert mine["handshake"]["url"].startswith("/socket.io/")
        assert "auth" not in mine["handshake"]
        assert mine["data"] == {}, "data._admin is the dashboard's, not shown: %r" % mine
        assert any(s["nsp"] == "/admin" for s in listed), listed

        seen = set()
        for node_id in ids:
            st = dash.wait(lambda n, args, i=node_id: n == "server_stats" and
                           args[0].get("serverId") == i, what="server_stats of " + node_id)[0]
            seen.add(st["serverId"])
            assert "/spaces" in [ns["name"] for ns in st["namespaces"]]
        assert seen == set(ids)

        # B knows a dashboard is on A (its stats came): its sockets are live news.
        y, y_sid = spaces_socket(b.url)
        on = dash.wait(lambda n, args: n == "socket_connected" and args[0]["id"] == y_sid,
                       what="socket_connected of B's new socket")
        assert on[0]["nsp"] == "/spaces" and on[0]["transport"] == "websocket"
        y.disconnect()
        off = dash.wait(lambda n, args: n == "socket_disconnected" and args[1] == y_sid,
                        what="socket_disconnected of B's socket")
        assert off[0] == "/spaces"
    finally:
        if dash:
            dash.close()
        for c in clients:
            c.disconnect()
        a.stop()
        b.stop()


def test_cluster_malformed_socket_descriptions_from_a_peer(pg):
    """Another node's fetchSockets answer is input like any other: a peer
    (tests/e2e/cluster_fake_peer.js) answers with sockets whose handshake,
    rooms, data and _admin are of the wrong types, or that lack fields or a
    string id, then with text that is not JSON. The dashboard still gets
    all_sockets, with what could be shown (defaults for the rest), and the
    node goes on serving."""
    sockets = (
        '[{"id":"bad-types","handshake":"nope","rooms":{"r":1},"data":"text"},'
        '{"id":"bad-admin","handshake":{"headers":5,"auth":{"token":"secret"}},'
        '"rooms":["bad-admin",7,null],"data":{"_admin":"x","kept":1}},'
        '{"id":7,"handshake":{},"rooms":[],"data":{}},'
        '{"id":"no-fields"},'
        '"not an object"]')
    srv = harness.start_spaces_server(pg.url, extra_args=[
        "--admin-ui", "ops:" + bcrypt_hash(), "--node-id", "m-" + os.urandom(3).hex()])
    peers = []

    def fake_peer(uid, text):
        p = subprocess.Popen([harness.node_executable(), os.path.join(HERE, "cluster_fake_peer.js"),
                              pg.url, "/spaces", uid, text],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peers.append(p)
        assert p.stdout.readline().strip() == "ready"

    try:
        fake_peer("fake-peer-1", sockets)
        auth = {"username": "ops", "password": PASSWORD}
        listed = []
        for _ in range(40):  # until the node counts the peer (its heartbeats)
            listed = login(srv.url, auth)["all_sockets"]
            if any(s["id"] == "bad-types" for s in listed):
                break
            threading.Event().wait(0.25)
        by_id = {s["id"]: s for s in listed}
        assert "bad-types" in by_id, "the peer's sockets never appeared: %r" % listed
        bad = by_id["bad-types"]
        assert bad["nsp"] == "/spaces"
        assert bad["handshake"] == {} and bad["rooms"] == [] and bad["data"] == {}
        assert bad["clientId"] == "" and bad["transport"] == "websocket"
        other = by_id["bad-admin"]
        assert other["data"] == {"kept": 1}
        assert "auth" not in other["handshake"]
        assert other["rooms"] == ["bad-admin", 7, None]
        bare = by_id["no-fields"]  # missing fields: shown with the defaults
        assert bare["handshake"] == {} and bare["rooms"] == [] and bare["data"] == {}
        assert 7 not in by_id  # an id that is not a string: left out

        # An answer that is not JSON at all (a NUL escape, which the node's
        # parser refuses) is dropped: all_sockets comes when the wait for the
        # other nodes runs out, with this node's sockets, and a warning.
        fake_peer("fake-peer-2", '[{"id":"\\u0000"}]')
        threading.Event().wait(3)  # its heartbeats are in
        listed = login(srv.url, auth)["all_sockets"]
        assert any(s["nsp"] == "/admin" for s in listed), listed
        harness.wait_until("the warning", lambda: "did not answer" in srv.stderr(), 10)
        assert srv.alive()
        with urllib.request.urlopen(srv.url + "/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        for p in peers:
            p.kill()
            p.wait()
        srv.stop()
