#!/usr/bin/python3
"""A reusable app-side client for Spaces, written from the Spaces protocol
(PROTOCOL.md): an inference app dials out to the website over Socket.IO,
registers for its space, receives inference requests and sends back
progress and results.

    from websocket_integration_client import WebSocketSpacesClient

    def handle(client, request):
        client.send_progress(request["request_id"], 50, "halfway")
        client.send_result(request["request_id"], {"text_output": "..."})

    client = WebSocketSpacesClient("http://127.0.0.1:5001", "MySpace",
                                   on_inference_request=handle)
    client.connect()
    if client.wait_for_connection(timeout=10):
        client.wait()          # serve until disconnected
    client.disconnect()

The client counts as connected only after a ``register_response`` with
``success: true``; ``wait_for_connection`` gives up after ``timeout``
seconds, or at once when the registration is refused.

Run as a program, it is a test aid (``--control``): it connects, prints
every event it gets as one JSON line on stdout ({"event": NAME, "data": ...,
"t": unix time}) and obeys JSON commands read from stdin, one a line:

    {"op": "register", "data": {...}}      emit register with this payload
    {"op": "emit", "event": E, "data": D}  emit any event
    {"op": "result", "request_id", "result", "status"?}
    {"op": "progress", "request_id", "progress", "message"?}
    {"op": "auto_answer", "on": true}      answer every request (also those
                                           already received) with a result
    {"op": "ping"}                         nothing (answered "done" like all ops)
    {"op": "disconnect"}                   disconnect (the program stays)
    {"op": "exit"}                         disconnect and exit (also on EOF)

Use /usr/bin/python3 (Debian's python3-socketio 5.x).
"""

import argparse
import json
import os
import sys
import threading
import time

import socketio

DEFAULT_TRANSPORTS = ["websocket", "polling"]


class _Client(socketio.Client):
    """socketio.Client that calls ``on_connected`` each time connect() has
    finished, the first time and after every reconnection.

    Why the app registers there and not in its "connect" handler:
    python-socketio 5.x (Debian's 5.7.2) runs the "connect" handler on a
    thread of its own *before* Client.connect() sets ``connected``, and its
    handler of a namespace DISCONNECT returns without a word while
    ``connected`` is false. A register sent from the "connect" handler is
    answered within a millisecond; a refusal's register_response and the
    DISCONNECT right behind it (PROTOCOL.md) could reach the client before
    the thread that waits in connect() had run again, and then the
    DISCONNECT was dropped: no "disconnect" event, the namespace left
    connected forever (9 refusals in 1440, four apps at a time on a busy
    machine)."""

    on_connected = None

    def connect(self, *args, **kwargs):
        super().connect(*args, **kwargs)
        if self.on_connected:
            self.on_connected()


class WebSocketSpacesClient:
    """One app connection to one space.

    on_inference_request(client, request) is called (on the Socket.IO
    client's thread) for every ``inference_request``; request is the dict
    the server sent: {"request_id", "username", "payload", "upload"?}.
    Without a handler the requests are only kept in ``self.requests``.
    """

    def __init__(self, website_url, space_name, on_inference_request=None, token=None,
                 transports=None, reconnection=True, reconnection_attempts=5,
                 disconnect_on_failure=True, auto_register=True, verbose=True):
        self.website_url = website_url
        self.space_name = space_name
        self.on_inference_request = on_inference_request
        self.token = token
        self.transports = transports or list(DEFAULT_TRANSPORTS)
        self.disconnect_on_failure = disconnect_on_failure
        self.auto_register = auto_register
        self.verbose = verbose

        self.connection_id = None
        self.space_id = None
        self.last_message = None  # message of the last register_response
        self.registration_failed = False
        self.requests = []  # every inference_request received, in order
        self.listeners = []  # fn(event_name, data) for every event (test aid)

        self._registered = threading.Event()
        self._answered = threading.Event()  # any register_response
        self._lock = threading.Lock()
        self.sio = _Client(
            reconnection=reconnection,
            reconnection_attempts=reconnection_attempts,
            reconnection_delay=1,
            reconnection_delay_max=5,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("register_response", self._on_register_response)
        self.sio.on("inference_request", self._on_inference_request)
        self.sio.on("*", self._on_other_event)
        self.sio.on_connected = self._on_connected

    # -- logging ------------------------------------------------------------

    def log(self, text):
        if self.verbose:
            # One write per line: stderr and stdout may share a pipe.
            os.write(2, (text + "\n").encode("utf-8", "replace"))

    def _notify(self, event, data=None):
        for fn in list(self.listeners):
            try:
                fn(event, data)
            except Exception as e:  # a listener must not kill the client
                self.log("listener failed: %r" % (e,))

    # -- Socket.IO handlers -------------------------------------------------

    def _on_connect(self):
        self.log("[WS] connected to %s (sid %s)" % (self.website_url, self.sio.sid))
        self._notify("connect", {"sid": self.sio.sid})

    def _on_connected(self):
        # Not from _on_connect: see _Client.
        if self.auto_register:
            try:
                self.register()
            except socketio.exceptions.SocketIOError as e:  # dropped meanwhile
                self.log("[WS] cannot register: %r" % (e,))

    def _on_disconnect(self):
        self.log("[WS] disconnected")
        self._registered.clear()
        self._notify("disconnect")

    def _on_connect_error(self, data=None):
        self.log("[WS] connection refused: %r" % (data,))
        self._notify("connect_error", data)

    def _on_other_event(self, event, *args):
        self.log("[WS] event %s" % (event,))
        self._notify(event, args[0] if len(args) == 1 else list(args))

    def _on_register_response(self, data):
        data = data if isinstance(data, dict) else {"success": False, "message": repr(data)}
        self.last_message = data.get("message")
        if data.get("success"):
            self.connection_id = data.get("connection_id")
            self.space_id = data.get("space_id")
            self.registration_failed = False
            self.log("[WS] registered: connection %s, space %s" % (self.connection_id,
                                                                     self.space_id))
            self._registered.set()
        else:
            self.registration_failed = True
            self._registered.clear()
            self.log("[WS] registration failed: %s" % self.last_message)
        self._answered.set()
        self._notify("register_response", data)
        if not data.get("success") and self.disconnect_on_failure:
            threading.Thread(target=self.disconnect, daemon=True).start()

    def _on_inference_request(self, data):
        with self._lock:
            self.requests.append(data)
        rid = data.get("request_id") if isinstance(data, dict) else None
        self.log("[WS] inference_request %s" % (str(rid)[:12],))
        self._notify("inference_request", data)
        if self.on_inference_request:
            try:
                self.on_inference_request(self, data)
            except Exception as e:
                self.log("[WS] handler failed: %r" % (e,))
                if rid:
                    self.send_result(rid, {"error": str(e)}, status="failed")

    # -- API ----------------------------------------------------------------

    def connect(self):
        """Opens the connection (WebSocket first, then polling). Returns True
        when the transport is up; registration follows on its own."""
        self._registered.clear()
        self._answered.clear()
        self.registration_failed = False
        try:
            self.sio.connect(
                self.website_url,
                transports=self.transports,
                auth={"token": self.token} if self.token else None,
                wait_timeout=5,
            )
            return True
        except socketio.exceptions.ConnectionError as e:
            self.log("[WS] cannot connect: %s" % (e,))
            self._notify("connect_failed", {"error": str(e)})
            return False

    def register(self, payload=None):
        """Sends ``register`` (done on every connect unless auto_register is
        off)."""
        self._answered.clear()
        self.sio.emit("register", payload if payload is not None
                      else {"space_name": self.space_name})

    def wait_for_connection(self, timeout=10):
        """True once registered; False after timeout seconds, or as soon as
        the registration is refused."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._registered.is_set():
                return True
            if self._answered.is_set() and self.registration_failed:
                return False
            self._answered.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            if self._registered.is_set():
                return True
        return self._registered.is_set()

    def is_connected(self):
        """Connected and registered."""
        return self.sio.connected and self._registered.is_set()

    def send_result(self, request_id, result, status="completed"):
        """inference_result {request_id, status, result}."""
        self.sio.emit("inference_result",
                      {"request_id": request_id, "status": status, "result": result})

    def send_error(self, request_id, message):
        self.send_result(request_id, {"error": message}, status="failed")

    def send_progress(self, request_id, progress, message=None):
        """inference_progress {request_id, progress 0..100, message?}."""
        data = {"request_id": request_id, "progress": progress}
        if message is not None:
            data["message"] = message
        self.sio.emit("inference_progress", data)

    def emit(self, event, data):
        self.sio.emit(event, data)

    def wait(self):
        """Blocks while the connection (with its reconnections) lasts."""
        while True:
            self.sio.wait()
            # python-socketio 5.7's wait() also returns when a reconnection
            # succeeds within the second it sleeps after a drop.
            if not self.sio.connected:
                return

    def disconnect(self):
        self._registered.clear()
        try:
            self.sio.disconnect()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# --control: a scriptable app for tests (JSON lines in and out)


def _control(args):
    out_lock = threading.Lock()

    def emit_line(event, data=None):
        line = json.dumps({"event": event, "data": data, "t": time.time()}) + "\n"
        with out_lock:  # one write per line: stderr may share the pipe
            buf = line.encode("utf-8", "replace")
            while buf:
                buf = buf[os.write(1, buf):]

    answer_delay = args.answer_delay
    mode = {"auto": args.auto_answer}
    answered_ids = set()

    def handle(client, request):
        if mode["auto"]:
            rid = request["request_id"]
            prompt = (request.get("payload") or {}).get("prompt")

            def answer():
                if answer_delay:
                    time.sleep(answer_delay)
                answered_ids.add(rid)
                client.send_result(rid, {"text_output": "answer to %s" % prompt,
                                         "model_used": "control"})
                emit_line("answered", {"request_id": rid})

            threading.Thread(target=answer, daemon=True).start()

    client = WebSocketSpacesClient(
        args.host, args.space, on_inference_request=handle, token=args.token,
        transports=args.transports.split(","), disconnect_on_failure=False,
        auto_register=not args.no_register, verbose=True,
        reconnection_attempts=args.reconnection_attempts,
    )
    client.listeners.append(emit_line)
    if not client.connect():
        emit_line("exit", {"code": 3})
        os._exit(3)
    emit_line("ready", {"sid": client.sio.sid})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "register":
                client.register(cmd.get("data"))
            elif op == "emit":
                client.emit(cmd["event"], cmd.get("data"))
            elif op == "result":
                client.send_result(cmd["request_id"], cmd.get("result"),
                                   cmd.get("status", "completed"))
            elif op == "progress":
                client.send_progress(cmd["request_id"], cmd["progress"], cmd.get("message"))
            elif op == "ping":  # a barrier: "done" comes after every earlier op
                pass
            elif op == "auto_answer":
                mode["auto"] = bool(cmd.get("on", True))
                if mode["auto"]:  # answer what is already waiting, once
                    for req in list(client.requests):
                        rid = req.get("request_id")
                        if rid and rid not in answered_ids:
                            handle(client, req)
            elif op == "disconnect":
                client.disconnect()
            elif op == "exit":
                break
            else:
                emit_line("error", {"message": "unknown op %r" % (op,)})
                continue
            emit_line("done", {"op": op})
        except Exception as e:
            emit_line("error", {"message": repr(e)})
    client.disconnect()
    emit_line("exit", {"code": 0})
    os._exit(0)  # never linger in a polling thread


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="http://localhost:5001",
                   help="website URL (may carry ?token=...)")
    p.add_argument("--space", default=None, help="exact space name")
    p.add_argument("--token", default=None, help="app token, sent in the Socket.IO auth")
    p.add_argument("--transports", default=",".join(DEFAULT_TRANSPORTS))
    p.add_argument("--control", action="store_true",
                   help="test aid: events out and commands in as JSON lines")
    p.add_argument("--no-register", action="store_true", help="do not register on connect")
    p.add_argument("--auto-answer", action="store_true",
                   help="answer every request with a completed result")
    p.add_argument("--answer-delay", type=float, default=0.0)
    p.add_argument("--reconnection-attempts", type=int, default=5)
    args = p.parse_args()
    if args.control:
        _control(args)
        return 0
    print("Use test_integration.py --mode client to serve a space, or --control.",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
