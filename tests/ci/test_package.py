"""The Debian package (issue 13): built with CPack from the Release build
that ci_release_build made, unpacked (not installed) into a temporary root,
and run from there with the source tree out of sight.

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/ci/test_package.py

    SPACES_BUILD_DIR   the Debug build directory; the Release build is in
                       its release-check/ (made by tests/ci/test_release_build.sh)

The server runs in a mount namespace of its own where a empty tmpfs covers
the source tree (`unshare -m`, as root), and from a working directory
outside it, so a path into the tree compiled in or taken from the working
directory would show. The Python apps and PostgreSQL run outside.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import harness  # noqa: E402
import pytest  # noqa: E402

RELEASE = os.path.join(harness.BUILD_DIR, "release-check")
MOCK_APP = os.path.join(SOURCE, "tests", "clients", "mock_app.py")


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(spaces VERSION ([0-9.]+)", f.read()).group(1)


def sh(argv, **kw):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 600),
                         **kw)
    if out.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(argv), out.returncode,
                                                          out.stdout[-4000:], out.stderr[-4000:]))
    return out.stdout


def can_hide_source():
    try:
        return subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs spaces-hidden "$0" && test ! -e "$0/CMakeLists.txt"', SOURCE],
            capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Package:
    def __init__(self, tmp):
        self.tmp = tmp
        cfg = ["cmake", "-S", SOURCE, "-B", RELEASE, "-DCMAKE_BUILD_TYPE=Release",
               "-DBUILD_TESTING=OFF"]
        sh(cfg)
        sh(["cmake", "--build", RELEASE, "-j", "2", "--target", "spaces-server"])
        out = os.path.join(tmp, "out")
        sh(["cpack", "-G", "DEB", "-B", out, "--config",
            os.path.join(RELEASE, "CPackConfig.cmake")], cwd=RELEASE)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, os.listdir(out)
        self.deb = os.path.join(out, debs[0])
        self.root = os.path.join(tmp, "root")
        sh(["dpkg-deb", "-x", self.deb, self.root])
        self.control = os.path.join(tmp, "control")
        sh(["dpkg-deb", "-e", self.deb, self.control])
        self.binary = os.path.join(self.root, "usr", "bin", "spaces-server")
        self.share = os.path.join(self.root, "usr", "share", "spaces")
        self.hide = can_hide_source()

    def field(self, name):
        return sh(["dpkg-deb", "-f", self.deb, name]).strip()

    def command(self, binary=None, workdir=None):
        """argv running the packaged program with the source tree hidden
        (when unshare works) from a working directory outside it."""
        binary = binary or self.binary
        workdir = workdir or self.tmp
        if self.hide:
            return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs spaces-hidden "$0" && cd "$1" && shift && exec "$@"',
                    SOURCE, workdir, binary]
        return ["sh", "-c", 'cd "$0" && exec "$@"', workdir, binary]


@pytest.fixture(scope="module")
def pkg():
    tmp = tempfile.mkdtemp(prefix="spaces-pkg-")
    try:
        yield Package(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    with harness.PgCluster() as cluster:
        yield cluster


def test_package_metadata(pkg):
    assert pkg.field("Package") == "spaces-server"
    assert pkg.field("Version") == project_version()
    depends = pkg.field("Depends")
    for lib in ("libuv1", "libpq5", "libsodium23", "libjansson4"):
        assert lib in depends, depends
    with open(os.path.join(pkg.control, "conffiles")) as f:
        assert "/etc/default/spaces-server" in f.read().split()


def test_package_contents(pkg):
    for rel in ("usr/bin/spaces-server", "usr/share/spaces/static/spaces.css",
                "usr/share/spaces/static/spaces.js",
                "usr/share/spaces/socket.io-client/socket.io.js",
                "usr/share/spaces/socket.io-client/socket.io.min.js",
                "lib/systemd/system/spaces-server.service", "etc/default/spaces-server"):
        assert os.path.isfile(os.path.join(pkg.root, rel)), rel
    migrations = sorted(f for f in os.listdir(os.path.join(SOURCE, "migrations"))
                        if f.endswith(".sql"))
    assert sorted(os.listdir(os.path.join(pkg.share, "migrations"))) == migrations
    # The bundle is socket.io-client's own, byte for byte.
    web = os.path.join(SOURCE, "web", "node_modules", "socket.io-client", "dist")
    if not os.path.isdir(web):
        web = os.path.join(SOURCE, "tests", "node_modules", "socket.io-client", "dist")
    with open(os.path.join(web, "socket.io.js"), "rb") as a, \
            open(os.path.join(pkg.share, "socket.io-client", "socket.io.js"), "rb") as b:
        assert a.read() == b.read()
    # Optimised, without the sanitizers, and no path into the source tree.
    libs = sh(["ldd", pkg.binary])
    assert "libasan" not in libs and "libubsan" not in libs, libs
    with open(pkg.binary, "rb") as f:
        assert SOURCE.encode() not in f.read(), "the binary names %s" % SOURCE


def test_runtime_bundle_pin_matches_the_tests():
    """web/package.json pins the same socket.io-client as tests/package.json."""
    import json

    with open(os.path.join(SOURCE, "web", "package.json")) as f:
        web = json.load(f)["dependencies"]["socket.io-client"]
    with open(os.path.join(SOURCE, "tests", "package.json")) as f:
        tests = json.load(f)["dependencies"]["socket.io-client"]
    assert web == tests


def test_cmake_install_into_a_prefix(pkg, tmp_path):
    """`cmake --install --prefix P` (what `make install PREFIX=P` runs): the
    program finds its assets under P/share/spaces, and nothing of the
    service is installed (no /etc outside the prefix)."""
    prefix = tmp_path / "opt-spaces"
    dest = tmp_path / "dest"
    env = dict(os.environ, DESTDIR=str(dest))
    sh(["cmake", "--install", RELEASE, "--prefix", str(prefix)], env=env)
    root = dest / str(prefix).lstrip("/")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert all(f.startswith(str(prefix).lstrip("/")) for f in files), files
    binary = root / "bin" / "spaces-server"
    out = subprocess.run(pkg.command(str(binary), str(tmp_path)) +
                         ["config", "check", "--database-url", "postgresql://u:pw@h/db"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    share = os.path.join(str(root), "share", "spaces")
    for name, sub in (("static-dir", "static"), ("client-dir", "socket.io-client"),
                      ("migrations", "migrations")):
        assert "%s = %s [default]" % (name, os.path.join(share, sub)) in out.stdout, out.stdout


def test_version(pkg):
    out = sh(pkg.command() + ["--version"])
    assert out.strip() == "spaces-server " + project_version()


def test_systemd_unit(pkg):
    with open(os.path.join(pkg.root, "lib/systemd/system/spaces-server.service")) as f:
        unit = f.read()
    for line in ("ExecStart=/usr/bin/spaces-server", "EnvironmentFile=-/etc/default/spaces-server",
                 "DynamicUser=yes", "StateDirectory=spaces", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "Restart=on-failure", "WantedBy=multi-user.target"):
        assert re.search("^" + re.escape(line) + "$", unit, re.M), line
    # The server has no reload signal: no ExecReload that would kill it.
    assert "ExecReload" not in re.sub(r"^#.*$", "", unit, flags=re.M)
    # systemd understands every line (the program itself is not on this
    # machine's /usr/bin: that complaint alone is expected).
    if shutil.which("systemd-analyze"):
        out = subprocess.run(["systemd-analyze", "verify", os.path.join(
            pkg.root, "lib/systemd/system/spaces-server.service")], capture_output=True,
            text=True, timeout=60)
        complaints = [line for line in (out.stdout + out.stderr).splitlines()
                      if line.strip() and "/usr/bin/spaces-server is not executable" not in line]
        assert not complaints, complaints
    # Every variable of the environment file is one the server reads.
    names = re.findall(r"^#?\s*(SPACES_[A-Z0-9_]+|DATABASE_URL)=",
                       open(os.path.join(pkg.root, "etc/default/spaces-server")).read(), re.M)
    help_text = sh(pkg.command() + ["--help"])
    for n in names:
        assert n in help_text, n


def test_serves_from_the_package(pkg, pg, tmp_path):
    """Styled pages, the client bundle, an app registering and a request
    completing, from the unpacked package with the source tree hidden."""
    import requests

    if not pkg.hide:
        print("note: cannot hide the source tree (unshare -m); running from %s" % pkg.tmp)
    env = {"DATABASE_URL": pg.url, "SPACES_UPLOAD_DIR": str(tmp_path / "uploads"),
           "SPACES_DATA_DIR": str(tmp_path / "data"),
           # The app registers by the space's name alone (mock_app.py --space).
           "SPACES_LEGACY_OPEN_SPACES": "1"}
    # `user add` from the package too (SpacesSite.admin runs the SPACES_SERVER command).
    os.environ["SPACES_SERVER"] = " ".join("'%s'" % a for a in pkg.command())
    try:
        server = harness.start_server_ex(
            pkg.command(), env=env,
            port_args=lambda p: ["--listen", "127.0.0.1:%d" % p],
            ready_check=lambda s: harness.can_connect(s.port))
        with server:
            page = requests.get(server.url + "/", timeout=10)
            assert page.status_code == 200
            assert "/static/spaces.css" in page.text
            for path, ctype in (("/static/spaces.css", "text/css"),
                                ("/static/spaces.js", "application/javascript"),
                                ("/socket.io/socket.io.js", "application/javascript"),
                                ("/socket.io/socket.io.min.js", "application/javascript")):
                r = requests.get(server.url + path, timeout=10)
                assert r.status_code == 200, (path, r.status_code)
                assert r.headers["content-type"].startswith(ctype), (path, r.headers)
                assert len(r.content) > 100, path

            site = harness.SpacesSite(server.url, pg)
            sid, name = site.create_space()
            app = harness.ChildProcess([harness.PYTHON, MOCK_APP, "--host", server.url,
                                        "--space", name, "--delay", "0.2"], limit=90)
            with app:
                app.wait_line(r"Registration successful", timeout=30)
                user = site.user()
                rid = site.submit_ok(user, sid, "from the package")
                body = site.wait_status(rid, timeout=30)
                assert body["status"] == "completed", body
                assert "from the package" in body["result"]["text_output"]
    finally:
        del os.environ["SPACES_SERVER"]


@pytest.mark.parametrize("missing", ["static", "socket.io-client", "migrations"])
def test_refuses_to_start_without_its_assets(pkg, pg, tmp_path, missing):
    """An installation with a part of /usr/share/spaces gone does not serve
    a half-working site: it says what is missing and exits non-zero."""
    root = tmp_path / "root"
    shutil.copytree(pkg.root, root, symlinks=True)
    shutil.rmtree(root / "usr" / "share" / "spaces" / missing)
    port = harness.free_port()
    out = subprocess.run(
        pkg.command(str(root / "usr" / "bin" / "spaces-server"), str(tmp_path)) +
        ["--listen", "127.0.0.1:%d" % port, "--database-url", pg.url,
         "--upload-dir", str(tmp_path / "up"), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stderr
    assert os.path.join(str(root), "usr", "share", "spaces", missing) in out.stderr, out.stderr
    assert not harness.can_connect(port)
