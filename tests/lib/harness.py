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
        deadline = time.monotonic() + ready_timeout
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
