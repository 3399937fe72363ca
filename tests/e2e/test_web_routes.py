"""Route tests of the website (web/, issue 6) against the real spaces-server
and a throwaway PostgreSQL cluster: every row of the PROTOCOL.md route table
with its status codes, redirects, JSON fields and words, plus the security
rules (CSRF, admin-only routes, escaping, SQL injection, login rate limit)
and the static files.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_web_routes.py

    SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug)
    SPACES_SERVER      a command line to run instead of $SPACES_BUILD_DIR/spaces-server

Run as a program with --app-child URL SPACE, this file is a small inference
app (python-socketio) that answers every request with an echo of its prompt
and, for uploaded files, the size and SHA-256 of what it downloaded.
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PASSWORD = "Passw0rd_123"


# ---------------------------------------------------------------------------
# The app child


def app_child(url, space):
    import socketio
    import urllib.request

    sio = socketio.Client(reconnection=False)

    @sio.on("register_response")
    def on_register(data):
        print(json.dumps({"event": "register_response", "data": data}), flush=True)

    @sio.on("inference_request")
    def on_request(data):
        print(json.dumps({"event": "inference_request", "data": data}), flush=True)
        payload = data.get("payload") or {}
        files = {}
        for field, info in (payload.get("upload") or data.get("upload") or {}).items():
            with urllib.request.urlopen(info["url"], timeout=10) as r:
                body = r.read()
            files[field] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                            "content_type": r.headers.get("Content-Type")}
        result = {"text_output": "echo: %s" % payload.get("prompt", ""),
                  "processing_time_seconds": 0.01, "files": files,
                  "audio": payload.get("audio")}
        sio.emit("inference_result", {"request_id": data["request_id"],
                                      "status": "completed", "result": result})

    sio.connect(url, transports=["websocket"])
    sio.emit("register", {"space_name": space})
    sio.wait()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--app-child":
    app_child(sys.argv[2], sys.argv[3])
    sys.exit(0)


import harness  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402


# ---------------------------------------------------------------------------
# Fixtures


class Site:
    def __init__(self, pg, server, upload_dir):
        self.pg = pg
        self.server = server
        self.url = server.url.rstrip("/")
        self.upload_dir = upload_dir
        self.n = 0
        self.children = []
        self.admin = self.login(self.add_user(admin=True))

    def unique(self, stem):
        self.n += 1
        return "%s_%d_%d" % (stem, os.getpid() % 10000, self.n)

    def add_user(self, name=None, admin=False, password=PASSWORD):
        name = name or self.unique("admin" if admin else "user")
        argv = harness.spaces_server_command() + ["user", "add", name, "--database-url",
                                                  self.pg.url]
        if admin:
            argv.append("--admin")
        out = subprocess.run(argv, input=password + "\n", capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return name

    def register(self, name=None):
        name = name or self.unique("user")
        r = requests.post(self.url + "/register", allow_redirects=False, timeout=20,
                          data={"username": name, "password": PASSWORD,
                                "confirm_password": PASSWORD})
        assert r.status_code == 302 and r.headers["Location"] == "/login", r.text[:300]
        return name

    def login(self, name, password=PASSWORD):
        s = requests.Session()
        r = s.post(self.url + "/login", data={"username": name, "password": password},
                   allow_redirects=False, timeout=20)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        assert r.headers["Location"] == "/"
        assert s.cookies.get("spaces_session")
        return s

    def user(self):
        return self.login(self.register())

    def add_space(self, **fields):
        data = {"name": self.unique("Space"), "description": "A test space",
                "cover": "default.png", "cover_type": "image", "card_type": "websockets",
                "ws_enable_prompt": "on"}
        data.update(fields)
        r = self.admin.post(self.url + "/admin/space/add", data=data, allow_redirects=False,
                            timeout=20)
        assert r.status_code == 302, (r.status_code, r.text[:500])
        loc = r.headers["Location"]
        assert loc.startswith("/admin/space/edit/")
        return loc.split("/edit/")[-1].rstrip("/"), data["name"]

    def app(self, space_name):
        c = harness.ChildProcess([harness.PYTHON, os.path.abspath(__file__), "--app-child",
                                  self.url, space_name], limit=90, name="app")
        self.children.append(c)
        _, _, ev = c.wait_event("register_response", timeout=15)
        assert ev["data"]["success"] is True, ev
        return c

    def wait_status(self, session, request_id, final=("completed", "failed"), timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = session.get(self.url + "/websockets/status",
                            params={"request_id": request_id}, timeout=10)
            assert r.status_code == 200, r.text
            if r.json()["status"] in final:
                return r.json()
            time.sleep(0.1)
        raise AssertionError("request %s did not finish: %r" % (request_id, r.json()))

    def close(self):
        for c in self.children:
            try:
                c.close()
            except Exception:
                pass


def _start(pg, upload_dir, extra=()):
    return harness.start_spaces_server(pg.url, extra_args=["--upload-dir", upload_dir, *extra])


@pytest.fixture(scope="module")
def site():
    argv = harness.spaces_server_command()
    if "/" in argv[0] and not os.path.exists(argv[0]):
        pytest.fail("%s does not exist: build it first" % argv[0])
    if not harness.spaces_server_has_database():
        pytest.fail("%s --help does not list --database-url: the web layer is not wired "
                    "into this build" % argv[0])
    pg = harness.PgCluster()
    upload_dir = tempfile.mkdtemp(prefix="spaces-uploads-")
    server = None
    s = None
    try:
        server = _start(pg, upload_dir)
        r = requests.get(server.url.rstrip("/") + "/login", timeout=10)
        if r.status_code != 200:
            pytest.fail("GET /login answers %d: the web layer (web_site_new) is not wired "
                        "into spaces-server" % r.status_code)
        s = Site(pg, server, upload_dir)
        yield s
        s.close()
        server.stop()  # exit 0, no sanitizer report
    finally:
        if s:
            s.close()
        if server is not None and server.alive():
            server.kill()
        pg.close()


@pytest.fixture(autouse=True)
def server_alive(site):
    yield
    site.server.assert_alive()


# ---------------------------------------------------------------------------
# Accounts


def test_login_page_and_invalid_login(site):
    r = requests.get(site.url + "/login", timeout=10)
    assert r.status_code == 200
    assert 'name="username"' in r.text and 'name="password"' in r.text
    r = requests.post(site.url + "/login", data={"username": "nobody_here", "password": "x"},
                      allow_redirects=False, timeout=20)
    assert r.status_code == 200
    assert "Invalid username or password" in r.text
    name = site.register()
    r = requests.post(site.url + "/login", data={"username": name, "password": "wrong"},
                      allow_redirects=False, timeout=20)
    assert r.status_code == 200 and "invalid" in r.text.lower()
    assert "spaces_session" not in r.headers.get("Set-Cookie", "")


def test_login_sets_a_safe_session_cookie(site):
    name = site.register()
    r = requests.post(site.url + "/login", data={"username": name, "password": PASSWORD},
                      allow_redirects=False, timeout=20)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("spaces_session=")
    for attr in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attr in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    # Only the SHA-256 of the token is stored.
    digest = hashlib.sha256(token.encode()).hexdigest()
    rows = site.pg.sql("SELECT count(*) FROM sessions WHERE token_hash = :'h'", h=digest)
    assert rows == [["1"]]
    rows = site.pg.sql("SELECT count(*) FROM sessions WHERE token_hash = :'h'", h=token)
    assert rows == [["0"]]
    # requests.Session follows the redirect to the spaces list, as the old scripts do.
    s = requests.Session()
    r = s.post(site.url + "/login", data={"username": name, "password": PASSWORD}, timeout=20)
    assert r.status_code == 200 and r.url.rstrip("/") == site.url
    assert name in r.text


def test_passwords_are_argon2id(site):
    name = site.register()
    rows = site.pg.sql("SELECT password_hash FROM users WHERE username = :'n'", n=name)
    assert rows[0][0].startswith("$argon2id$")


def test_register_errors(site):
    taken = site.register()
    for data, word in [
        ({"username": taken, "password": PASSWORD, "confirm_password": PASSWORD}, "taken"),
        ({"username": taken.upper(), "password": PASSWORD}, "taken"),
        ({"username": "bad name!", "password": PASSWORD}, "letters, digits and underscores"),
        ({"username": "x" * 65, "password": PASSWORD}, "letters, digits and underscores"),
        ({"username": "", "password": PASSWORD}, "choose a username"),
        ({"username": site.unique("u"), "password": ""}, "choose a password"),
        ({"username": site.unique("u"), "password": "a"}, "at least 8 characters"),
        ({"username": site.unique("u"), "password": PASSWORD, "confirm_password": "b"},
         "do not match"),
    ]:
        r = requests.post(site.url + "/register", data=data, allow_redirects=False, timeout=20)
        assert r.status_code == 200, (data, r.status_code)
        assert word in r.text, (data, r.text[:400])


def test_register_page(site):
    r = requests.get(site.url + "/register", timeout=10)
    assert r.status_code == 200 and 'name="confirm_password"' in r.text


def test_logout(site):
    s = site.login(site.add_user(admin=True))
    assert s.get(site.url + "/admin", allow_redirects=False, timeout=10).status_code == 200
    # GET only shows the button (a cross-site link must not log anybody out).
    r = s.get(site.url + "/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 200 and 'action="/logout"' in r.text
    assert s.get(site.url + "/admin", allow_redirects=False, timeout=10).status_code == 200
    r = s.post(site.url + "/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    r = s.get(site.url + "/admin", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_cli_user_add_errors(site):
    name = site.add_user()
    argv = harness.spaces_server_command() + ["user", "add", name, "--database-url",
                                              site.pg.url]
    out = subprocess.run(argv, input="pw\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "already exists" in out.stderr
    argv[3] = "bad name"
    out = subprocess.run(argv, input="pw\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    out = subprocess.run(argv[:3] + ["ok_name", "--database-url", site.pg.url], input="",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "password" in out.stderr


# ---------------------------------------------------------------------------
# Admin


def test_admin_only(site):
    anon = requests.Session()
    user = site.user()
    name = site.unique("Sneaky")
    # Anonymous: to the login form. Signed in but not an admin: 403, saying so.
    for s, code in ((anon, 302), (user, 403)):
        r = s.get(site.url + "/admin", allow_redirects=False, timeout=10)
        assert r.status_code == code
        assert code == 403 or r.headers["Location"] == "/login"
        r = s.post(site.url + "/admin/space/add", allow_redirects=False, timeout=10,
                   data={"name": name, "card_type": "websockets"})
        assert r.status_code == code
    assert "not an administrator" in user.get(site.url + "/admin", timeout=10).text
    assert site.pg.sql("SELECT count(*) FROM spaces WHERE name = :'n'", n=name) == [["0"]]
    space_id, _ = site.add_space()
    for path in ("/admin/space/edit/" + space_id, "/admin/space/delete/" + space_id,
                 "/admin/space/add"):
        r = user.get(site.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 403, path
    r = user.post(site.url + "/admin/space/delete/" + space_id, allow_redirects=False,
                  timeout=10)
    assert r.status_code == 403
    assert site.pg.sql("SELECT count(*) FROM spaces WHERE id = :'i'", i=space_id) == [["1"]]


def test_old_http_flow(site):
    """test_websockets.py: log in, create a space as admin with the form
    fields, read its id from the redirect, see Not connected, get 503."""
    s = site.admin
    assert s.get(site.url + "/admin", timeout=10).status_code == 200
    name = "TestSpace_%d" % int(time.time() * 1000)
    r = s.post(site.url + "/admin/space/add", allow_redirects=False, timeout=20, data={
        "name": name, "description": "Test WebSocket Space for automated testing",
        "cover": "default.png", "cover_type": "image", "card_type": "websockets",
        "ws_enable_prompt": "on", "ws_enable_audio": "on", "ws_enable_video": "on",
        "ws_enable_file_upload": "on"})
    assert r.status_code == 302
    space_id = r.headers["Location"].split("/edit/")[-1].rstrip("/")
    row = site.pg.sql("SELECT name, enable_prompt, enable_audio, enable_video, "
                      "enable_file_upload, card_type FROM spaces WHERE id = :'i'", i=space_id)
    assert row == [[name, "t", "t", "t", "t", "websockets"]]
    assert s.get(site.url + "/", timeout=10).status_code == 200
    r = s.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert r.status_code == 200
    assert "Not connected" in r.text and "not connected" in r.text.lower()
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "Test prompt"},
               timeout=10)
    assert r.status_code == 503
    assert r.json() == {"success": False, "error": "Remote app not connected"}
    # The redirect's target works too, with or without a trailing slash.
    assert s.get(site.url + r"/admin/space/edit/%s/" % space_id, timeout=10).status_code == 200


def test_duplicate_space_name(site):
    _, name = site.add_space()
    r = site.admin.post(site.url + "/admin/space/add", allow_redirects=False, timeout=10,
                        data={"name": name, "card_type": "websockets"})
    assert r.status_code == 409
    assert "already exists" in r.text
    assert site.pg.sql("SELECT count(*) FROM spaces WHERE name = :'n'", n=name) == [["1"]]


def test_edit_token_delete(site):
    space_id, name = site.add_space()
    s = site.admin
    r = s.get(site.url + "/admin/space/edit/" + space_id, timeout=10)
    assert r.status_code == 200 and name in r.text
    new = site.unique("Renamed")
    r = s.post(site.url + "/admin/space/edit/" + space_id, allow_redirects=False, timeout=10,
               data={"name": new, "card_type": "websockets", "ws_enable_audio": "on",
                     "ws_rate_limit_seconds": "5", "ws_timeout_seconds": "30",
                     "ws_max_apps": "2"})
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/admin/space/edit/" + space_id)
    row = site.pg.sql("SELECT name, enable_prompt, enable_audio, rate_limit_seconds, "
                      "timeout_seconds, max_apps FROM spaces WHERE id = :'i'", i=space_id)
    assert row == [[new, "f", "t", "5", "30", "2"]]
    r = s.post(site.url + "/admin/space/edit/" + space_id, timeout=10,
               data={"name": new, "ws_timeout_seconds": "-3"})
    assert r.status_code == 400 and "timeout" in r.text
    # A new app token: the space takes only apps giving it; the admin's
    # edit page shows it in the command line that connects an app; the
    # database keeps its hash for the check.
    r = s.post(site.url + "/admin/space/token/" + space_id, data={"action": "generate"},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/admin/space/edit/" + space_id)
    page = s.get(site.url + "/admin/space/edit/" + space_id, timeout=10).text
    token = re.search(r'\?token=([A-Za-z0-9_-]+)', page).group(1)
    stored = site.pg.sql("SELECT app_token_hash, app_access FROM spaces WHERE id = :'i'",
                         i=space_id)
    assert stored == [[hashlib.sha256(token.encode()).hexdigest(), "token"]]
    r = s.post(site.url + "/admin/space/token/" + space_id, data={"action": "clear"},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert site.pg.sql("SELECT app_token_hash IS NULL, app_token IS NULL, app_access "
                       "FROM spaces WHERE id = :'i'", i=space_id) == [["t", "t", "open"]]
    # Delete asks first (GET), then deletes (POST).
    r = s.get(site.url + "/admin/space/delete/" + space_id, timeout=10)
    assert r.status_code == 200 and 'method="post"' in r.text
    r = s.post(site.url + "/admin/space/delete/" + space_id, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/admin"
    assert s.get(site.url + "/ai_project/" + space_id, timeout=10).status_code == 404
    assert s.get(site.url + "/admin/space/edit/" + space_id, timeout=10).status_code == 404


def test_admin_panel_lists_everything(site):
    space_id, name = site.add_space()
    r = site.admin.get(site.url + "/admin", timeout=10,
                       params={"space": space_id, "status": "failed", "user": "x"})
    assert r.status_code == 200
    for word in ("Spaces", "Connected apps", "Requests", "Users", name):
        assert word in r.text


# ---------------------------------------------------------------------------
# Pages


def test_space_page(site):
    space_id, name = site.add_space(description="Line one\nline two")
    r = requests.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert r.status_code == 200
    assert name in r.text and "Not connected" in r.text
    assert "/login?next=" in r.text  # anonymous: a link to log in, no form
    assert 'id="submit-form"' not in r.text
    assert requests.get(site.url + "/ai_project/nope", timeout=10).status_code == 404
    assert requests.get(site.url + "/ai_project/", timeout=10).status_code == 404
    s = site.user()
    r = s.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert 'id="submit-form"' in r.text and "disabled" in r.text
    assert 'src="/socket.io/socket.io.js"' in r.text
    assert 'name="csrf_token"' in r.text
    r = s.get(site.url + "/", timeout=10)
    assert r.status_code == 200 and name in r.text


def test_connected_space_and_submit(site):
    space_id, name = site.add_space(ws_enable_audio="on")
    app = site.app(name)
    s = site.user()
    r = s.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert "Connected" in r.text and "Not connected" not in r.text
    assert 'id="submit-fields">' in r.text  # not disabled
    r = s.post(site.url + "/websockets/submit/" + space_id,
               data={"prompt": "hello <b>", "audio_url": "https://example.com/a.wav"},
               timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and UUID4.match(body["request_id"])
    _, _, ev = app.wait_event("inference_request", timeout=5,
                        pred=lambda e: e["data"]["request_id"] == body["request_id"])
    payload = ev["data"]["payload"]
    assert payload["prompt"] == "hello <b>"
    assert payload["audio"] == "https://example.com/a.wav"
    st = site.wait_status(s, body["request_id"])
    assert st["status"] == "completed"
    assert st["result"]["text_output"] == "echo: hello <b>"
    for k in ("request_id", "status", "result", "created_at", "updated_at"):
        assert k in st
    # The page shows the result readably, escaped.
    r = s.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert "echo: hello &lt;b&gt;" in r.text and "Processing time: 0.01 s" in r.text
    # Empty prompt: 400 (after the app check).
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": ""}, timeout=10)
    assert r.status_code == 400 and r.json()["success"] is False
    r = s.post(site.url + "/websockets/submit/" + space_id,
               data={"prompt": "x", "audio_url": "javascript:alert(1)"}, timeout=10)
    assert r.status_code == 400


def test_submit_and_status_errors(site):
    space_id, _ = site.add_space()
    r = requests.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
                      timeout=10)
    assert r.status_code == 401 and r.json()["success"] is False and r.json()["error"]
    s = site.user()
    for bad in ("nope", "1%27%20OR%20%271%27%3D%271", ""):
        r = s.post(site.url + "/websockets/submit/" + bad, data={"prompt": "x"}, timeout=10)
        assert r.status_code == 404, bad
        assert r.json()["success"] is False
    r = requests.get(site.url + "/websockets/status", timeout=10)
    assert r.status_code == 400 and r.json() == {"error": "Missing request_id"}
    r = requests.get(site.url + "/websockets/status?request_id=", timeout=10)
    assert r.status_code == 400
    for rid in ("00000000-0000-4000-8000-000000000000", "' OR 1=1 --", "x" * 300):
        r = requests.get(site.url + "/websockets/status", params={"request_id": rid},
                         timeout=10)
        assert r.status_code == 404 and r.json() == {"error": "Request not found"}, rid


def test_rate_limit(site):
    space_id, name = site.add_space(ws_rate_limit_seconds="60")
    site.app(name)
    s = site.user()
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "one"}, timeout=10)
    assert r.status_code == 200
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "two"}, timeout=10)
    assert r.status_code == 429
    body = r.json()
    assert body["success"] is False and 0 < body["retry_after"] <= 60


def test_file_upload_reaches_the_app(site):
    space_id, name = site.add_space(ws_enable_audio="on", ws_enable_video="on",
                                    ws_enable_file_upload="on")
    app = site.app(name)
    s = site.user()
    video = os.urandom(300000)
    other = b"plain text file\n"
    audio = os.urandom(5000)
    r = s.post(site.url + "/websockets/submit/" + space_id, timeout=30,
               data={"prompt": "with files"},
               files={"video_file": ("my clip.mp4", video, "video/mp4"),
                      "other_file": ("../../evil<x>.txt", other, "text/html"),
                      "audio_file": ("voice.wav", audio, "audio/wav")})
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    _, _, ev = app.wait_event("inference_request", timeout=5,
                        pred=lambda e: e["data"]["request_id"] == rid)
    upload = ev["data"]["payload"]["upload"]
    assert set(upload) == {"video_file", "other_file", "audio_file"}
    assert ev["data"]["payload"]["audio"] == upload["audio_file"]["url"]
    url = upload["other_file"]["url"]
    assert re.search(r"/uploads/[A-Za-z0-9_-]{32}/evil_x_.txt$", url), url
    st = site.wait_status(s, rid)
    files = st["result"]["files"]
    assert files["video_file"] == {"size": len(video),
                                   "sha256": hashlib.sha256(video).hexdigest(),
                                   "content_type": "video/mp4"}
    assert files["audio_file"]["sha256"] == hashlib.sha256(audio).hexdigest()
    # A stored text/html upload is never served as HTML.
    assert files["other_file"]["content_type"] == "application/octet-stream"
    rows = site.pg.sql("SELECT count(*) FROM uploads WHERE request_id = :'r'", r=rid)
    assert rows == [["3"]]
    # The token is the credential: a wrong one or a wrong name is 404.
    path = url.split("/uploads/", 1)[1]
    token, fname = path.split("/")
    assert requests.get(site.url + "/uploads/%s/other.txt" % token, timeout=10).status_code == 404
    assert requests.get(site.url + "/uploads/%s/%s" % ("A" * 32, fname),
                        timeout=10).status_code == 404
    assert requests.get(site.url + "/uploads/../../etc/passwd", timeout=10).status_code == 404
    r = requests.get(site.url + "/uploads/" + path, timeout=10)
    assert r.status_code == 200 and r.content == other
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_large_upload_is_streamed_with_ranges_and_bounded_memory(site):
    """A file bigger than a connection's output limit (16 MiB) reaches the
    app whole; byte ranges (media seeking), ETag and If-Range work; readers
    that take nothing do not make the server hold the files in memory."""
    space_id, name = site.add_space(ws_enable_file_upload="on")
    app = site.app(name)
    s = site.user()
    big = os.urandom(20 * 1024 * 1024 + 12345)
    r = s.post(site.url + "/websockets/submit/" + space_id, timeout=60, data={"prompt": "big"},
               files={"other_file": ("big.bin", big, "application/octet-stream")})
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    _, _, ev = app.wait_event("inference_request", timeout=10,
                              pred=lambda e: e["data"]["request_id"] == rid)
    url = ev["data"]["payload"]["upload"]["other_file"]["url"]
    st = site.wait_status(s, rid, timeout=60)
    assert st["result"]["files"]["other_file"]["size"] == len(big)
    assert st["result"]["files"]["other_file"]["sha256"] == hashlib.sha256(big).hexdigest()
    size = len(big)

    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == big
    assert whole.headers["Accept-Ranges"] == "bytes"
    etag = whole.headers["ETag"]
    cases = {"bytes=0-99": (0, 100), "bytes=100-": (100, size - 100),
             "bytes=-10": (size - 10, 10), "bytes=0-0": (0, 1),
             "bytes=%d-%d" % (size - 5, size + 1000): (size - 5, 5),
             "bytes=-%d" % (size * 2): (0, size)}
    for value, (start, length) in cases.items():
        r = requests.get(url, headers={"Range": value}, timeout=30)
        assert r.status_code == 206, value
        assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (start, start + length - 1,
                                                                 size), value
        assert r.content == big[start:start + length], value
    # Past the end: 416 naming the size; the connection stays usable.
    with requests.Session() as k:
        r = k.get(url, headers={"Range": "bytes=%d-" % size}, timeout=10)
        assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */%d" % size
        r = k.get(url, headers={"Range": "bytes=5-9"}, timeout=10)
        assert r.status_code == 206 and r.content == big[5:10]
    # Several ranges, a malformed one, or a stale If-Range: the whole file.
    for headers in ({"Range": "bytes=0-1,5-6"}, {"Range": "bytes=9-3"}, {"Range": "lines=1-2"},
                    {"Range": "bytes=0-9", "If-Range": '"stale"'}):
        r = requests.get(url, headers=headers, timeout=30)
        assert r.status_code == 200 and len(r.content) == size, headers
    r = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert r.status_code == 206 and r.content == big[:10]
    r = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert r.status_code == 304 and r.content == b""
    r = requests.head(url, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(size)
    assert r.headers["ETag"] == etag and r.content == b""

    # Eight readers ask for the file and read nothing: the server holds a
    # window of each, not 8 x 20 MiB. Then each reads it all, intact.
    pid = site.server.proc.pid
    path = urllib.parse.urlsplit(url).path
    before = _rss_kib(pid)
    socks = []
    for _ in range(8):
        c = socket.create_connection(("127.0.0.1", site.server.port), timeout=30)
        c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   % path).encode())
        socks.append(c)
    time.sleep(1.5)
    grown = _rss_kib(pid) - before
    assert grown < 16 * 1024, "RSS grew by %d KiB for 8 stalled readers" % grown
    for c in socks:
        data = bytearray()
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            data += b
        c.close()
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        assert body == big
    assert site.server.alive()


def test_upload_refused_when_not_enabled_or_too_big(site):
    space_id, name = site.add_space()  # prompt only
    site.app(name)
    s = site.user()
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
               files={"video_file": ("a.mp4", b"1234", "video/mp4")}, timeout=10)
    assert r.status_code == 400 and "video" in r.json()["error"]
    space_id, name = site.add_space(ws_enable_file_upload="on")
    site.app(name)
    big = b"\0" * (25 * 1024 * 1024 + 1)
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
               files={"other_file": ("big.bin", big, "application/octet-stream")}, timeout=60)
    assert r.status_code in (400, 413)
    if r.status_code == 400:
        assert "too large" in r.json()["error"]


# ---------------------------------------------------------------------------
# Security


def _csrf_token(session, url):
    html = session.get(url, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_csrf(site):
    s = site.admin
    origin = site.url
    name = site.unique("Csrf")
    data = {"name": name, "card_type": "websockets"}
    # Another site: refused, with or without a token.
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        r = s.post(site.url + "/admin/space/add", data=data, headers=headers,
                   allow_redirects=False, timeout=10)
        assert r.status_code == 403, headers
    r = requests.post(site.url + "/login", data={"username": "a", "password": "b"},
                      headers={"Origin": "http://evil.example"}, timeout=10)
    assert r.status_code == 403
    # Our own origin, but a browser form without the session's token: refused.
    r = s.post(site.url + "/admin/space/add", data=data, allow_redirects=False, timeout=10,
               headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 403
    assert site.pg.sql("SELECT count(*) FROM spaces WHERE name = :'n'", n=name) == [["0"]]
    # With it: accepted.
    token = _csrf_token(s, site.url + "/admin/space/add")
    r = s.post(site.url + "/admin/space/add", data=dict(data, csrf_token=token),
               allow_redirects=False, timeout=10,
               headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 302
    # The JSON route takes the token as a header too.
    space_id = r.headers["Location"].split("/edit/")[-1]
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
               headers={"Origin": origin}, timeout=10)
    assert r.status_code == 403 and r.json()["success"] is False
    r = s.post(site.url + "/websockets/submit/" + space_id, data={"prompt": "x"},
               headers={"Origin": origin, "X-CSRF-Token": token}, timeout=10)
    assert r.status_code == 503


def test_xss_is_escaped(site):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    space_id, name = site.add_space(name=site.unique("X") + evil, description=evil,
                                    cover='javascript:alert(1)')
    for path in ("/", "/ai_project/" + space_id, "/admin", "/admin/space/edit/" + space_id):
        r = site.admin.get(site.url + path, timeout=10)
        assert r.status_code == 200, path
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, path
        assert "&lt;script&gt;alert(&quot;x&quot;)" in r.text, path
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    # Only https:// or same-site covers become images.
    r = site.admin.get(site.url + "/ai_project/" + space_id, timeout=10)
    assert "javascript:alert" not in r.text
    r = requests.post(site.url + "/login", data={"username": '"><script>x</script>',
                                                 "password": "p"}, timeout=10)
    assert "<script>x" not in r.text


def test_sql_injection(site):
    site.add_user(name="victim_admin", admin=True)
    for user in ("victim_admin' --", "' OR '1'='1", "victim_admin'/*"):
        r = requests.post(site.url + "/login", data={"username": user, "password": "' OR '1'='1"},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 200 and "Invalid" in r.text
    r = site.admin.get(site.url + "/admin", timeout=10,
                       params={"space": "' OR 1=1 --", "status": "x'; DROP TABLE users; --",
                               "user": "a' OR 'a'='a"})
    assert r.status_code == 200
    name = site.unique("Sq") + "'; DROP TABLE spaces; --"
    space_id, _ = site.add_space(name=name, description="'); DELETE FROM users; --")
    assert site.pg.sql("SELECT name FROM spaces WHERE id = :'i'", i=space_id) == [[name]]
    assert int(site.pg.sql("SELECT count(*) FROM users")[0][0]) > 1


# ---------------------------------------------------------------------------
# Static files


def test_socketio_client_bundle(site):
    for name in ("socket.io.js", "socket.io.js.map", "socket.io.msgpack.min.js",
                 "socket.io.min.js"):
        r = requests.get(site.url + "/socket.io/" + name, timeout=10)
        assert r.status_code == 200, name
        assert r.headers["ETag"] and r.headers["Cache-Control"]
    r = requests.get(site.url + "/socket.io/socket.io.js", timeout=10,
                     headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip" and "io" in r.text  # requests gunzips
    assert r.headers["Content-Type"].startswith("application/javascript")
    r2 = requests.get(site.url + "/socket.io/socket.io.js", timeout=10,
                      headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304 and r2.content == b""
    for name in ("spaces.js", "spaces.css"):
        r = requests.get(site.url + "/static/" + name, timeout=10)
        assert r.status_code == 200 and r.headers["ETag"]
    assert requests.get(site.url + "/static/nope.js", timeout=10).status_code == 404


# ---------------------------------------------------------------------------
# Login rate limit (its own server: it blocks 127.0.0.1 for a while)


def test_login_rate_limit(site):
    server = _start(site.pg, site.upload_dir)
    try:
        url = server.url.rstrip("/")
        codes = []
        for _ in range(12):
            r = requests.post(url + "/login", data={"username": "nobody", "password": "x"},
                              allow_redirects=False, timeout=20)
            codes.append(r.status_code)
        assert codes[:10] == [200] * 10
        assert codes[-1] == 429
        assert int(r.headers["Retry-After"]) > 0
        assert "Too many failed logins" in r.text
    finally:
        server.stop()


def test_login_rate_limit_behind_proxy(site):
    """With --trust-proxy 127.0.0.1 (nginx on the same host), each client
    address named by X-Forwarded-For has its own login budget: one client
    cannot lock everybody out, and a client cannot escape its own limit by
    writing its own X-Forwarded-For (nginx appends the real address last)."""
    server = _start(site.pg, site.upload_dir, ["--trust-proxy", "127.0.0.1"])
    try:
        url = server.url.rstrip("/")

        def attempt(xff):
            return requests.post(url + "/login", data={"username": "nobody", "password": "x"},
                                 headers={"X-Forwarded-For": xff}, allow_redirects=False,
                                 timeout=20)

        codes = [attempt("203.0.113.5").status_code for _ in range(11)]
        assert codes[:10] == [200] * 10 and codes[10] == 429
        # Spoofed entries before the real one change nothing.
        assert attempt("198.51.100.1, 203.0.113.5").status_code == 429
        # Another client behind the same proxy still gets to try (another
        # account: "nobody" itself is now slowed down, whoever asks).
        r = requests.post(url + "/login", data={"username": "somebody", "password": "x"},
                          headers={"X-Forwarded-For": "203.0.113.6"}, allow_redirects=False,
                          timeout=20)
        assert r.status_code == 200
        assert attempt("203.0.113.6").status_code == 429
        # The failed logins were logged with the client's address.
        deadline = time.time() + 10
        while "failed login for 'somebody' from 203.0.113.6" not in server.stderr():
            assert time.time() < deadline, "no log line with the client's address"
            time.sleep(0.1)
    finally:
        server.stop()


def test_max_input_bounds_what_all_uploads_hold_together(site):
    """--max-input: what has arrived counts, not what Content-Length
    announces: two uploads announced and begun both go on; two uploads
    that have sent most of their bodies do not fit together, and the
    second is refused with 503 while the first goes on untouched."""
    # (Also a server that prepares no statements: it must work the same.)
    server = _start(site.pg, site.upload_dir, ["--max-input", "3000000",
                                               "--no-prepared-statements"])
    try:
        host, port = "127.0.0.1", int(server.url.rstrip("/").rsplit(":", 1)[1])
        head = ("POST /websockets/submit/nope HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 2000000\r\n\r\n").encode()
        a = socket.create_connection((host, port), timeout=10)
        a.sendall(head + b"p" * 1000)
        b = socket.create_connection((host, port), timeout=10)
        b.sendall(head + b"p" * 1000)
        time.sleep(0.3)
        # Both announced 2 MB (4 MB together, over 3 MB) and sent 1000
        # bytes: neither is refused.
        for c in (a, b):
            c.settimeout(0.0)
            try:
                assert c.recv(1) == b"-", "an upload that sent 1000 bytes was answered"
            except BlockingIOError:
                pass
            c.settimeout(10)
        # a sends most of its body; then b does too: the two no longer fit.
        a.sendall(b"p" * 1600000)
        time.sleep(0.3)
        try:
            b.sendall(b"p" * 1600000)
        except OSError:
            pass  # refused (and closed) while sending
        answer = b.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        b.close()
        # The first upload was not hurt: it completes and gets its answer
        # (401: nobody is logged in).
        a.sendall(b"p" * (2000000 - 1000 - 1600000))
        answer = a.recv(4096)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        a.close()
        assert "over the limit of 3000000" in server.stderr()
        # The site works on that server: a login round trip and a page.
        s = requests.Session()
        r = s.get(server.url.rstrip("/") + "/login", timeout=10)
        assert r.status_code == 200
        r = s.post(server.url.rstrip("/") + "/login",
                   data={"username": "nobody", "password": "x"}, timeout=10)
        assert r.status_code == 200 and "Invalid" in r.text, r.text[:300]
    finally:
        server.stop()


def test_trust_proxy_refuses_a_bad_list(site):
    r = subprocess.run(harness.spaces_server_command() + ["--database-url", site.pg.url,
                                                          "--listen", "127.0.0.1:0",
                                                          "--trust-proxy", "nginx.local"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "invalid value for --trust-proxy: 'nginx.local'" in r.stderr


def test_cluster_options_refuse_bad_values(site):
    cases = ((["--node-id", "has space"], "invalid --node-id 'has space'"),
             (["--node-id", ""], "invalid --node-id ''"),
             (["--node-id", "a,b"], "invalid --node-id 'a,b'"),
             (["--node-id", "x" * 101], "invalid --node-id"),
             (["--node-timeout", "1"], "--node-timeout must be at least 2"),
             (["--node-timeout", "ten"], "invalid value for --node-timeout: 'ten'"))
    for args, message in cases:
        r = subprocess.run(harness.spaces_server_command() + ["--database-url", site.pg.url,
                                                              "--listen", "127.0.0.1:0"] + args,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert message in r.stderr, (args, r.stderr)
    r = subprocess.run(harness.spaces_server_command() + ["--help"], capture_output=True,
                       text=True, timeout=30)
    assert "--node-id NAME" in r.stdout and "--node-timeout S" in r.stdout
