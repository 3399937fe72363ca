"""CORS of the site's Socket.IO endpoint (issue 16): the origins of
--allowed-origins (the pages of another origin let into /spaces) get CORS
answers with credentials on /socket.io/, polling and its preflight, so that
socket.io-client with withCredentials works from their pages; no other origin
gets any. Against the real spaces-server and a throwaway PostgreSQL, spoken
with python-requests the way a browser does (Origin, OPTIONS preflight).

    /usr/bin/python3 -m pytest -p no:cacheprovider -v tests/e2e/test_site_cors.py
"""

import os
import shutil
import sys
import tempfile

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import harness  # noqa: E402

PARTNER = "http://partner.example:8080"
OTHER = "http://evil.example"


@pytest.fixture(scope="module")
def server():
    pg = harness.PgCluster()
    uploads = tempfile.mkdtemp(prefix="spaces-cors-uploads-")
    try:
        srv = harness.start_spaces_server(
            pg.url, extra_args=["--upload-dir", uploads, "--allowed-origins",
                                "https://app.example.org," + PARTNER])
        try:
            yield srv.url.rstrip("/")
        finally:
            srv.stop()
    finally:
        shutil.rmtree(uploads, ignore_errors=True)
        pg.close()


def handshake(url, origin):
    return requests.get(url + "/socket.io/?EIO=4&transport=polling",
                        headers={"Origin": origin} if origin else {}, timeout=20)


def preflight(url, origin):
    return requests.options(url + "/socket.io/?EIO=4&transport=polling",
                            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "content-type"},
                            timeout=20)


def test_listed_origin_gets_cors_with_credentials_on_polling(server):
    r = handshake(server, PARTNER)
    assert r.status_code == 200 and r.text.startswith("0{"), r.text
    assert r.headers.get("Access-Control-Allow-Origin") == PARTNER
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "Origin" in r.headers.get("Vary", "")
    sid = r.text.split('"sid":"')[1].split('"')[0]
    # The session's POST (Socket.IO CONNECT) and its GET carry them too.
    p = requests.post(server + "/socket.io/?EIO=4&transport=polling&sid=" + sid, data="40",
                      headers={"Origin": PARTNER, "Content-Type": "text/plain;charset=UTF-8"},
                      timeout=20)
    assert p.status_code == 200 and p.text == "ok"
    assert p.headers.get("Access-Control-Allow-Origin") == PARTNER
    assert p.headers.get("Access-Control-Allow-Credentials") == "true"
    g = requests.get(server + "/socket.io/?EIO=4&transport=polling&sid=" + sid,
                     headers={"Origin": PARTNER}, timeout=20)
    assert g.status_code == 200 and g.text.startswith("40"), g.text
    assert g.headers.get("Access-Control-Allow-Origin") == PARTNER
    assert g.headers.get("Access-Control-Allow-Credentials") == "true"


def test_listed_origin_gets_a_preflight_answer(server):
    r = preflight(server, PARTNER)
    assert r.status_code == 204
    assert r.headers.get("Access-Control-Allow-Origin") == PARTNER
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", "")
    assert r.headers.get("Access-Control-Allow-Headers") == "content-type"
    # The other listed origin too, with the default port spelled out.
    r = preflight(server, "https://app.example.org")
    assert r.headers.get("Access-Control-Allow-Origin") == "https://app.example.org"


@pytest.mark.parametrize("origin", [OTHER, "http://partner.example:8081", "null", None])
def test_other_origins_get_no_cors(server, origin):
    r = handshake(server, origin)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers
    if origin:
        r = preflight(server, origin)
        assert r.status_code != 204
        assert "Access-Control-Allow-Origin" not in r.headers
        assert "Access-Control-Allow-Credentials" not in r.headers


def test_site_origin_itself_gets_no_cors(server):
    # Same-origin pages need none: only the listed origins get CORS.
    r = handshake(server, server)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
