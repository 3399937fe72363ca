#!/usr/bin/python3
"""Mock inference app for Spaces: a simulated remote app, written from the
Spaces protocol (PROTOCOL.md). It dials out to the website over Socket.IO,
registers for a space, keeps its own queue of inference requests, works on
them one at a time (reporting progress at 25/50/75 %) and sends each result
back.

    /usr/bin/python3 mock_app.py --host http://localhost:5001 --spaces "My Space"
    /usr/bin/python3 mock_app.py --host "http://localhost:5001/?token=SECRET" --spaces S

The flags of the original mock_app.py (--host, --spaces, --verbose) work as
they do there; --space is the same as --spaces.

Test knobs: --delay (seconds of work per request), --fail-rate (share of
requests answered with status "failed"), --no-answer (receive requests but
never answer), --legacy-result (answer in the older {"success": true} form),
--token (app token in the Socket.IO auth), --transports.

Exit status: 0 after Ctrl+C / SIGTERM, 1 when the connection or the
registration fails, 2 when the connection is lost for good.
"""

import argparse
import datetime
import os
import queue
import random
import signal
import sys
import threading
import time

import socketio

try:
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
except (AttributeError, ValueError):
    pass


_out_lock = threading.RLock()  # also taken in signal handlers


def say(*lines):
    """Prints lines as one block: the Socket.IO thread and the worker both
    print, and their lines must not interleave."""
    text = "\n".join(str(x) for x in lines) + "\n"
    with _out_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class MockApp:
    def __init__(self, args):
        self.args = args
        self.sio = socketio.Client(
            reconnection=True,
            reconnection_attempts=5,
            reconnection_delay=1,
            reconnection_delay_max=5,
            logger=args.debug,
            engineio_logger=args.debug,
        )
        self.queue = queue.Queue()
        self.pending = 0  # received and not answered yet
        self.lock = threading.Lock()
        self.registered = False
        self.failed = False
        self.stopping = False
        self.connection_id = None
        self.space_id = None
        self.processed = 0
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("connect_error", self.on_connect_error)
        self.sio.on("register_response", self.on_register_response)
        self.sio.on("inference_request", self.on_inference_request)

    # -- connection -----------------------------------------------------------

    def on_connect(self):
        say("✓ Socket.IO connection established",
            '  Registering for space "%s"...' % self.args.space)
        self.sio.emit("register", {"space_name": self.args.space})

    def on_disconnect(self):
        self.registered = False
        if self.stopping or self.failed:
            say("Disconnected from website")
        else:
            say("✗ Disconnected from website (will try to reconnect)")

    def on_connect_error(self, data=None):
        say("✗ Connection error: %s" % (data,))

    def on_register_response(self, data):
        if isinstance(data, dict) and data.get("success"):
            self.registered = True
            self.connection_id = data.get("connection_id")
            self.space_id = data.get("space_id")
            say("✓ Registration successful",
                "  Connection ID: %s" % self.connection_id,
                "  Space ID: %s" % self.space_id,
                "  Message: %s" % data.get("message"),
                "Waiting for inference requests...")
        else:
            message = data.get("message") if isinstance(data, dict) else repr(data)
            say("✗ Registration failed: %s" % message)
            self.failed = True
            threading.Thread(target=self.sio.disconnect, daemon=True).start()

    # -- requests ---------------------------------------------------------------

    def on_inference_request(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
            say("✗ Malformed inference_request ignored: %r" % (data,))
            return
        payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
        request_id = data["request_id"]
        lines = ["", "[REQUEST] New inference request received",
                 "  Request ID: %s..." % request_id[:8],
                 "  Full ID: %s" % request_id,
                 "  User: %s" % data.get("username"),
                 "  Prompt: %s" % payload.get("prompt")]
        for key in sorted(payload):
            if key not in ("prompt", "timestamp"):
                lines.append("  Input %s: %s" % (key, payload[key]))
        if data.get("upload"):
            lines.append("  Upload: %s" % (data.get("upload"),))
        # python-socketio runs each handler in a thread of its own: count and
        # print under one lock, so the queue sizes are printed in order.
        with self.lock:
            self.pending += 1
            lines.append("  Queue size: %d" % self.pending)
            say(*lines)
        self.queue.put((time.monotonic(), data))

    def worker(self):
        while True:
            received_at, data = self.queue.get()
            if data is None:
                return
            try:
                self.process(received_at, data)
            except Exception as e:  # the app keeps serving
                say("✗ Processing failed: %r" % (e,))

    def process(self, received_at, data):
        request_id = data["request_id"]
        payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
        prompt = payload.get("prompt") or ""
        say("[PROCESSING] Request %s..." % request_id[:12])
        started = time.monotonic()
        if self.args.no_answer:
            say("  (--no-answer: this request will not be answered)")
            return
        step = self.args.delay / 4.0
        for pct in (25, 50, 75):
            time.sleep(step)
            self.emit("inference_progress", {"request_id": request_id, "progress": pct,
                                             "message": "Processing... %d%%" % pct})
            say("  Progress: %d%%" % pct)
        time.sleep(step)
        elapsed = time.monotonic() - started
        failed = random.random() < self.args.fail_rate
        if failed:
            status, result = "failed", {"error": "Simulated inference failure"}
        else:
            status = "completed"
            text = "[Mock] Generated response for: %s" % prompt
            result = {
                "text_output": text,
                "confidence": round(random.uniform(0.85, 0.99), 3),
                "model_used": "mock-model-v1",
                "processing_time_seconds": round(elapsed, 3),
                "tokens_used": len(text.split()),
                "timestamp": now_iso(),
            }
            inputs = sorted(k for k in payload if k not in ("prompt", "timestamp"))
            if inputs:
                result["inputs_received"] = {k: payload[k] for k in inputs}
        if self.args.legacy_result:
            message = {"request_id": request_id, "success": not failed, "result": result}
        else:
            message = {"request_id": request_id, "status": status, "result": result}
        self.emit("inference_result", message)
        with self.lock:
            self.pending = max(0, self.pending - 1)
            self.processed += 1
            say("[RESULT] Result sent for request %s... (%s, %.2fs)"
                % (request_id[:8], status, elapsed), "  Queue size: %d" % self.pending)

    def emit(self, event, data):
        # While reconnecting, wait for the registration rather than drop the
        # message (the server also redelivers what was not answered).
        deadline = time.monotonic() + 30
        while not (self.sio.connected and self.registered) and time.monotonic() < deadline:
            if self.stopping:
                return
            time.sleep(0.1)
        try:
            self.sio.emit(event, data)
        except socketio.exceptions.BadNamespaceError:
            say("✗ Not connected: %s for %s dropped" % (event, data.get("request_id")))

    # -- main -----------------------------------------------------------------

    def run(self):
        a = self.args
        say("=" * 60)
        say("Mock Inference App (Spaces)")
        say("=" * 60)
        say("Website: %s" % a.host)
        say("Space:   %s" % a.space)
        say("Delay:   %.2fs   Fail rate: %.2f%s" % (a.delay, a.fail_rate,
                                                     "   (no answers)" if a.no_answer else ""))
        threading.Thread(target=self.worker, daemon=True).start()
        say("Connecting to %s ..." % a.host)
        try:
            self.sio.connect(a.host, transports=a.transports.split(","),
                             auth={"token": a.token} if a.token else None, wait_timeout=5)
        except socketio.exceptions.ConnectionError as e:
            say("✗ Connection failed: %s" % (e,))
            return 1
        while True:
            self.sio.wait()
            # python-socketio 5.7's wait() also returns when a reconnection
            # succeeds within the one second it sleeps after a drop: only a
            # client that is really disconnected has given up.
            if self.stopping or self.failed or not self.sio.connected:
                break
        if self.stopping:
            return 0
        if self.failed:
            return 1
        say("✗ Connection lost")
        return 2

    def stop(self, *_):
        if self.stopping:
            return
        self.stopping = True
        say("", "Shutting down (processed %d request(s))" % self.processed)
        threading.Thread(target=self.sio.disconnect, daemon=True).start()


def main():
    p = argparse.ArgumentParser(description="Mock inference app for Spaces")
    p.add_argument("--host", default="http://localhost:5001",
                   help="website URL; may carry ?token=... for a space with an app token")
    # --spaces is the original mock_app.py's flag; --space is kept for older callers.
    p.add_argument("--spaces", "--space", dest="space", required=True,
                   help="exact name of the space")
    p.add_argument("--token", default=None, help="app token, sent in the Socket.IO auth")
    p.add_argument("--delay", type=float, default=2.0, help="seconds of work per request")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="share of requests answered with status failed (0..1)")
    p.add_argument("--no-answer", action="store_true", help="never answer (timeout tests)")
    p.add_argument("--legacy-result", action="store_true",
                   help='answer with the older {"success": true|false} form')
    p.add_argument("--transports", default="websocket,polling")
    p.add_argument("--debug", action="store_true", help="log Socket.IO and Engine.IO traffic")
    p.add_argument("--verbose", action="store_true",
                   help="accepted as the original mock_app.py does (its output is always full)")
    args = p.parse_args()

    app = MockApp(args)
    signal.signal(signal.SIGINT, app.stop)
    signal.signal(signal.SIGTERM, app.stop)
    code = app.run()
    sys.stdout.flush()
    # A python-socketio client may linger in a polling thread: leave now.
    os._exit(code)


if __name__ == "__main__":
    main()
