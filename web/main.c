/*
 * main.c: the spaces-server program. Reads the configuration, wires the
 * layers together on one libuv loop, and shuts down cleanly on SIGTERM or
 * SIGINT (stop accepting, close every session, let queued writes finish).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "socketio.h"
#include "spaces.h"
#include "web.h"

#ifndef SPACES_VERSION
#define SPACES_VERSION "0.0.0"
#endif
#ifndef SPACES_CLIENT_DIST_DIR
#define SPACES_CLIENT_DIST_DIR "tests/node_modules/socket.io-client/dist"
#endif
#ifndef SPACES_MIGRATIONS_DIR
#define SPACES_MIGRATIONS_DIR "migrations"
#endif

typedef struct {
	char host[256];
	int port;
	sio_options sio;
	http_limits limits;
	sp_options sp;
	const char *database_url;
	const char *migrations_dir;
	const char *trust_proxy;
	unsigned db_pool_size;
	int db_no_prepare;
	unsigned app_event_rate; /* namespace "/" (apps): events per second, bursts of twice that */
	web_options web;
} web_config;

typedef struct {
	uv_loop_t *loop;
	http_server *http;
	sio_server *io;
	db_pool *db;
	sp_app *sp;
	web_site *site;
	uv_signal_t sigterm, sigint;
	int stopping;
} web_app;

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: spaces-server [OPTIONS]            serve the site\n"
	       "       spaces-server migrate [OPTIONS]    apply the migrations and exit\n"
	       "       spaces-server user add NAME [--admin] [--database-url URL]\n"
	       "                                          create a user (password on stdin)\n"
	       "\n"
	       "The Spaces website and its Socket.IO server.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT     address to listen on (default 127.0.0.1:5001;\n"
	       "                             IPv6 as [::1]:5001)\n"
	       "  -d, --database-url URL     PostgreSQL connection URL (or DATABASE_URL)\n"
	       "      --migrations DIR       SQL migrations applied at start-up\n"
	       "                             (default: the source tree's migrations/)\n"
	       "      --db-pool N            database connections (default 4)\n"
	       "      --no-prepared-statements  send every query unprepared (for a pooler\n"
	       "                             that does not keep them, e.g. PgBouncer in\n"
	       "                             transaction mode before 1.21)\n"
	       "      --request-timeout S    timeout of a request when its space sets none\n"
	       "                             (default 120)\n"
	       "      --upload-dir DIR       where uploaded files are kept (default var/uploads)\n"
	       "      --public-url URL       the site's address as browsers see it, e.g.\n"
	       "                             https://spaces.example.org (links given to apps,\n"
	       "                             CSRF origin check; default: each request's Host)\n"
	       "      --secure-cookies       mark cookies Secure (the site is served over HTTPS)\n"
	       "      --trust-proxy LIST     reverse proxies whose X-Forwarded-For names the\n"
	       "                             client: addresses or CIDR prefixes, comma-separated,\n"
	       "                             e.g. 127.0.0.1 behind a local nginx (default: none)\n"
	       "      --node-id NAME         run as one of several processes sharing the\n"
	       "                             database (behind a load balancer with sticky\n"
	       "                             sessions): NAME unique per process and kept\n"
	       "                             across restarts, e.g. host:port (default: one\n"
	       "                             process, no other)\n"
	       "      --node-timeout S       with --node-id: a node not heard from for S\n"
	       "                             seconds is dead and its apps' requests go to\n"
	       "                             other apps (default 10)\n"
	       "      --ping-interval MS     Engine.IO heartbeat interval (default 25000)\n"
	       "      --ping-timeout MS      Engine.IO heartbeat timeout (default 20000)\n"
	       "      --max-payload BYTES    largest Engine.IO message or polling body\n"
	       "                             (default 1000000)\n"
	       "      --max-connections N    open connections at once (default 100000)\n"
	       "      --max-input BYTES      input all connections may hold in memory at once\n"
	       "                             (bodies, unfinished messages); over it, the one\n"
	       "                             that grows gets 503 (default 1073741824)\n"
	       "      --socket-event-rate N  events (and namespace connects) per second one\n"
	       "                             connection may send on average; more are dropped\n"
	       "                             (default 100; 0: no limit)\n"
	       "      --socket-event-burst N events one connection may send at once (default 200)\n"
	       "      --socket-flood-drops N a connection that has had N events dropped without\n"
	       "                             pausing is closed (default 1000; 0: never)\n"
	       "      --app-event-rate N     the same for apps (namespace /), which answer many\n"
	       "                             requests: N per second, bursts of 2N (default 5000;\n"
	       "                             0: no limit)\n"
	       "      --log-level LEVEL      debug, info, warn, error or off (default info;\n"
	       "                             also SPACES_LOG)\n"
	       "  -h, --help                 show this help and exit\n"
	       "  -V, --version              show the version and exit\n");
}

/* Parses HOST:PORT or [V6]:PORT into cfg. Returns 0 or -1. */
static int parse_listen(const char *arg, web_config *cfg)
{
	const char *colon = strrchr(arg, ':');
	if (!colon || colon == arg)
		return -1;
	const char *h = arg;
	size_t hlen = (size_t)(colon - arg);
	if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']')
			return -1;
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(cfg->host))
		return -1;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memcpy(cfg->host, h, hlen);
	cfg->host[hlen] = 0;
	cfg->port = (int)port;
	return 0;
}

static int parse_uint(const char *name, const char *arg, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (errno || *end || end == arg || arg[0] == '-' || v > max) {
		fprintf(stderr, "spaces-server: invalid value for --%s: '%s' (0..%lu)\n", name, arg,
		        max);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_PING_INTERVAL = 1000,
	OPT_PING_TIMEOUT,
	OPT_MAX_PAYLOAD,
	OPT_MAX_CONN,
	OPT_MAX_INPUT,
	OPT_LOG,
	OPT_MIGRATIONS,
	OPT_DB_POOL,
	OPT_NO_PREPARE,
	OPT_REQ_TIMEOUT,
	OPT_UPLOAD_DIR,
	OPT_PUBLIC_URL,
	OPT_SECURE_COOKIES,
	OPT_TRUST_PROXY,
	OPT_NODE_ID,
	OPT_NODE_TIMEOUT,
	OPT_EVENT_RATE,
	OPT_EVENT_BURST,
	OPT_EVENT_DROPS,
	OPT_APP_EVENT_RATE,
};

/* Returns 0 to run, 1 to exit successfully (help, version), -1 on bad usage. */
static int parse_args(int argc, char **argv, web_config *cfg)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"database-url", required_argument, NULL, 'd'},
	    {"migrations", required_argument, NULL, OPT_MIGRATIONS},
	    {"db-pool", required_argument, NULL, OPT_DB_POOL},
	    {"no-prepared-statements", no_argument, NULL, OPT_NO_PREPARE},
	    {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
	    {"upload-dir", required_argument, NULL, OPT_UPLOAD_DIR},
	    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
	    {"secure-cookies", no_argument, NULL, OPT_SECURE_COOKIES},
	    {"trust-proxy", required_argument, NULL, OPT_TRUST_PROXY},
	    {"node-id", required_argument, NULL, OPT_NODE_ID},
	    {"node-timeout", required_argument, NULL, OPT_NODE_TIMEOUT},
	    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
	    {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
	    {"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
	    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
	    {"max-input", required_argument, NULL, OPT_MAX_INPUT},
	    {"socket-event-rate", required_argument, NULL, OPT_EVENT_RATE},
	    {"socket-event-burst", required_argument, NULL, OPT_EVENT_BURST},
	    {"socket-flood-drops", required_argument, NULL, OPT_EVENT_DROPS},
	    {"app-event-rate", required_argument, NULL, OPT_APP_EVENT_RATE},
	    {"log-level", required_argument, NULL, OPT_LOG},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	unsigned long v;
	while ((c = getopt_long(argc, argv, "l:d:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			cfg->database_url = optarg;
			break;
		case OPT_MIGRATIONS:
			cfg->migrations_dir = optarg;
			break;
		case OPT_UPLOAD_DIR:
			cfg->web.upload_dir = optarg;
			break;
		case OPT_PUBLIC_URL:
			cfg->web.public_url = optarg;
			break;
		case OPT_TRUST_PROXY:
			cfg->trust_proxy = optarg;
			break;
		case OPT_NODE_ID: {
			size_t n = strlen(optarg);
			int ok = n > 0 && n <= 100;
			for (size_t i = 0; ok && i < n; i++)
				ok = optarg[i] > ' ' && optarg[i] < 127 && optarg[i] != ',';
			if (!ok) {
				fprintf(stderr,
				        "spaces-server: invalid --node-id '%s': 1 to 100 "
				        "printable characters, no spaces or commas\n",
				        optarg);
				return -1;
			}
			cfg->sp.node_id = optarg;
			break;
		}
		case OPT_NODE_TIMEOUT:
			if (parse_uint("node-timeout", optarg, 3600, &v))
				return -1;
			if (v < 2) {
				fprintf(stderr,
				        "spaces-server: --node-timeout must be at least 2 "
				        "seconds (nodes write their heartbeat every second)\n");
				return -1;
			}
			cfg->sp.node_timeout_s = (unsigned)v;
			break;
		case OPT_SECURE_COOKIES:
			cfg->web.secure_cookies = 1;
			break;
		case OPT_NO_PREPARE:
			cfg->db_no_prepare = 1;
			break;
		case OPT_DB_POOL:
			if (parse_uint("db-pool", optarg, 64, &v) || v == 0)
				return -1;
			cfg->db_pool_size = (unsigned)v;
			break;
		case OPT_REQ_TIMEOUT:
			if (parse_uint("request-timeout", optarg, 86400, &v) || v == 0)
				return -1;
			cfg->sp.default_timeout_s = (unsigned)v;
			break;
		case 'l':
			if (parse_listen(optarg, cfg)) {
				fprintf(
				    stderr,
				    "spaces-server: invalid --listen '%s': expected HOST:PORT\n",
				    optarg);
				return -1;
			}
			break;
		case OPT_PING_INTERVAL:
			if (parse_uint("ping-interval", optarg, 3600000, &v))
				return -1;
			cfg->sio.eio.ping_interval_ms = (unsigned)v;
			break;
		case OPT_PING_TIMEOUT:
			if (parse_uint("ping-timeout", optarg, 3600000, &v))
				return -1;
			cfg->sio.eio.ping_timeout_ms = (unsigned)v;
			break;
		case OPT_MAX_PAYLOAD:
			if (parse_uint("max-payload", optarg, 1ul << 30, &v))
				return -1;
			cfg->sio.eio.max_payload = v;
			break;
		case OPT_MAX_CONN:
			if (parse_uint("max-connections", optarg, 10000000, &v))
				return -1;
			cfg->limits.max_connections = (unsigned)v;
			break;
		case OPT_EVENT_RATE:
			if (parse_uint("socket-event-rate", optarg, 10000000, &v))
				return -1;
			cfg->sio.event_rate = (unsigned)v;
			break;
		case OPT_EVENT_BURST:
			if (parse_uint("socket-event-burst", optarg, 10000000, &v))
				return -1;
			cfg->sio.event_burst = (unsigned)v;
			break;
		case OPT_EVENT_DROPS:
			if (parse_uint("socket-flood-drops", optarg, 10000000, &v))
				return -1;
			cfg->sio.event_drop_limit = (unsigned)v;
			break;
		case OPT_APP_EVENT_RATE:
			if (parse_uint("app-event-rate", optarg, 10000000, &v))
				return -1;
			cfg->app_event_rate = (unsigned)v;
			break;
		case OPT_MAX_INPUT:
			if (parse_uint("max-input", optarg, (unsigned long)SIZE_MAX / 2, &v))
				return -1;
			cfg->limits.max_input_bytes = v;
			break;
		case OPT_LOG: {
			int lvl = base_log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "spaces-server: invalid --log-level '%s'\n",
				        optarg);
				return -1;
			}
			base_log_set_level((base_log_level)lvl);
			break;
		}
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("spaces-server %s\n", SPACES_VERSION);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spaces-server: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* 200 "ok" while a database connection is up; 503 otherwise, so that a load
 * balancer sends users to a process that can serve them. */
static void healthz(http_request *req, void *ud)
{
	web_app *app = ud;
	db_pool_stats st = {0};
	static const char down[] = "database unreachable\n";

	if (app->db)
		db_pool_get_stats(app->db, &st);
	if (st.connected == 0) {
		http_respond(req, 503, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
		             down, sizeof(down) - 1);
		return;
	}
	http_respond(req, 200, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n", "ok\n",
	             3);
}

static void on_db_closed(db_pool *pool, void *ud)
{
	web_app *app = ud;
	db_pool_free(pool);
	app->db = NULL;
	/* No database answer can come now: the application may go. */
	sp_app_free(app->sp);
	app->sp = NULL;
	uv_close((uv_handle_t *)&app->sigterm, NULL);
	uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_http_closed(void *ud)
{
	web_app *app = ud;
	sio_server_free(app->io);
	app->io = NULL;
	web_site_free(app->site);
	app->site = NULL;
	db_pool_close(app->db, on_db_closed, app);
}

static void on_signal(uv_signal_t *h, int signum)
{
	web_app *app = h->data;
	if (app->stopping) {
		BASE_LOGW("main", "second signal: exiting now");
		exit(1);
	}
	app->stopping = 1;
	BASE_LOGI("main", "%s received: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	web_site_close(app->site);
	sp_app_close(app->sp);
	sio_server_close_all(app->io);
	http_server_close(app->http, on_http_closed, app);
}

static int run_migrations(const web_config *cfg)
{
	char err[512] = "";
	int n = db_migrate(cfg->database_url, cfg->migrations_dir, err, sizeof(err));
	if (n < 0) {
		BASE_LOGE("main", "migrations in %s failed: %s%s%s", cfg->migrations_dir,
		          db_strerror(n), err[0] ? ": " : "", err);
		return -1;
	}
	if (n > 0)
		BASE_LOGI("main", "applied %d migration(s) from %s", n, cfg->migrations_dir);
	return 0;
}

int main(int argc, char **argv)
{
	web_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	cfg.port = 5001;
	sio_options_default(&cfg.sio);
	/* The library does not throttle by default; the site does (docs/limits.md). */
	cfg.sio.event_rate = 100;
	cfg.sio.event_burst = 200;
	cfg.sio.event_drop_limit = 1000;
	cfg.app_event_rate = 5000;
	http_limits_default(&cfg.limits);
	/* A submission with files is up to 76 MiB: a dozen at once in full. */
	cfg.limits.max_input_bytes = (size_t)1 << 30;
	sp_options_default(&cfg.sp);
	cfg.database_url = getenv("DATABASE_URL");
	cfg.migrations_dir = SPACES_MIGRATIONS_DIR;
	cfg.db_pool_size = 4;
	web_options_default(&cfg.web);
	cfg.web.client_dist_dir = SPACES_CLIENT_DIST_DIR;
	cfg.web.upload_dir = "var/uploads";

	if (argc > 1 && strcmp(argv[1], "user") == 0)
		return web_cli_user_add(argc - 1, argv + 1);
	int migrate_only = argc > 1 && strcmp(argv[1], "migrate") == 0;
	if (migrate_only) {
		argc--;
		argv++;
	}
	/* Large messages come and go all the time: keep freed memory for the
	 * next one instead of giving it back to the kernel and faulting it in
	 * again (a third of the server's time on 64 KiB messages otherwise;
	 * docs/bench/profiles.md). */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	int rc = parse_args(argc, argv, &cfg);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (!cfg.database_url || !*cfg.database_url) {
		fprintf(stderr, "spaces-server: no database: give --database-url URL or set "
		                "DATABASE_URL (see --help)\n");
		return 2;
	}
	if (run_migrations(&cfg))
		return 1;
	if (migrate_only)
		return 0;
	/* A WebSocket message may carry a whole Engine.IO packet. */
	cfg.limits.ws_max_message = cfg.sio.eio.max_payload;
	if (cfg.limits.max_body_bytes < cfg.sio.eio.max_payload)
		cfg.limits.max_body_bytes = cfg.sio.eio.max_payload;
	if (cfg.limits.max_body_bytes < web_max_body_bytes(&cfg.web))
		cfg.limits.max_body_bytes = web_max_body_bytes(&cfg.web);

	web_app app;
	memset(&app, 0, sizeof(app));
	app.loop = uv_default_loop();
	app.http = http_server_new(app.loop, &cfg.limits);
	if (!app.http) {
		BASE_LOGE("main", "out of memory");
		return 1;
	}
	if (cfg.trust_proxy && http_server_trust_proxies(app.http, cfg.trust_proxy) != 0) {
		fprintf(
		    stderr,
		    "spaces-server: invalid value for --trust-proxy: '%s' (IPv4 or IPv6 addresses "
		    "or CIDR prefixes, comma-separated, at most 16)\n",
		    cfg.trust_proxy);
		return 2;
	}
	if (cfg.trust_proxy && cfg.trust_proxy[0])
		BASE_LOGI("main", "client addresses from X-Forwarded-For when the peer is %s",
		          cfg.trust_proxy);
	http_route(app.http, HTTP_M_GET, "/healthz", 0, healthz, &app);
	char err[256] = "";
	db_options dbo;
	db_options_init(&dbo);
	dbo.size = cfg.db_pool_size;
	dbo.prepare = !cfg.db_no_prepare;
	app.db = db_pool_new_opts(app.loop, cfg.database_url, &dbo, err, sizeof(err));
	if (!app.db) {
		BASE_LOGE("main", "database: %s", err);
		return 1;
	}
	app.io = sio_server_new(app.http, &cfg.sio);
	if (!app.io) {
		BASE_LOGE("main", "out of memory");
		return 1;
	}
	/* Apps answer many requests each; browsers send a handful of events. */
	sio_namespace_event_limit(sio_of(app.io, "/"), cfg.app_event_rate, 2 * cfg.app_event_rate,
	                          cfg.sio.event_drop_limit);
	app.sp = sp_app_new(app.io, app.db, &cfg.sp);
	if (!app.sp) {
		BASE_LOGE("main", "out of memory");
		return 1;
	}
	app.site = web_site_new(app.http, app.io, app.sp, app.db, &cfg.web);
	if (!app.site) {
		BASE_LOGE("main", "the website could not start (see above)");
		return 1;
	}
	rc = http_server_listen(app.http, cfg.host, cfg.port);
	if (rc) {
		BASE_LOGE("main", "cannot listen on %s:%d: %s", cfg.host, cfg.port,
		          uv_strerror(rc));
		return 1;
	}
	uv_signal_init(app.loop, &app.sigterm);
	uv_signal_init(app.loop, &app.sigint);
	app.sigterm.data = app.sigint.data = &app;
	uv_signal_start(&app.sigterm, on_signal, SIGTERM);
	uv_signal_start(&app.sigint, on_signal, SIGINT);
	signal(SIGPIPE, SIG_IGN);

	BASE_LOGI("main", "spaces-server %s listening on http://%s:%d/ (Socket.IO at %s)",
	          SPACES_VERSION, cfg.host, http_server_port(app.http), cfg.sio.eio.path);
	uv_run(app.loop, UV_RUN_DEFAULT);
	http_server_free(app.http);
	rc = uv_loop_close(app.loop);
	if (rc)
		BASE_LOGW("main", "loop closed with handles open: %s", uv_strerror(rc));
	BASE_LOGI("main", "stopped");
	return 0;
}
