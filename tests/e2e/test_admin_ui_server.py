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


def login(url, auth, until="all_sockets"):
    """Connects to /admin, waits for the event `until`; returns what came
    ({event: first arguments}) or raises ConnectionError. Messages come in
    order on one connection: all_sockets right after config, server_stats
    a second or two later."""
    client = socketio.Client(reconnection=False)
    got = {}
    done = threading.Event()

    def recorder(name):
        def on(*args):
            got.setdefault(name, args[0] if args else None)
            if name == until:
                done.set()
        return on

    for name in ("session", "config", "all_sockets", "server_stats"):
        client.on(name, recorder(name), namespace="/admin")
    try:
        client.connect(url, namespaces=["/admin"], auth=auth, transports=["websocket"],
                       wait_timeout=20)
        assert done.wait(30), "no %s; got %r" % (until, got)
        return got
    finally:
        client.disconnect()


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
