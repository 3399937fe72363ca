/* server_main.c: see server_main.h. */
#include <signal.h>

#include "server_main.h"

typedef struct {
	http_server *http;
	void (*stop)(void *ud);
	void (*free_app)(void *ud);
	void *ud;
	uv_signal_t sigterm, sigint;
} tsm_state;

static void on_closed(void *ud)
{
	tsm_state *st = ud;
	st->free_app(st->ud);
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	uv_close((uv_handle_t *)&st->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	tsm_state *st = h->data;
	uv_signal_stop(&st->sigterm);
	uv_signal_stop(&st->sigint);
	st->stop(st->ud);
	http_server_close(st->http, on_closed, st);
}

int tsm_run(http_server *http, void (*stop)(void *ud), void (*free_app)(void *ud), void *ud)
{
	uv_loop_t *loop = http_server_loop(http);
	tsm_state st = {http, stop, free_app, ud, {0}, {0}};
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(loop, &st.sigterm);
	uv_signal_init(loop, &st.sigint);
	st.sigterm.data = st.sigint.data = &st;
	uv_signal_start(&st.sigterm, on_signal, SIGTERM);
	uv_signal_start(&st.sigint, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(http);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
