spaces_script_test(format 60 ${CMAKE_SOURCE_DIR}/ci/format.sh check)
spaces_script_test(ci_pg_cluster 120 ${CMAKE_SOURCE_DIR}/tests/ci/test_pg_cluster.sh)
spaces_script_test(fuzz_ws_frame 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ws_frame 15 ${CMAKE_BINARY_DIR})
spaces_script_test(fuzz_eio_payload 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh eio_payload 15 ${CMAKE_BINARY_DIR})
spaces_script_test(fuzz_sio_packet 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh sio_packet 15 ${CMAKE_BINARY_DIR})
spaces_script_test(fuzz_sio_msgpack 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh sio_msgpack 15 ${CMAKE_BINARY_DIR})
# Engine.IO acceptance tests against $SPACES_BUILD_DIR/conformance-engineio
# (SPACES_ENGINEIO_SERVER=reference runs them against the Node.js server).
spaces_script_test(e2e_engineio_protocol 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/engineio_protocol.test.js)
spaces_script_test(e2e_engineio_client 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/engineio_client.test.js)
# HTTP compression and the packet cap of polling answers, ours beside the reference.
spaces_script_test(e2e_engineio_compression 120 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/engineio_compression.test.js)
# permessage-deflate on WebSocket (issue 16): the ws client, ours beside the reference.
spaces_script_test(e2e_ws_deflate 120 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/ws_deflate.test.js)
spaces_script_test(e2e_engineio_python 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_engineio_python.py)
spaces_script_test(e2e_http_robustness 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_http_robustness.py)
# Socket.IO acceptance tests against $SPACES_BUILD_DIR/conformance-socketio
# (SPACES_SOCKETIO_SERVER=reference runs them against the Node.js server).
spaces_script_test(e2e_socketio_protocol 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/socketio_protocol.test.js)
spaces_script_test(e2e_socketio_client 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/socketio_client.test.js)
# Engine.IO 3 (issue 16): socket.io-client 2.5 against ours and the reference
# with allowEIO3, and EIO=3 refused by both without it.
spaces_script_test(e2e_socketio_eio3 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/socketio_eio3.test.js)
spaces_script_test(e2e_socketio_python 400 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_socketio_python.py)
# bench-loadgen counts right (tests/bench/test_loadgen.sh); needs tests/bench included before tests/.
if(TARGET bench-loadgen)
  spaces_script_test(bench_loadgen 300 ${CMAKE_SOURCE_DIR}/tests/bench/test_loadgen.sh $<TARGET_FILE:bench-loadgen>)
endif()
# Spaces protocol acceptance (issue 5): Python apps from tests/clients/ against
# $SPACES_BUILD_DIR/spaces-server and a throwaway PostgreSQL (ci/pg.sh).
spaces_script_test(e2e_spaces_protocol 600 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_protocol.py)
spaces_script_test(e2e_spaces_faults 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_faults.py)
spaces_script_test(e2e_spaces_durability 400 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_durability.py)
spaces_script_test(e2e_spaces_cluster 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_cluster.py)
# App access (issue 11): token and open spaces, impostors, token changes, deletes;
# in two parts that run side by side: on the module's server, and on servers of
# their own (--legacy-open-spaces and the register limit, two cluster nodes).
spaces_script_test(e2e_app_access 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k "not own_server" ${CMAKE_SOURCE_DIR}/tests/e2e/test_app_access.py)
spaces_script_test(e2e_app_access_servers 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k own_server ${CMAKE_SOURCE_DIR}/tests/e2e/test_app_access.py)
# Memory bounded by what clients send (issue 10): body limits and the input
# budget, then Engine.IO sessions, file descriptors and memory after a spike.
spaces_script_test(e2e_http_limits_bodies 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k "body or bodies" ${CMAKE_SOURCE_DIR}/tests/e2e/test_http_limits.py)
spaces_script_test(e2e_http_limits_sessions 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k "not (body or bodies)" ${CMAKE_SOURCE_DIR}/tests/e2e/test_http_limits.py)
spaces_script_test(e2e_web_routes 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_web_routes.py)
spaces_script_test(e2e_metrics 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_metrics.py)
# CORS with credentials on the site's /socket.io/ for --allowed-origins only (issue 16).
spaces_script_test(e2e_site_cors 120 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_site_cors.py)
# Accounts, sessions and uploads (issue 11): limits before the hash, password
# policy, registration limits, logout/password change/disable closing sockets,
# the Origin of /spaces, media types, upload quota and disk budget.
# Two runs of one file, so that ctest -j2 runs them side by side.
spaces_script_test(e2e_accounts_limits 600 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k "parallel or flood or registration or password_policy" ${CMAKE_SOURCE_DIR}/tests/e2e/test_accounts.py)
spaces_script_test(e2e_accounts_sessions 600 /usr/bin/python3 -m pytest -p no:cacheprovider -v -k "not (parallel or flood or registration or password_policy)" ${CMAKE_SOURCE_DIR}/tests/e2e/test_accounts.py)
spaces_script_test(e2e_example_chat 120 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/example_chat.test.js)
spaces_script_test(ci_release_build 900 ${CMAKE_SOURCE_DIR}/tests/ci/test_release_build.sh)
# Every #include "..." of the tree follows the layer order of ci/layers.txt;
# the check fails on an upward include (a fixture tree made by the script).
spaces_script_test(layers_includes 60 ${CMAKE_SOURCE_DIR}/tests/ci/test_layers.sh)
spaces_script_test(e2e_socketio_extras 120 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/socketio_extras.test.js)
spaces_script_test(e2e_cluster 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/cluster.test.js)
# The admin UI's protocol (issue 16), ours beside the reference's instrument().
spaces_script_test(e2e_admin_ui 300 node --test ${CMAKE_SOURCE_DIR}/tests/e2e/admin_ui.test.js)
spaces_script_test(e2e_admin_ui_server 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_admin_ui_server.py)
# Browser acceptance tests of the website (issue 6): the seed test plan in
# headless Chromium (playwright-core) and Firefox ESR (puppeteer-core over
# WebDriver BiDi); screenshots in ${CMAKE_BINARY_DIR}/artifacts/browser/.
spaces_script_test(browser_seed_plan 600 node --test ${CMAKE_SOURCE_DIR}/tests/browser/seed_plan.test.js)
spaces_script_test(browser_firefox 600 node --test ${CMAKE_SOURCE_DIR}/tests/browser/firefox.test.js)
# Every screen (issue 14): each page at 390 px in light and dark, no sideways
# scrolling, zero serious/critical axe-core violations, Tab reaches every
# control (Chromium); the live states of request cards, cancel and retry,
# reload equality, a server restart under an open page (Firefox ESR, and
# Chromium). Screenshots in ${CMAKE_BINARY_DIR}/screenshots/.
spaces_script_test(browser_screens 600 node --test ${CMAKE_SOURCE_DIR}/tests/browser/screens.test.js)
spaces_script_test(browser_live_state 600 node --test ${CMAKE_SOURCE_DIR}/tests/browser/live_state.test.js)
spaces_script_test(browser_live_state_chromium 600 env SPACES_LIVE_BROWSER=chromium node --test ${CMAKE_SOURCE_DIR}/tests/browser/live_state.test.js)
# CORS of the site's /socket.io/ for --allowed-origins, from pages of two origins in Chromium (issue 16).
# The @socket.io/admin-ui dashboard in Chromium against conformance-socketio --admin-ui (issue 16).
spaces_script_test(browser_admin_ui 180 node --test ${CMAKE_SOURCE_DIR}/tests/browser/admin_ui.test.js)
spaces_script_test(browser_cors 180 node --test ${CMAKE_SOURCE_DIR}/tests/browser/cors.test.js)
# permessage-deflate (issue 16): socket.io-client in headless Chromium over WebSocket.
spaces_script_test(browser_ws_deflate 180 node --test ${CMAKE_SOURCE_DIR}/tests/browser/ws_deflate.test.js)
# One connection cannot take the site down (issue 10): flooding sockets while
# another user loads a space page; it asserts page latency, so it runs alone.
spaces_script_test(e2e_spaces_flood 240 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_flood.py)
set_tests_properties(e2e_spaces_flood PROPERTIES RUN_SERIAL TRUE)
# The test-results document (issue 15): `make report QUICK=1` into a temporary
# directory, checked for every section filled and no template blank left.
spaces_script_test(report_quick 900 ${CMAKE_SOURCE_DIR}/tests/report/test_report_quick.sh)
# A cluster of our nodes under many connections (tests/bench/scale.py, the small
# version of make bench-scale): 10,000 connections over 3 cluster-node processes
# on one PostgreSQL, broadcasts across them; correctness only (all connected,
# every broadcast received exactly once), never timings; first, that a server
# losing one delivery and one repeating one (faulty_server.js) each fail a round.
if(TARGET bench-loadgen)
  spaces_script_test(bench_scale_small 240 /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/bench/scale.py
    --check --selftest --conns 10000 --nodes 3 --servers ours --rounds 1 --idle 2 --settle 1 --broadcasts 3
    --build-dir ${CMAKE_BINARY_DIR} --out ${CMAKE_BINARY_DIR}/bench-scale-small)
endif()
# Install and configuration (issue 13): every option from a flag or an
# environment variable, `config check`, refusing to start without assets; the
# Debian package built from the Release build of ci_release_build, unpacked
# and run with the source tree hidden.
spaces_script_test(e2e_config 300 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_config.py)
spaces_script_test(package_deb 900 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/ci/test_package.py)
set_tests_properties(ci_release_build PROPERTIES FIXTURES_SETUP release_build)
set_tests_properties(package_deb PROPERTIES FIXTURES_REQUIRED release_build)
spaces_script_test(e2e_spaces_live 400 /usr/bin/python3 -m pytest -p no:cacheprovider -v ${CMAKE_SOURCE_DIR}/tests/e2e/test_spaces_live.py)
