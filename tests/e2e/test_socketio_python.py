"""Socket.IO acceptance tests with python-socketio 5.7 (Debian's
python3-socketio, ``socketio.Client``) against the Socket.IO conformance
server, over websocket only, polling only and the default transports
(polling, then upgrade to websocket), with the default JSON serializer and
with ``serializer='msgpack'`` against the server started with
``--parser msgpack``.

    /usr/bin/python3 -m pytest -q tests/e2e/test_socketio_python.py
    SPACES_SOCKETIO_SERVER=reference /usr/bin/python3 -m pytest -q tests/e2e/test_socketio_python.py

Which server runs:
    SPACES_SOCKETIO_SERVER  unset: $SPACES_BUILD_DIR/conformance-socketio
                            "reference": node tests/conformance/reference_socketio.js
                            anything else: a command line (split like a shell)
    SPACES_BUILD_DIR        build directory (default <source>/build/debug)

A python-socketio client can linger for a long time in a polling thread after
it disconnects, so every scenario runs in its own process (this file, run as
a script with --scenario), under ``timeout``, and leaves with os._exit.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
SCENARIO_TIMEOUT = 40  # seconds, for one scenario process
WAIT = 5.0  # seconds, for one expected event

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "default": None,  # polling first, then the upgrade to websocket
}


# ---------------------------------------------------------------------------
# Scenarios (run in a child process)


class Recorder:
    """Records every event of the given namespaces (catch-all handlers)."""

    def __init__(self, sio, namespaces):
        self.events = []
        self.cond = threading.Condition()
        for ns in namespaces:
            sio.on("*", self._handler(ns), namespace=ns)

    def _handler(self, ns):
        def handler(event, *args):
            with self.cond:
                self.events.append((ns, event, args))
                self.cond.notify_all()

        return handler

    def wait(self, event, ns="/", timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (n, e, args) in enumerate(self.events):
                    if n == ns and e == event:
                        del self.events[i]
                        return args
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no %r event on %s within %.1f s; got %r"
                        % (event, ns, timeout, [(n, e) for n, e, _ in self.events])
                    )
                self.cond.wait(left)

    def has(self, event, ns="/"):
        with self.cond:
            return any(n == ns and e == event for n, e, _ in self.events)


def expect_equal(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


class Scenario:
    def __init__(self, url, transport, serializer):
        import socketio

        self.socketio = socketio
        self.url = url
        self.transport = transport
        self.transports = TRANSPORTS[transport]
        self.serializer = serializer
        self.clients = []

    def client(self, namespaces=("/",), auth=None, connect=True, handlers=None):
        debug = os.environ.get("SPACES_TEST_VERBOSE") == "1"
        sio = self.socketio.Client(
            reconnection=False, serializer=self.serializer, logger=debug, engineio_logger=debug
        )
        for (ns, event), fn in (handlers or {}).items():
            sio.on(event, fn, namespace=ns)
        rec = Recorder(sio, namespaces)
        self.clients.append(sio)
        if connect:
            sio.connect(
                self.url,
                auth=auth,
                transports=self.transports,
                namespaces=list(namespaces),
                wait_timeout=WAIT,
            )
            self.check_transport(sio)
        return sio, rec

    def check_transport(self, sio):
        want = "polling" if self.transport == "polling" else "websocket"
        deadline = time.monotonic() + WAIT
        while sio.transport() != want and time.monotonic() < deadline:
            time.sleep(0.02)
        expect_equal(sio.transport(), want, "transport in use")

    def close(self):
        for sio in self.clients:
            try:
                if sio.connected:
                    sio.disconnect()
            except Exception:  # noqa: BLE001 - best effort at the end
                pass

    def server_reason(self, sid):
        """The disconnect reason the server recorded for the socket sid of "/"
        (EXTRA disconnect-reason), asked over a fresh connection."""
        w, _ = self.client()
        deadline = time.monotonic() + WAIT
        while True:
            r = w.call("disconnect-reason", sid, timeout=WAIT)
            if r is not None or time.monotonic() > deadline:
                return r
            time.sleep(0.05)

    # -- the scenarios ------------------------------------------------------

    def s_connect_auth(self):
        sio, rec = self.client(auth={"token": "py", "n": [1, 2]})
        expect_equal(rec.wait("auth"), ({"token": "py", "n": [1, 2]},), "auth event")
        sid = sio.get_sid("/")
        assert isinstance(sid, str) and sid, "a socket id, got %r" % (sid,)
        sio2, rec2 = self.client()
        expect_equal(rec2.wait("auth"), ({},), "auth event without auth")

    def s_emit_receive(self):
        sio, rec = self.client()
        rec.wait("auth")
        args = (1, "two", {"3": [True, None, False]}, [1.5, -2], "é✓😀")
        sio.emit("message", args)
        expect_equal(rec.wait("message-back"), args, "message-back")
        # python-engineio 4.3 refuses a polling payload of more than 16
        # packets (Payload.max_decode_packets), and a server may answer a
        # burst in one payload: keep bursts small.
        for i in range(10):
            sio.emit("message", i)
        got = [rec.wait("message-back")[0] for _ in range(10)]
        expect_equal(got, list(range(10)), "order of 10 events")

    def s_call_ack(self):
        sio, rec = self.client()
        rec.wait("auth")
        expect_equal(
            sio.call("message-with-ack", (1, "2", {"3": [False]}), timeout=WAIT),
            (1, "2", {"3": [False]}),
            "ack with three arguments",
        )
        expect_equal(sio.call("message-with-ack", "one", timeout=WAIT), "one", "ack with one argument")
        got = []
        done = threading.Event()

        def cb(*a):
            got.append(a)
            done.set()

        sio.emit("message-with-ack", ({"k": "v"},), callback=cb)
        assert done.wait(WAIT), "emit callback not called"
        expect_equal(got, [({"k": "v"},)], "emit callback arguments")

    def s_binary(self):
        sio, rec = self.client()
        rec.wait("auth")
        args = (b"\x01\x02\x03", {"nested": b"\xff\x00", "list": [b"", "x", b"\x07" * 1000]}, "text")
        sio.emit("message", args)
        expect_equal(rec.wait("message-back"), args, "binary message-back")
        expect_equal(sio.call("message-with-ack", b"\x00\x01", timeout=WAIT), b"\x00\x01", "binary ack")
        big = bytes(range(256)) * 1024
        sio.emit("message", {"big": big})
        expect_equal(rec.wait("message-back"), ({"big": big},), "256 kB binary")

    def s_namespaces(self):
        sio, rec = self.client(namespaces=("/", "/custom"), auth={"who": "py"})
        expect_equal(rec.wait("auth", "/"), ({"who": "py"},), "auth on /")
        expect_equal(rec.wait("auth", "/custom"), ({"who": "py"},), "auth on /custom")
        assert sio.get_sid("/") != sio.get_sid("/custom"), "one socket id per namespace"
        sio.emit("message", "main")
        expect_equal(rec.wait("message-back", "/"), ("main",), "message-back on /")

    def refused(self, ns, auth, want):
        errors = []
        sio, _ = self.client(namespaces=(ns,), connect=False, handlers={(ns, "connect_error"): errors.append})
        try:
            sio.connect(self.url, auth=auth, transports=self.transports, namespaces=[ns], wait_timeout=2)
        except self.socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("connecting to %s must fail" % ns)
        expect_equal(errors, [want], "connect_error data for %s" % ns)

    def s_unknown_namespace(self):
        self.refused("/random", None, {"message": "Invalid namespace"})

    def s_extra_middleware(self):
        """EXTRA /private: refused without the token, accepted with it."""
        self.refused("/private", {"token": "nope"}, {"message": "not authorized", "data": {"code": 403}})
        ok, orec = self.client(namespaces=("/private",), auth={"token": "secret"})
        expect_equal(orec.wait("auth", "/private"), ({"token": "secret"},), "auth on /private")

    def s_extra_dynamic_namespace(self):
        """EXTRA /dyn-<digits>."""
        d, drec = self.client(namespaces=("/dyn-7",), auth={"d": 7})
        expect_equal(drec.wait("auth", "/dyn-7"), ({"d": 7},), "auth on dynamic namespace /dyn-7")
        self.refused("/dyn-x", None, {"message": "Invalid namespace"})

    def s_extra_server_ack(self):
        """EXTRA request-ack."""
        seen = []

        def ask(*args):
            seen.append(args)
            return ("answer", b"\x07", {"n": len(args)})

        sio, rec = self.client(handlers={("/", "ask"): ask, ("/", "warmup"): lambda: None})
        rec.wait("auth")
        if self.serializer == "msgpack":
            # python-socketio 5.7's msgpack packets drop an ack id of 0
            # (Packet._to_dict: "if self.id"), and a server may well number
            # its acks from 0: use that id up first (its ack may be lost).
            sio.call("request-ack", {"event": "warmup", "args": [], "timeout": 200}, timeout=WAIT)
        res = sio.call("request-ack", {"event": "ask", "args": [1, b"\x01", {"a": "b"}]}, timeout=WAIT)
        expect_equal(seen, [(1, b"\x01", {"a": "b"})], "event the server asked")
        expect_equal(res, {"error": None, "responses": ["answer", b"\x07", {"n": 3}]}, "server ack result")
        res = sio.call("request-ack", {"event": "ask", "args": [], "timeout": 2000}, timeout=WAIT)
        expect_equal(res["error"], None, "server ack with timeout, answered in time")

    def s_disconnect(self):
        sio, rec = self.client(namespaces=("/", "/custom"))
        rec.wait("auth")
        rec.wait("auth", "/custom")
        sio.disconnect()
        assert not sio.connected, "still connected after disconnect()"
        # A new client connects fine afterwards.
        sio2, rec2 = self.client()
        rec2.wait("auth")
        sio2.emit("message", "after")
        expect_equal(rec2.wait("message-back"), ("after",), "message-back")

    def s_extra_disconnect_reasons(self):
        """EXTRA disconnect-me, disconnect-reason."""
        # The client leaves.
        sio, rec = self.client()
        rec.wait("auth")
        sid = sio.get_sid("/")
        sio.disconnect()
        # python-socketio sends DISCONNECT and drops the transport at once, so
        # the server may see either first.
        reason = self.server_reason(sid)
        assert reason in ("client namespace disconnect", "transport close", "forced close"), (
            "server-side reason after the client left: %r" % (reason,)
        )
        # The server sends the client away (EXTRA disconnect-me).
        gone = threading.Event()
        sio2, rec2 = self.client(handlers={("/", "disconnect"): gone.set})
        rec2.wait("auth")
        sid2 = sio2.get_sid("/")
        sio2.emit("disconnect-me")
        assert gone.wait(WAIT), "the disconnect handler was not called"
        deadline = time.monotonic() + WAIT
        while sio2.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not sio2.connected, "the client is still connected"
        expect_equal(self.server_reason(sid2), "server namespace disconnect", "server-side reason")

    def s_extra_rooms(self):
        """EXTRA join, leave, broadcast."""
        a, arec = self.client()
        b, brec = self.client()
        arec.wait("auth")
        brec.wait("auth")
        a.call("join", "pyroom", timeout=WAIT)
        b.call("broadcast", ({"event": "room-msg", "to": "pyroom"}, "hi", b"\x01"), timeout=WAIT)
        expect_equal(arec.wait("room-msg"), ("hi", b"\x01"), "room broadcast")
        b.call("broadcast", ({"event": "all"},), timeout=WAIT)
        arec.wait("all")
        brec.wait("all")
        assert not brec.has("room-msg"), "b is not in the room"
        b.call("broadcast", ({"event": "others", "others": True}, 1), timeout=WAIT)
        expect_equal(arec.wait("others"), (1,), "broadcast to the others")
        a.call("leave", "pyroom", timeout=WAIT)
        b.call("broadcast", ({"event": "room-msg2", "to": "pyroom"},), timeout=WAIT)
        b.call("broadcast", ({"event": "all2"},), timeout=WAIT)
        arec.wait("all2")
        assert not arec.has("room-msg2"), "a left the room"


SCENARIOS = sorted(name[2:] for name in dir(Scenario) if name.startswith("s_"))


def run_scenario(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=sorted(TRANSPORTS))
    p.add_argument("--serializer", default="default", choices=["default", "msgpack"])
    a = p.parse_args(argv)
    code = 0
    sc = None
    try:
        sc = Scenario(a.url, a.transport, a.serializer)
        getattr(sc, "s_" + a.scenario)()
        print("scenario %s (%s, %s): ok" % (a.scenario, a.transport, a.serializer))
    except BaseException:  # noqa: BLE001 - report everything, then exit
        traceback.print_exc()
        code = 1
    finally:
        if sc is not None:
            sc.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Do not wait for python-socketio's background threads.
    os._exit(code)


# ---------------------------------------------------------------------------
# pytest side

if __name__ != "__main__":
    import pytest

    sys.path.insert(0, os.path.join(HERE, "..", "lib"))
    import harness

    def socketio_server_command():
        return harness.server_command(
            "SPACES_SOCKETIO_SERVER",
            "conformance-socketio",
            "tests/conformance/reference_socketio.js",
        )

    def start_socketio_server(extra_args=()):
        argv = socketio_server_command() + list(extra_args)
        if "/" in argv[0] and not os.path.exists(argv[0]):
            raise AssertionError(
                "the Socket.IO conformance server %s does not exist: build the "
                "conformance-socketio target (or set SPACES_BUILD_DIR), or run these "
                "tests against the reference Node.js server with "
                "SPACES_SOCKETIO_SERVER=reference" % argv[0]
            )
        return harness.start_server(argv)

    @pytest.fixture(scope="module")
    def json_server():
        server = start_socketio_server()
        try:
            yield server
        except BaseException:
            server.kill()
            raise
        server.stop()

    @pytest.fixture(scope="module")
    def msgpack_server():
        server = start_socketio_server(["--parser", "msgpack"])
        try:
            yield server
        except BaseException:
            server.kill()
            raise
        server.stop()

    def run_in_child(server, scenario, transport, serializer):
        cmd = [
            "timeout",
            "-k",
            "5",
            str(SCENARIO_TIMEOUT),
            PYTHON,
            os.path.abspath(__file__),
            "--scenario",
            scenario,
            "--url",
            server.url,
            "--transport",
            transport,
            "--serializer",
            serializer,
        ]
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=SCENARIO_TIMEOUT + 15,
            check=False,
        )
        out = proc.stdout.decode("utf-8", "replace")
        server.assert_alive()
        if proc.returncode == 124:
            raise AssertionError("scenario %s timed out after %d s\n%s" % (scenario, SCENARIO_TIMEOUT, out))
        assert proc.returncode == 0, "scenario %s (%s, %s) failed (status %d):\n%s\n--- server stderr ---\n%s" % (
            scenario,
            transport,
            serializer,
            proc.returncode,
            out,
            server.stderr()[-4000:],
        )

    @pytest.mark.parametrize("transport", sorted(TRANSPORTS))
    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_json(json_server, scenario, transport):
        run_in_child(json_server, scenario, transport, "default")

    @pytest.mark.parametrize("transport", sorted(TRANSPORTS))
    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_msgpack(msgpack_server, scenario, transport):
        run_in_child(msgpack_server, scenario, transport, "msgpack")


if __name__ == "__main__":
    run_scenario(sys.argv[1:])
