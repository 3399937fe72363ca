"""Observability (issue 13): /metrics in the Prometheus text format, read
with prometheus_client's own parser (Debian's python3-prometheus-client),
and the access log.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_metrics.py

Two servers on one throwaway PostgreSQL cluster: one serving /metrics on its
main port behind --metrics-token with a JSON access log, one with a metrics
listener of its own (--metrics-listen) and the text access log. A real app
(tests/clients/mock_app.py) answers real submissions between two scrapes;
the counters must have moved as the run did.
"""

import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

MOCK_APP = os.path.join(SOURCE, "tests", "clients", "mock_app.py")
TOKEN = "metrics-secret-0123456789"


@pytest.fixture(scope="module")
def pg():
    yield from harness.module_pg(database=False)


def start(pg, *extra):
    return harness.start_spaces_server(pg.url, extra_args=list(extra))


def scrape(url, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    r = requests.get(url, headers=headers, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(r.text):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def run_app_and_submit(server, pg, n):
    """Creates a space, runs mock_app.py for it, submits n requests and waits
    until every one is completed. Returns (site, app, request ids)."""
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space()
    app = harness.ChildProcess([harness.PYTHON, MOCK_APP, "--host", server.url, "--spaces",
                                name, "--delay", "0.1"], limit=90, name="mock_app")
    app.wait_line(r"Registration successful", timeout=30)
    user = site.user()
    ids = [site.submit_ok(user, sid, "metrics %d" % i) for i in range(n)]
    for rid in ids:
        assert site.wait_status(rid, want=("completed",), timeout=30)["status"] == "completed"
    return site, app, ids, sid


def test_metrics_behind_token_and_json_access_log(pg):
    server = start(pg, "--metrics-token", TOKEN, "--access-log", "json")
    app = None
    try:
        url = server.url + "/metrics"
        # Refused without the token, or with another one.
        r = requests.get(url, timeout=10)
        assert r.status_code == 401 and "Bearer" in r.headers.get("WWW-Authenticate", "")
        r = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert r.status_code == 401

        before, fams = scrape(url, TOKEN)
        # The families the issue names are there, with their types.
        for name, typ in [("spaces_connections", "gauge"),
                          ("spaces_engineio_sessions", "gauge"),
                          ("spaces_socketio_sockets", "gauge"),
                          ("spaces_engineio_packets_received", "counter"),
                          ("spaces_received_bytes", "counter"),
                          ("spaces_socketio_broadcasts", "counter"),
                          ("spaces_engineio_upgrades", "counter"),
                          ("spaces_engineio_heartbeat_timeouts", "counter"),
                          ("spaces_http_responses", "counter"),
                          ("spaces_db_pool_size", "gauge"),
                          ("spaces_db_queue_depth", "gauge"),
                          ("spaces_db_query_duration_seconds", "histogram"),
                          ("spaces_db_requests", "gauge"),
                          ("spaces_apps_connected", "gauge"),
                          ("spaces_request_wait_seconds", "histogram"),
                          ("spaces_request_run_seconds", "histogram"),
                          ("spaces_journal_bytes", "gauge")]:
            assert name in fams, "family %s missing from %s" % (name, sorted(fams))
            assert fams[name].type == typ, (name, fams[name].type)
        assert val(before, "spaces_metrics_db_ok") == 1
        assert val(before, "spaces_apps_connected") == 0

        site, app, ids, sid = run_app_and_submit(server, pg, 3)
        after, _ = scrape(url, TOKEN)

        def moved(name, **labels):
            return val(after, name, **labels) - val(before, name, **labels)

        assert moved("spaces_requests_total", event="submitted") == 3
        assert moved("spaces_requests_total", event="dispatched") == 3
        assert moved("spaces_requests_total", event="completed") == 3
        assert moved("spaces_request_run_seconds_count") == 3
        assert moved("spaces_request_wait_seconds_count") == 3
        assert val(after, "spaces_request_run_seconds_bucket", le="+Inf") == \
            val(after, "spaces_request_run_seconds_count")
        # The app's delay is 0.1 s: no run is counted under 10 ms.
        assert val(after, "spaces_request_run_seconds_bucket", le="0.01") == 0
        assert val(after, "spaces_apps_connected") == 1
        assert val(after, "spaces_socketio_sockets", namespace="/") >= 1
        assert val(after, "spaces_connections", transport="websocket") >= 1
        assert total(after, "spaces_engineio_sessions_opened_total") > \
            total(before, "spaces_engineio_sessions_opened_total")
        assert moved("spaces_engineio_packets_received_total") >= 4  # register + 3 results
        assert moved("spaces_http_responses_total", route="/websockets/submit/*",
                     code="2xx") == 3
        assert moved("spaces_http_responses_total", route="/websockets/status", code="2xx") >= 3
        assert moved("spaces_db_queries_total", outcome="ok") >= 6
        assert moved("spaces_db_query_duration_seconds_count") >= 6
        assert val(after, "spaces_db_requests", status="completed") >= 3
        assert val(after, "spaces_db_pool_size") >= 1
        assert moved("spaces_received_bytes_total") > 0 and moved("spaces_sent_bytes_total") > 0

        # A 404 counts under route "none".
        assert requests.get(server.url + "/no-such-page", timeout=10).status_code == 404
        again, _ = scrape(url, TOKEN)
        assert val(again, "spaces_http_responses_total", route="none", code="4xx") >= 1

        # Access log: JSON lines with the request id sent as X-Request-Id.
        r = requests.get(server.url + "/healthz?secret=1", timeout=10)
        rid = r.headers.get("X-Request-Id")
        assert rid and re.match(r"^[A-Za-z0-9_-]+-\d+$", rid), r.headers

        def line_for(request_id):
            for line in server.stderr().splitlines():
                if line.startswith("{") and '"request_id":"%s"' % request_id in line:
                    return json.loads(line)
            return None

        rec = harness.wait_until("access line of %s" % rid, lambda: line_for(rid), 10)
        assert rec["type"] == "http" and rec["method"] == "GET" and rec["status"] == 200
        assert rec["path"] == "/healthz", rec  # the query is not logged
        assert isinstance(rec["duration_ms"], int) and rec["remote"] == "127.0.0.1", rec

        # The request's life in info lines.
        log = server.stderr()
        for rid in ids:
            assert re.search(r"request %s submitted to space" % rid, log), rid
            assert re.search(r"request %s dispatched to app" % rid, log), rid
            assert re.search(r"request %s completed" % rid, log), rid

        # A request its user cancels (held by an app that takes a minute).
        sid2, name2 = site.create_space()
        slow = harness.ChildProcess([harness.PYTHON, MOCK_APP, "--host", server.url, "--spaces",
                                     name2, "--delay", "60"], limit=90, name="slow_app")
        try:
            slow.wait_line(r"Registration successful", timeout=30)
            user = site.user()
            victim = site.submit_ok(user, sid2, "to be cancelled")
            r = user.session.post(server.url + "/websockets/cancel/" + victim, timeout=30)
            assert r.status_code == 200 and r.json() == {"success": True}, r.text
            later, _ = scrape(url, TOKEN)
            assert val(later, "spaces_requests_total", event="cancelled") - \
                val(again, "spaces_requests_total", event="cancelled") == 1
            assert val(before, "spaces_requests_total", event="cancelled") == 0
        finally:
            slow.close()

        # The app's WebSocket ends: one line with its duration and bytes.
        app.close()
        app = None

        def ws_line():
            for line in server.stderr().splitlines():
                if line.startswith("{") and '"type":"websocket"' in line:
                    return json.loads(line)
            return None

        rec = harness.wait_until("websocket access line", ws_line, 15)
        assert rec["path"] == "/socket.io/" and rec["bytes_in"] > 0 and rec["bytes_out"] > 0
        assert "close_code" in rec and isinstance(rec["duration_ms"], int), rec
        server.stop()
    finally:
        if app is not None:
            app.close()
        if server.alive():
            server.kill()


def test_metrics_listener_and_text_access_log(pg):
    port = harness.free_port()
    server = start(pg, "--metrics-listen", "127.0.0.1:%d" % port)  # access log: text by default
    try:
        # Not on the main port, token or not.
        assert requests.get(server.url + "/metrics", timeout=10).status_code == 404
        samples, _ = scrape("http://127.0.0.1:%d/metrics" % port)
        assert val(samples, "spaces_db_pool_size") >= 1
        assert val(samples, "spaces_http_responses_total", route="/healthz", code="2xx") >= 1
        r = requests.get(server.url + "/healthz", timeout=10)
        rid = r.headers["X-Request-Id"]
        line = harness.wait_until(
            "text access line", lambda: next((ln for ln in server.stderr().splitlines()
                                              if "id=%s " % rid in ln), None), 10)
        assert "[access] http 127.0.0.1 \"GET /healthz\" 200" in line, line
        assert re.search(r" \d+ms id=", line), line
        server.stop()
    finally:
        if server.alive():
            server.kill()


def test_access_log_off(pg):
    server = start(pg, "--access-log", "off")
    try:
        r = requests.get(server.url + "/healthz", timeout=10)
        assert "X-Request-Id" not in r.headers
        assert requests.get(server.url + "/metrics", timeout=10).status_code == 404
        assert "[access]" not in server.stderr()
        server.stop()
    finally:
        if server.alive():
            server.kill()
