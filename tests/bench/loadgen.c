/*
 * bench-loadgen: a Socket.IO v5 / Engine.IO v4 load generator over WebSocket.
 * One thread, one libuv loop, libwebsockets clients on that loop (a foreign
 * loop, no extensions). Runs one scenario, bounded by count and time, checks
 * every reply, prints one RESULT line and a table, and exits 0 only when
 * nothing was lost, repeated or malformed. See tests/bench/README.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

static const char *const phase_names[] = {
    [LG_PH_CONNECTING] = "connecting", [LG_PH_SETUP] = "joining", [LG_PH_RUN] = "running",
    [LG_PH_DRAIN] = "draining",        [LG_PH_DONE] = "done",
};

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static uint64_t ns_of(double s)
{
	return s > 0 ? (uint64_t)(s * 1e9) : 0;
}

void lg_fail(lg *g, const char *fmt, ...)
{
	if (g->fail[0])
		return; /* the first reason is the one worth reading */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->fail, sizeof(g->fail), fmt, ap);
	va_end(ap);
}

static void cpu_mark(lg *g)
{
	g->cpu_mark = lg_cpu_seconds();
	g->scpu_mark = g->cfg.server_pid ? lg_proc_cpu_seconds(g->cfg.server_pid) : -1;
}

static void cpu_take(lg *g, uint64_t from, uint64_t to)
{
	g->cpu_used = lg_cpu_seconds() - g->cpu_mark;
	g->cpu_span = secs(to - from);
	double s = g->cfg.server_pid ? lg_proc_cpu_seconds(g->cfg.server_pid) : -1;
	g->scpu_used = s >= 0 && g->scpu_mark >= 0 ? s - g->scpu_mark : -1;
}

static void finish(lg *g)
{
	if (g->phase == LG_PH_DONE)
		return;
	if (g->phase == LG_PH_RUN && g->cfg.scenario != LG_IDLE) {
		/* Stopped early (timeout): the run ends here. */
		g->t_run_end = uv_hrtime();
		cpu_take(g, g->t_phase, g->t_run_end);
	}
	g->phase = LG_PH_DONE;
	uv_timer_stop(&g->tick);
	uv_check_stop(&g->check);
	uv_stop(g->loop);
}

/* Starts connections until cfg.inflight are in progress or all are started. */
static void pump(lg *g)
{
	while (g->phase == LG_PH_CONNECTING && g->started < g->nconns &&
	       g->connecting < g->cfg.inflight) {
		lg_conn *c = &g->conns[g->started++];
		g->connecting++;
		lg_conn_start(g, c);
	}
}

/* After each loop turn's I/O: start connections, write what is queued. */
static void on_check(uv_check_t *h)
{
	lg *g = h->data;
	pump(g);
	lg_conn_start_upgrades(g);
	lg_flush(g);
}

void lg_on_ready(lg *g, lg_conn *c)
{
	uint64_t now = uv_hrtime();
	g->connecting--;
	g->ready++;
	lg_hist_record(&g->clat, now - c->t_start);
	if (g->ready + g->failed == g->nconns)
		g->t_conn_done = now;
}

void lg_on_gone(lg *g, lg_conn *c, const char *why)
{
	if (c->state == LG_CS_GONE)
		return;
	int was = c->state;
	c->state = LG_CS_GONE;
	if (g->phase == LG_PH_DONE)
		return;
	if (was == LG_CS_READY) {
		g->dropped++;
		g->lost += c->outstanding;
		g->outstanding -= c->outstanding;
		c->outstanding = 0;
		lg_fail(g, "connection %u dropped while %s: %s", c->id, phase_names[g->phase], why);
		if (g->cfg.scenario == LG_CLUSTER)
			fprintf(stderr, "loadgen: %s\n", g->fail);
		return;
	}
	g->connecting--;
	g->failed++;
	lg_fail(g, "connection %u failed: %s", c->id, why);
	/* The cluster driver goes on past failures: say why, for the first few. */
	if (g->cfg.scenario == LG_CLUSTER && g->failed <= 5)
		fprintf(stderr, "loadgen: %s\n", g->fail);
	if (g->ready + g->failed == g->nconns)
		g->t_conn_done = uv_hrtime();
}

void lg_on_joined(lg *g, lg_conn *c)
{
	g->joined++;
}

static void start_run(lg *g, uint64_t now)
{
	g->phase = LG_PH_RUN;
	g->t_phase = now;
	g->t_measure = now + ns_of(g->cfg.warmup);
	cpu_mark(g);
	if (g->cfg.scenario == LG_BROADCAST) {
		lg_conn_kick(&g->conns[g->cfg.conns]);
		return;
	}
	for (uint32_t i = 0; i < g->nconns; i++)
		lg_conn_kick(&g->conns[i]);
}

/* All connections are up (or failed): on to the scenario proper. */
static void connected(lg *g, uint64_t now)
{
	cpu_take(g, g->t0, g->t_conn_done);
	if (g->cfg.scenario == LG_CLUSTER) {
		/* Failures included: the driver counts them and goes on. */
		g->phase = LG_PH_RUN;
		g->t_phase = now;
		lg_cluster_connected(g);
		return;
	}
	if (g->failed) {
		finish(g);
		return;
	}
	switch (g->cfg.scenario) {
	case LG_CONNECT:
		finish(g);
		return;
	case LG_IDLE:
		g->phase = LG_PH_RUN;
		g->t_phase = now;
		return;
	case LG_BROADCAST:
		g->phase = LG_PH_SETUP;
		g->t_phase = now;
		for (uint32_t i = 0; i < g->cfg.conns; i++) {
			g->conns[i].send_join = 1;
			lg_conn_kick(&g->conns[i]);
		}
		return;
	default:
		start_run(g, now);
		return;
	}
}

static void progress(lg *g, uint64_t now)
{
	fprintf(stderr,
	        "loadgen: %6.1fs %-10s ready %u/%u failed %u sent %llu recv %llu outstanding "
	        "%llu lost %llu dup %llu bad %llu\n",
	        secs(now - g->t0), phase_names[g->phase], g->ready, g->nconns, g->failed,
	        (unsigned long long)g->sent, (unsigned long long)g->recv,
	        (unsigned long long)(g->outstanding + g->boutstanding), (unsigned long long)g->lost,
	        (unsigned long long)g->dup, (unsigned long long)g->bad);
}

static void on_tick(uv_timer_t *t)
{
	lg *g = t->data;
	uint64_t now = uv_hrtime();
	static uint64_t last_progress;
	if (g->cfg.verbose && now - last_progress >= 1000000000ull) {
		last_progress = now;
		progress(g, now);
	}
	if (now - g->t0 > ns_of(g->cfg.timeout)) {
		lg_fail(g, "timed out after %.0f s while %s", g->cfg.timeout,
		        phase_names[g->phase]);
		finish(g);
		return;
	}
	if (g->dropped && g->phase != LG_PH_CONNECTING && g->cfg.scenario != LG_CLUSTER) {
		/* A connection the server dropped fails the run; no point going on. */
		finish(g);
		return;
	}
	switch (g->phase) {
	case LG_PH_CONNECTING:
		pump(g);
		if (g->started == g->nconns && g->ready + g->failed == g->nconns)
			connected(g, now);
		return;
	case LG_PH_SETUP:
		if (g->joined == g->cfg.conns)
			start_run(g, now);
		return;
	case LG_PH_RUN:
		if (g->cfg.scenario == LG_CLUSTER)
			return; /* driven by the commands on stdin */
		if (g->cfg.scenario == LG_IDLE) {
			if (g->rss_after == 0 && now - g->t_phase >= ns_of(g->cfg.settle)) {
				g->rss_after =
				    g->cfg.server_pid ? lg_proc_rss_kb(g->cfg.server_pid) : -1;
				g->rss_client = lg_proc_rss_kb(0);
			}
			if (now - g->t_phase >= ns_of(g->cfg.settle + g->cfg.duration))
				finish(g);
			return;
		}
		if (now - g->t_phase >= ns_of(g->cfg.duration) ||
		    (g->cfg.count && g->sent >= g->cfg.count)) {
			g->t_run_end = now;
			cpu_take(g, g->t_phase, now);
			g->phase = LG_PH_DRAIN;
			g->t_phase = now;
		}
		return;
	case LG_PH_DRAIN:
		if (g->outstanding + g->boutstanding == 0 ||
		    now - g->t_phase >= ns_of(g->cfg.drain))
			finish(g);
		return;
	case LG_PH_DONE:
		return;
	}
}

static void on_timer(uv_timer_t *t)
{
	on_tick(t);
	lg_flush(t->data);
}

/* ---- Results ---- */

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static int report(lg *g)
{
	const lg_config *cf = &g->cfg;
	int run = cf->scenario != LG_IDLE && cf->scenario != LG_CONNECT;
	int bc = cf->scenario == LG_BROADCAST;
	if (run && !bc)
		g->lost += g->outstanding; /* never answered, even after the drain */
	if (bc) {
		uint64_t want = (uint64_t)cf->conns * g->sent;
		g->lost += want > g->recv ? want - g->recv : 0;
	}
	const lg_hist *h = run ? &g->lat : &g->clat;
	double span = 0, rate = 0, conn_rate = 0;
	if (g->t_conn_done > g->t0)
		conn_rate = (double)g->ready / secs(g->t_conn_done - g->t0);
	uint64_t msgs = run ? g->recv_measured : g->ready;
	if (run) {
		uint64_t end = g->t_last_recv > g->t_run_end ? g->t_last_recv : g->t_run_end;
		if (end > g->t_measure)
			span = secs(end - g->t_measure);
		/* Broadcasts count once each, when the last receiver has it. */
		uint64_t done = bc ? g->lat.count : g->recv_measured;
		rate = span > 0 ? (double)done / span : 0;
	} else {
		span = g->t_conn_done > g->t0 ? secs(g->t_conn_done - g->t0) : 0;
		rate = conn_rate;
	}
	/* Below 50 ms of measuring, a CPU share means nothing: -1. */
	double cpu_pct = g->cpu_span >= 0.05 ? 100.0 * g->cpu_used / g->cpu_span : -1;
	double scpu_pct =
	    g->cpu_span >= 0.05 && g->scpu_used >= 0 ? 100.0 * g->scpu_used / g->cpu_span : -1;
	long per_conn = -1;
	if (cf->scenario == LG_IDLE && g->rss_before > 0 && g->rss_after > 0 && g->ready)
		per_conn = (long)((double)(g->rss_after - g->rss_before) * 1024.0 / g->ready);
	if (g->lost)
		lg_fail(g, "%llu replies lost", (unsigned long long)g->lost);
	if (g->dup)
		lg_fail(g, "%llu replies duplicated", (unsigned long long)g->dup);
	if (g->bad)
		lg_fail(g, "%llu unexpected or malformed packets", (unsigned long long)g->bad);
	if (run && !g->fail[0] && g->recv == 0)
		lg_fail(g, "no reply at all");
	int ok = !g->fail[0];

	printf(
	    "RESULT tag=%s scenario=%s server=%s client=%s upgrade=%d conns=%u window=%u size=%zu "
	    "duration_s=%.3f "
	    "sent=%llu "
	    "msgs=%llu lost=%llu dup=%llu bad=%llu failed=%u dropped=%llu rate=%.1f "
	    "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f "
	    "cpu_client_pct=%.1f cpu_server_pct=%.1f connect_rate=%.1f rss_before_kb=%ld "
	    "rss_after_kb=%ld rss_per_conn_b=%ld client_rss_kb=%ld",
	    cf->tag, lg_scenario_name(cf->scenario), cf->server_name,
	    cf->raw        ? "raw"
	    : cf->tx_batch ? "lws"
	                   : "lws-tx",
	    cf->upgrade, cf->conns, run ? cf->window : 0, cf->size, span,
	    (unsigned long long)g->sent, (unsigned long long)msgs, (unsigned long long)g->lost,
	    (unsigned long long)g->dup, (unsigned long long)g->bad, g->failed,
	    (unsigned long long)g->dropped, rate, us(lg_hist_quantile(h, 0.5)),
	    us(lg_hist_quantile(h, 0.9)), us(lg_hist_quantile(h, 0.99)),
	    us(lg_hist_quantile(h, 0.999)), us(h->count ? h->max : 0),
	    h->count ? us(h->sum / h->count) : 0.0, cpu_pct, scpu_pct, conn_rate, g->rss_before,
	    g->rss_after, per_conn, g->rss_client);
	if (bc)
		printf(
		    " deliveries=%llu delivery_rate=%.1f delivery_p50_us=%.1f delivery_p99_us=%.1f",
		    (unsigned long long)g->recv_measured,
		    span > 0 ? (double)g->recv_measured / span : 0.0,
		    us(lg_hist_quantile(&g->lat2, 0.5)), us(lg_hist_quantile(&g->lat2, 0.99)));
	printf(" status=%s\n", ok ? "ok" : "fail");

	const char *what = run ? (bc ? "broadcast until the last receiver" : "round trip")
	                       : "connect (to Socket.IO CONNECT reply)";
	printf("\n  %s against %s: %u connections", lg_scenario_name(cf->scenario), cf->server_name,
	       cf->conns);
	if (run)
		printf(", window %u", cf->window);
	if (cf->size)
		printf(", %zu bytes", cf->size);
	printf("\n");
	printf("  %-28s %12.0f /s over %.2f s\n",
	       run ? (bc ? "broadcasts" : "round trips") : "connections", rate, span);
	if (bc)
		printf("  %-28s %12.0f /s\n", "deliveries",
		       span > 0 ? (double)g->recv_measured / span : 0.0);
	printf("  %-28s %12.3f ms p50  %.3f ms p90  %.3f ms p99  %.3f ms p99.9  %.3f ms max\n",
	       what, us(lg_hist_quantile(h, 0.5)) / 1000, us(lg_hist_quantile(h, 0.9)) / 1000,
	       us(lg_hist_quantile(h, 0.99)) / 1000, us(lg_hist_quantile(h, 0.999)) / 1000,
	       us(h->count ? h->max : 0) / 1000);
	if (bc)
		printf("  %-28s %12.3f ms p50  %.3f ms p99\n", "single delivery",
		       us(lg_hist_quantile(&g->lat2, 0.5)) / 1000,
		       us(lg_hist_quantile(&g->lat2, 0.99)) / 1000);
	printf("  %-28s sent %llu, received %llu, lost %llu, duplicated %llu, bad %llu\n", "counts",
	       (unsigned long long)g->sent, (unsigned long long)g->recv,
	       (unsigned long long)g->lost, (unsigned long long)g->dup, (unsigned long long)g->bad);
	printf("  %-28s %12.1f %% of one core\n", "load generator CPU", cpu_pct);
	if (scpu_pct >= 0)
		printf("  %-28s %12.1f %% of one core\n", "server CPU", scpu_pct);
	if (cf->scenario == LG_IDLE)
		printf("  %-28s %ld KiB -> %ld KiB: %ld bytes per connection (client: %ld KiB)\n",
		       "server RSS", g->rss_before, g->rss_after, per_conn, g->rss_client);
	printf("  %-28s %s%s\n\n", "status", ok ? "ok" : "FAIL: ", ok ? "" : g->fail);
	fflush(stdout);

	if (cf->hist_out) {
		char label[160];
		snprintf(label, sizeof(label),
		         "tag=%s scenario=%s server=%s conns=%u window=%u size=%zu", cf->tag,
		         lg_scenario_name(cf->scenario), cf->server_name, cf->conns, cf->window,
		         cf->size);
		if (lg_hist_dump(h, cf->hist_out, label))
			fprintf(stderr, "loadgen: cannot write %s: %s\n", cf->hist_out,
			        strerror(errno));
	}
	return ok ? 0 : 1;
}

/* ---- Set-up and tear-down ---- */

static int setup(lg *g)
{
	const lg_config *cf = &g->cfg;
	int bc = cf->scenario == LG_BROADCAST;
	int windowed =
	    cf->scenario == LG_ECHO || cf->scenario == LG_ACK || cf->scenario == LG_BINARY;
	g->nconns = cf->conns + (bc || (cf->scenario == LG_CLUSTER && cf->sender) ? 1 : 0);

	uint64_t want = (uint64_t)g->nconns + 1024;
	uint64_t have = lg_raise_nofile(want);
	if (have < (uint64_t)g->nconns + 64) {
		fprintf(stderr,
		        "bench-loadgen: %u connections need %llu descriptors; the limit is %llu\n",
		        g->nconns, (unsigned long long)want, (unsigned long long)have);
		return -1;
	}
	g->conns = calloc(g->nconns, sizeof(*g->conns));
	g->dirty = calloc(g->nconns, sizeof(*g->dirty));
	g->upq = calloc(g->nconns, sizeof(*g->upq));
	if (!g->conns || !g->dirty || !g->upq)
		return -1;
	lg_slot *slots = NULL;
	if (windowed) {
		slots = calloc((size_t)g->nconns * cf->window, sizeof(*slots));
		if (!slots)
			return -1;
	}
	for (uint32_t i = 0; i < g->nconns; i++) {
		g->conns[i].lg = g;
		g->conns[i].id = i;
		g->conns[i].slots = slots ? slots + (size_t)i * cf->window : NULL;
	}
	if (bc) {
		g->bslots = calloc(cf->window, sizeof(*g->bslots));
		if (!g->bslots)
			return -1;
		g->bnext = 1;
	}
	size_t sz = cf->size > 16 ? cf->size : 16;
	g->bin = malloc(sz);
	g->pad = malloc(sz);
	/* One batch (64 KiB) plus one more request with its attachment and headers. */
	g->txcap = 65536 + 2 * sz + 1024;
	g->txbuf = malloc(LWS_PRE + g->txcap);
	if (!g->bin || !g->pad || !g->txbuf)
		return -1;
	for (size_t i = 0; i < sz; i++) {
		g->bin[i] = (unsigned char)(i * 131 + 7);
		g->pad[i] = (char)('a' + i % 26);
	}
	g->rng = uv_hrtime() | 1;
	lg_hist_init(&g->lat);
	lg_hist_init(&g->lat2);
	lg_hist_init(&g->clat);

	lws_set_log_level(cf->verbose ? LLL_ERR | LLL_WARN : LLL_ERR, NULL);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	void *loops[] = {g->loop};
	struct lws_protocols *protos = calloc(2, sizeof(*protos));
	if (!protos)
		return -1;
	protos[0] = lg_protocols[0];
	protos[0].rx_buffer_size = cf->rxbuf;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protos;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = loops;
	/* No extension by default (permessage-deflate stalls large messages on
	 * libuv); --deflate offers it, for the server's compression. */
	static const struct lws_extension exts[] = {
	    {"permessage-deflate", lws_extension_callback_pm_deflate,
	     "permessage-deflate; client_max_window_bits"},
	    {NULL, NULL, NULL},
	};
	info.extensions = cf->deflate ? exts : NULL;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	/*
	 * No fd_limit_per_thread: below the ulimit it makes lws find a
	 * connection from its descriptor by a linear scan. The ulimit was
	 * raised above instead.
	 */
	info.max_http_header_pool =
	    (unsigned short)(cf->inflight + 64 > 65535 ? 65535 : cf->inflight + 64);
	info.pt_serv_buf_size = 65536;
	info.timeout_secs = 30;
	info.connect_timeout_secs = 30;
	info.user = g;
	g->ctx = lws_create_context(&info);
	g->protos = protos;
	if (!g->ctx) {
		fprintf(stderr, "bench-loadgen: lws_create_context failed\n");
		return -1;
	}
	return 0;
}

static void teardown(lg *g)
{
	if (g->ctx) {
		lws_context_destroy(g->ctx);
		g->ctx = NULL;
	}
	for (uint32_t i = 0; g->conns && i < g->nconns; i++)
		lg_raw_close(&g->conns[i]);
	uv_close((uv_handle_t *)&g->tick, NULL);
	uv_close((uv_handle_t *)&g->check, NULL);
	/* lws closes its handles on our loop; let those closes run. */
	uv_run(g->loop, UV_RUN_DEFAULT);
	uv_loop_close(g->loop);
	for (uint32_t i = 0; i < g->nconns; i++) {
		free(g->conns[i].rx);
		free(g->conns[i].sid);
	}
	if (g->conns)
		free(g->conns[0].slots);
	free(g->conns);
	free(g->dirty);
	free(g->upq);
	free(g->bslots);
	free(g->bin);
	free(g->pad);
	free(g->txbuf);
	free(g->protos);
}

int main(int argc, char **argv)
{
	static lg g; /* large: the histograms */
	if (lg_parse_args(&g.cfg, argc, argv)) {
		lg_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	static uv_loop_t loop;
	uv_loop_init(&loop);
	g.loop = &loop;
	if (setup(&g)) {
		teardown(&g);
		return 2;
	}
	g.rss_before = g.cfg.server_pid ? lg_proc_rss_kb(g.cfg.server_pid) : -1;
	if (g.cfg.server_pid && g.rss_before < 0)
		fprintf(stderr, "bench-loadgen: cannot read /proc/%d/status\n", g.cfg.server_pid);
	uv_timer_init(g.loop, &g.tick);
	uv_check_init(g.loop, &g.check);
	g.tick.data = &g;
	g.check.data = &g;
	g.t0 = uv_hrtime();
	cpu_mark(&g);
	g.phase = LG_PH_CONNECTING;
	uv_timer_start(&g.tick, on_timer, 10, 10);
	uv_check_start(&g.check, on_check);
	if (g.cfg.scenario == LG_CLUSTER)
		lg_cluster_start(&g);
	pump(&g);
	uv_run(g.loop, UV_RUN_DEFAULT);
	int rc = report(&g);
	if (g.nconns > 2000) {
		/*
		 * lws takes seconds to destroy tens of thousands of connections
		 * one by one; the kernel closes them all at once. Small runs (the
		 * tests, under the sanitizers) still tear down and free everything.
		 */
		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	teardown(&g);
	return rc;
}
