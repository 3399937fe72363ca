/*
 * main.c: the spaces-server program. Reads the configuration (the option
 * table below: flags, SPACES_* environment variables, defaults; parsed by
 * options.c), checks that its assets are there, wires the layers together on
 * one libuv loop, and shuts down cleanly on SIGTERM or SIGINT (stop
 * accepting, close every session, let queued writes finish).
 *
 * Adding an option: see the comment above options[] and docs/design.md.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#ifdef __SANITIZE_ADDRESS__
/* From the sanitizer runtime (sanitizer/allocator_interface.h, which gcc does not ship). */
size_t __sanitizer_get_current_allocated_bytes(void);
void __sanitizer_purge_allocator(void);
#endif

#include "db/db.h"
#include "options.h"
#include "socketio.h"
#include "spaces.h"
#include "web.h"

#ifndef SPACES_VERSION
#define SPACES_VERSION "0.0.0"
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
	int max_sessions_set;
	unsigned app_event_rate; /* namespace "/" (apps): events per second, bursts of twice that */
	int no_http_compression;
	web_options web;
	char metrics_host[256]; /* "" without a metrics listener */
	int metrics_port;
	const char *metrics_token;
	int access_log;       /* web_access_format */
	const char *admin_ui; /* "USER:HASH" of --admin-ui, or NULL: no admin UI */
	int admin_ui_readonly;
	int admin_ui_production;
} web_config;

typedef struct {
	uv_loop_t *loop;
	http_server *http;
	sio_server *io;
	db_pool *db;
	sp_app *sp;
	web_site *site;
	web_metrics *metrics;
	uv_signal_t sigterm, sigint;
	uv_timer_t trim;
	size_t trim_peak; /* bytes in use at the highest tick since the last trim */
	int stopping;
} web_app;

/* Parses HOST:PORT or [V6]:PORT into host (256 bytes) and *port_out. Returns 0 or -1. */
static int parse_host_port(const char *arg, char *host, int *port_out)
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
	if (hlen >= 256)
		return -1;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	*port_out = (int)port;
	return 0;
}

static int set_listen(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	if (parse_host_port(val, c->host, &c->port) == 0)
		return 0;
	fprintf(stderr, "spaces-server: invalid value for %s: '%s' (HOST:PORT, or [V6]:PORT)\n",
	        where, val);
	return -1;
}

static int set_metrics_listen(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	if (parse_host_port(val, c->metrics_host, &c->metrics_port) == 0)
		return 0;
	fprintf(stderr, "spaces-server: invalid value for %s: '%s' (HOST:PORT, or [V6]:PORT)\n",
	        where, val);
	return -1;
}

static int set_admin_ui(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	const char *colon = strchr(val, ':');
	if (!colon || colon == val || !sio_admin_hash_valid(colon + 1)) {
		fprintf(stderr,
		        "spaces-server: invalid value for %s (USER:HASH, the hash bcrypt $2b$... "
		        "or argon2id $argon2id$...; make one with `spaces-server admin-ui-hash`)\n",
		        where);
		return -1;
	}
	c->admin_ui = val; /* argv or the environment: lives as long as the program */
	return 0;
}

static int set_admin_ui_mode(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	if (strcmp(val, "development") && strcmp(val, "production")) {
		fprintf(stderr,
		        "spaces-server: invalid value for %s: '%s' (development or production)\n",
		        where, val);
		return -1;
	}
	c->admin_ui_production = strcmp(val, "production") == 0;
	return 0;
}

static int set_log_level(void *cfg, const web_opt *o, const char *val, const char *where)
{
	int lvl = base_log_parse_level(val);
	if (lvl < 0) {
		fprintf(stderr,
		        "spaces-server: invalid value for %s: '%s' (debug, info, warn, error "
		        "or off)\n",
		        where, val);
		return -1;
	}
	base_log_set_level((base_log_level)lvl);
	return 0;
}

static int set_node_id(void *cfg, const web_opt *o, const char *val, const char *where)
{
	size_t n = strlen(val);
	int ok = n > 0 && n <= 100;
	for (size_t i = 0; ok && i < n; i++)
		ok = val[i] > ' ' && val[i] < 127 && val[i] != ',';
	if (!ok) {
		fprintf(stderr,
		        "spaces-server: invalid %s '%s': 1 to 100 printable characters, no "
		        "spaces or commas\n",
		        where, val);
		return -1;
	}
	((web_config *)cfg)->sp.node_id = val;
	return 0;
}

static int set_data_dir(void *cfg, const web_opt *o, const char *val, const char *where)
{
	if (!*val) {
		fprintf(stderr, "spaces-server: %s needs a directory\n", where);
		return -1;
	}
	((web_config *)cfg)->sp.data_dir = val;
	return 0;
}

static int set_max_sessions(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	if (web_opt_uint(cfg, o, val, where))
		return -1;
	c->max_sessions_set = 1;
	return 0;
}

static int set_handshake_rate(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	if (web_opt_uint(cfg, o, val, where))
		return -1;
	c->sio.eio.handshake_burst = c->sio.eio.handshake_rate * 2;
	return 0;
}

static int set_body_timeout(void *cfg, const web_opt *o, const char *val, const char *where)
{
	web_config *c = cfg;
	unsigned s = 0;
	web_opt sec = *o;
	sec.off = 0;
	sec.size = sizeof(s);
	if (web_opt_uint(&s, &sec, val, where))
		return -1;
	c->limits.body_timeout_ms = s * 1000;
	return 0;
}

static int set_allowed_origins(void *cfg, const web_opt *o, const char *val, const char *where)
{
	if (web_origins_check(val)) {
		fprintf(stderr,
		        "spaces-server: invalid %s '%s': origins like https://host[:port], "
		        "comma-separated\n",
		        where, val);
		return -1;
	}
	((web_config *)cfg)->web.allowed_origins = val;
	return 0;
}

/* One of two words: sets the int field to 1 for the first, 0 for the second. */
static int set_choice(void *cfg, const web_opt *o, const char *val, const char *where,
                      const char *one, const char *zero, int *field)
{
	if (strcmp(val, one) == 0)
		*field = 1;
	else if (strcmp(val, zero) == 0)
		*field = 0;
	else {
		fprintf(stderr, "spaces-server: %s is %s or %s, not '%s'\n", where, one, zero, val);
		return -1;
	}
	return 0;
}

static int set_registration(void *cfg, const web_opt *o, const char *val, const char *where)
{
	return set_choice(cfg, o, val, where, "closed", "open",
	                  &((web_config *)cfg)->web.registration_closed);
}

static int set_access_log(void *cfg, const web_opt *o, const char *val, const char *where)
{
	int *f = &((web_config *)cfg)->access_log;
	if (strcmp(val, "off") == 0)
		*f = WEB_ACCESS_OFF;
	else if (strcmp(val, "text") == 0)
		*f = WEB_ACCESS_TEXT;
	else if (strcmp(val, "json") == 0)
		*f = WEB_ACCESS_JSON;
	else {
		fprintf(stderr, "spaces-server: %s is off, text or json, not '%s'\n", where, val);
		return -1;
	}
	return 0;
}

static int set_password_policy(void *cfg, const web_opt *o, const char *val, const char *where)
{
	return set_choice(cfg, o, val, where, "standard", "relaxed",
	                  &((web_config *)cfg)->web.password_common_check);
}

/* A byte count with an optional K, M or G suffix (powers of 1024) into a uint64_t field. */
static int set_bytes(void *cfg, const web_opt *o, const char *val, const char *where)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(val, &end, 10);
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (errno || *end || end == val || val[0] == '-' || v > (1ull << 50) >> shift) {
		fprintf(stderr,
		        "spaces-server: invalid value for %s: '%s' (bytes, with an optional K, M "
		        "or G)\n",
		        where, val);
		return -1;
	}
	*(uint64_t *)((char *)cfg + o->off) = (uint64_t)v << shift;
	return 0;
}

/*
 * The asset directories' default: share/spaces beside the program (the
 * build tree: build/debug/share/spaces, made by CMake), else
 * <prefix>/share/spaces of a program installed as <prefix>/bin/spaces-server
 * (/usr/bin -> /usr/share/spaces). Filled in before the options are parsed;
 * the table's defaults point here.
 */
static char share_static[PATH_MAX], share_client[PATH_MAX], share_migrations[PATH_MAX];

/*
 * The options: one line each. A field of web_config, a setter (web_opt_str,
 * web_opt_uint with bounds, web_opt_switch, or a function above), the
 * default as text (it goes through the setter, and --help shows it), and a
 * sentence of help. The environment variable is SPACES_ and the name in
 * capitals (--max-payload: SPACES_MAX_PAYLOAD); .alias adds an older one.
 * --help, the environment, `config check` and tests/e2e/test_config.py (every
 * option in --help and README.md) follow from the line; list the option in
 * README.md's table too. Secrets get .flags = WEB_OPT_SECRET.
 */
#define FIELD(f) .off = offsetof(web_config, f), .size = sizeof(((web_config *)0)->f)
#define OPT_STR(n, a, d, f, h)                                                         \
	{                                                                              \
		.name = n, .arg = a, .def = d, .set = web_opt_str, FIELD(f), .help = h \
	}
#define OPT_UINT(n, a, d, f, lo, hi, h)                                                  \
	{                                                                                \
		.name = n, .arg = a, .def = d, .set = web_opt_uint, FIELD(f), .min = lo, \
		.max = hi, .help = h                                                     \
	}
#define OPT_SWITCH(n, f, h)                                           \
	{                                                             \
		.name = n, .set = web_opt_switch, FIELD(f), .help = h \
	}

/* web_opt_uint writes unsigned or unsigned long fields; size_t must be one of them. */
_Static_assert(sizeof(size_t) == sizeof(unsigned long), "size_t fields need a setter");

static const web_opt options[] = {
    {.name = "listen",
     .letter = 'l',
     .arg = "HOST:PORT",
     .def = "127.0.0.1:5001",
     .set = set_listen,
     .help = "address to listen on; IPv6 as [::1]:5001"},
    {.name = "database-url",
     .letter = 'd',
     .arg = "URL",
     .alias = "DATABASE_URL",
     .flags = WEB_OPT_SECRET_URL,
     .set = web_opt_str,
     FIELD(database_url),
     .help = "PostgreSQL connection URL or conninfo (required)"},
    OPT_STR("migrations", "DIR", share_migrations, migrations_dir,
            "SQL migrations applied at start-up"),
    OPT_STR("static-dir", "DIR", share_static, web.static_dir,
            "the site's CSS and JS (spaces.css, spaces.js), served under /static/"),
    OPT_STR("client-dir", "DIR", share_client, web.client_dist_dir,
            "the socket.io-client bundle (socket.io.js and friends), served under "
            "/socket.io/"),
    OPT_UINT("db-pool", "N", "4", db_pool_size, 1, 64, "database connections"),
    OPT_SWITCH("no-prepared-statements", db_no_prepare,
               "send every query unprepared (for a pooler that does not keep them, e.g. "
               "PgBouncer in transaction mode before 1.21)"),
    OPT_UINT("request-timeout", "S", "120", sp.default_timeout_s, 1, 86400,
             "timeout of a request when its space sets none"),
    OPT_STR("upload-dir", "DIR", "var/uploads", web.upload_dir,
            "where uploaded files are kept (created when missing)"),
    {.name = "data-dir",
     .arg = "DIR",
     .def = "var/data",
     .set = set_data_dir,
     .help = "where the results journal is kept: results not yet in PostgreSQL (one "
             "directory per process)"},
    OPT_UINT("journal-max-bytes", "N", "268435456", sp.journal_max_bytes, 65536, 1ul << 40,
             "results waiting in the journal at most; past it new results are refused"),
    OPT_UINT("journal-delay-ms", "MS", "50", sp.journal_delay_ms, 0, 10000,
             "a result PostgreSQL confirms within this time is never written to the "
             "journal (0: journal every result at once; a crash may lose the results of "
             "this last window, whose requests are then run again)"),
    OPT_STR("public-url", "URL", NULL, web.public_url,
            "the site's address as browsers see it, e.g. https://spaces.example.org "
            "(links given to apps, CSRF origin check; default: each request's Host)"),
    OPT_SWITCH("secure-cookies", web.secure_cookies,
               "mark cookies Secure (the site is served over HTTPS)"),
    OPT_STR("trust-proxy", "LIST", NULL, trust_proxy,
            "reverse proxies whose X-Forwarded-For names the client: addresses or CIDR "
            "prefixes, comma-separated, e.g. 127.0.0.1 behind a local nginx"),
    {.name = "allowed-origins",
     .arg = "LIST",
     .set = set_allowed_origins,
     .help = "other origins whose pages may open the live namespace /spaces, "
             "comma-separated, e.g. https://app.example.org (default: only the site's)"},
    OPT_UINT("session-lifetime", "S", "604800", web.session_ttl_s, 1, 366ul * 86400,
             "a session ends S seconds after login"),
    OPT_UINT("session-idle-timeout", "S", "86400", web.session_idle_s, 0, 366ul * 86400,
             "a session unused for S seconds ends; 0: never"),
    {.name = "registration",
     .arg = "open|closed",
     .def = "open",
     .set = set_registration,
     .help = "whether anyone may register (admins may also close it in /admin)"},
    OPT_UINT("register-limit", "N", "10", web.register_max, 0, 1000000,
             "registrations per client address per hour; 0: no limit"),
    OPT_UINT("login-limit", "N", "10", web.login_max_failures, 0, 1000000,
             "failed logins per client address per 5 minutes, then 429; 0: no limit"),
    OPT_UINT("login-account-limit", "N", "10", web.login_account_max_failures, 0, 1000000,
             "failed logins per account per 5 minutes, then the account is slowed down"),
    OPT_UINT("login-account-pace", "S", "10", web.login_account_pace_s, 0, 3600,
             "a slowed-down account gets one attempt every S seconds"),
    {.name = "password-policy",
     .arg = "standard|relaxed",
     .def = "standard",
     .set = set_password_policy,
     .help = "new passwords: at least 8 characters, not the user name, and (standard) not "
             "a common password"},
    {.name = "upload-quota-per-day",
     .arg = "BYTES",
     .def = "1G",
     .set = set_bytes,
     FIELD(web.upload_quota_per_day),
     .help = "bytes each user may upload per day, then 413; 0: no quota (K, M, G suffixes)"},
    {.name = "upload-disk-budget",
     .arg = "BYTES",
     .def = "20G",
     .set = set_bytes,
     FIELD(web.upload_disk_budget),
     .help = "bytes all stored uploads may take, then 507; 0: no budget"},
    OPT_SWITCH("legacy-open-spaces", web.legacy_open_spaces,
               "new spaces take any app that knows their name, as the old site did (for "
               "unmodified clients and the old test plan; `make run` sets it); default: a "
               "new space takes only apps giving its token"),
    OPT_UINT("app-register-failures", "N", "10", sp.register_max_failures, 0, 1000000,
             "registrations refused for a missing or wrong app token allowed per client "
             "address per minute, then refused outright; 0: no limit"),
    {.name = "node-id",
     .arg = "NAME",
     .set = set_node_id,
     .help = "run as one of several processes sharing the database (behind a load "
             "balancer with sticky sessions): NAME unique per process and kept across "
             "restarts, e.g. host:port (default: one process, no other)"},
    OPT_UINT("node-timeout", "S", "10", sp.node_timeout_s, 2, 3600,
             "with --node-id: a node not heard from for S seconds is dead and its apps' "
             "requests go to other apps"),
    OPT_UINT("ping-interval", "MS", "25000", sio.eio.ping_interval_ms, 0, 3600000,
             "Engine.IO heartbeat interval"),
    OPT_UINT("ping-timeout", "MS", "20000", sio.eio.ping_timeout_ms, 0, 3600000,
             "Engine.IO heartbeat timeout"),
    OPT_UINT("max-payload", "BYTES", "1000000", sio.eio.max_payload, 0, 1ul << 30,
             "largest Engine.IO message or polling body"),
    OPT_SWITCH("no-http-compression", no_http_compression,
               "never compress Engine.IO polling answers (default: gzip or deflate, as "
               "Accept-Encoding allows, from --compression-threshold bytes)"),
    OPT_UINT("compression-threshold", "BYTES", "1024", sio.eio.compression_threshold, 0, 1ul << 30,
             "smallest Engine.IO polling answer that is compressed"),
    OPT_SWITCH("ws-deflate", limits.ws_deflate,
               "accept permessage-deflate (RFC 7692) on WebSocket connections, with no "
               "context takeover either way (default: off, as in Node)"),
    OPT_UINT("ws-deflate-threshold", "BYTES", "1024", limits.ws_deflate_threshold, 0, 1ul << 30,
             "with --ws-deflate: smallest WebSocket message that is compressed"),
    OPT_UINT("polling-max-packets", "N", "16", sio.eio.polling_max_packets, 1, 1000000,
             "Engine.IO packets in one polling answer at most (python-engineio 4.x refuses "
             "more than 16)"),
    OPT_SWITCH("allow-eio3", sio.eio.allow_eio3,
               "accept Engine.IO 3 clients (socket.io-client 2.x), as the reference's "
               "allowEIO3 (default: EIO=3 is refused with 400)"),
    OPT_UINT("max-connections", "N", "100000", limits.max_connections, 0, 10000000,
             "open connections at once"),
    {.name = "max-sessions",
     .arg = "N",
     .set = set_max_sessions,
     FIELD(sio.eio.max_sessions),
     .min = 1,
     .max = 10000000,
     .help = "Engine.IO sessions at once (default: the value of --max-connections); over "
             "it, handshakes get 403 \"Too many sessions\""},
    {.name = "handshake-rate",
     .arg = "N",
     .def = "100",
     .set = set_handshake_rate,
     FIELD(sio.eio.handshake_rate),
     .min = 0,
     .max = 1000000,
     .help = "Engine.IO handshakes per second per client address, in bursts of up to 2N; "
             "0: no limit; over it: 403 \"Too many handshakes\""},
    {.name = "body-timeout",
     .arg = "S",
     .def = "30",
     .set = set_body_timeout,
     .min = 1,
     .max = 3600,
     .help = "a request body must arrive within S seconds of its headers, else 408"},
    /* A submission with files is up to 76 MiB: a dozen at once in full. */
    OPT_UINT("max-input", "BYTES", "1073741824", limits.max_input_bytes, 0,
             (unsigned long)SIZE_MAX / 2,
             "input all connections may hold in memory at once (bodies, unfinished "
             "messages); over it, the one that grows gets 503"),
    OPT_UINT("socket-event-rate", "N", "100", sio.event_rate, 0, 10000000,
             "Socket.IO events (and namespace connects) per second one connection may send "
             "on average; more are dropped; 0: no limit"),
    OPT_UINT("socket-event-burst", "N", "200", sio.event_burst, 0, 10000000,
             "events one connection may send at once"),
    OPT_UINT("socket-flood-drops", "N", "1000", sio.event_drop_limit, 0, 10000000,
             "a connection that has had N events dropped without pausing is closed, logged "
             "as 'event flood'; 0: never"),
    OPT_UINT("app-event-rate", "N", "5000", app_event_rate, 0, 10000000,
             "the same for apps (namespace /), which answer many requests: N per second, "
             "bursts of 2N; 0: no limit"),
    {.name = "admin-ui",
     .arg = "USER:HASH",
     .flags = WEB_OPT_SECRET,
     .set = set_admin_ui,
     .help = "serve the @socket.io/admin-ui dashboard's namespace /admin, for the login "
             "USER and the password whose bcrypt or argon2id HASH is given (make one with "
             "`spaces-server admin-ui-hash`) (default: no admin UI)"},
    OPT_SWITCH("admin-ui-readonly", admin_ui_readonly,
               "the admin UI only watches: no emit, join, leave or disconnect from it"),
    {.name = "admin-ui-mode",
     .arg = "development|production",
     .def = "development",
     .set = set_admin_ui_mode,
     .help = "production: the admin UI gets the server's statistics only, not every "
             "socket, room and event (which costs a message to the dashboard each)"},
    {.name = "metrics-listen",
     .arg = "HOST:PORT",
     .set = set_metrics_listen,
     .help = "serve /metrics (Prometheus text format) on a listener of its own, without a "
             "token, e.g. 127.0.0.1:9101 (default: none)"},
    {.name = "metrics-token",
     .arg = "TOKEN",
     .flags = WEB_OPT_SECRET,
     .set = web_opt_str,
     FIELD(metrics_token),
     .help = "serve /metrics on the main address to requests with \"Authorization: Bearer "
             "TOKEN\" (default: /metrics is not on the main address)"},
    {.name = "access-log",
     .arg = "off|text|json",
     .def = "text",
     .set = set_access_log,
     .help = "one line per HTTP request and per WebSocket end on stderr (method, path "
             "without the query, status, bytes, duration, request id, also sent as "
             "X-Request-Id); text lines go through the log (level info)"},
    {.name = "log-level",
     .arg = "LEVEL",
     .def = "info",
     .alias = "SPACES_LOG",
     .set = set_log_level,
     .help = "debug, info, warn, error or off"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: spaces-server [OPTIONS]            serve the site\n"
	           "       spaces-server migrate [OPTIONS]    apply the migrations and exit\n"
	           "       spaces-server config check [OPTIONS]\n"
	           "                                          print the effective configuration\n"
	           "                                          (secrets masked); exit 1 when bad\n"
	           "       spaces-server user add NAME [--admin] [--database-url URL]\n"
	           "                                          create a user (password on stdin)\n"
	           "       spaces-server user passwd|disable|enable NAME [--database-url URL]\n"
	           "                                          change a user (see user --help)\n"
	           "       spaces-server admin-ui-hash        print the argon2id hash of the\n"
	           "                                          password on stdin, for --admin-ui\n"
	           "\n"
	           "The Spaces website and its Socket.IO server.\n"
	           "\n"
	           "Every option can also be given by the environment variable in brackets\n"
	           "(a flag wins over it), e.g. from the unit's /etc/default/spaces-server.\n"
	           "\n"
	           "Options:\n");
	web_opts_help(f, options, BASE_ARRAY_SIZE(options));
}

/* Fills share_* from the program's own path (see above). */
static void find_share_dirs(void)
{
	char exe[PATH_MAX], share[PATH_MAX + 32];
	size_t len = sizeof(exe);
	struct stat st;
	char *slash;

	share[0] = 0;
	if (uv_exepath(exe, &len) == 0 && (slash = strrchr(exe, '/')) != NULL) {
		*slash = 0; /* exe is now the program's directory */
		snprintf(share, sizeof(share), "%s/share/spaces", exe);
		if (stat(share, &st) != 0 || !S_ISDIR(st.st_mode)) {
			slash = strrchr(exe, '/');
			if (slash)
				*slash = 0;
			snprintf(share, sizeof(share), "%s/share/spaces", slash ? exe : "");
		}
	}
	if (!share[0])
		snprintf(share, sizeof(share), "/usr/share/spaces");
	snprintf(share_static, sizeof(share_static), "%.*s/static", PATH_MAX - 16, share);
	snprintf(share_client, sizeof(share_client), "%.*s/socket.io-client", PATH_MAX - 32, share);
	snprintf(share_migrations, sizeof(share_migrations), "%.*s/migrations", PATH_MAX - 16,
	         share);
}

/* 0 when dir/name can be read (name "*.sql": dir holds at least one such
 * file); else prints what is missing, naming the option, and returns -1. */
static int need(const char *what, const char *option, const char *dir, const char *name)
{
	char path[PATH_MAX + 64], env[96];
	web_opt o = {.name = option};
	struct stat st;
	int err = 0;

	if (strcmp(name, "*.sql") == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;
		size_t n;

		snprintf(path, sizeof(path), "%s/*.sql", dir);
		err = d ? ENOENT : errno;
		while (d && (e = readdir(d)) != NULL) {
			n = strlen(e->d_name);
			if (n > 4 && strcmp(e->d_name + n - 4, ".sql") == 0)
				err = 0;
		}
		if (d)
			closedir(d);
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (stat(path, &st) != 0)
			err = errno;
		else if (!S_ISREG(st.st_mode))
			err = EISDIR;
		else if (access(path, R_OK) != 0)
			err = errno;
	}
	if (!err)
		return 0;
	fprintf(stderr,
	        "spaces-server: %s missing: cannot read %s (%s); give their directory with "
	        "--%s DIR or %s. Refusing to serve a site without them.\n",
	        what, path, strerror(err), option, web_opt_env(&o, env, sizeof(env)));
	return -1;
}

/* The files the site cannot do without. Returns 0, or -1 after saying what is missing. */
static int check_assets(const web_config *cfg, int migrations_only)
{
	int bad = need("the SQL migrations are", "migrations", cfg->migrations_dir, "*.sql");

	if (migrations_only)
		return bad;
	bad |= need("the site's stylesheet is", "static-dir", cfg->web.static_dir, "spaces.css");
	bad |= need("the site's script is", "static-dir", cfg->web.static_dir, "spaces.js");
	bad |= need("the socket.io-client bundle is", "client-dir", cfg->web.client_dist_dir,
	            "socket.io.js");
	return bad ? -1 : 0;
}

/* The checks that need more than one value at a time. Returns 0 or -1 (said why). */
static int check_config(const web_config *cfg, const web_opt_state *st)
{
	if (!cfg->database_url || !*cfg->database_url) {
		fprintf(stderr, "spaces-server: no database: give --database-url URL or set "
		                "SPACES_DATABASE_URL or DATABASE_URL (see --help)\n");
		return -1;
	}
	if (cfg->trust_proxy) {
		uv_loop_t loop;
		http_server *h;
		int rc = -1;

		if (uv_loop_init(&loop) == 0) {
			h = http_server_new(&loop, &cfg->limits);
			if (h) {
				rc = http_server_trust_proxies(h, cfg->trust_proxy);
				http_server_close(h, NULL, NULL);
				uv_run(&loop, UV_RUN_DEFAULT);
				http_server_free(h);
			}
			uv_loop_close(&loop);
		}
		if (rc) {
			int i = web_opts_find(st, "trust-proxy");
			const char *src = i >= 0 ? st->source[i] : "";
			fprintf(stderr,
			        "spaces-server: invalid value for %s: '%s' (IPv4 or IPv6 addresses "
			        "or CIDR prefixes, comma-separated, at most 16)\n",
			        strncmp(src, "env ", 4) == 0 ? src + 4 : "--trust-proxy",
			        cfg->trust_proxy);
			return -1;
		}
	}
	return 0;
}

/* `spaces-server config check [OPTIONS]`: exit 0 when the server would start. */
static int config_check(const web_config *cfg, const web_opt_state *st)
{
	int bad = check_config(cfg, st) | check_assets(cfg, 0);

	printf("# spaces-server %s: effective configuration (flag > environment > default)\n",
	       SPACES_VERSION);
	web_opts_print(stdout, st, cfg);
	printf("# %s\n", bad ? "NOT OK: see the messages above" : "ok");
	return bad ? 1 : 0;
}

/* Returns 0 to run, 1 to exit successfully (help, version), -1 on bad usage. */
static int parse_args(int argc, char **argv, web_config *cfg, web_opt_state *st)
{
	int rc = web_opts_parse(options, BASE_ARRAY_SIZE(options), cfg, argc, argv, st);

	if (rc == WEB_OPTS_HELP) {
		usage(stdout);
		return 1;
	}
	if (rc == WEB_OPTS_VERSION) {
		printf("spaces-server %s\n", SPACES_VERSION);
		return 1;
	}
	return rc == WEB_OPTS_RUN ? 0 : -1;
}

/* A connection needs a file descriptor: more connections than descriptors
 * end in EMFILE on accept (logged and survived, but refused). */
static void warn_fd_limit(const web_config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)cfg->limits.max_connections + 64)
		BASE_LOGW("main",
		          "--max-connections is %u but only %llu file descriptors may be open "
		          "(ulimit -n): connections past that are refused",
		          cfg->limits.max_connections, (unsigned long long)rl.rlim_cur);
}

/*
 * Gives memory back to the system after a spike (thousands of sessions that
 * came and went): freed memory stays in the allocator otherwise, and the
 * process keeps its peak size for good. Checked every few seconds, cheaply;
 * a trim runs only once much more was in use at some tick than is now.
 */
#define TRIM_CHECK_MS 2000
#define TRIM_MIN_FREED ((size_t)4 << 20)

static size_t heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

static void trim_tick(uv_timer_t *t)
{
	web_app *app = t->data;
	size_t used = heap_in_use();

	if (used > app->trim_peak)
		app->trim_peak = used;
	if (app->trim_peak - used < TRIM_MIN_FREED)
		return;
#ifdef __SANITIZE_ADDRESS__
	/* The sanitizer's allocator keeps freed memory in its quarantine. */
	__sanitizer_purge_allocator();
#endif
	malloc_trim(0);
	BASE_LOGD("main", "gave memory back to the system: %zu bytes in use, %zu at the peak", used,
	          app->trim_peak);
	app->trim_peak = used;
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
	uv_close((uv_handle_t *)&app->trim, NULL);
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
	if (app->metrics)
		web_metrics_close(app->metrics, NULL, NULL);
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
		          base_strerror(n), err[0] ? ": " : "", err);
		return -1;
	}
	if (n > 0)
		BASE_LOGI("main", "applied %d migration(s) from %s", n, cfg->migrations_dir);
	return 0;
}

/* The admin UI on /admin with the login of --admin-ui USER:HASH (checked when parsed). */
static int attach_admin_ui(web_app *app, const web_config *cfg)
{
	char user[256];
	const char *colon = strchr(cfg->admin_ui, ':');
	size_t ulen = (size_t)(colon - cfg->admin_ui);
	if (ulen >= sizeof(user)) {
		BASE_LOGE("main", "--admin-ui: the user name is too long");
		return -1;
	}
	memcpy(user, cfg->admin_ui, ulen);
	user[ulen] = 0;
	sio_admin_options o;
	sio_admin_options_default(&o);
	o.username = user;
	o.password_hash = colon + 1;
	o.readonly = cfg->admin_ui_readonly;
	o.production = cfg->admin_ui_production;
	/* The dashboard tells the nodes apart by it (no --node-id: the host name). */
	o.server_id = cfg->sp.node_id;
	int rc = sio_admin_ui_attach(app->io, &o);
	if (rc)
		BASE_LOGE("main", "--admin-ui: %s", base_strerror(rc));
	/* In cluster mode the dashboard sees every node (socketio/admin_ui.c). */
	else if ((rc = sp_app_share_namespace(app->sp, sio_of(app->io, o.nsp))) != 0)
		BASE_LOGE("main", "--admin-ui: the namespace could not join the cluster: %s",
		          base_strerror(rc));
	return rc ? -1 : 0;
}

/*
 * `spaces-server admin-ui-hash`: reads a password (one line of standard
 * input) and prints its argon2id hash for --admin-ui USER:HASH.
 */
static int admin_ui_hash(void)
{
	char line[1024], hash[crypto_pwhash_STRBYTES];
	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr,
		        "spaces-server admin-ui-hash: give the password on standard input\n");
		return 2;
	}
	size_t n = strcspn(line, "\r\n");
	line[n] = 0;
	if (!n || sodium_init() < 0 ||
	    crypto_pwhash_str(hash, line, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "spaces-server admin-ui-hash: %s\n",
		        n ? "out of memory" : "the password is empty");
		sodium_memzero(line, sizeof(line));
		return 1;
	}
	sodium_memzero(line, sizeof(line));
	printf("%s\n", hash);
	return 0;
}

int main(int argc, char **argv)
{
	web_config cfg;
	web_opt_state st;
	memset(&cfg, 0, sizeof(cfg));
	sio_options_default(&cfg.sio);
	http_limits_default(&cfg.limits);
	sp_options_default(&cfg.sp);
	web_options_default(&cfg.web);
	find_share_dirs();

	if (argc > 1 && strcmp(argv[1], "user") == 0) {
		/* Its own arguments; the database and migrations default to ours. */
		char *none[] = {argv[0], NULL};
		if (parse_args(1, none, &cfg, &st))
			return 2;
		return web_cli_user(argc - 1, argv + 1, cfg.database_url, cfg.migrations_dir);
	}
	if (argc > 1 && strcmp(argv[1], "admin-ui-hash") == 0)
		return admin_ui_hash();
	int migrate_only = argc > 1 && strcmp(argv[1], "migrate") == 0;
	int check_only =
	    argc > 2 && strcmp(argv[1], "config") == 0 && strcmp(argv[2], "check") == 0;
	if (migrate_only || check_only) {
		char *prog = argv[0];
		argc -= check_only ? 2 : 1;
		argv += check_only ? 2 : 1;
		argv[0] = prog; /* getopt's messages name it */
	} else if (argc > 1 && strcmp(argv[1], "config") == 0) {
		fprintf(stderr, "spaces-server: usage: spaces-server config check [OPTIONS]\n");
		return 2;
	}
	/* Large messages come and go all the time: keep freed memory for the
	 * next one instead of giving it back to the kernel and faulting it in
	 * again (a third of the server's time on 64 KiB messages otherwise;
	 * docs/bench/profiles.md). */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	int rc = parse_args(argc, argv, &cfg, &st);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (check_only)
		return config_check(&cfg, &st);
	if (check_config(&cfg, &st))
		return 2;
	if (check_assets(&cfg, migrate_only))
		return 1;
	if (run_migrations(&cfg))
		return 1;
	if (migrate_only)
		return 0;
	/* A WebSocket message may carry a whole Engine.IO packet. Request bodies
	 * are bounded per route (the site's forms, its submissions, Engine.IO's
	 * maxPayload: http_body_limit), not by one size for all. */
	cfg.limits.ws_max_message = cfg.sio.eio.max_payload;
	cfg.sio.eio.http_compression = !cfg.no_http_compression;
	/* Pages of the other origins allowed into /spaces may use the endpoint
	 * from their own origin: CORS with credentials for them, no one else. */
	cfg.sio.eio.cors_origin_ok = web_origin_listed;
	cfg.sio.eio.cors_ud = &cfg.web;
	if (!cfg.max_sessions_set)
		cfg.sio.eio.max_sessions = cfg.limits.max_connections;
	warn_fd_limit(&cfg);

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
	if (cfg.web.legacy_open_spaces)
		BASE_LOGW("main", "--legacy-open-spaces: new spaces take any app that knows their "
		                  "name (development and old clients only)");
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
	/* Pages of other origins must not open /spaces with the user's cookie. */
	cfg.sp.browser_origin_ok = web_browser_origin_ok;
	cfg.sp.ud = &cfg.web;
	/* Apps answer many requests each; browsers send a handful of events. */
	sio_namespace_event_limit(sio_of(app.io, "/"), cfg.app_event_rate, 2 * cfg.app_event_rate,
	                          cfg.sio.event_drop_limit);
	app.sp = sp_app_new(app.io, app.db, &cfg.sp);
	if (!app.sp) {
		BASE_LOGE("main", "the application could not start (see above)");
		return 1;
	}
	app.site = web_site_new(app.http, app.sp, app.db, &cfg.web);
	if (!app.site) {
		BASE_LOGE("main", "the website could not start (see above)");
		return 1;
	}
	if (cfg.admin_ui && attach_admin_ui(&app, &cfg))
		return 1;
	web_metrics_options mo = {cfg.metrics_token, cfg.metrics_host[0] ? cfg.metrics_host : NULL,
	                          cfg.metrics_port, (web_access_format)cfg.access_log};
	app.metrics = web_metrics_new(app.http, app.io, app.db, app.sp, &mo);
	if (!app.metrics) {
		BASE_LOGE("main", "metrics could not start (see above)");
		return 1;
	}
	if (mo.listen_host)
		BASE_LOGI("main", "metrics on http://%s:%d/metrics", mo.listen_host,
		          web_metrics_port(app.metrics));
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
	uv_timer_init(app.loop, &app.trim);
	app.trim.data = &app;
	uv_timer_start(&app.trim, trim_tick, TRIM_CHECK_MS, TRIM_CHECK_MS);
	uv_unref((uv_handle_t *)&app.trim);
	signal(SIGPIPE, SIG_IGN);

	BASE_LOGI("main", "spaces-server %s listening on http://%s:%d/ (Socket.IO at %s)",
	          SPACES_VERSION, cfg.host, http_server_port(app.http), cfg.sio.eio.path);
	uv_run(app.loop, UV_RUN_DEFAULT);
	web_metrics_free(app.metrics);
	http_server_free(app.http);
	rc = uv_loop_close(app.loop);
	if (rc)
		BASE_LOGW("main", "loop closed with handles open: %s", uv_strerror(rc));
	BASE_LOGI("main", "stopped");
	return 0;
}
