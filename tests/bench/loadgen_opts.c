/*
 * loadgen_opts.c: bench-loadgen's command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static const char *const scenario_names[] = {
    [LG_IDLE] = "idle",       [LG_CONNECT] = "connect",     [LG_ECHO] = "echo",
    [LG_ACK] = "ack",         [LG_BROADCAST] = "broadcast", [LG_BINARY] = "binary",
    [LG_CLUSTER] = "cluster",
};

const char *lg_scenario_name(lg_scenario s)
{
	return scenario_names[s];
}

void lg_usage(FILE *f)
{
	fprintf(
	    f, "usage: bench-loadgen --scenario NAME --port PORT [options]\n"
	       "  -s, --scenario NAME   idle, connect, echo, ack, broadcast, binary, cluster\n"
	       "                        (cluster: driven on stdin, see loadgen_cluster.c)\n"
	       "  -p, --port PORT       server port on --host (default 127.0.0.1)\n"
	       "      --ports P1,P2..   several servers: connection k goes to P[k mod n]\n"
	       "      --id-base K       this process's first global connection number (0)\n"
	       "      --room-every E    cluster: 1 in E per server joins room r1k (100)\n"
	       "      --sender          cluster: one more connection, to P1, sends broadcasts\n"
	       "  -c, --conns N         connections, or broadcast receivers (default 100)\n"
	       "  -w, --window N        requests outstanding per connection, or broadcasts\n"
	       "                        in flight (default 10; broadcast 1)\n"
	       "      --size BYTES      binary attachment (default 1024), or string padding\n"
	       "                        added to echo/ack requests (default 0)\n"
	       "  -d, --duration SEC    seconds of requests; idle: seconds held after settling\n"
	       "  -n, --count N         stop after N requests (default: duration only)\n"
	       "      --warmup SEC      seconds left out of the figures (default 0)\n"
	       "      --inflight N      connection attempts at once (default 200)\n"
	       "      --settle SEC      idle: wait before reading the server's RSS (default 3)\n"
	       "      --drain SEC       wait for outstanding replies at the end (default 3)\n"
	       "      --timeout SEC     give up after SEC in all (default 120)\n"
	       "      --server-pid PID  read the server's RSS from /proc/PID/status\n"
	       "      --server-name S   label in the results (default server)\n"
	       "      --tag T           copied into the RESULT line (default -)\n"
	       "      --sources A-B     local addresses used in turn, e.g. 127.0.0.2-127.0.0.9\n"
	       "                        (the default above 20000 connections), or none\n"
	       "      --tx batch|lws    batch (default): a connection's frames are framed\n"
	       "                        here and leave in one write per loop turn; lws: one\n"
	       "                        lws_write per frame in the writable callback\n"
	       "      --client lws|raw  lws (default): the libwebsockets client; raw: our own\n"
	       "                        minimal client (fast receive path, replies timed by\n"
	       "                        the kernel's receive timestamp; WebSocket only)\n"
	       "      --upgrade Engine.IO handshake over HTTP long-polling, then the\n"
	       "                        upgrade to WebSocket (default: WebSocket at once)\n"
	       "      --deflate         offer permessage-deflate (lws client with --tx lws: lws\n"
	       "                        compresses what it sends and inflates what it gets;\n"
	       "                        the lws client mishandles uncompressed messages once\n"
	       "                        it is agreed: give bench-server --ws-deflate-threshold 0)\n"
	       "      --rxbuf BYTES     lws receive buffer per connection (default 4096)\n"
	       "      --hist-out FILE   append the latency percentile spectrum to FILE\n"
	       "  -v, --verbose         progress every second on stderr\n");
}

static int parse_sources(lg_config *cf, const char *arg)
{
	if (strcmp(arg, "none") == 0) {
		cf->nsrc = 0;
		return 0;
	}
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	const char *dash = strchr(arg, '-');
	size_t la = dash ? (size_t)(dash - arg) : strlen(arg);
	if (la >= sizeof(a) || (dash && strlen(dash + 1) >= sizeof(b)))
		return -1;
	memcpy(a, arg, la);
	a[la] = 0;
	snprintf(b, sizeof(b), "%s", dash ? dash + 1 : a);
	struct in_addr ia, ib;
	if (inet_pton(AF_INET, a, &ia) != 1 || inet_pton(AF_INET, b, &ib) != 1)
		return -1;
	uint32_t lo = ntohl(ia.s_addr), hi = ntohl(ib.s_addr);
	if (hi < lo || hi - lo >= 16)
		return -1;
	cf->nsrc = 0;
	for (uint32_t x = lo; x <= hi; x++) {
		struct in_addr ix = {htonl(x)};
		inet_ntop(AF_INET, &ix, cf->src[cf->nsrc++], INET_ADDRSTRLEN);
	}
	return 0;
}

int lg_parse_args(lg_config *cf, int argc, char **argv)
{
	enum {
		O_SIZE = 256,
		O_WARMUP,
		O_INFLIGHT,
		O_SETTLE,
		O_DRAIN,
		O_TIMEOUT,
		O_PID,
		O_NAME,
		O_SOURCES,
		O_TX,
		O_RXBUF,
		O_HIST,
		O_HOST,
		O_TAG,
		O_UPGRADE,
		O_CLIENT,
		O_PORTS,
		O_IDBASE,
		O_ROOMEVERY,
		O_SENDER,
		O_DEFLATE,
	};
	static const struct option opts[] = {
	    {"scenario", required_argument, NULL, 's'},
	    {"port", required_argument, NULL, 'p'},
	    {"host", required_argument, NULL, O_HOST},
	    {"conns", required_argument, NULL, 'c'},
	    {"window", required_argument, NULL, 'w'},
	    {"size", required_argument, NULL, O_SIZE},
	    {"duration", required_argument, NULL, 'd'},
	    {"count", required_argument, NULL, 'n'},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"inflight", required_argument, NULL, O_INFLIGHT},
	    {"settle", required_argument, NULL, O_SETTLE},
	    {"drain", required_argument, NULL, O_DRAIN},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"server-pid", required_argument, NULL, O_PID},
	    {"server-name", required_argument, NULL, O_NAME},
	    {"sources", required_argument, NULL, O_SOURCES},
	    {"tx", required_argument, NULL, O_TX},
	    {"rxbuf", required_argument, NULL, O_RXBUF},
	    {"hist-out", required_argument, NULL, O_HIST},
	    {"tag", required_argument, NULL, O_TAG},
	    {"upgrade", no_argument, NULL, O_UPGRADE},
	    {"client", required_argument, NULL, O_CLIENT},
	    {"ports", required_argument, NULL, O_PORTS},
	    {"id-base", required_argument, NULL, O_IDBASE},
	    {"room-every", required_argument, NULL, O_ROOMEVERY},
	    {"sender", no_argument, NULL, O_SENDER},
	    {"deflate", no_argument, NULL, O_DEFLATE},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int scenario = -1, have_window = 0, have_size = 0, o;
	cf->host = "127.0.0.1";
	cf->server_name = "server";
	cf->tag = "-";
	cf->conns = 100;
	cf->window = 10;
	cf->inflight = 200;
	cf->duration = 5;
	cf->settle = 3;
	cf->drain = 3;
	cf->timeout = 120;
	cf->rxbuf = 4096;
	cf->tx_batch = 1;
	cf->room_every = 100;
	const char *sources = NULL;
	while ((o = getopt_long(argc, argv, "s:p:c:w:d:n:vh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			for (int i = 0; i <= LG_CLUSTER; i++)
				if (strcmp(optarg, scenario_names[i]) == 0)
					scenario = i;
			if (scenario < 0) {
				fprintf(stderr, "bench-loadgen: unknown scenario %s\n", optarg);
				return -1;
			}
			break;
		case 'p':
			cf->port = atoi(optarg);
			break;
		case O_HOST:
			cf->host = optarg;
			break;
		case 'c':
			cf->conns = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			cf->window = (uint32_t)strtoul(optarg, NULL, 10);
			have_window = 1;
			break;
		case O_SIZE:
			cf->size = strtoul(optarg, NULL, 10);
			have_size = 1;
			break;
		case 'd':
			cf->duration = atof(optarg);
			break;
		case 'n':
			cf->count = strtoull(optarg, NULL, 10);
			break;
		case O_WARMUP:
			cf->warmup = atof(optarg);
			break;
		case O_INFLIGHT:
			cf->inflight = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_SETTLE:
			cf->settle = atof(optarg);
			break;
		case O_DRAIN:
			cf->drain = atof(optarg);
			break;
		case O_TIMEOUT:
			cf->timeout = atof(optarg);
			break;
		case O_PID:
			cf->server_pid = atoi(optarg);
			break;
		case O_NAME:
			cf->server_name = optarg;
			break;
		case O_SOURCES:
			sources = optarg;
			break;
		case O_TX:
			if (strcmp(optarg, "lws") != 0 && strcmp(optarg, "batch") != 0) {
				fprintf(stderr, "bench-loadgen: --tx is lws or batch\n");
				return -1;
			}
			cf->tx_batch = strcmp(optarg, "batch") == 0;
			break;
		case O_RXBUF:
			cf->rxbuf = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_HIST:
			cf->hist_out = optarg;
			break;
		case O_TAG:
			cf->tag = optarg;
			break;
		case O_UPGRADE:
			cf->upgrade = 1;
			break;
		case O_DEFLATE:
			cf->deflate = 1;
			break;
		case O_CLIENT:
			if (strcmp(optarg, "lws") != 0 && strcmp(optarg, "raw") != 0) {
				fprintf(stderr, "bench-loadgen: --client is lws or raw\n");
				return -1;
			}
			cf->raw = strcmp(optarg, "raw") == 0;
			break;
		case O_PORTS: {
			char *q = optarg, *e;
			cf->nports = 0;
			while (*q) {
				long v = strtol(q, &e, 10);
				if (e == q || v <= 0 || v > 65535 || (*e && *e != ',') ||
				    cf->nports == 64) {
					fprintf(stderr,
					        "bench-loadgen: bad --ports (at most 64)\n");
					return -1;
				}
				cf->ports[cf->nports++] = (int)v;
				q = *e == ',' ? e + 1 : e;
			}
			if (cf->nports)
				cf->port = cf->ports[0];
			break;
		}
		case O_IDBASE:
			cf->id_base = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_ROOMEVERY:
			cf->room_every = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case O_SENDER:
			cf->sender = 1;
			break;
		case 'v':
			cf->verbose = 1;
			break;
		case 'h':
			lg_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || scenario < 0 || cf->port <= 0 || cf->port > 65535) {
		fprintf(stderr, "bench-loadgen: --scenario and --port are required\n");
		return -1;
	}
	cf->scenario = (lg_scenario)scenario;
	if (cf->deflate && (cf->raw || cf->tx_batch)) {
		fprintf(stderr,
		        "bench-loadgen: --deflate goes with --tx lws (and the lws client)\n");
		return -1;
	}
	if (cf->raw && (cf->upgrade || !cf->tx_batch)) {
		fprintf(stderr,
		        "bench-loadgen: --client raw goes with neither --upgrade nor --tx lws\n");
		return -1;
	}
	/*
	 * One source address has about 28k ephemeral ports. Binding costs lws a
	 * getifaddrs() per connection, so only many connections get several.
	 */
	if (!sources)
		sources = cf->conns > 20000 ? "127.0.0.2-127.0.0.9" : "none";
	if (parse_sources(cf, sources)) {
		fprintf(stderr, "bench-loadgen: bad --sources %s\n", sources);
		return -1;
	}
	if (cf->scenario == LG_BROADCAST && !have_window)
		cf->window = 1;
	if (cf->scenario == LG_BINARY && !have_size)
		cf->size = 1024;
	if (cf->conns == 0 || cf->window == 0 || cf->inflight == 0 || cf->rxbuf < 128) {
		fprintf(stderr, "bench-loadgen: --conns, --window, --inflight must be positive\n");
		return -1;
	}
	if (cf->scenario == LG_BINARY && cf->size < 16) {
		fprintf(stderr, "bench-loadgen: binary attachments are at least 16 bytes\n");
		return -1;
	}
	if (cf->size > 16u << 20) {
		fprintf(stderr, "bench-loadgen: --size is at most 16 MiB\n");
		return -1;
	}
	return 0;
}
