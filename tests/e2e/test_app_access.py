"""App access (issue 11): who may register as a space's app, against the real
spaces-server and a real, throwaway PostgreSQL cluster, with the Python apps
of tests/clients/ (mock_app.py, websocket_integration_client.py).

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_app_access.py

    SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug)
    SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server

The module's server runs as in production (no --legacy-open-spaces): a new
space is 'token' with a generated token. It allows many failed registrations
per address, so that the tests' impostors do not trip the limit, which has a
test (and a server) of its own, as do --legacy-open-spaces and cluster mode.
"""

import html
import os
import re
import shlex
import sys
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
CHILD_LIMIT = 90


class Env:
    def __init__(self, pg, server):
        self.pg = pg
        self.server = server
        self.site = harness.SpacesSite(server.url, pg)
        self.children = []

    def child(self, argv, name):
        c = harness.ChildProcess([PYTHON] + argv, limit=CHILD_LIMIT, name=name)
        self.children.append(c)
        return c

    def control_app(self, space_name, *extra, host=None, name="app", url=None):
        argv = [CONTROL_APP, "--control", "--host", host or url or self.server.url,
                "--space", space_name, "--reconnection-attempts", "0"]
        return self.child(argv + list(extra), name)

    def close_children(self):
        for c in self.children:
            try:
                c.close()
            except Exception:
                pass
        self.children = []

    # -- the admin's side, over HTTP ------------------------------------------

    def admin(self):
        return self.site.admin().session

    def new_space(self, **kw):
        """A space made through POST /admin/space/add (as the site makes
        them), then max_apps etc. set with SQL."""
        return self.site.create_space(**kw)

    def edit_page(self, space_id):
        r = self.admin().get(self.server.url + "/admin/space/edit/" + space_id, timeout=10)
        assert r.status_code == 200, r.text[:500]
        return r.text

    def command(self, page):
        """The "Connect an app" command line of a page, as a shell would read it."""
        m = re.search(r'<pre id="connect-cmd" class="cmd">([^<]*)</pre>', page)
        assert m, "no connect command on the page"
        return html.unescape(m.group(1))

    def token_of(self, space_id):
        cmd = self.command(self.edit_page(space_id))
        m = re.search(r"\?token=([A-Za-z0-9_-]+)'", cmd)
        assert m, cmd
        return m.group(1)

    def access(self, space_id, action):
        r = self.admin().post(self.server.url + "/admin/space/token/" + space_id,
                              data={"action": action}, allow_redirects=False, timeout=10)
        assert r.status_code == 302, (r.status_code, r.text[:500])
        assert r.headers["Location"].startswith("/admin/space/edit/" + space_id)

    def delete(self, space_id):
        r = self.admin().post(self.server.url + "/admin/space/delete/" + space_id,
                              allow_redirects=False, timeout=10)
        assert r.status_code == 302, (r.status_code, r.text[:500])


@pytest.fixture(scope="module")
def pg():
    yield from harness.module_pg(database=False)


@pytest.fixture(scope="module")
def env(pg):
    server = harness.start_spaces_server(pg.url, legacy_open_spaces=False,
                                         extra_args=["--app-register-failures", "1000"])
    try:
        e = Env(pg, server)
        yield e
        e.close_children()
        server.stop()  # exit 0, no sanitizer report
    finally:
        if server.alive():
            server.kill()


@pytest.fixture(autouse=True)
def each(request):
    yield
    if "env" in request.fixturenames:
        e = request.getfixturevalue("env")
        e.close_children()
        e.server.assert_alive()


def register_response(app, timeout=15.0, start=0):
    return app.wait_event("register_response", timeout=timeout, start=start)[2]["data"]


def registered(app, timeout=15.0):
    data = register_response(app, timeout)
    assert data.get("success") is True, "register failed: %r\n%s" % (data, app.output()[-3000:])
    return data


def refused(app, *words):
    data = register_response(app)
    assert data.get("success") is False, data
    for w in words:
        assert w in data.get("message", "").lower(), (w, data)
    app.wait_event("disconnect", timeout=10)
    return data


def kicked(app, *words):
    """After a successful registration: a register_response saying why,
    then the server's disconnect."""
    i, _, _ = app.wait_event("register_response")
    data = register_response(app, start=i + 1)
    assert data.get("success") is False, data
    for w in words:
        assert w in data.get("message", "").lower(), (w, data)
    app.wait_event("disconnect", timeout=10)
    return data


def in_log(server, pattern, timeout=10.0):
    harness.wait_until("server log line %r" % pattern,
                       lambda: re.search(pattern, server.stderr()), timeout,
                       context=lambda: server.stderr()[-3000:])


def request_of(app, request_id, timeout=10.0):
    app.wait_event("inference_request", timeout=timeout,
                   pred=lambda ev: isinstance(ev.get("data"), dict)
                   and ev["data"].get("request_id") == request_id)


def run_command(env, cmd, name):
    """Runs a "Connect an app" command line as a shell would, with this
    machine's python3 and the repository's mock_app.py."""
    argv = shlex.split(cmd)
    assert argv[:2] == ["python3", "mock_app.py"], argv
    return env.child([MOCK_APP] + argv[2:], name)


# ---------------------------------------------------------------------------
# token spaces


def test_new_space_is_token_and_impostor_is_refused(env):
    """Today a new space has no token: an app registering by name alone
    gets its users' prompts. Now it is refused, with and without a wrong
    token; the space's own token is taken in the auth and in ?token=."""
    sid, name = env.new_space(max_apps=3)
    row = env.pg.sql("SELECT app_access, app_token IS NOT NULL, app_token_hash IS NOT NULL "
                     "FROM spaces WHERE id = :'i'", i=sid)
    assert row == [["token", "t", "t"]], row
    impostors = [(env.control_app(name, name="impostor"), "requires an app token"),
                 (env.control_app(name, "--token=guess", name="guess"), "invalid app token"),
                 (env.control_app(name, host=env.server.url + "/?token=guess", name="guess-url"),
                  "invalid app token")]
    for app, why in impostors:
        refused(app, why)
    in_log(env.server, r"app 127\.0\.0\.1\S* refused: Space \"%s\" requires an app token"
           % re.escape(name))
    token = env.token_of(sid)
    assert registered(env.control_app(name, "--token=" + token, name="auth"))["space_id"] == sid
    by_url = env.control_app(name, host=env.server.url + "/?token=" + token, name="url")
    assert registered(by_url)["space_id"] == sid
    # The unmodified mock_app.py's command line: the token in its --host URL.
    mock = env.child([MOCK_APP, "--host", env.server.url + "/?token=" + token,
                      "--spaces", name], "mock_app")
    mock.wait_line(r"Registration successful", timeout=15)
    user = env.site.user()
    code, body = env.site.submit(user, sid, "for the real apps")
    assert code == 200, body


def test_connect_snippet_is_the_exact_command_and_works(env):
    sid, name = env.new_space(name=env.site.unique("It's a space"))
    page = env.edit_page(sid)
    cmd = env.command(page)
    token = env.token_of(sid)
    assert cmd == "python3 mock_app.py --host '%s/?token=%s' --spaces '%s'" % (
        env.server.url, token, name.replace("'", "'\\''")), cmd
    # A copy button for it, handled by spaces.js (no inline script: CSP).
    assert 'data-copy="connect-cmd"' in page
    assert '<script src="/static/spaces.js"></script>' in page
    js = env.admin().get(env.server.url + "/static/spaces.js", timeout=10).text
    assert "data-copy" in js and "clipboard" in js
    # The space page shows it to admins, and never the token to anyone else.
    assert env.command(env.admin().get(env.server.url + "/ai_project/" + sid,
                                       timeout=10).text) == cmd
    user = env.site.user()
    other = user.session.get(env.server.url + "/ai_project/" + sid, timeout=10).text
    assert token not in other and "connect-cmd" not in other
    # Run exactly that command line: the app registers and serves a request.
    app = run_command(env, cmd, "snippet-app")
    app.wait_line(r"Registration successful", timeout=15)
    rid = env.site.submit_ok(user, sid, "from the snippet")
    body = env.site.wait_status(rid, timeout=30)
    assert body["status"] == "completed", body


COPY_SCRIPT = r"""
// node - URL COOKIE: opens URL in headless Chromium as the session COOKIE,
// clicks the copy button of the "Connect an app" command, prints what the
// clipboard then holds.
const path = require("node:path");
const { chromium } = require(path.join(process.cwd(), "node_modules", "playwright-core"));
(async () => {
  const [url, cookie] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"] });
  try {
    const origin = new URL(url).origin;
    const ctx = await browser.newContext();
    await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    await ctx.addCookies([{ name: "spaces_session", value: cookie, url: origin }]);
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Script errors and CSP refusals count; a missing favicon does not.
    page.on("console", (m) => {
      if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    await page.goto(url);
    await page.click("button[data-copy=connect-cmd]");
    await page.waitForSelector("button[data-copy=connect-cmd][data-copied]", { timeout: 10000 });
    const out = await page.evaluate(async () => ({
      copied: document.querySelector("button[data-copy=connect-cmd]").getAttribute("data-copied"),
      note: document.querySelector(".copy-note").textContent,
      shown: document.getElementById("connect-cmd").textContent,
      clipboard: await navigator.clipboard.readText(),
    }));
    out.errors = errors;
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_copy_button_in_chromium(env):
    """The copy button (spaces.js, under the page's strict CSP) puts the
    exact command line on the clipboard."""
    import json
    import subprocess

    sid, name = env.new_space()
    cmd = env.command(env.edit_page(sid))
    out = subprocess.run(["timeout", "-k", "5", "90", harness.node_executable(), "-",
                          env.server.url + "/admin/space/edit/" + sid, env.site.admin().cookie],
                         input=COPY_SCRIPT, cwd=os.path.join(SOURCE, "tests"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["shown"] == cmd, got
    assert got["copied"] == "1" and got["note"] == "Copied.", got
    assert got["clipboard"] == cmd, got
    assert not got["errors"], got


def test_regenerating_twice_disconnects_the_old_token_app(env):
    """Today regenerating (twice) leaves the app of the old token connected,
    and the real app with the new token is refused with "Space already has
    a connected app". Now the old one is disconnected, its request goes back
    to the queue and reaches the real app."""
    sid, name = env.new_space()  # max_apps 1
    old = env.token_of(sid)
    impostor = env.control_app(name, "--token=" + old, name="old-token")
    registered(impostor)
    user = env.site.user()
    rid = env.site.submit_ok(user, sid, "held by the old app")
    request_of(impostor, rid)
    env.access(sid, "generate")
    env.access(sid, "generate")
    new = env.token_of(sid)
    assert new != old
    kicked(impostor, "token", "replaced")
    in_log(env.server, r"app \S+ \(127\.0\.0\.1\S*\) of space \"%s\" disconnected: the app "
           r"token of space \"%s\" was replaced" % (re.escape(name), re.escape(name)))
    harness.wait_until("request back in the queue",
                       lambda: env.site.request_row(rid)["status"] == "queued", 10)
    refused(env.control_app(name, "--token=" + old, name="old-again"), "invalid app token")
    real = env.control_app(name, "--token=" + new, "--auto-answer", name="real")
    registered(real)
    request_of(real, rid)
    body = env.site.wait_status(rid, timeout=20)
    assert body["status"] == "completed", body


def test_deleting_a_space_disconnects_its_apps(env):
    sid, name = env.new_space()
    app = env.control_app(name, "--token=" + env.token_of(sid), name="app")
    conn = registered(app)["connection_id"]
    env.delete(sid)
    kicked(app, "deleted")
    in_log(env.server, r"app %s \(\S+\) of space \"%s\" disconnected: space \"%s\" was deleted"
           % (conn, re.escape(name), re.escape(name)))


def test_open_to_token_disconnects_tokenless_apps(env):
    """Switching open -> token: the apps without the token are disconnected,
    their requests go to the app with it."""
    sid, name = env.new_space(max_apps=2)
    token = env.token_of(sid)
    env.access(sid, "open")
    assert env.pg.sql("SELECT app_access FROM spaces WHERE id = :'i'", i=sid) == [["open"]]
    # The admin page marks it, with the one-click switch.
    panel = env.admin().get(env.server.url + "/admin", timeout=10).text
    row = re.search(r'<tr class="open-access"><td><a href="/ai_project/%s">.*?</tr>'
                    % re.escape(sid), panel, re.S)
    assert row, "the open space is not marked on /admin"
    assert 'data-access="open"' in row.group(0)
    assert 'action="/admin/space/token/%s"' % sid in row.group(0)
    assert 'value="require"' in row.group(0)
    tokenless = env.control_app(name, name="tokenless")
    registered(tokenless)
    with_token = env.control_app(name, "--token=" + token, "--auto-answer", name="with-token")
    registered(with_token)
    # Hold a request on the tokenless app.
    user = env.site.user()
    held = None
    for i in range(6):
        rid = env.site.submit_ok(user, sid, "prompt %d" % i)
        try:
            request_of(tokenless, rid, timeout=3)
            held = rid
            break
        except AssertionError:
            continue
    assert held, "no request reached the tokenless app"
    # One click on the admin page: the space now requires its token.
    env.access(sid, "require")
    assert env.pg.sql("SELECT app_access, app_token = :'t' FROM spaces WHERE id = :'i'",
                      i=sid, t=token) == [["token", "t"]]
    kicked(tokenless, "requires an app token")
    in_log(env.server, r"of space \"%s\" disconnected: space \"%s\" now requires an app token"
           % (re.escape(name), re.escape(name)))
    request_of(with_token, held)
    assert env.site.wait_status(held, timeout=20)["status"] == "completed"
    # The app with the token stayed.
    time.sleep(0.5)
    assert not with_token.events_named("disconnect")
    panel = env.admin().get(env.server.url + "/admin", timeout=10).text
    assert not re.search(r'<tr class="open-access"><td><a href="/ai_project/%s">'
                         % re.escape(sid), panel)


# ---------------------------------------------------------------------------
# servers of their own


def test_migration_keeps_existing_spaces_as_they_were(env):
    """Migration 0006 on a database of the earlier version: a space that had
    a token becomes 'token', one without becomes 'open' (today's behaviour,
    flagged on /admin); the command line of a token set before it shows a
    placeholder until a new token is generated."""
    import shutil
    import subprocess
    import tempfile

    db = "old_" + uuid.uuid4().hex[:8]
    env.pg.sql("CREATE DATABASE %s" % db)
    url = env.pg.url.rsplit("/", 1)[0] + "/" + db
    old_dir = tempfile.mkdtemp(prefix="spaces-migrations-")
    try:
        for f in sorted(os.listdir(os.path.join(SOURCE, "migrations"))):
            if f.endswith(".sql") and f < "0006":
                shutil.copy(os.path.join(SOURCE, "migrations", f), old_dir)

        def migrate(directory):
            out = subprocess.run(harness.spaces_server_command() + [
                "migrate", "--database-url", url, "--migrations", directory],
                capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr

        migrate(old_dir)
        psql = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"]
        subprocess.run(psql + ["INSERT INTO spaces (name, app_token_hash) VALUES "
                               "('with token', repeat('a', 64)), ('without', NULL)"],
                       check=True, capture_output=True, timeout=30)
        migrate(os.path.join(SOURCE, "migrations"))
        rows = subprocess.run(psql + ["SELECT name || '=' || app_access || ',' || "
                                      "(app_token IS NULL) FROM spaces ORDER BY name"],
                              check=True, capture_output=True, text=True, timeout=30)
        assert rows.stdout.splitlines() == ["with token=token,true", "without=open,true"], \
            rows.stdout
    finally:
        shutil.rmtree(old_dir, ignore_errors=True)
    # On this site: a token known only by its hash shows a placeholder.
    sid, name = env.new_space(token="t0k3n-" + uuid.uuid4().hex)
    env.pg.sql("UPDATE spaces SET app_token = NULL WHERE id = :'i'", i=sid)
    page = env.edit_page(sid)
    assert env.command(page) == "python3 mock_app.py --host '%s/?token=TOKEN' --spaces '%s'" % (
        env.server.url, name)
    assert "generate a new one to see the full command line" in page


@pytest.fixture(scope="module")
def legacy(pg):
    """A second server, as `make run` starts it (--legacy-open-spaces, the
    harness's default), with a low limit of failed registrations. The test
    of the limit comes last: 127.0.0.1 is then refused for a minute."""
    server = harness.start_spaces_server(pg.url, extra_args=["--app-register-failures", "3"])
    try:
        e = Env(pg, server)
        yield e
        e.close_children()
        server.stop()
    finally:
        if server.alive():
            server.kill()


def test_own_server_legacy_open_spaces(legacy):
    """--legacy-open-spaces (make run, the seed plan): a new space is open
    and the unmodified mock_app.py registers by name alone."""
    e = legacy
    assert "--legacy-open-spaces" in e.server.argv
    sid, name = e.new_space()
    row = e.pg.sql("SELECT app_access, app_token IS NULL FROM spaces WHERE id = :'i'", i=sid)
    assert row == [["open", "t"]], row
    assert e.command(e.edit_page(sid)) == \
        "python3 mock_app.py --host '%s' --spaces '%s'" % (e.server.url, name)
    mock = e.child([MOCK_APP, "--host", e.server.url, "--spaces", name], "mock_app")
    mock.wait_line(r"Registration successful", timeout=15)
    e.close_children()
    # make run passes the switch and says so next to the admin password.
    run_sh = open(os.path.join(SOURCE, "ci", "run.sh")).read()
    assert "--legacy-open-spaces" in run_sh and "LEGACY OPEN SPACES" in run_sh
    assert run_sh.index("admin123") < run_sh.index("LEGACY OPEN SPACES") < \
        run_sh.index("exec ")


def test_own_server_failed_registers_are_rate_limited_per_address(legacy):
    e = legacy
    token = "t0k3n-" + uuid.uuid4().hex
    sid, name = e.new_space(token=token)
    wrong = [e.control_app(name, "--token=wrong%d" % i, name="wrong%d" % i) for i in range(3)]
    for app in wrong:
        refused(app, "invalid app token")
    # Past the limit even the right token is refused, without being looked at.
    refused(e.control_app(name, "--token=" + token, name="limited"),
            "too many failed registrations")
    in_log(e.server, r"3 failed app registrations from 127\.0\.0\.1")
    e.close_children()


def test_own_server_cluster_regenerate_disconnects_apps_on_every_node(pg):
    """Two nodes on one database: the token changes through node A, the app
    holding a request is on node B; B disconnects it and the request reaches
    the app with the new token."""
    tag = uuid.uuid4().hex[:6]
    args = ["--node-timeout", "10", "--app-register-failures", "1000"]
    a = harness.start_spaces_server(pg.url, legacy_open_spaces=False,
                                    extra_args=["--node-id", "a-" + tag] + args)
    b = None
    ea = eb = None
    try:
        b = harness.start_spaces_server(pg.url, legacy_open_spaces=False,
                                        extra_args=["--node-id", "b-" + tag] + args)
        ea, eb = Env(pg, a), Env(pg, b)
        sid, name = ea.new_space()
        old = ea.token_of(sid)
        on_b = eb.control_app(name, "--token=" + old, name="on-b")
        registered(on_b)
        user = ea.site.user()
        harness.wait_until("node A sees the app of node B",
                           lambda: ea.site.submit(user, sid, "x")[0] == 200, 15)
        rows = pg.sql("SELECT id FROM requests WHERE space_id = :'i'", i=sid)
        request_of(on_b, rows[0][0])
        ea.access(sid, "generate")
        kicked(on_b, "replaced")
        in_log(b, r"of space \"%s\" disconnected: the app token of space" % re.escape(name))
        new = ea.token_of(sid)
        real = ea.control_app(name, "--token=" + new, "--auto-answer", name="real-on-a")
        registered(real)
        body = ea.site.wait_status(rows[0][0], timeout=30)
        assert body["status"] == "completed", body
        for e in (ea, eb):
            e.close_children()
        b.stop()
        a.stop()
    finally:
        for e in (ea, eb):
            if e:
                e.close_children()
        for s in (a, b):
            if s is not None and s.alive():
                s.kill()
