"""Configuration of spaces-server (issue 13): every option from a flag or an
environment variable, `spaces-server config check`, and a server that
refuses to start without its assets.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_config.py

    SPACES_BUILD_DIR   build directory holding spaces-server (default build/debug)

The environment of each spaces-server run here is built from scratch (no
SPACES_* or DATABASE_URL inherited from the caller), so what a test sets is
all the server sees.
"""

import os
import re
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402

SERVER = os.path.join(harness.BUILD_DIR, "spaces-server")
ENV_FILE = os.path.join(SOURCE, "ci", "package", "spaces-server.env")
LINE = re.compile(r"^([a-z][a-z0-9-]*) = (.*?) +\[(.*)\]$")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SPACES_") and k != "DATABASE_URL"}
    # ASan's options come from ctest; keep them.
    env.update(extra)
    return env


def run(args, env=None, timeout=60, cwd=None):
    return subprocess.run([SERVER] + list(args), env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or SOURCE)


def config_check(env=None, args=()):
    out = run(["config", "check"] + list(args), env=env)
    values = {}
    for line in out.stdout.splitlines():
        m = LINE.match(line)
        if m:
            values[m.group(1)] = (m.group(2), m.group(3))
    return out, values


def help_text():
    out = run(["--help"])
    assert out.returncode == 0, out.stderr
    return out.stdout


def help_options():
    """{flag: [env names]} from --help."""
    opts = {}
    current = None
    for line in help_text().splitlines():
        m = re.match(r"^ {2,6}(?:-\w, )?--([a-z][a-z0-9-]*)", line)
        if m:
            current = m.group(1)
            opts[current] = []
        if current:
            opts[current] += re.findall(r"\b(SPACES_[A-Z0-9_]+|DATABASE_URL)\b", line)
    return opts


@pytest.fixture(scope="module")
def pg():
    if not os.path.exists(SERVER):
        pytest.fail("%s does not exist: build it (make build)" % SERVER)
    with harness.PgCluster() as cluster:
        yield cluster


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def start(pg, args=(), env=None, port=None, port_args=None):
    """spaces-server with only the given arguments and environment; ready
    once /healthz answers."""
    def ready(server):
        try:
            return get(server.url + "/healthz")[0] == 200
        except Exception:
            return False

    full = clean_env(**(env or {}))
    # Each server its own results journal (one process per data directory):
    # not the source tree's var/data, which another test's server may hold.
    if "--data-dir" not in args and "SPACES_DATA_DIR" not in full:
        args = list(args) + ["--data-dir", harness.spaces_data_dir()]
    old = dict(os.environ)
    # start_server_ex merges os.environ into env: take it away meanwhile.
    os.environ.clear()
    os.environ.update(full)
    try:
        return harness.start_server_ex(
            [SERVER] + list(args), port=port,
            port_args=port_args or (lambda p: []), ready_check=ready, attempts=1)
    finally:
        os.environ.clear()
        os.environ.update(old)


# ---------------------------------------------------------------------------


def test_listen_and_database_from_the_environment(pg):
    """SPACES_LISTEN and DATABASE_URL alone are enough to serve."""
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start(pg, env={"SPACES_LISTEN": "127.0.0.1:%d" % port, "DATABASE_URL": pg.url,
                                "SPACES_UPLOAD_DIR": os.path.join(tmp, "up")},
                       port=port)
        with server:
            assert get(server.url + "/healthz") == (200, b"ok\n")
            assert os.path.isdir(os.path.join(tmp, "up"))


def test_spaces_database_url_wins_over_database_url(pg):
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start(pg, env={"SPACES_LISTEN": "127.0.0.1:%d" % port,
                                "SPACES_DATABASE_URL": pg.url,
                                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                                "SPACES_UPLOAD_DIR": os.path.join(tmp, "up")},
                       port=port)
        with server:
            assert get(server.url + "/healthz")[0] == 200


def test_flag_overrides_environment(pg):
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start(pg, args=["--upload-dir", os.path.join(tmp, "flag")],
                       env={"SPACES_LISTEN": "127.0.0.1:1", "DATABASE_URL": pg.url,
                            "SPACES_UPLOAD_DIR": os.path.join(tmp, "env")},
                       port=port, port_args=lambda p: ["--listen", "127.0.0.1:%d" % p])
        with server:
            assert get(server.url + "/healthz")[0] == 200
            assert os.path.isdir(os.path.join(tmp, "flag"))
            assert not os.path.exists(os.path.join(tmp, "env"))


def test_config_check_prints_effective_values_and_masks_secrets():
    env = clean_env(DATABASE_URL="postgresql://spaces:s3cr3t-pw@db.example.org:5432/spaces",
                    SPACES_PING_INTERVAL="30000", SPACES_SECURE_COOKIES="yes",
                    SPACES_TRUST_PROXY="127.0.0.1,10.0.0.0/8")
    out, values = config_check(env, ["--max-connections", "500"])
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "s3cr3t-pw" not in text, text
    url, source = values["database-url"]
    assert url == "postgresql://spaces:****@db.example.org:5432/spaces", url
    assert "DATABASE_URL" in source
    assert values["ping-interval"] == ("30000", "env SPACES_PING_INTERVAL")
    assert values["max-connections"] == ("500", "flag --max-connections")
    assert values["secure-cookies"][0] == "on"
    assert values["trust-proxy"] == ("127.0.0.1,10.0.0.0/8", "env SPACES_TRUST_PROXY")
    assert values["listen"] == ("127.0.0.1:5001", "default")
    # The asset directories, resolved, are part of it.
    for name in ("static-dir", "client-dir", "migrations"):
        assert name in values, out.stdout
        assert os.path.isdir(values[name][0]), values[name]


def test_config_check_masks_passwords_in_keyword_form():
    env = clean_env(DATABASE_URL="host=db user=spaces password=hunter2 dbname=spaces")
    out, values = config_check(env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hunter2" not in out.stdout + out.stderr
    assert "password=****" in values["database-url"][0]


@pytest.mark.parametrize("var,value,flag", [
    ("SPACES_PING_INTERVAL", "abc", None),
    ("SPACES_LISTEN", "nowhere", None),
    ("SPACES_SECURE_COOKIES", "maybe", None),
    ("SPACES_LOG_LEVEL", "loud", None),
    ("SPACES_TRUST_PROXY", "nginx.local", None),
    ("SPACES_NODE_TIMEOUT", "1", None),
    (None, None, ["--db-pool", "0"]),
])
def test_config_check_fails_on_a_bad_value(var, value, flag):
    env = clean_env(DATABASE_URL="postgresql://x@127.0.0.1/x")
    if var:
        env[var] = value
    out, _ = config_check(env, flag or [])
    assert out.returncode != 0, out.stdout
    if var:
        assert var in out.stderr and value in out.stderr, out.stderr
    else:
        assert flag[0] in out.stderr, out.stderr


def test_config_check_fails_without_a_database():
    out, values = config_check(clean_env())
    assert out.returncode != 0
    assert "DATABASE_URL" in out.stderr


def test_server_refuses_a_bad_environment_value(pg):
    out = run(["migrate"], env=clean_env(DATABASE_URL=pg.url, SPACES_DB_POOL="lots"))
    assert out.returncode == 2, out.stderr
    assert "SPACES_DB_POOL" in out.stderr


@pytest.mark.parametrize("what", ["static-dir", "client-dir", "migrations"])
def test_refuses_to_start_without_assets(pg, what, tmp_path):
    """A missing asset directory is an error at start-up, not a site
    without CSS or a /socket.io/socket.io.js answering 404."""
    empty = tmp_path / "empty"
    empty.mkdir()
    port = harness.free_port()
    env = clean_env(DATABASE_URL=pg.url, SPACES_UPLOAD_DIR=str(tmp_path / "up"))
    out = run(["--listen", "127.0.0.1:%d" % port, "--" + what, str(empty)], env=env,
              timeout=60)
    assert out.returncode != 0, out.stderr
    assert str(empty) in out.stderr, out.stderr
    assert "--" + what in out.stderr, out.stderr
    assert not harness.can_connect(port)
    # config check says the same.
    out, _ = config_check(env, ["--" + what, str(empty)])
    assert out.returncode != 0 and str(empty) in out.stderr, out.stderr


def test_refuses_an_incomplete_static_dir(pg, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "spaces.js").write_text("// no stylesheet next to me\n")
    out = run(["--static-dir", str(static)],
              env=clean_env(DATABASE_URL=pg.url, SPACES_UPLOAD_DIR=str(tmp_path / "up")))
    assert out.returncode != 0
    assert "spaces.css" in out.stderr, out.stderr


def test_help_lists_the_environment_variable_of_every_option():
    opts = help_options()
    assert len(opts) >= 20, opts
    for flag, envs in opts.items():
        if flag in ("help", "version"):
            continue
        want = "SPACES_" + flag.upper().replace("-", "_")
        assert want in envs, "--%s: %s not in its --help entry (%r)" % (flag, want, envs)
    assert "DATABASE_URL" in opts["database-url"]


def test_docs_list_every_option_and_variable():
    opts = help_options()
    with open(os.path.join(SOURCE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    missing = []
    for flag, envs in opts.items():
        if "--" + flag not in readme:
            missing.append("--" + flag)
        for e in envs:
            if e not in readme:
                missing.append(e)
    assert not missing, "README.md does not mention: %s" % ", ".join(missing)


def test_environment_file_names_only_real_variables():
    known = set(v for envs in help_options().values() for v in envs)
    with open(ENV_FILE, encoding="utf-8") as f:
        named = set(re.findall(r"^#?\s*(SPACES_[A-Z0-9_]+|DATABASE_URL)=", f.read(), re.M))
    assert named, "no variables in %s" % ENV_FILE
    unknown = named - known
    assert not unknown, "%s names variables spaces-server does not read: %s" % (
        ENV_FILE, sorted(unknown))


def test_user_add_reads_the_environment(pg):
    out = subprocess.run([SERVER, "user", "add", "envuser"], input="Passw0rd_123\n",
                         env=clean_env(SPACES_DATABASE_URL=pg.url), capture_output=True,
                         text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert pg.sql("SELECT count(*) FROM users WHERE username = 'envuser'") == [["1"]]
