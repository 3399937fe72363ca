"""Test harness for Python tests: start a server program on a free 127.0.0.1
port, wait until it accepts connections, and stop it at the end, checking that
it exited with status 0 and printed no sanitizer report.

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    import harness
    with harness.start_engineio_server() as server:
        ... server.url, server.ws_url, server.port ...
    # leaving the block stops it and raises AssertionError if the exit was
    # not clean (status != 0, timeout, sanitizer report on stderr)

The program is given ``--port P`` (appended to its arguments). Which program
runs comes from the environment, so one test runs against ours or the
reference Node.js server:

    SPACES_ENGINEIO_SERVER  unset: $SPACES_BUILD_DIR/conformance-engineio
                            "reference": node tests/conformance/reference_engineio.js
                            anything else: a command line (split like a shell)
    SPACES_ENGINEIO_URL     use a server that is already running at this URL
                            (nothing is started or stopped)
    SPACES_BUILD_DIR        build directory (default <source>/build/debug)
    SPACES_SOURCE_DIR       source directory (default: found from this file)
    SPACES_TEST_TIMEOUT_MULTIPLIER  scales every timeout and deadline of the
                            tests (default 1; e.g. 3 on a loaded or slow
                            machine): use harness.scaled(seconds)
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SOURCE_DIR = os.environ.get("SPACES_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..")
)
BUILD_DIR = os.environ.get("SPACES_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "debug")


def _timeout_multiplier():
    try:
        return max(1.0, float(os.environ.get("SPACES_TEST_TIMEOUT_MULTIPLIER") or 1))
    except ValueError:
        return 1.0


# SPACES_TEST_TIMEOUT_MULTIPLIER (as libuv's UV_TEST_TIMEOUT_MULTIPLIER): how
# much longer than normal every wait may take; never below 1.
TIMEOUT_MULTIPLIER = _timeout_multiplier()


def scaled(seconds):
    """A timeout of ``seconds``, scaled by SPACES_TEST_TIMEOUT_MULTIPLIER."""
    return seconds * TIMEOUT_MULTIPLIER


SANITIZER_PATTERNS = [
    re.compile(r"runtime error:"),
    re.compile(r"ERROR: AddressSanitizer"),
    re.compile(r"ERROR: LeakSanitizer"),
    re.compile(r"SUMMARY: (Address|Leak|UndefinedBehavior|Thread|Memory)Sanitizer"),
    re.compile(r"WARNING: ThreadSanitizer"),
]


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(port, host="127.0.0.1", timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def node_executable():
    return shutil.which("node") or "node"


def server_command(env_var, binary_name, reference_script):
    """The argv of the program to test, chosen by an environment variable:
    unset means ``binary_name`` in the build directory, "reference" means
    ``node <reference_script>``, anything else is a command line."""
    value = os.environ.get(env_var, "").strip()
    if value == "reference":
        return [node_executable(), os.path.join(SOURCE_DIR, reference_script)]
    if value:
        return shlex.split(value)
    return [os.path.join(BUILD_DIR, binary_name)]


def engineio_server_command():
    return server_command(
        "SPACES_ENGINEIO_SERVER",
        "conformance-engineio",
        "tests/conformance/reference_engineio.js",
    )


def sanitizer_report(text):
    for pattern in SANITIZER_PATTERNS:
        m = pattern.search(text)
        if m:
            return text[max(0, m.start() - 200) : m.start() + 4000]
    return None


class ServerProcess:
    """A started server. ``stop()`` checks how it ended."""

    def __init__(self, argv, port, proc, stderr_file, stdout_file):
        self.argv = argv
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.ws_url = "ws://127.0.0.1:%d" % port
        self.proc = proc
        self._stderr_file = stderr_file
        self._stdout_file = stdout_file
        self._stopped = False

    def stderr(self):
        self._stderr_file.flush()
        with open(self._stderr_file.name, "r", encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError(
                "server %s died with status %r\n--- stderr ---\n%s"
                % (" ".join(self.argv), self.proc.returncode, self.stderr()[-8000:])
            )

    def stop(self, timeout=10.0):
        """SIGTERM, then require exit status 0 within ``timeout`` seconds and
        no sanitizer report on stderr. Raises AssertionError otherwise."""
        if self._stopped:
            return
        self._stopped = True
        timeout = scaled(timeout)
        problems = []
        if self.proc.poll() is not None:
            problems.append(
                "the server had already exited before SIGTERM (status %r)" % self.proc.returncode
            )
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
                if self.proc.returncode != 0:
                    problems.append("the server exited with status %r" % self.proc.returncode)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                problems.append("the server did not exit within %.0f s of SIGTERM" % timeout)
        text = self.stderr()
        report = sanitizer_report(text)
        if report:
            problems.append("sanitizer report on stderr:\n" + report)
        self._close_files()
        if problems:
            raise AssertionError(
                "%s: %s\n--- stderr (last 8000 bytes) ---\n%s"
                % (" ".join(self.argv), "; ".join(problems), text[-8000:])
            )

    def kill(self):
        """Forceful cleanup, without checks (for error paths)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._stopped = True
        self._close_files()

    def _close_files(self):
        for f in (self._stderr_file, self._stdout_file):
            try:
                f.close()
                os.unlink(f.name)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # The test already failed: still check the exit, but do not hide
            # the original error behind the stop error.
            try:
                self.stop()
            except AssertionError as e:
                print(str(e))
            return False
        self.stop()
        return False


class ExternalServer:
    """A server someone else runs (SPACES_ENGINEIO_URL)."""

    def __init__(self, url):
        from urllib.parse import urlparse

        u = urlparse(url)
        self.argv = ["(external)", url]
        self.port = u.port
        self.url = "%s://%s" % (u.scheme, u.netloc)
        self.ws_url = self.url.replace("http", "ws", 1)

    def stderr(self):
        return ""

    def alive(self):
        return True

    def assert_alive(self):
        pass

    def stop(self, timeout=10.0):
        pass

    def kill(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False


def start_server(argv, ready_timeout=30.0, env=None, attempts=3):
    """Start ``argv + ["--port", P]`` on a free port; return a ServerProcess
    once the port accepts connections. Raises AssertionError with the
    server's stderr if it exits first or is not ready in time."""
    if "/" in argv[0] and not os.path.exists(argv[0]):
        raise AssertionError(
            "server program %s does not exist (build it, or set "
            "SPACES_ENGINEIO_SERVER=reference to test the reference server)" % argv[0]
        )
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    last_error = None
    for _ in range(attempts):
        port = free_port()
        stderr_file = tempfile.NamedTemporaryFile(prefix="spaces-srv-err-", delete=False)
        stdout_file = tempfile.NamedTemporaryFile(prefix="spaces-srv-out-", delete=False)
        proc = subprocess.Popen(
            list(argv) + ["--port", str(port)],
            cwd=SOURCE_DIR,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout_file,
            stderr=stderr_file,
        )
        server = ServerProcess(argv, port, proc, stderr_file, stdout_file)
        deadline = time.monotonic() + scaled(ready_timeout)
        while time.monotonic() < deadline and server.alive():
            if can_connect(port):
                server.assert_alive()
                return server
            time.sleep(0.05)
        if server.alive():
            text = server.stderr()
            server.kill()
            raise AssertionError(
                "%s did not accept connections on port %d within %.0f s\n--- stderr ---\n%s"
                % (" ".join(argv), port, ready_timeout, text[-8000:])
            )
        text = server.stderr()
        server.kill()
        last_error = AssertionError(
            "%s exited with status %r before accepting connections\n--- stderr ---\n%s"
            % (" ".join(argv), proc.returncode, text[-8000:])
        )
        if not re.search(r"in use|EADDRINUSE", text, re.I):
            break
    raise last_error


def start_engineio_server(**kwargs):
    """The Engine.IO conformance server chosen by the environment (see the
    module docstring), or the external one if SPACES_ENGINEIO_URL is set."""
    url = os.environ.get("SPACES_ENGINEIO_URL")
    if url:
        return ExternalServer(url)
    return start_server(engineio_server_command(), **kwargs)


# ---------------------------------------------------------------------------
# Spaces: spaces-server against a throwaway PostgreSQL cluster, and child
# processes (Python apps) whose output is read line by line.
#
#     with harness.PgCluster() as pg:
#         with harness.start_spaces_server(pg.url) as server:
#             ... pg.sql("SELECT ...") ... server.url ...
#
#     SPACES_SERVER   unset: $SPACES_BUILD_DIR/spaces-server; otherwise a
#                     command line (split like a shell) used instead
#
# Everything here is an addition: start_server() keeps its old behaviour
# (``--port P`` appended) unless the new keyword arguments are given.

PYTHON = "/usr/bin/python3"
CLIENTS_DIR = os.path.join(SOURCE_DIR, "tests", "clients")
MOCK_APP = os.path.join(CLIENTS_DIR, "mock_app.py")
CONTROL_APP = os.path.join(CLIENTS_DIR, "websocket_integration_client.py")
INTEGRATION = os.path.join(CLIENTS_DIR, "test_integration.py")


def _start_server_at(argv, port, port_args, ready_timeout, full_env, ready_check):
    stderr_file = tempfile.NamedTemporaryFile(prefix="spaces-srv-err-", delete=False)
    stdout_file = tempfile.NamedTemporaryFile(prefix="spaces-srv-out-", delete=False)
    proc = subprocess.Popen(
        list(argv) + list(port_args(port)),
        cwd=SOURCE_DIR,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=stdout_file,
        stderr=stderr_file,
    )
    server = ServerProcess(argv, port, proc, stderr_file, stdout_file)
    ready_timeout = scaled(ready_timeout)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline and server.alive():
        if can_connect(port) and (ready_check is None or ready_check(server)):
            server.assert_alive()
            return server, None
        time.sleep(0.05)
    text = server.stderr()
    if server.alive():
        server.kill()
        raise AssertionError(
            "%s did not become ready on port %d within %.0f s\n--- stderr ---\n%s"
            % (" ".join(argv), port, ready_timeout, text[-8000:])
        )
    server.kill()
    return None, (proc.returncode, text)


def start_server_ex(argv, port=None, port_args=None, ready_timeout=30.0, env=None,
                    attempts=3, ready_check=None):
    """Like start_server, with more control: ``port`` (a fixed port, e.g. to
    restart a server where its clients expect it; no retry on another port),
    ``port_args(port)`` (the arguments that give the port; default
    ``["--port", str(port)]``) and ``ready_check(server)`` (called once the
    port accepts connections; the server counts as ready when it returns
    true)."""
    if "/" in argv[0] and not os.path.exists(argv[0]):
        raise AssertionError("server program %s does not exist (build it first)" % argv[0])
    if port_args is None:
        port_args = lambda p: ["--port", str(p)]  # noqa: E731
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    tries = 1 if port else attempts
    last = None
    for _ in range(tries):
        p = port or free_port()
        server, failure = _start_server_at(argv, p, port_args, ready_timeout, full_env,
                                           ready_check)
        if server:
            return server
        last = failure
        if not re.search(r"in use|EADDRINUSE", failure[1], re.I):
            break
    raise AssertionError(
        "%s exited with status %r before it was ready\n--- stderr ---\n%s"
        % (" ".join(argv), last[0], last[1][-8000:])
    )


def sigkill_server(server):
    """Kills a ServerProcess with SIGKILL (no checks) and returns its stderr."""
    text = server.stderr()
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
    text = server.stderr()
    server._stopped = True
    server._close_files()
    return text


def spaces_server_command():
    value = os.environ.get("SPACES_SERVER", "").strip()
    if value:
        return shlex.split(value)
    return [os.path.join(BUILD_DIR, "spaces-server")]


def spaces_server_has_database():
    """True when spaces-server exists and its --help lists --database-url."""
    argv = spaces_server_command()
    try:
        out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--database-url" in (out.stdout + out.stderr)


def wait_until(what, fn, timeout, interval=0.1, context=None):
    """Polls fn until it returns something true (returned), or fails after
    timeout seconds (scaled) saying what was awaited, with context() when given."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.1f s\n%s"
                                 % (what, timeout, context() if context else ""))
        time.sleep(interval)


_DATA_DIRS = None
_HAS_DATA_DIR = None


def spaces_data_dir():
    """A fresh directory for one server's --data-dir (its results journal:
    one per process), removed when the test process exits."""
    global _DATA_DIRS
    if _DATA_DIRS is None:
        import atexit

        _DATA_DIRS = tempfile.mkdtemp(prefix="spaces-data-")
        atexit.register(shutil.rmtree, _DATA_DIRS, True)
    return tempfile.mkdtemp(dir=_DATA_DIRS)


def spaces_server_has_data_dir():
    global _HAS_DATA_DIR
    if _HAS_DATA_DIR is None:
        try:
            out = subprocess.run(spaces_server_command() + ["--help"], capture_output=True,
                                 text=True, timeout=10)
            _HAS_DATA_DIR = "--data-dir" in out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            _HAS_DATA_DIR = False
    return _HAS_DATA_DIR


def start_spaces_server(database_url, port=None, extra_args=(), env=None,
                        ready_timeout=30.0, data_dir=None, legacy_open_spaces=True):
    """spaces-server --listen 127.0.0.1:P --database-url URL, ready once it
    answers HTTP (GET /healthz; migrations are applied before it listens).
    Each server gets a fresh --data-dir unless ``data_dir`` is given (a
    restarted server given its predecessor's ``server.data_dir`` finds the
    results it journaled); ``server.data_dir`` says which.

    With ``legacy_open_spaces`` (the default) the server runs with
    --legacy-open-spaces: spaces created through the site take any app that
    knows their name, as most tests (and the old clients) expect. Tests of
    app tokens pass ``legacy_open_spaces=False``."""
    import urllib.error
    import urllib.request

    def answers_http(server):
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:
                return r.status < 500
        except urllib.error.HTTPError as e:
            return e.code < 500
        except Exception:
            return False

    # Tests register many users from 127.0.0.1: no registration limit unless
    # a test gives one (a later --register-limit in extra_args wins).
    extra = (["--register-limit", "0"] + (["--legacy-open-spaces"] if legacy_open_spaces else [])
             + list(extra_args))
    if spaces_server_has_data_dir() and "--data-dir" not in extra:
        data_dir = data_dir or spaces_data_dir()
        extra += ["--data-dir", data_dir]
    server = start_server_ex(
        spaces_server_command() + ["--database-url", database_url] + extra,
        port=port,
        port_args=lambda p: ["--listen", "127.0.0.1:%d" % p],
        ready_timeout=ready_timeout,
        env=env,
        ready_check=answers_http,
    )
    server.data_dir = data_dir
    return server


class PgCluster:
    """A throwaway PostgreSQL cluster (ci/pg.sh) in a fresh directory.
    ``stop()``/``start()`` restart it in the same directory on the same port
    (data kept); ``close()`` stops it and removes the directory."""

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="spaces-pg-")
        self.port = None
        self.url = None
        self.start()

    def _pg(self, *args):
        out = subprocess.run(
            [os.path.join(SOURCE_DIR, "ci", "pg.sh")] + list(args),
            capture_output=True, text=True, timeout=120,
        )
        if out.returncode != 0:
            raise AssertionError("ci/pg.sh %s failed (%d): %s%s"
                                 % (" ".join(args), out.returncode, out.stdout, out.stderr))
        return out.stdout.strip()

    def start(self):
        args = ["start", self.dir] + ([str(self.port)] if self.port else [])
        self.url = self._pg(*args).splitlines()[-1]
        self.port = int(re.search(r":(\d+)/", self.url).group(1))
        return self.url

    def stop(self):
        self._pg("stop", self.dir)

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, query, timeout=30, **variables):
        """Runs query (one or more statements) with psql; ``:'name'`` in it
        is replaced by the quoted literal of variables[name]. Returns the
        rows of the last statement as lists of strings (NULL is '')."""
        argv = ["psql", "-X", "-q", "-t", "-A", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                "-d", self.url, "-f", "-"]
        for k, v in variables.items():
            argv[1:1] = ["-v", "%s=%s" % (k, "" if v is None else v)]
        out = subprocess.run(argv, input=query, capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise AssertionError("psql failed (%d) on:\n%s\n%s" % (out.returncode, query,
                                                                   out.stderr))
        return [line.split("\t") for line in out.stdout.splitlines() if line != ""]

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


def require_spaces_server(database=True):
    """Fails the calling test (pytest.fail) when spaces-server is not built,
    or (database=True) is built without the database layers."""
    import pytest

    argv = spaces_server_command()
    if "/" in argv[0] and not os.path.exists(argv[0]):
        pytest.fail("%s does not exist: build it (make build)" % argv[0])
    if database and not spaces_server_has_database():
        pytest.fail("%s --help does not list --database-url: the database and Spaces "
                    "layers are not wired into this build" % argv[0])


def module_pg(require_server=True, database=True):
    """The body of a module-scoped PostgreSQL fixture: a throwaway cluster,
    closed after the module. In a test file:

        @pytest.fixture(scope="module")
        def pg():
            yield from harness.module_pg()
    """
    if require_server:
        require_spaces_server(database)
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


class ChildProcess:
    """A program run under ``timeout`` with stdout+stderr read line by line
    by a thread; each line is kept with the time.monotonic() it arrived.
    Lines that are JSON objects are also kept as events (``.events``)."""

    def __init__(self, argv, limit=60, env=None, stdin=True, name=None):
        import json
        import threading

        self._json = json
        self.name = name or os.path.basename(argv[1] if len(argv) > 1 else argv[0])
        full_env = dict(os.environ)
        full_env.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
        if env:
            full_env.update(env)
        self.argv = ["timeout", "-k", "3", str(limit)] + list(argv)
        self.proc = subprocess.Popen(
            self.argv, cwd=SOURCE_DIR, env=full_env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines = []  # (time, text)
        self.events = []  # (time, dict)
        self.cond = threading.Condition()
        self.eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            t = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            ev = None
            if line.startswith("{"):
                try:
                    ev = self._json.loads(line)
                except ValueError:
                    ev = None
            with self.cond:
                self.lines.append((t, line))
                if isinstance(ev, dict):
                    self.events.append((t, ev))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return "\n".join(line for _, line in self.lines)

    def _fail(self, what, timeout):
        raise AssertionError("%s: %s within %.1f s\n--- output of %s ---\n%s"
                             % (self.name, what, timeout, " ".join(self.argv),
                                self.output()[-6000:]))

    def wait_line(self, pattern, timeout=10.0, start=0):
        """The first line from index ``start`` on matching the regex:
        (index, time, match). AssertionError after ``timeout`` seconds."""
        rx = re.compile(pattern)
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    self._fail("no line matching %r%s" % (pattern, " (exited)" if self.eof else ""),
                               timeout)
                self.cond.wait(min(left, 0.2))

    def count_lines(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for _, line in self.lines if rx.search(line))

    def wait_event(self, name, timeout=10.0, start=0, pred=None):
        """The first JSON event from index ``start`` with "event" == name
        (and pred(event) true): (index, time, event)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.events):
                    t, ev = self.events[i]
                    if ev.get("event") == name and (pred is None or pred(ev)):
                        return i, t, ev
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    self._fail("no %r event%s" % (name, " (exited)" if self.eof else ""),
                               timeout)
                self.cond.wait(min(left, 0.2))

    def events_named(self, name):
        with self.cond:
            return [ev for _, ev in self.events if ev.get("event") == name]

    def send(self, obj):
        """Writes one JSON line to the child's stdin."""
        data = (self._json.dumps(obj) + "\n").encode()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def signal(self, sig):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def wait_exit(self, timeout=10.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._fail("did not exit", timeout)

    def close(self, grace=3.0):
        """Asks the child to leave (stdin closed; SIGTERM 0.3 s later), kills
        it after ``grace`` seconds."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.signal(signal.SIGKILL)
                    self.proc.wait(timeout=5)
        self._reader.join(timeout=2)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


class SiteUser:
    """A user of the site with a logged-in requests.Session."""

    def __init__(self, site, user_id, name, password, session, cookie):
        self.site = site
        self.id = str(user_id)
        self.name = name
        self.password = password
        self.session = session
        self.cookie = cookie  # value of the spaces_session cookie


class SpacesSite:
    """Set-up and HTTP helpers for tests of a running spaces-server.

    Accounts: through the real routes (POST /register, POST /login) when the
    site answers GET /login, else straight into the database (a users row and
    a sessions row whose token_hash is the hex SHA-256 of the cookie value).
    Spaces: through POST /admin/space/add as an admin created with
    ``spaces-server user add`` when that route exists, else with SQL; the
    settings the form has no field for (max_apps, timeout_seconds, app token)
    are then set with SQL."""

    def __init__(self, server_url, pg):
        import itertools
        import secrets

        self.url = server_url.rstrip("/")
        self.pg = pg
        self._n = itertools.count(1)
        self.tag = secrets.token_hex(3)
        self._accounts_http = None
        self._spaces_http = None
        self._admin = None
        self.setup_notes = []  # how set-up was done (printed by tests)

    def unique(self, stem):
        return "%s_%s_%d" % (stem, self.tag, next(self._n))

    def _session(self):
        import requests

        return requests.Session()

    # -- accounts ------------------------------------------------------------

    def accounts_over_http(self):
        if self._accounts_http is None:
            import requests

            try:
                r = requests.get(self.url + "/login", timeout=5, allow_redirects=False)
                self._accounts_http = r.status_code == 200
            except requests.RequestException:
                self._accounts_http = False
            self.setup_notes.append("accounts: %s" % ("HTTP /register + /login"
                                                      if self._accounts_http else "SQL"))
        return self._accounts_http

    def _login(self, name, password):
        s = self._session()
        r = s.post(self.url + "/login", data={"username": name, "password": password},
                   timeout=20, allow_redirects=False)
        cookie = s.cookies.get("spaces_session")
        if r.status_code != 302 or not cookie:
            raise AssertionError("POST /login as %s: expected 302 and a spaces_session "
                                 "cookie, got %d %r" % (name, r.status_code, r.text[:300]))
        return s, cookie

    def _user_id(self, name):
        rows = self.pg.sql("SELECT id FROM users WHERE username = :'n'", n=name)
        return rows[0][0] if rows else None

    def user(self, name=None, password="Passw0rd_123", admin=False):
        """A new user, logged in."""
        import hashlib
        import secrets

        name = name or self.unique("user")
        if admin:
            out = subprocess.run(
                spaces_server_command() + ["user", "add", name, "--admin",
                                           "--database-url", self.pg.url],
                input=password + "\n", capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise AssertionError("spaces-server user add %s --admin failed (%d): %s%s"
                                     % (name, out.returncode, out.stdout, out.stderr))
            s, cookie = self._login(name, password)
        elif self.accounts_over_http():
            s = self._session()
            r = s.post(self.url + "/register",
                       data={"username": name, "password": password,
                             "confirm_password": password},
                       timeout=20, allow_redirects=False)
            if r.status_code != 302:
                raise AssertionError("POST /register %s: expected 302, got %d %r"
                                     % (name, r.status_code, r.text[:300]))
            s, cookie = self._login(name, password)
        else:
            uid = self.pg.sql(
                "INSERT INTO users (username, password_hash, is_admin) "
                "VALUES (:'n', 'not-a-hash', false) RETURNING id", n=name)[0][0]
            cookie = secrets.token_urlsafe(32)
            self.pg.sql(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) "
                "VALUES (:'h', :'u', :'c', now() + interval '1 day')",
                h=hashlib.sha256(cookie.encode()).hexdigest(), u=uid,
                c=secrets.token_hex(16))
            s = self._session()
            s.cookies.set("spaces_session", cookie)
        uid = self._user_id(name)
        return SiteUser(self, uid, name, password, s, cookie)

    # -- spaces --------------------------------------------------------------

    def admin(self):
        if self._admin is None:
            self._admin = self.user(self.unique("admin"), admin=True)
        return self._admin

    def spaces_over_http(self):
        if self._spaces_http is None:
            import requests

            try:
                r = requests.get(self.url + "/admin", timeout=5, allow_redirects=False)
                # Anonymous: a redirect to /login once the route exists.
                self._spaces_http = r.status_code in (302, 303) and "/login" in \
                    r.headers.get("location", "")
            except requests.RequestException:
                self._spaces_http = False
            self.setup_notes.append("spaces: %s" % ("HTTP /admin/space/add"
                                                    if self._spaces_http else "SQL"))
        return self._spaces_http

    def create_space(self, name=None, card_type="websockets", enable_prompt=True,
                     enable_audio=False, enable_video=False, enable_file_upload=False,
                     rate_limit_seconds=0, timeout_seconds=None, max_apps=None, token=None,
                     description="A test space"):
        """Creates a space; returns (space_id as a string, name). Its app
        access is what the server gives new spaces ('open' under
        --legacy-open-spaces, else 'token' with a generated token); with
        ``token``, 'token' with that token."""
        import hashlib

        name = name or self.unique("Space")
        if self.spaces_over_http():
            form = {"name": name, "description": description, "cover": "",
                    "cover_type": "gradient", "card_type": "websockets",
                    "ws_rate_limit_seconds": str(rate_limit_seconds)}
            for key, on in (("ws_enable_prompt", enable_prompt),
                            ("ws_enable_audio", enable_audio),
                            ("ws_enable_video", enable_video),
                            ("ws_enable_file_upload", enable_file_upload)):
                if on:
                    form[key] = "on"
            r = self.admin().session.post(self.url + "/admin/space/add", data=form,
                                          timeout=20, allow_redirects=False)
            loc = r.headers.get("location", "")
            if r.status_code not in (302, 303) or "/edit/" not in loc:
                raise AssertionError("POST /admin/space/add: expected 302 to "
                                     "/admin/space/edit/<id>, got %d %s %r"
                                     % (r.status_code, loc, r.text[:300]))
            space_id = loc.rstrip("/").split("/edit/")[-1]
        else:
            space_id = self.pg.sql(
                "INSERT INTO spaces (name, card_type, enable_prompt, enable_audio, "
                "enable_video, enable_file_upload, rate_limit_seconds) VALUES "
                "(:'n', 'websockets', :'p', :'a', :'v', :'f', :'r') RETURNING id",
                n=name, p=str(bool(enable_prompt)).lower(), a=str(bool(enable_audio)).lower(),
                v=str(bool(enable_video)).lower(), f=str(bool(enable_file_upload)).lower(),
                r=str(rate_limit_seconds))[0][0]
        sets, params = [], {"id": space_id}
        if card_type != "websockets":
            sets.append("card_type = :'ct'")
            params["ct"] = card_type
        if timeout_seconds is not None:
            sets.append("timeout_seconds = :'to'")
            params["to"] = str(timeout_seconds)
        if max_apps is not None:
            sets.append("max_apps = :'ma'")
            params["ma"] = str(max_apps)
        if token is not None:
            sets.append("app_token_hash = :'th', app_token = :'tk', app_access = 'token'")
            params["th"] = hashlib.sha256(token.encode()).hexdigest()
            params["tk"] = token
        if sets:
            self.pg.sql("UPDATE spaces SET %s WHERE id::text = :'id'" % ", ".join(sets),
                        **params)
        return str(space_id), name

    # -- requests ------------------------------------------------------------

    def submit(self, user, space_id, prompt="Hello", data=None, files=None, session=None):
        """POST /websockets/submit/<space_id>; returns (status, JSON body or
        {"_text": body})."""
        form = {} if prompt is None else {"prompt": prompt}
        form.update(data or {})
        s = session or (user.session if user else self._session())
        r = s.post(self.url + "/websockets/submit/%s" % space_id, data=form, files=files,
                   timeout=30, allow_redirects=False)
        try:
            body = r.json()
        except ValueError:
            body = {"_text": r.text[:500]}
        return r.status_code, body

    def submit_ok(self, user, space_id, prompt="Hello", **kw):
        code, body = self.submit(user, space_id, prompt, **kw)
        if code != 200 or body.get("success") is not True or not body.get("request_id"):
            raise AssertionError("submit to space %s: expected 200 {success: true, "
                                 "request_id}, got %d %r" % (space_id, code, body))
        return body["request_id"]

    def status(self, request_id, user=None):
        s = user.session if user else self._session()
        r = s.get(self.url + "/websockets/status", params={"request_id": request_id},
                  timeout=30)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, {"_text": r.text[:500]}

    def wait_status(self, request_id, want=("completed", "failed"), timeout=10.0,
                    user=None, interval=0.05):
        """Polls the status route until its status is in want; returns the body."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            code, body = self.status(request_id, user)
            last = (code, body)
            if code == 200 and body.get("status") in want:
                return body
            if time.monotonic() >= deadline:
                raise AssertionError("request %s: no status in %r within %.1f s; last "
                                     "answer %r" % (request_id, want, timeout, last))
            time.sleep(interval)

    def request_row(self, request_id):
        """status, attempts, progress, connection_id of a request (SQL)."""
        rows = self.pg.sql(
            "SELECT status, attempts, progress, coalesce(connection_id::text, '') "
            "FROM requests WHERE id::text = :'id'", id=request_id)
        if not rows:
            return None
        return dict(zip(("status", "attempts", "progress", "connection_id"), rows[0]))
