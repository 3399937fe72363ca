/*
 * server_main.h: the run loop shared by the test and bench servers
 * (conformance-engineio, conformance-socketio, bench-server).
 */
#ifndef TESTS_SERVER_MAIN_H
#define TESTS_SERVER_MAIN_H

#include "http/http.h"

/**
 * Runs the loop of http until SIGTERM or SIGINT. Then stop(ud) closes the
 * application's sessions, the HTTP server closes, free_app(ud) frees the
 * application, and the loop ends. Returns 0 when everything closed cleanly.
 * SIGPIPE is ignored.
 */
int tsm_run(http_server *http, void (*stop)(void *ud), void (*free_app)(void *ud), void *ud);

#endif
