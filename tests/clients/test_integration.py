#!/usr/bin/python3
"""Integration test for Spaces apps, written from the Spaces protocol
(PROTOCOL.md), built on WebSocketSpacesClient.

    --mode client   connect to a space as its app and serve requests until
                    Ctrl+C (or --duration seconds): each request gets a
                    progress report and a completed result echoing the prompt.
    --mode e2e      the whole path once: the app registers; a user logs in
                    over HTTP (registering first if the login is refused);
                    submits a prompt; the app receives it, reports progress
                    and answers; the user polls the status until it is
                    completed with the app's result. Exit status 0 only when
                    every step passed.

    /usr/bin/python3 test_integration.py --mode client --host http://localhost:5001 --space S
    /usr/bin/python3 test_integration.py --mode e2e --host http://localhost:5001 --space S \\
        --username alice --password secret
"""

import argparse
import os
import signal
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from websocket_integration_client import WebSocketSpacesClient  # noqa: E402

try:
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
except (AttributeError, ValueError):
    pass


def site_base(host):
    """The website's base URL: the app URL without its query string."""
    u = urlsplit(host)
    return urlunsplit((u.scheme, u.netloc, "", "", "")).rstrip("/")


def echo_handler(client, request):
    rid = request["request_id"]
    prompt = (request.get("payload") or {}).get("prompt") or ""
    started = time.monotonic()
    client.send_progress(rid, 50, "Halfway")
    text = "Integration echo: %s" % prompt
    client.send_result(rid, {
        "text_output": text,
        "confidence": 0.99,
        "model_used": "integration-echo",
        "processing_time_seconds": round(time.monotonic() - started, 3),
        "tokens_used": len(text.split()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    print("[RESULT] answered %s..." % rid[:12])


def run_client(args):
    client = WebSocketSpacesClient(args.host, args.space, on_inference_request=echo_handler,
                                   token=args.token)
    if not client.connect() or not client.wait_for_connection(timeout=10):
        print("✗ Not connected: %s" % (client.last_message or "no register_response"))
        client.disconnect()
        return 1
    print("✓ Connected: connection %s, space %s" % (client.connection_id, client.space_id))
    # Served until Ctrl+C / SIGTERM, --duration, or the connection is lost
    # for good (after the client's own reconnection attempts).
    # A plain flag: Event.set() from a signal handler can deadlock with the
    # Event.wait() it interrupted.
    stop = {"now": False}

    def stop_now(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, stop_now)
    signal.signal(signal.SIGTERM, stop_now)
    deadline = time.monotonic() + args.duration if args.duration else None
    threading.Thread(target=lambda: (client.wait(), stop_now()), daemon=True).start()
    while not stop["now"] and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.1)
    client.disconnect()
    print("Served %d request(s)" % len(client.requests))
    return 0


class Steps:
    def __init__(self):
        self.results = []

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok)))
        print("%s %s%s" % ("✓" if ok else "✗", name, (": " + detail) if detail else ""))
        return bool(ok)


def login(base, username, password, session_cookie=None):
    import requests

    s = requests.Session()
    if session_cookie:
        s.cookies.set("spaces_session", session_cookie)
        return s, "cookie"
    r = s.post(base + "/login", data={"username": username, "password": password},
               timeout=10)
    if "invalid" in r.text.lower() or r.status_code >= 400:
        s.post(base + "/register", data={"username": username, "password": password,
                                         "confirm_password": password}, timeout=10)
        r = s.post(base + "/login", data={"username": username, "password": password},
                   timeout=10)
    ok = r.status_code == 200 and "spaces_session" in s.cookies.get_dict() and \
        "invalid" not in r.text.lower()
    return (s if ok else None), "login %s (%d)" % (username, r.status_code)


def run_e2e(args):
    steps = Steps()
    base = site_base(args.host)
    got = {}
    got_event = threading.Event()

    def handler(client, request):
        got[request["request_id"]] = (time.monotonic(), request)
        got_event.set()
        echo_handler(client, request)

    client = WebSocketSpacesClient(args.host, args.space, on_inference_request=handler,
                                   token=args.token)
    try:
        connected = client.connect() and client.wait_for_connection(timeout=10)
        if not steps.check("app registered", connected,
                           "connection %s, space %s" % (client.connection_id, client.space_id)
                           if connected else str(client.last_message)):
            return finish(steps)
        steps.check("is_connected() after registering", client.is_connected())
        space_id = args.space_id or client.space_id
        session, how = login(base, args.username, args.password, args.session_cookie)
        if not steps.check("user logged in", session is not None, how):
            return finish(steps)
        prompt = args.prompt
        sent = time.monotonic()
        r = session.post(base + "/websockets/submit/%s" % space_id,
                         data={"prompt": prompt}, headers=args.header_dict, timeout=10)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") \
            else {}
        rid = body.get("request_id")
        if not steps.check("request submitted", r.status_code == 200 and body.get("success")
                           and rid, "%d %s" % (r.status_code, body or r.text[:200])):
            return finish(steps)
        deadline = time.monotonic() + 5
        while rid not in got and time.monotonic() < deadline:
            got_event.wait(0.05)
            got_event.clear()
        latency = got[rid][0] - sent if rid in got else None
        steps.check("app received the request within 1 s", latency is not None and
                    latency <= 1.0, "%.3f s" % latency if latency is not None else "never")
        if rid in got:
            req = got[rid][1]
            steps.check("request carries the prompt and the user",
                        (req.get("payload") or {}).get("prompt") == prompt and
                        req.get("username") == (args.username or req.get("username")),
                        repr(req)[:300])
        status = None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            s = session.get(base + "/websockets/status", params={"request_id": rid},
                            timeout=10)
            status = s.json() if s.status_code == 200 else {"http": s.status_code}
            if status.get("status") in ("completed", "failed"):
                break
            time.sleep(0.1)
        result = (status or {}).get("result") or {}
        steps.check("status completed with the app's result",
                    (status or {}).get("status") == "completed" and
                    result.get("text_output") == "Integration echo: %s" % prompt,
                    repr(status)[:300])
    finally:
        client.disconnect()
    return finish(steps)


def finish(steps):
    passed = sum(1 for _, ok in steps.results if ok)
    total = len(steps.results)
    print("Total: %d/%d tests passed" % (passed, total))
    return 0 if total and passed == total else 1


def main():
    p = argparse.ArgumentParser(description="Spaces integration test")
    p.add_argument("--mode", choices=["client", "e2e"], default="client")
    p.add_argument("--host", default="http://localhost:5001")
    p.add_argument("--space", required=True, help="exact space name")
    p.add_argument("--space-id", default=None,
                   help="space id for the submit URL (default: from register_response)")
    p.add_argument("--token", default=None, help="app token (Socket.IO auth)")
    p.add_argument("--username", default="testuser")
    p.add_argument("--password", default="testpass123")
    p.add_argument("--session-cookie", default=None,
                   help="use this spaces_session cookie instead of logging in")
    p.add_argument("--header", action="append", default=[],
                   help="extra HTTP header for the submit, NAME:VALUE")
    p.add_argument("--prompt", default="Generate a haiku")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=0.0, help="client mode: stop after N s")
    args = p.parse_args()
    args.header_dict = dict(h.split(":", 1) for h in args.header)
    code = run_client(args) if args.mode == "client" else run_e2e(args)
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
