"""Accounts, sessions and uploads (issue 11) against the real spaces-server,
a throwaway PostgreSQL cluster, python-requests and python-socketio clients.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_accounts.py

Run as a program with --browser-child URL, this file is a browser stand-in
on the namespace /spaces (one python-socketio client per process): it prints
"connect", "connect_failed" or "disconnect" as JSON lines.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

PASSWORD = "Passw0rd_123"


def browser_child(url, cookie, transport, origin):
    import socketio

    def out(event, data=None):
        os.write(1, (json.dumps({"event": event, "data": data}) + "\n").encode())

    if origin:
        # websocket-client adds an Origin of its own: send only ours, once,
        # as a browser does.
        import websocket

        create = websocket.create_connection

        def create_with_origin(url, header=None, **kw):
            if isinstance(header, dict):
                header = {k: v for k, v in header.items() if k.lower() != "origin"}
            elif header:
                header = [h for h in header if not h.lower().startswith("origin:")]
            return create(url, header=header, origin=origin, **kw)

        websocket.create_connection = create_with_origin
    sio = socketio.Client(reconnection=False)
    # "connect" is printed once Client.connect() has returned, not from the
    # handler: python-socketio 5.7 runs the handler before it marks itself
    # connected and drops a DISCONNECT that arrives in between (see "Client
    # quirks" in docs/protocol.md), so a test acting on a handler's "connect"
    # could wait for a disconnect the client never reports.
    sio.on("disconnect", lambda: out("disconnect"), namespace="/spaces")
    headers = {}
    if cookie:
        headers["Cookie"] = "spaces_session=%s" % cookie
    if origin:
        headers["Origin"] = origin
    try:
        sio.connect(url, headers=headers, namespaces=["/spaces"], transports=[transport],
                    wait_timeout=10)
    except Exception as e:  # a refused namespace ends here
        out("connect_failed", repr(e))
        os._exit(3)
    out("connect")
    for _ in sys.stdin:
        pass
    os._exit(0)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--browser-child":
    browser_child(sys.argv[2], sys.argv[3] or None, sys.argv[4], sys.argv[5] or None)


import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402


@pytest.fixture(scope="module")
def pg():
    yield from harness.module_pg(require_server=False)


class Server:
    """A spaces-server with its own flags on the shared database."""

    def __init__(self, pg, *args):
        self.pg = pg
        self.uploads = tempfile.mkdtemp(prefix="spaces-acct-uploads-")
        self.proc = harness.start_spaces_server(pg.url, extra_args=["--upload-dir", self.uploads,
                                                                   *args])
        self.url = self.proc.url.rstrip("/")
        self.children = []

    def stderr(self):
        return self.proc.stderr()

    def close(self):
        import shutil

        try:
            for c in self.children:
                c.close()
            self.proc.stop()
        finally:
            shutil.rmtree(self.uploads, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(pg):
    """A server with the default flags, for the tests that need nothing else."""
    s = Server(pg)
    yield s
    s.close()


@pytest.fixture
def server_factory(pg):
    made = []

    def make(*args):
        s = Server(pg, *args)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


_n = [0]


def unique(stem):
    _n[0] += 1
    return "%s_%d_%d" % (stem, os.getpid() % 10000, _n[0])


def add_user(pg, name=None, admin=False, password=PASSWORD):
    name = name or unique("admin" if admin else "user")
    argv = harness.spaces_server_command() + ["user", "add", name, "--database-url", pg.url]
    if admin:
        argv.append("--admin")
    out = subprocess.run(argv, input=password + "\n", capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return name


def login(url, name, password=PASSWORD, headers=None):
    s = requests.Session()
    r = s.post(url + "/login", data={"username": name, "password": password},
               headers=headers or {}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return s


def csrf_token(session, url):
    html = session.get(url, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def browser(server, cookie, transport="websocket", origin=None):
    c = harness.ChildProcess([harness.PYTHON, os.path.abspath(__file__), "--browser-child",
                              server.url, cookie or "", transport, origin or ""],
                             limit=90, name="browser")
    server.children.append(c)
    return c


def connected(c):
    i, _, ev = c.wait_line(r'"event": "(connect|connect_failed)"', timeout=20)
    return ev.group(1) == "connect"


def hashes(server, name):
    """Password checks that ran for name (each logs one line after its hash)."""
    return len(re.findall(r"failed login for '%s' from" % re.escape(name), server.stderr()))


# ---------------------------------------------------------------------------
# Login limits, taken before the hash


def test_parallel_wrong_passwords_from_one_address_reach_the_hash_at_most_the_limit(
        server_factory):
    srv = server_factory()
    name = add_user(srv.pg)

    def attempt(_):
        return requests.post(srv.url + "/login", data={"username": name, "password": "wrong!!"},
                             allow_redirects=False, timeout=120).status_code

    with ThreadPoolExecutor(50) as ex:
        codes = list(ex.map(attempt, range(200)))
    assert set(codes) <= {200, 429}, codes
    assert codes.count(429) >= 190, codes
    harness.wait_until("the hashed attempts logged", lambda: hashes(srv, name) >= 1, 10)
    time.sleep(0.5)
    assert hashes(srv, name) <= 10, hashes(srv, name)


def test_parallel_wrong_passwords_for_one_account_are_paced_not_locked(server_factory):
    """200 attempts on one account from 200 addresses (behind a trusted
    proxy): at most the account's limit reach the hash; the owner then
    waits a few seconds, not the whole window."""
    srv = server_factory("--trust-proxy", "127.0.0.1", "--login-account-limit", "10",
                         "--login-account-pace", "2")
    name = add_user(srv.pg)

    def attempt(i):
        return requests.post(srv.url + "/login", data={"username": name, "password": "wrong!!"},
                             headers={"X-Forwarded-For": "198.51.%d.%d" % (i // 250, i % 250)},
                             allow_redirects=False, timeout=120)

    t0 = time.monotonic()
    with ThreadPoolExecutor(50) as ex:
        answers = list(ex.map(attempt, range(200)))
    elapsed = time.monotonic() - t0
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 429}, codes
    refused = [r for r in answers if r.status_code == 429]
    assert refused and "slowed down" in refused[0].text
    assert all(int(r.headers["Retry-After"]) <= 2 for r in refused)
    time.sleep(0.5)
    # The limit, plus one paced attempt per 2 s while the attack lasted.
    assert hashes(srv, name) <= 10 + int(elapsed / 2) + 1, (hashes(srv, name), elapsed)
    # The owner is not locked out: after the pace, the right password works.
    deadline = time.monotonic() + 20
    while True:
        r = requests.post(srv.url + "/login", data={"username": name, "password": PASSWORD},
                          headers={"X-Forwarded-For": "203.0.113.77"}, allow_redirects=False,
                          timeout=30)
        if r.status_code == 302:
            break
        assert r.status_code == 429 and time.monotonic() < deadline, r.status_code
        time.sleep(int(r.headers["Retry-After"]))


# ---------------------------------------------------------------------------
# Registration


def test_password_policy_and_registered_notice(shared, server_factory):
    srv = shared
    for user, pw, word in [(unique("u"), "a", "at least 8 characters"),
                           (unique("u"), "short7!", "at least 8 characters"),
                           ("Same_Name_1", "same_name_1", "not be your user name"),
                           (unique("u"), "Password123", "most common"),
                           (unique("u"), "qwertyuiop", "most common")]:
        r = requests.post(srv.url + "/register", allow_redirects=False, timeout=30,
                          data={"username": user, "password": pw, "confirm_password": pw})
        assert r.status_code == 200 and word in r.text, (pw, r.status_code, r.text[:500])
    s = requests.Session()
    name = unique("newbie")
    r = s.post(srv.url + "/register", timeout=30,
               data={"username": name, "password": PASSWORD, "confirm_password": PASSWORD})
    assert r.status_code == 200 and r.url.endswith("/login")
    assert "Your account has been created" in r.text
    # Once only.
    assert "Your account has been created" not in s.get(srv.url + "/login", timeout=10).text
    # The relaxed policy (make run) accepts a common password, still not a short one.
    srv2 = server_factory("--password-policy", "relaxed")
    r = requests.post(srv2.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": "password1"})
    assert r.status_code == 302
    r = requests.post(srv2.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": "abc"})
    assert r.status_code == 200 and "at least 8" in r.text


def test_registration_rate_limit_per_address(server_factory):
    srv = server_factory("--register-limit", "3")
    codes = []
    for _ in range(4):
        r = requests.post(srv.url + "/register", allow_redirects=False, timeout=30,
                          data={"username": unique("u"), "password": PASSWORD})
        codes.append(r.status_code)
    assert codes == [302, 302, 302, 429], codes
    assert "Too many registrations" in r.text and int(r.headers["Retry-After"]) > 0
    # A refused one (taken name) does not use the budget up.
    srv2 = server_factory("--register-limit", "1")
    taken = add_user(srv2.pg)
    r = requests.post(srv2.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": taken, "password": PASSWORD})
    assert r.status_code == 200 and "taken" in r.text
    r = requests.post(srv2.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": PASSWORD})
    assert r.status_code == 302


def test_registration_can_be_closed_by_flag_and_by_admin(server_factory):
    closed = server_factory("--registration", "closed")
    r = requests.get(closed.url + "/register", timeout=10)
    assert "Registration is closed" in r.text and 'name="password"' not in r.text
    r = requests.post(closed.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": PASSWORD})
    assert r.status_code == 403 and "Registration is closed" in r.text

    srv = server_factory()
    admin = login(srv.url, add_user(srv.pg, admin=True))
    assert "Registration is <strong>open</strong>" in admin.get(srv.url + "/admin", timeout=10).text
    r = admin.post(srv.url + "/admin/registration", data={"state": "closed"},
                   allow_redirects=False, timeout=10)
    assert r.status_code == 302
    r = requests.post(srv.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": PASSWORD})
    assert r.status_code == 403 and "Registration is closed" in r.text
    # Not for anybody but admins.
    user = login(srv.url, add_user(srv.pg))
    r = user.post(srv.url + "/admin/registration", data={"state": "open"},
                  allow_redirects=False, timeout=10)
    assert r.status_code == 403
    r = admin.post(srv.url + "/admin/registration", data={"state": "open"},
                   allow_redirects=False, timeout=10)
    assert r.status_code == 302
    r = requests.post(srv.url + "/register", allow_redirects=False, timeout=30,
                      data={"username": unique("u"), "password": PASSWORD})
    assert r.status_code == 302


def _login_times(srv, name, n=3):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        login(srv.url, name, headers={"X-Forwarded-For": "203.0.113.9"})
        times.append(time.monotonic() - t0)
    return times


def test_registration_flood_does_not_starve_logins(server_factory):
    """16 clients of one address register as fast as they are let; a user of
    another address logs in meanwhile within a second of what a login takes
    on this machine without the flood (it took 18-23 s more before the
    fix: every hash queued in one small shared threadpool)."""
    srv = server_factory("--trust-proxy", "127.0.0.1", "--register-limit", "0")
    name = add_user(srv.pg)
    baseline = statistics.median(_login_times(srv, name))
    stop = threading.Event()
    flood_answers = []

    def flood():
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(srv.url + "/register", allow_redirects=False, timeout=120,
                           headers={"X-Forwarded-For": "198.51.100.7"},
                           data={"username": unique("flood"), "password": PASSWORD})
                flood_answers.append(r.status_code)
                if r.status_code == 429:
                    # Told to slow down (a client spinning on 429s is an
                    # HTTP flood, not a hashing one).
                    time.sleep(0.2)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        harness.wait_until("the flood runs", lambda: len(flood_answers) >= 16, 30)
        times = _login_times(srv, name)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert 302 in flood_answers  # the flood did register users
    print("login: %.2f s alone, %r during the flood" % (baseline, times))
    # On an idle machine a login takes ~0.2 s and this is "within 1 s"; on
    # a loaded machine the flood's one hash at a time still takes a core
    # from the login's, so the bound scales with the login's own time.
    assert statistics.median(times) < 1.0 + 4 * baseline, (baseline, times)


# ---------------------------------------------------------------------------
# Sessions and their sockets


def test_non_admin_gets_403_on_admin_pages(shared):
    srv = shared
    user = login(srv.url, add_user(srv.pg))
    r = user.get(srv.url + "/admin", allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "not an administrator" in r.text
    r = requests.get(srv.url + "/admin", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_logout_is_a_csrf_protected_post_and_closes_the_sessions_sockets(shared):
    srv = shared
    name = add_user(srv.pg)
    s = login(srv.url, name)
    cookie = s.cookies.get("spaces_session")
    other = login(srv.url, name)
    mine = browser(srv, cookie)
    theirs = browser(srv, other.cookies.get("spaces_session"))
    assert connected(mine) and connected(theirs)
    # GET shows a button and changes nothing.
    r = s.get(srv.url + "/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 200 and 'action="/logout"' in r.text and "csrf_token" in r.text
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 200
    # Another site's POST, or our origin without the token: refused.
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": srv.url, "Sec-Fetch-Site": "same-origin"}):
        r = s.post(srv.url + "/logout", headers=headers, allow_redirects=False, timeout=10)
        assert r.status_code == 403, headers
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 200
    token = csrf_token(s, srv.url + "/account")
    r = s.post(srv.url + "/logout", data={"csrf_token": token}, allow_redirects=False,
               headers={"Origin": srv.url, "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    mine.wait_line(r'"event": "disconnect"', timeout=10)
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    # The other session and its socket live on.
    time.sleep(0.5)
    assert theirs.count_lines(r'"event": "disconnect"') == 0
    assert other.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 200


def test_password_change_and_logout_others_close_the_other_sockets(shared):
    srv = shared
    name = add_user(srv.pg)
    a, b = login(srv.url, name), login(srv.url, name)
    sa = browser(srv, a.cookies.get("spaces_session"))
    sb = browser(srv, b.cookies.get("spaces_session"))
    assert connected(sa) and connected(sb)
    r = a.post(srv.url + "/account/logout-others", allow_redirects=False, timeout=10)
    assert r.status_code == 200 and "other sessions have been logged out" in r.text
    sb.wait_line(r'"event": "disconnect"', timeout=10)
    assert b.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    assert sa.count_lines(r'"event": "disconnect"') == 0

    c = login(srv.url, name)
    sc = browser(srv, c.cookies.get("spaces_session"))
    assert connected(sc)
    r = a.post(srv.url + "/account/password", timeout=30,
               data={"current_password": "nope", "new_password": "N3w_passphrase",
                     "confirm_password": "N3w_passphrase"})
    assert "not right" in r.text
    r = a.post(srv.url + "/account/password", timeout=30,
               data={"current_password": PASSWORD, "new_password": "password1",
                     "confirm_password": "password1"})
    assert "most common" in r.text
    r = a.post(srv.url + "/account/password", timeout=30,
               data={"current_password": PASSWORD, "new_password": "N3w_passphrase",
                     "confirm_password": "N3w_passphrase"})
    assert r.status_code == 200 and "Your password has been changed" in r.text
    sc.wait_line(r'"event": "disconnect"', timeout=10)
    assert c.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    assert a.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 200
    login(srv.url, name, "N3w_passphrase")


def test_admin_disable_closes_the_users_sockets_and_blocks_login(shared):
    srv = shared
    admin = login(srv.url, add_user(srv.pg, admin=True))
    name = add_user(srv.pg)
    uid = srv.pg.sql("SELECT id FROM users WHERE username = :'n'", n=name)[0][0]
    s = login(srv.url, name)
    sock = browser(srv, s.cookies.get("spaces_session"))
    assert connected(sock)
    assert "/admin/user/disable/%s" % uid in admin.get(srv.url + "/admin", timeout=10).text
    r = admin.post(srv.url + "/admin/user/disable/" + uid, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    sock.wait_line(r'"event": "disconnect"', timeout=10)
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    r = requests.post(srv.url + "/login", data={"username": name, "password": PASSWORD},
                      allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "disabled" in r.text
    r = admin.post(srv.url + "/admin/user/enable/" + uid, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    login(srv.url, name)


def test_cli_passwd_and_disable_close_sockets_of_running_servers(shared):
    srv = shared
    name = add_user(srv.pg)
    cli = harness.spaces_server_command() + ["user"]
    s = login(srv.url, name)
    sock = browser(srv, s.cookies.get("spaces_session"))
    assert connected(sock)
    out = subprocess.run(cli + ["passwd", name, "--database-url", srv.pg.url],
                         input="An0ther_secret\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    sock.wait_line(r'"event": "disconnect"', timeout=10)
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    s = login(srv.url, name, "An0ther_secret")
    sock = browser(srv, s.cookies.get("spaces_session"))
    assert connected(sock)
    out = subprocess.run(cli + ["disable", name, "--database-url", srv.pg.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    sock.wait_line(r'"event": "disconnect"', timeout=10)
    r = requests.post(srv.url + "/login", data={"username": name, "password": "An0ther_secret"},
                      allow_redirects=False, timeout=30)
    assert r.status_code == 403
    out = subprocess.run(cli + ["enable", name, "--database-url", srv.pg.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(cli + ["disable", "nobody_at_all", "--database-url", srv.pg.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 4 and "no user" in out.stderr
    # `user add` takes a weak password, with a warning.
    out = subprocess.run(cli + ["add", unique("weak"), "--database-url", srv.pg.url],
                         input="admin123\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "warning: weak password" in out.stderr


def test_session_lifetime_and_idle_timeout(server_factory):
    srv = server_factory("--session-lifetime", "6", "--session-idle-timeout", "3")
    name = add_user(srv.pg)
    r = requests.post(srv.url + "/login", data={"username": name, "password": PASSWORD},
                      allow_redirects=False, timeout=30)
    assert "Max-Age=6" in r.headers["Set-Cookie"]
    # Used every second, it outlives the idle timeout, not the lifetime.
    s = login(srv.url, name)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4.5:
        assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 200
        time.sleep(1)
    harness.wait_until("the session's end", lambda: s.get(
        srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302, 10)
    assert time.monotonic() - t0 > 5
    # Unused, it ends after the idle timeout.
    s = login(srv.url, name)
    time.sleep(4)
    assert s.get(srv.url + "/account", allow_redirects=False, timeout=10).status_code == 302


# ---------------------------------------------------------------------------
# Origin of /spaces


def test_spaces_namespace_refuses_other_origins(server_factory):
    srv = server_factory("--allowed-origins", "http://partner.example:8080")
    s = login(srv.url, add_user(srv.pg))
    cookie = s.cookies.get("spaces_session")
    for transport in ("websocket", "polling"):
        evil = browser(srv, cookie, transport, "http://127.0.0.1:1")
        assert not connected(evil), transport
        ok = browser(srv, cookie, transport, srv.url)
        assert connected(ok), transport
        partner = browser(srv, cookie, transport, "http://partner.example:8080")
        assert connected(partner), transport
    assert "origin http://127.0.0.1:1 not allowed" in srv.stderr()


# ---------------------------------------------------------------------------
# Uploads


class App:
    """A registered app of a space (so that submissions get past the 503)."""

    def __init__(self, url, space):
        import socketio

        self.sio = socketio.Client(reconnection=False)
        got = threading.Event()
        self.sio.on("register_response", lambda data: got.set())
        self.sio.connect(url, transports=["websocket"])
        self.sio.emit("register", {"space_name": space})
        assert got.wait(15), "no register_response"

    def close(self):
        self.sio.disconnect()


def make_space(srv, admin):
    name = unique("Up")
    r = admin.post(srv.url + "/admin/space/add", allow_redirects=False, timeout=20, data={
        "name": name, "card_type": "websockets", "ws_enable_prompt": "on",
        "ws_enable_file_upload": "on", "ws_enable_audio": "on"})
    assert r.status_code == 302, r.text[:300]
    return r.headers["Location"].split("/edit/")[-1], name


def upload(srv, session, space_id, ctype, data=b"ID3 not really", field="other_file"):
    return session.post(srv.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
                        files={field: ("f.bin", data, ctype)}, timeout=60)


def served(srv, token_like):
    token, path = srv.pg.sql("SELECT token, path FROM uploads WHERE token = :'t'",
                             t=token_like)[0]
    return requests.get("%s/uploads/%s/%s" % (srv.url, token, os.path.basename(path)),
                        timeout=10)


def last_token(srv):
    return srv.pg.sql("SELECT token FROM uploads ORDER BY id DESC LIMIT 1")[0][0]


def test_upload_media_types_are_strict_and_only_media_is_inline(shared):
    srv = shared
    admin = login(srv.url, add_user(srv.pg, admin=True))
    space_id, name = make_space(srv, admin)
    app = App(srv.url, name)
    try:
        user = login(srv.url, add_user(srv.pg))
        for bad in ("audio/mpeg, text/html", "audio/mpeg,text/html", "garbage", "audio/",
                    "audio/mpeg; x", "text/html\x7f"):
            r = upload(srv, user, space_id, bad)
            assert r.status_code == 400 and "media type" in r.json()["error"], (bad, r.text)
        r = upload(srv, user, space_id, "Audio/MPEG; Codecs=\"mp3\"")
        assert r.status_code == 200, r.text
        r = served(srv, last_token(srv))
        assert r.headers["Content-Type"] == 'audio/mpeg;codecs="mp3"'
        assert r.headers["Content-Disposition"].startswith("inline")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        for other in ("text/html", "image/svg+xml", "application/pdf", "text/plain"):
            r = upload(srv, user, space_id, other, b"<script>alert(1)</script>")
            assert r.status_code == 200, r.text
            r = served(srv, last_token(srv))
            assert r.headers["Content-Type"] == "application/octet-stream", other
            assert r.headers["Content-Disposition"].startswith("attachment"), other
        # A row stored before uploads were checked is a download too.
        srv.pg.sql("UPDATE uploads SET content_type = 'audio/mpeg, text/html' WHERE token = :'t'",
                   t=last_token(srv))
        r = served(srv, last_token(srv))
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"].startswith("attachment")
    finally:
        app.close()


def test_upload_quota_per_user_and_disk_budget(server_factory):
    srv = server_factory("--upload-quota-per-day", "100K")
    admin = login(srv.url, add_user(srv.pg, admin=True))
    space_id, name = make_space(srv, admin)
    app = App(srv.url, name)
    try:
        user = login(srv.url, add_user(srv.pg))
        assert upload(srv, user, space_id, "audio/mpeg", b"a" * 60000).status_code == 200
        r = upload(srv, user, space_id, "audio/mpeg", b"a" * 60000)
        assert r.status_code == 413 and "quota" in r.json()["error"].lower(), r.text
        assert "daily quota" in srv.stderr()
        # Another user still may.
        other = login(srv.url, add_user(srv.pg))
        assert upload(srv, other, space_id, "audio/mpeg", b"a" * 60000).status_code == 200
    finally:
        app.close()
    used = int(srv.pg.sql("SELECT coalesce(sum(size), 0) FROM uploads")[0][0])
    srv2 = server_factory("--upload-disk-budget", str(used + 50000))
    app = App(srv2.url, name)
    try:
        user = login(srv2.url, add_user(srv2.pg))
        assert upload(srv2, user, space_id, "audio/mpeg", b"a" * 40000).status_code == 200
        r = upload(srv2, user, space_id, "audio/mpeg", b"a" * 40000)
        assert r.status_code == 507 and "no room" in r.json()["error"], r.text
        assert "budget" in srv2.stderr()
    finally:
        app.close()


def test_nosniff_on_every_answer(shared):
    srv = shared
    for path in ("/", "/login", "/register", "/healthz", "/static/spaces.css", "/nope",
                 "/socket.io/socket.io.js", "/socket.io/?EIO=4&transport=polling",
                 "/websockets/status", "/uploads/x/y", "/admin"):
        r = requests.get(srv.url + path, allow_redirects=False, timeout=10)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path, r.headers)
