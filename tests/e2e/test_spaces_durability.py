"""Durability of apps' results (issue 10): a result an app sends while
PostgreSQL is away, or while it is away and the server is killed, is kept
(in the results journal, DATA_DIR/results.journal) and written when the
database is back, exactly once; progress messages are kept whole.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_spaces_durability.py

Same environment variables as test_spaces_faults.py. The app is
tests/clients/websocket_integration_client.py --control, answered by the
test itself: each request is answered once, never again when it is sent a
second time, so a result the server loses shows up as a request that does
not complete. A trigger logs every write of a final status, so that a
request completed twice shows up too.
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402

PYTHON = harness.PYTHON
CONTROL_APP = os.path.join(SOURCE, "tests", "clients", "websocket_integration_client.py")
wait_until = harness.wait_until


class Pg:
    """The module's PostgreSQL cluster, knowing whether it runs."""

    def __init__(self):
        self.cluster = harness.PgCluster()
        self.url = self.cluster.url
        self.running = True

    def stop(self):
        self.cluster.stop()
        self.running = False

    def start(self):
        self.cluster.start()
        self.running = True

    def sql(self, query, **kw):
        return self.cluster.sql(query, **kw)


@pytest.fixture(scope="module")
def module_pg():
    argv = harness.spaces_server_command()
    if "/" in argv[0] and not os.path.exists(argv[0]):
        pytest.fail("%s does not exist: build it (make build)" % argv[0])
    pg = Pg()
    try:
        yield pg
    finally:
        pg.cluster.close()


@pytest.fixture
def env(module_pg):
    """One cluster for the module (each test makes spaces and users of its
    own), running again at the end of every test; servers and apps per test."""
    pg = module_pg
    children, servers = [], []
    try:
        yield pg, children, servers
    finally:
        for c in children:
            try:
                c.close()
            except Exception:
                pass
        for s in servers:
            if s.alive():
                s.kill()
        if not pg.running:
            pg.start()


def start(pg, servers, **kw):
    server = harness.start_spaces_server(pg.url, **kw)
    servers.append(server)
    return server


def log_finishes(pg):
    """Every UPDATE that leaves a request completed or failed, logged."""
    pg.sql("""
        CREATE TABLE IF NOT EXISTS test_finishes (request_id text, status text,
                                                  result jsonb);
        CREATE OR REPLACE FUNCTION test_log_finish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO test_finishes VALUES (NEW.id, NEW.status, NEW.result);
          RETURN NEW;
        END $$;
        DROP TRIGGER IF EXISTS test_finish ON requests;
        CREATE TRIGGER test_finish AFTER UPDATE ON requests FOR EACH ROW
          WHEN (NEW.status IN ('completed', 'failed')) EXECUTE FUNCTION test_log_finish();
    """)


def app_process(children, server, name):
    app = harness.ChildProcess([PYTHON, CONTROL_APP, "--control", "--host", server.url,
                                "--space", name, "--reconnection-attempts", "0"],
                               limit=170, name="app")
    children.append(app)
    data = app.wait_event("register_response")[2]["data"]
    assert data.get("success") is True, data
    return app


def answer_for(rid):
    return {"text_output": "answer to %s" % rid, "model_used": "durability-test"}


class Answerer:
    """Answers every request the app is sent, once, ``delay`` seconds after
    it first arrived; a request sent again is not answered again."""

    def __init__(self, app, delay):
        self.app = app
        self.delay = delay
        self.seen = {}  # request id -> time first seen
        self.answered = []  # (time, request id)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        due = []
        while not self.stop.is_set():
            with self.app.cond:
                events = self.app.events[i:]
                i += len(events)
            for t, ev in events:
                if ev.get("event") == "inference_request":
                    rid = ev["data"]["request_id"]
                    with self.lock:
                        if rid not in self.seen:
                            self.seen[rid] = t
                            due.append((t + self.delay, rid))
            now = time.monotonic()
            for item in [d for d in due if d[0] <= now]:
                due.remove(item)
                self.app.send({"op": "result", "request_id": item[1],
                               "result": answer_for(item[1])})
                with self.lock:
                    self.answered.append((time.monotonic(), item[1]))
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        self.thread.join(10)


class Load:
    """A user submitting every ``period`` s; keeps the accepted ids."""

    def __init__(self, site, user, space_id, period):
        self.site, self.user, self.space_id, self.period = site, user, space_id, period
        self.accepted, self.refused = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                code, body = self.site.submit(self.user, self.space_id, "load #%d" % n)
                if code == 200 and body.get("success") and body.get("request_id"):
                    self.accepted.append(body["request_id"])
                else:
                    self.refused.append(code)
            except Exception as e:
                self.refused.append(repr(e)[:80])
            self.stop.wait(self.period)

    def finish(self):
        self.stop.set()
        self.thread.join(60)


def check_all_completed_once(pg, ids, timeout, context):
    """Every id ends completed with its answer, finished exactly once."""
    arr = "{%s}" % ",".join(ids)

    def done():
        rows = pg.sql("SELECT count(*) FROM requests WHERE id = ANY(:'ids') "
                      "AND status IN ('completed', 'failed')", ids=arr)
        return int(rows[0][0]) == len(ids)

    try:
        wait_until("every accepted request finished", done, timeout, interval=0.3)
    except AssertionError:
        rows = pg.sql("SELECT id, status, attempts, coalesce(connection_id, '-'), "
                      "coalesce(result::text, '-') FROM requests WHERE id = ANY(:'ids') "
                      "AND status NOT IN ('completed', 'failed') LIMIT 10", ids=arr)
        raise AssertionError("not finished:\n%s\n%s" % (
            "\n".join("\t".join(r) for r in rows), context()))
    rows = pg.sql("SELECT id, status, result->>'text_output', result::text FROM requests "
                  "WHERE id = ANY(:'ids')", ids=arr)
    assert len(rows) == len(ids)
    bad = [r for r in rows if r[1] != "completed" or r[2] != "answer to %s" % r[0]]
    assert not bad, "%d of %d not completed with their app's result, e.g. %r\n%s" % (
        len(bad), len(ids), bad[:5], context())
    finishes = pg.sql("SELECT request_id, count(*), string_agg(status, ',') FROM test_finishes "
                      "WHERE request_id = ANY(:'ids') GROUP BY request_id", ids=arr)
    twice = [r for r in finishes if r[1] != "1"]
    assert not twice, "requests finished more than once: %r" % twice[:5]
    assert len(finishes) == len(ids)


def test_progress_message_cut_inside_a_character_is_kept(env):
    """A progress message longer than 500 bytes is cut to 500 bytes, on a
    character boundary: cut inside a character it was not UTF-8, and the
    whole update was refused by PostgreSQL and silently dropped."""
    pg, children, servers = env
    server = start(pg, servers)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=60)
    app = app_process(children, server, name)
    rid = site.submit_ok(site.user(), sid, "progress")
    app.wait_event("inference_request", pred=lambda e: e["data"]["request_id"] == rid)
    message = "a" * 499 + "\u00e9" * 10  # bytes 500-501 are one character
    app.send({"op": "progress", "request_id": rid, "progress": 42, "message": message})
    wait_until("the progress is written", lambda: site.request_row(rid)["progress"] == "42",
               10, context=lambda: server.stderr()[-3000:])
    rows = pg.sql("SELECT progress_message FROM requests WHERE id = :'id'", id=rid)
    assert rows == [["a" * 499]], rows
    # Many updates at once: the latest wins, and it is written.
    for p in range(1, 61):
        app.send({"op": "progress", "request_id": rid, "progress": p,
                  "message": "step %d" % p})
    wait_until("the latest progress is written", lambda: pg.sql(
        "SELECT progress, progress_message FROM requests WHERE id = :'id'", id=rid) ==
        [["60", "step 60"]], 10)
    server.stop()


def test_results_survive_postgres_restarts_under_load(env):
    """An app serving ~20 requests/s while PostgreSQL is stopped for 5 s and
    started, twice: every accepted request ends completed with its app's
    result, once."""
    pg, children, servers = env
    server = start(pg, servers)
    log_finishes(pg)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=30)
    app = app_process(children, server, name)
    answerer = Answerer(app, delay=1.0)
    # Four users, each submitting every 0.2 s: up to 20 requests/s.
    loads = [Load(site, site.user(), sid, period=0.2) for _ in range(4)]
    started = time.monotonic()
    time.sleep(2.0)
    for _ in range(2):
        pg.stop()
        time.sleep(5.0)
        pg.start()
        time.sleep(3.0)
    for load in loads:
        load.finish()
    accepted = [r for load in loads for r in load.accepted]
    refused = [r for load in loads for r in load.refused]
    assert len(accepted) >= 40, "too little load: %d accepted" % len(accepted)
    check_all_completed_once(pg, accepted, 40, lambda: server.stderr()[-5000:])
    answerer.finish()
    print("accepted %d in %.0f s, refused %d, answers sent %d" % (
        len(accepted), time.monotonic() - started, len(refused), len(answerer.answered)))
    server.stop()


def test_results_survive_an_outage_longer_than_the_request_timeout(env):
    """Results sent while PostgreSQL is away for longer than the request
    timeout: the deadlines pass meanwhile, yet the requests were answered,
    so they end completed, not timed out."""
    pg, children, servers = env
    server = start(pg, servers)
    log_finishes(pg)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=8)
    app = app_process(children, server, name)
    user = site.user()
    ids = [site.submit_ok(user, sid, "r%d" % i) for i in range(12)]
    for rid in ids:
        app.wait_event("inference_request", pred=lambda e, r=rid: e["data"]["request_id"] == r)
    # The same 8 s for all, from now, however slow the submissions were.
    pg.sql("UPDATE requests SET deadline_at = now() + interval '8 seconds' "
           "WHERE id = ANY(:'ids')", ids="{%s}" % ",".join(ids))
    pg.stop()
    stopped = time.monotonic()
    mark = len(app.events)
    for rid in ids:
        app.send({"op": "result", "request_id": rid, "result": answer_for(rid)})
    app.send({"op": "ping"})
    app.wait_event("done", start=mark, pred=lambda e: e["data"]["op"] == "ping")
    # Every deadline passes while the database is away.
    time.sleep(max(0.0, 10.0 - (time.monotonic() - stopped)))
    pg.start()
    check_all_completed_once(pg, ids, 30, lambda: server.stderr()[-5000:])
    server.stop()


@pytest.mark.parametrize("delay", ["0", "10000"])
def test_results_survive_a_server_crash_while_postgres_is_down(env, delay):
    """Results sent while PostgreSQL is away, then the server SIGKILLed:
    started again (same --data-dir), it writes them from its journal; they
    are not sent to the app again, and end completed once. Whatever the
    journal delay: a result taken while the database is away is journaled
    at once (with 10 s, the wait below would otherwise time out)."""
    pg, children, servers = env
    server = start(pg, servers, extra_args=["--journal-delay-ms", delay])
    log_finishes(pg)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=60)
    app = app_process(children, server, name)
    user = site.user()
    ids = [site.submit_ok(user, sid, "r%d" % i) for i in range(12)]
    for rid in ids:
        app.wait_event("inference_request", pred=lambda e, r=rid: e["data"]["request_id"] == r)
    pg.stop()
    mark = len(app.events)
    for rid in ids:
        app.send({"op": "result", "request_id": rid, "result": answer_for(rid)})
    app.send({"op": "ping"})
    app.wait_event("done", start=mark, pred=lambda e: e["data"]["op"] == "ping")
    journal = os.path.join(server.data_dir or "", "results.journal")

    def journaled():
        try:
            with open(journal, "rb") as f:
                return f.read().count(b"\n") >= len(ids)
        except OSError:
            return False

    if server.data_dir:
        wait_until("the results are in the journal", journaled, 10,
                   context=lambda: server.stderr()[-3000:])
    else:
        time.sleep(1.0)
    harness.sigkill_server(server)
    pg.start()
    mark = len(app.events)
    server = start(pg, servers, port=server.port, data_dir=server.data_dir,
                   extra_args=["--journal-delay-ms", delay])
    check_all_completed_once(pg, ids, 30, lambda: server.stderr()[-5000:])
    # The app came back, and was not sent the requests it had answered.
    app.wait_event("register_response", start=mark, timeout=20,
                   pred=lambda e: e["data"].get("success") is True)
    time.sleep(0.5)
    again = [ev["data"]["request_id"] for _, ev in app.events[mark:]
             if ev.get("event") == "inference_request"]
    assert not set(again) & set(ids), "answered requests sent again: %r" % again
    server.stop()


def test_a_full_journal_refuses_results_and_says_so(env):
    """Results waiting for the database fill the journal up to
    --journal-max-bytes: the next ones are refused with an error in the log
    (never dropped silently), the ones taken are still written."""
    pg, children, servers = env
    server = start(pg, servers, extra_args=["--journal-max-bytes", "65536"])
    log_finishes(pg)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=60)
    app = app_process(children, server, name)
    user = site.user()
    ids = [site.submit_ok(user, sid, "r%d" % i) for i in range(6)]
    for rid in ids:
        app.wait_event("inference_request", pred=lambda e, r=rid: e["data"]["request_id"] == r)
    pg.stop()
    mark = len(app.events)
    for rid in ids:  # about 15 KB each: four fit in 64 KiB
        result = dict(answer_for(rid), padding="x" * 15000)
        app.send({"op": "result", "request_id": rid, "result": result})
    app.send({"op": "ping"})
    app.wait_event("done", start=mark, pred=lambda e: e["data"]["op"] == "ping")
    wait_until("two results refused, with an error logged",
               lambda: server.stderr().count("the results journal is full") == 2, 10,
               context=lambda: server.stderr()[-3000:])
    pg.start()
    check_all_completed_once(pg, ids[:4], 30, lambda: server.stderr()[-5000:])
    rows = pg.sql("SELECT status FROM requests WHERE id = ANY(:'ids')",
                  ids="{%s}" % ",".join(ids[4:]))
    assert rows == [["processing"], ["processing"]], rows
    server.stop()


def test_final_status_is_answered_from_memory_until_its_space_is_deleted(env):
    """GET /websockets/status of a finished request: the server keeps the
    final document, so polls of it still answer while PostgreSQL is away
    (without the cache: 500). A request failed by its deadline is not kept
    (a result taken before it may still complete it). Deleting the space
    deletes its requests: the status is then 404, not the kept document."""
    pg, children, servers = env
    server = start(pg, servers)
    site = harness.SpacesSite(server.url, pg)
    sid, name = site.create_space(timeout_seconds=60)
    app = app_process(children, server, name)
    user = site.user()
    rid = site.submit_ok(user, sid, "kept")
    app.wait_event("inference_request", pred=lambda e: e["data"]["request_id"] == rid)
    app.send({"op": "result", "request_id": rid, "result": answer_for(rid)})
    body = site.wait_status(rid, want=("completed",))
    assert body["result"] == answer_for(rid), body
    # One not answered: failed by its deadline, not kept.
    late = site.submit_ok(user, sid, "late")
    app.wait_event("inference_request", pred=lambda e: e["data"]["request_id"] == late)
    pg.sql("UPDATE requests SET deadline_at = now() - interval '1 second' WHERE id = :'id'",
           id=late)
    timed_out = site.wait_status(late, want=("failed",), timeout=30)
    assert timed_out.get("reason") == "timeout", timed_out
    pg.stop()
    code, again = site.status(rid)
    assert code == 200 and again == body, (code, again, body)
    code, other = site.status(late)
    assert code >= 500, (code, other)
    pg.start()
    wait_until("the database is back", lambda: site.status(late)[0] == 200, 30)
    r = site.admin().session.post(site.url + "/admin/space/delete/" + sid,
                                  allow_redirects=False, timeout=20)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    code, gone = site.status(rid)
    assert code == 404, (code, gone)
    server.stop()


def test_results_confirmed_within_the_journal_delay_never_touch_the_disk(env):
    """With PostgreSQL up and a journal delay longer than its answers take,
    results are written to PostgreSQL and the journal file is never
    written (its modification time and size do not change); with the delay
    at 0 every result is appended, then the file truncated."""
    pg, children, servers = env
    for delay, touched in (("10000", False), ("0", True)):
        server = start(pg, servers, extra_args=["--journal-delay-ms", delay])
        if not server.data_dir:
            pytest.skip("the server runs without --data-dir here")
        journal = os.path.join(server.data_dir, "results.journal")
        log_finishes(pg)
        site = harness.SpacesSite(server.url, pg)
        sid, name = site.create_space(timeout_seconds=60)
        app = app_process(children, server, name)
        user = site.user()
        before = os.stat(journal)
        ids = [site.submit_ok(user, sid, "r%d" % i) for i in range(5)]
        for rid in ids:
            app.wait_event("inference_request",
                           pred=lambda e, r=rid: e["data"]["request_id"] == r)
            app.send({"op": "result", "request_id": rid, "result": answer_for(rid)})
        check_all_completed_once(pg, ids, 30, lambda: server.stderr()[-5000:])
        server.stop()
        after = os.stat(journal)
        assert after.st_size == 0, after
        changed = after.st_mtime_ns != before.st_mtime_ns
        assert changed == touched, (delay, before.st_mtime_ns, after.st_mtime_ns)
