/*
 * metrics.c: GET /metrics in the Prometheus text format (0.0.4), and the
 * access log.
 *
 * Every layer keeps plain counters in the structure it already owns (one
 * loop: no atomics, no locks) and copies them out through its *_get_stats
 * function; this file reads them only when scraped. What is cheaper to ask
 * PostgreSQL than to track (requests by status, queue depth per space) is
 * one query per scrape. /metrics is off unless a token (served on the main
 * port behind "Authorization: Bearer TOKEN") or a listener of its own is
 * configured.
 *
 * The access log is an observer of the HTTP server (http_server_observe):
 * one line per response and per WebSocket end, with the request id that is
 * also sent back as X-Request-Id.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "web.h"

struct web_metrics {
	http_server *http;
	sio_server *io;
	db_pool *db;
	sp_app *sp;
	char *token;
	http_server *own; /* the metrics listener, or NULL */
	web_access_format access;
	int closing;
	void (*close_cb)(void *ud);
	void *close_ud;
	base_list scrapes; /* scrape.link: waiting for their query */
};

typedef struct {
	base_list link;
	web_metrics *m;
	http_request *req; /* NULL once the client has gone */
} scrape;

/* ---- rendering ----------------------------------------------------------- */

static void help_type(base_buf *b, const char *name, const char *type, const char *help)
{
	base_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(base_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	help_type(b, name, type, help);
	base_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* A label value with \, " and newlines escaped. */
static void label(base_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			base_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			base_buf_append_str(b, "\\n");
		else
			base_buf_append(b, v, 1);
	}
}

/* A histogram of non-cumulative buckets in ms, written in seconds. */
static void histogram(base_buf *b, const char *name, const char *lbl, const uint64_t *bounds_ms,
                      const uint64_t *bucket, size_t n, uint64_t sum_ms)
{
	uint64_t acc = 0;
	const char *sep = lbl[0] ? "," : "";

	for (size_t i = 0; i + 1 < n; i++) {
		acc += bucket[i];
		base_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lbl, sep,
		                (double)bounds_ms[i] / 1000.0, (unsigned long long)acc);
	}
	acc += bucket[n - 1];
	base_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lbl, sep,
	                (unsigned long long)acc);
	if (lbl[0]) {
		base_buf_printf(b, "%s_sum{%s} %.3f\n%s_count{%s} %llu\n", name, lbl,
		                (double)sum_ms / 1000.0, name, lbl, (unsigned long long)acc);
	} else {
		base_buf_printf(b, "%s_sum %.3f\n%s_count %llu\n", name, (double)sum_ms / 1000.0,
		                name, (unsigned long long)acc);
	}
}

typedef struct {
	base_buf *b;
	int header_done;
} route_ctx;

static void route_line(const char *path, int prefix, const uint64_t by_class[6], void *ud)
{
	route_ctx *r = ud;

	for (int k = 1; k <= 5; k++) {
		if (!by_class[k])
			continue;
		base_buf_append_str(r->b, "spaces_http_responses_total{route=\"");
		label(r->b, path);
		base_buf_printf(r->b, "%s\",code=\"%dxx\"} %llu\n", prefix ? "*" : "", k,
		                (unsigned long long)by_class[k]);
	}
}

static void nsp_line(const char *name, size_t sockets, void *ud)
{
	base_buf *b = ud;

	base_buf_append_str(b, "spaces_socketio_sockets{namespace=\"");
	label(b, name);
	base_buf_printf(b, "\"} %zu\n", sockets);
}

/* The database's counts of a scrape. */
typedef struct {
	const sp_count_row *by_status, *queued;
	unsigned n_status, n_queued;
} db_counts;

static void render(web_metrics *m, base_buf *b, const db_counts *c)
{
	http_stats hs;
	eio_stats es;
	sio_stats ss;
	db_pool_stats ds;
	sp_stats ps;
	static const char *const reasons[EIO_CLOSE_REASONS] = {
	    "server_close", "client_close",    "transport_error",    "ping_timeout",
	    "parse_error",  "server_shutdown", "forced_server_close"};
	static const uint64_t db_bounds[DB_LAT_BUCKETS - 1] = DB_LAT_BOUNDS_MS;
	static const uint64_t sp_bounds[SP_LAT_BUCKETS - 1] = SP_LAT_BOUNDS_MS;

	http_server_get_stats(m->http, &hs);
	eio_server_get_stats(sio_server_engine(m->io), &es);
	sio_server_get_stats(m->io, &ss);
	db_pool_get_stats(m->db, &ds);
	sp_app_get_stats(m->sp, &ps);

	/* HTTP */
	uint64_t conns = http_server_connections(m->http);
	uint64_t ws = hs.ws_opened - hs.ws_closed;
	if (ws > conns) /* a WebSocket whose connection is being freed */
		ws = conns;
	help_type(b, "spaces_connections", "gauge", "Open TCP connections by transport.");
	base_buf_printf(b, "spaces_connections{transport=\"http\"} %llu\n",
	                (unsigned long long)(conns - ws));
	base_buf_printf(b, "spaces_connections{transport=\"websocket\"} %llu\n",
	                (unsigned long long)ws);
	one(b, "spaces_http_connections_accepted_total", "counter", "TCP connections accepted.",
	    hs.accepted);
	one(b, "spaces_http_requests_total", "counter", "HTTP requests whose headers were read.",
	    hs.requests);
	one(b, "spaces_http_refused_total", "counter",
	    "HTTP requests refused by the server itself (malformed, too large, too slow).",
	    hs.refused);
	help_type(b, "spaces_http_responses_total", "counter",
	          "HTTP responses by route (a trailing * is a prefix) and status class.");
	route_ctx rc = {b, 0};
	http_server_each_route(m->http, route_line, &rc);
	for (int k = 1; k <= 5; k++)
		if (hs.unrouted[k])
			base_buf_printf(b,
			                "spaces_http_responses_total{route=\"none\",code=\"%dxx\"} "
			                "%llu\n",
			                k, (unsigned long long)hs.unrouted[k]);
	one(b, "spaces_received_bytes_total", "counter",
	    "Bytes read from clients (HTTP and WebSocket).", hs.bytes_in);
	one(b, "spaces_sent_bytes_total", "counter", "Bytes written to clients.", hs.bytes_out);
	one(b, "spaces_websocket_opened_total", "counter", "WebSocket handshakes completed.",
	    hs.ws_opened);

	/* Engine.IO */
	help_type(b, "spaces_engineio_sessions", "gauge", "Open Engine.IO sessions by transport.");
	base_buf_printf(b, "spaces_engineio_sessions{transport=\"polling\"} %llu\n",
	                (unsigned long long)es.open[0]);
	base_buf_printf(b, "spaces_engineio_sessions{transport=\"websocket\"} %llu\n",
	                (unsigned long long)es.open[1]);
	help_type(b, "spaces_engineio_sessions_opened_total", "counter",
	          "Engine.IO sessions opened, by first transport.");
	base_buf_printf(b, "spaces_engineio_sessions_opened_total{transport=\"polling\"} %llu\n",
	                (unsigned long long)es.opened[0]);
	base_buf_printf(b, "spaces_engineio_sessions_opened_total{transport=\"websocket\"} %llu\n",
	                (unsigned long long)es.opened[1]);
	help_type(b, "spaces_engineio_sessions_closed_total", "counter",
	          "Engine.IO sessions closed, by reason (ping_timeout: heartbeat timeouts).");
	for (int i = 0; i < EIO_CLOSE_REASONS; i++)
		base_buf_printf(b, "spaces_engineio_sessions_closed_total{reason=\"%s\"} %llu\n",
		                reasons[i], (unsigned long long)es.closed[i]);
	one(b, "spaces_engineio_upgrades_total", "counter",
	    "Polling sessions upgraded to WebSocket.", es.upgrades);
	one(b, "spaces_engineio_heartbeat_timeouts_total", "counter",
	    "Sessions closed because no pong came in time.", es.closed[EIO_CLOSE_PING_TIMEOUT]);
	one(b, "spaces_engineio_packets_received_total", "counter",
	    "Engine.IO message packets received.", es.msgs_in);
	one(b, "spaces_engineio_packets_sent_total", "counter",
	    "Engine.IO message packets queued to clients.", es.msgs_out);

	/* Socket.IO */
	help_type(b, "spaces_socketio_sockets", "gauge",
	          "Connected Socket.IO sockets by namespace.");
	sio_server_each_namespace(m->io, nsp_line, b);
	one(b, "spaces_socketio_events_received_total", "counter", "Socket.IO events received.",
	    ss.events_in);
	one(b, "spaces_socketio_broadcasts_total", "counter", "Socket.IO broadcasts.",
	    ss.broadcasts);
	one(b, "spaces_socketio_broadcast_deliveries_total", "counter",
	    "Sockets broadcasts were sent to.", ss.deliveries);

	/* Database */
	one(b, "spaces_db_pool_size", "gauge", "Database connections of the pool.", ds.size);
	one(b, "spaces_db_pool_connected", "gauge", "Database connections up.", ds.connected);
	one(b, "spaces_db_queue_depth", "gauge", "Queries waiting for a connection.", ds.queued);
	one(b, "spaces_db_in_flight", "gauge", "Queries sent and not yet answered.", ds.in_flight);
	help_type(b, "spaces_db_queries_total", "counter", "Queries answered, by outcome.");
	base_buf_printf(b, "spaces_db_queries_total{outcome=\"ok\"} %llu\n",
	                (unsigned long long)ds.completed);
	base_buf_printf(b, "spaces_db_queries_total{outcome=\"error\"} %llu\n",
	                (unsigned long long)ds.failed);
	one(b, "spaces_db_reconnects_total", "counter", "Database connections re-established.",
	    ds.reconnects);
	help_type(b, "spaces_db_query_duration_seconds", "histogram",
	          "Queries from queued to answered.");
	histogram(b, "spaces_db_query_duration_seconds", "", db_bounds, ds.lat_bucket,
	          DB_LAT_BUCKETS, ds.lat_sum_ms);

	/* Spaces */
	one(b, "spaces_apps_connected", "gauge", "Apps connected to this process and registered.",
	    sp_apps_connected(m->sp));
	help_type(b, "spaces_requests_total", "counter",
	          "Inference requests seen by this process, by event.");
	{
		const struct {
			const char *ev;
			uint64_t v;
		} evs[] = {{"submitted", ps.submitted},   {"rejected", ps.rejected},
		           {"dispatched", ps.dispatched}, {"requeued", ps.requeued},
		           {"completed", ps.completed},   {"failed", ps.failed},
		           {"timed_out", ps.timed_out},   {"cancelled", ps.cancelled}};
		for (size_t i = 0; i < BASE_ARRAY_SIZE(evs); i++)
			base_buf_printf(b, "spaces_requests_total{event=\"%s\"} %llu\n", evs[i].ev,
			                (unsigned long long)evs[i].v);
	}
	help_type(b, "spaces_request_wait_seconds", "histogram",
	          "Requests from submission to dispatch to an app.");
	histogram(b, "spaces_request_wait_seconds", "", sp_bounds, ps.wait.bucket, SP_LAT_BUCKETS,
	          ps.wait.sum_ms);
	help_type(b, "spaces_request_run_seconds", "histogram",
	          "Requests from dispatch to their result.");
	histogram(b, "spaces_request_run_seconds", "", sp_bounds, ps.run.bucket, SP_LAT_BUCKETS,
	          ps.run.sum_ms);
	one(b, "spaces_journal_bytes", "gauge", "Bytes of results waiting in the journal.",
	    sp_journal_bytes(m->sp));

	/* From the database: every node's requests. */
	if (c) {
		help_type(b, "spaces_db_requests", "gauge", "Requests in the database by status.");
		for (unsigned i = 0; i < c->n_status; i++) {
			base_buf_append_str(b, "spaces_db_requests{status=\"");
			label(b, c->by_status[i].key);
			base_buf_printf(b, "\"} %s\n", c->by_status[i].count);
		}
		help_type(b, "spaces_queue_depth", "gauge", "Queued requests per space.");
		for (unsigned i = 0; i < c->n_queued; i++) {
			base_buf_append_str(b, "spaces_queue_depth{space=\"");
			label(b, c->queued[i].key);
			base_buf_printf(b, "\"} %s\n", c->queued[i].count);
		}
	}
	one(b, "spaces_metrics_db_ok", "gauge",
	    "1 when the database counts above could be read at this scrape.", c ? 1 : 0);
}

/* ---- serving --------------------------------------------------------------- */

static void answer(web_metrics *m, http_request *req, const db_counts *c)
{
	base_buf b = BASE_BUF_INIT;

	render(m, &b, c);
	if (!b.data) {
		http_respond(req, 503, "text/plain", NULL, "out of memory\n", 14);
		return;
	}
	http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	             "Cache-Control: no-store\r\n", b.data, b.len);
	base_buf_free(&b);
}

static void scrape_aborted(http_request *req, void *ud)
{
	scrape *s = ud;
	(void)req;
	s->req = NULL;
}

static void counted(sp_store_status st, const sp_count_row *by_status, unsigned n_status,
                    const sp_count_row *queued, unsigned n_queued, void *ud)
{
	scrape *s = ud;
	db_counts c = {by_status, queued, n_status, n_queued};

	base_list_remove(&s->link);
	if (s->req && s->m) {
		s->req->on_abort = NULL;
		answer(s->m, s->req, st == SP_STORE_OK ? &c : NULL);
	}
	free(s);
}

static void serve(web_metrics *m, http_request *req)
{
	scrape *s = calloc(1, sizeof(*s));

	if (!s || m->closing) {
		free(s);
		answer(m, req, NULL);
		return;
	}
	s->m = m;
	s->req = req;
	base_list_insert_tail(&m->scrapes, &s->link);
	req->on_abort = scrape_aborted;
	req->abort_ud = s;
	if (sp_store_request_counts(m->sp, counted, s) != 0) {
		base_list_remove(&s->link);
		req->on_abort = NULL;
		free(s);
		answer(m, req, NULL);
	}
}

static void metrics_token(http_request *req, void *ud)
{
	web_metrics *m = ud;
	const base_slice *h = http_header_get(req, "Authorization");
	size_t tl = strlen(m->token);

	if (!h || h->len != 7 + tl || strncasecmp(h->base, "Bearer ", 7) != 0 ||
	    sodium_memcmp(h->base + 7, m->token, tl) != 0) {
		static const char msg[] = "a bearer token is required\n";
		http_respond(
		    req, 401, "text/plain; charset=utf-8",
		    "WWW-Authenticate: Bearer realm=\"metrics\"\r\nCache-Control: no-store\r\n",
		    msg, sizeof(msg) - 1);
		return;
	}
	serve(m, req);
}

static void metrics_open(http_request *req, void *ud)
{
	serve(ud, req);
}

/* ---- access log ------------------------------------------------------------ */

/* Copies s (n bytes) into out for a log line: JSON-escaped when json, else
 * with quotes, backslashes and control bytes as \xHH. Always terminated. */
static void clean(char *out, size_t cap, const char *s, size_t n, int json)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 7 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f || (json && c >= 0x80)) {
			o += (size_t)snprintf(out + o, cap - o, json ? "\\u%04x" : "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
}

static void access_line(web_metrics *m, const char *kind, const char *addr, const char *method,
                        base_slice path, int status, uint64_t bytes_in, uint64_t bytes_out,
                        uint64_t dur, uint64_t id, const base_slice *ua, const char *extra)
{
	int json = m->access == WEB_ACCESS_JSON;
	char p[512], a[256];

	clean(p, sizeof(p), path.base, path.len, json);
	clean(a, sizeof(a), ua ? ua->base : "", ua ? ua->len : 0, json);
	if (json) {
		char ts[96]; /* room for any int fields: -O2 checks the worst case */
		struct timespec now;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		         (long)((unsigned long)now.tv_nsec / 1000000UL % 1000UL));
		fprintf(
		    stderr,
		    "{\"time\":\"%s\",\"type\":\"%s\",\"request_id\":\"%s-%llu\",\"remote\":\"%s\","
		    "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes_in\":%llu,"
		    "\"bytes_out\":%llu,\"duration_ms\":%llu,\"user_agent\":\"%s\"%s}\n",
		    ts, kind, http_server_id_prefix(m->http), (unsigned long long)id, addr, method,
		    p, status, (unsigned long long)bytes_in, (unsigned long long)bytes_out,
		    (unsigned long long)dur, a, extra);
	} else {
		BASE_LOGI("access",
		          "%s %s \"%s %s\" %d in=%llu out=%llu %llums id=%s-%llu ua=\"%s\"%s", kind,
		          addr, method, p, status, (unsigned long long)bytes_in,
		          (unsigned long long)bytes_out, (unsigned long long)dur,
		          http_server_id_prefix(m->http), (unsigned long long)id, a, extra);
	}
}

static void on_response(const http_request *req, int status, uint64_t body, void *ud)
{
	web_metrics *m = ud;
	uint64_t now = uv_now(http_server_loop(m->http));
	char method[16];

	clean(method, sizeof(method), req->method_name.base, req->method_name.len, 0);
	access_line(m, "http", req->remote_addr, method, req->path, status, req->body.len, body,
	            now - req->start_ms, req->id, http_header_get(req, "User-Agent"), "");
}

static void on_ws_end(const http_ws *ws, int code, const char *reason, void *ud)
{
	web_metrics *m = ud;
	http_ws_info in;
	char r[160], extra[220];
	int json = m->access == WEB_ACCESS_JSON;

	http_ws_get_info(ws, &in);
	clean(r, sizeof(r), reason, strlen(reason), json);
	if (json)
		snprintf(extra, sizeof(extra), ",\"close_code\":%d,\"close_reason\":\"%s\"", code,
		         r);
	else
		snprintf(extra, sizeof(extra), " close=%d \"%s\"", code, r);
	base_slice ua = {in.user_agent, strlen(in.user_agent)};
	access_line(m, "websocket", http_ws_remote_addr(ws), "GET",
	            (base_slice){in.path, strlen(in.path)}, 101, in.bytes_in, in.bytes_out,
	            uv_now(http_server_loop(m->http)) - in.start_ms, in.id, &ua, extra);
}

/* ---- life ------------------------------------------------------------------ */

web_metrics *web_metrics_new(http_server *http, sio_server *io, db_pool *db, sp_app *sp,
                             const web_metrics_options *o)
{
	web_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->http = http;
	m->io = io;
	m->db = db;
	m->sp = sp;
	m->access = o->access_log;
	base_list_init(&m->scrapes);
	if (o->token && o->token[0]) {
		m->token = strdup(o->token);
		if (!m->token || http_route(http, HTTP_M_GET, "/metrics", 0, metrics_token, m)) {
			web_metrics_free(m);
			return NULL;
		}
	}
	if (o->listen_host) {
		int rc;
		m->own = http_server_new(http_server_loop(http), NULL);
		if (!m->own || http_route(m->own, HTTP_M_GET, "/metrics", 0, metrics_open, m)) {
			web_metrics_free(m);
			return NULL;
		}
		rc = http_server_listen(m->own, o->listen_host, o->listen_port);
		if (rc) {
			BASE_LOGE("main", "cannot listen for metrics on %s:%d: %s", o->listen_host,
			          o->listen_port, uv_strerror(rc));
			web_metrics_free(m);
			return NULL;
		}
	}
	if (m->access != WEB_ACCESS_OFF) {
		http_observer ob = {on_response, on_ws_end, m, 1};
		http_server_observe(http, &ob);
	}
	return m;
}

int web_metrics_port(const web_metrics *m)
{
	return m->own ? http_server_port(m->own) : 0;
}

static void own_closed(void *ud)
{
	web_metrics *m = ud;
	http_server_free(m->own);
	m->own = NULL;
	if (m->close_cb)
		m->close_cb(m->close_ud);
}

void web_metrics_close(web_metrics *m, void (*cb)(void *ud), void *ud)
{
	m->closing = 1;
	http_server_observe(m->http, NULL);
	if (!m->own) {
		if (cb)
			cb(ud);
		return;
	}
	m->close_cb = cb;
	m->close_ud = ud;
	http_server_close(m->own, own_closed, m);
}

void web_metrics_free(web_metrics *m)
{
	if (!m)
		return;
	/* Scrapes still waiting for the database: their answer finds nobody. */
	while (!base_list_empty(&m->scrapes)) {
		scrape *s = BASE_CONTAINER_OF(m->scrapes.next, scrape, link);
		base_list_remove(&s->link);
		base_list_init(&s->link);
		s->m = NULL;
	}
	if (m->own) /* never closed (start-up failed): its handles stay with the loop */
		http_server_close(m->own, NULL, NULL);
	free(m->token);
	free(m);
}
