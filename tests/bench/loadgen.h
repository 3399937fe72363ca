/*
 * loadgen.h: bench-loadgen, the Socket.IO load generator. One thread, one
 * libuv loop, libwebsockets clients on that loop. See tests/bench/README.md
 * for the scenarios and the server contract.
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <uv.h>

/* ---- Latency histogram (loadgen_stats.c) ---- */

/*
 * Log-bucketed like HdrHistogram: values below 128 are exact, above that each
 * power of two is split into 64 sub-buckets, so a bucket is at most 1/64
 * (1.6%) wide relative to its value. Values are nanoseconds.
 */
#define LG_HIST_SUB 64
#define LG_HIST_BUCKETS (LG_HIST_SUB * 60)

typedef struct {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t n[LG_HIST_BUCKETS];
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_record(lg_hist *h, uint64_t v);
/** The value at quantile q (0..1): the upper edge of the bucket that holds it. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);
/**
 * Appends the percentile spectrum of h to path (gnuplot-friendly columns:
 * percentile, 1/(1-percentile), latency in microseconds), one block headed by
 * a "# label" line. Returns 0 or -1.
 */
int lg_hist_dump(const lg_hist *h, const char *path, const char *label);

/* ---- Processes (loadgen_stats.c) ---- */

/** VmRSS of process pid in KiB from /proc/PID/status, or -1. */
long lg_proc_rss_kb(int pid);
/** User plus system CPU seconds process pid has used, from /proc/PID/stat, or -1. */
double lg_proc_cpu_seconds(int pid);
/** User plus system CPU seconds this process has used. */
double lg_cpu_seconds(void);
/**
 * Raises RLIMIT_NOFILE to at least want descriptors (the hard limit too when
 * permitted). Returns the soft limit now in force.
 */
uint64_t lg_raise_nofile(uint64_t want);

/* ---- The run ---- */

typedef enum {
	LG_IDLE,
	LG_CONNECT,
	LG_ECHO,
	LG_ACK,
	LG_BROADCAST,
	LG_BINARY,
	LG_CLUSTER, /* driven from stdin by tests/bench/scale.py (loadgen_cluster.c) */
} lg_scenario;

typedef enum {
	LG_PH_CONNECTING, /* opening connections */
	LG_PH_SETUP,      /* broadcast: receivers joining the room */
	LG_PH_RUN,        /* issuing requests */
	LG_PH_DRAIN,      /* no new requests; waiting for the outstanding ones */
	LG_PH_DONE,
} lg_phase;

typedef struct {
	lg_scenario scenario;
	const char *host;
	int port;
	const char *server_name;
	const char *tag; /* copied into the RESULT line, for scripts */
	int server_pid;
	uint32_t conns;    /* connections (receivers, for broadcast) */
	uint32_t window;   /* requests outstanding per connection, or broadcasts in flight */
	uint32_t inflight; /* connection attempts at once */
	size_t size;       /* binary attachment bytes, or string padding for echo/ack */
	double duration;   /* seconds of requests (idle: seconds to hold after settling) */
	uint64_t count;    /* stop after this many requests (0: only the duration) */
	double warmup;     /* seconds at the start of the run left out of the figures */
	double settle;     /* idle: seconds between the last connect and reading RSS */
	double drain;      /* seconds to wait for outstanding replies at the end */
	double timeout;    /* the whole run, whatever happens */
	int nsrc;          /* local source addresses, used round robin */
	char src[16][INET_ADDRSTRLEN];
	const char *hist_out;
	int tx_batch; /* 1: frame ourselves and gather a connection's frames into one write */
	int upgrade;  /* 1: handshake over HTTP long-polling, then upgrade to WebSocket */
	int deflate;  /* 1: offer permessage-deflate (lws client, --tx lws) */
	int raw;      /* 1: our own minimal WebSocket client instead of lws (loadgen_raw.c) */
	unsigned rxbuf;
	int verbose;
	/* --ports: connection (id_base + id) goes to ports[(id_base + id) % nports] */
	int nports;
	int ports[64];
	uint32_t id_base;    /* --id-base: this process's first global connection number */
	uint32_t room_every; /* cluster: 1 in room_every per node joins the small room */
	int sender;          /* cluster: one more connection, to ports[0], sends broadcasts */
} lg_config;

typedef struct {
	uint64_t seq;
	uint64_t t; /* send time (uv_hrtime), 0 when the slot is free */
} lg_slot;

typedef enum {
	LG_CS_NEW,
	LG_CS_POLL,       /* --upgrade: Engine.IO handshake over HTTP long-polling */
	LG_CS_POLLED,     /* --upgrade: handshake done, WebSocket not started yet */
	LG_CS_CONNECTING, /* TCP and WebSocket handshake */
	LG_CS_PROBE,      /* --upgrade: WebSocket open, "2probe" sent */
	LG_CS_WS,         /* WebSocket open, waiting for the Engine.IO open packet */
	LG_CS_EIO,        /* Engine.IO open, Socket.IO CONNECT sent */
	LG_CS_READY,      /* namespace "/" connected */
	LG_CS_GONE,       /* failed or closed */
} lg_conn_state;

typedef struct lg lg;
struct lg_raw;

typedef struct {
	lg *lg;
	struct lws *wsi;
	struct lg_raw *raw; /* --client raw: the transport instead of wsi */
	uint32_t id;
	uint8_t state;
	uint8_t send_connect; /* "40" owed */
	uint8_t send_join;    /* join(room) owed */
	uint8_t send_join2;   /* cluster: join of the small room owed */
	uint8_t joined2;
	uint8_t send_bcast;   /* cluster sender: broadcast-room owed */
	uint8_t send_probe;   /* --upgrade: "2probe" owed */
	uint8_t send_upgrade; /* --upgrade: "5" owed */
	uint8_t joined;
	uint8_t bin_tx;   /* lws mode: the attachment of bin_tx_seq goes next */
	uint8_t bin_wait; /* a binary event arrived; its attachment is next */
	uint8_t rx_bin;   /* the message being reassembled is binary */
	uint8_t dirty;    /* batch mode: on the dirty list */
	uint16_t pongs;   /* Engine.IO pongs owed */
	uint32_t outstanding;
	uint64_t next_seq;
	uint64_t bin_tx_seq;
	uint64_t bin_cid, bin_seq; /* the binary event awaiting its attachment */
	uint64_t t_start;          /* connect started (uv_hrtime) */
	uint64_t last_tick;        /* broadcast receiver: last broadcast number seen */
	lg_slot *slots;            /* window of outstanding requests */
	char *sid;                 /* --upgrade: the Engine.IO session, until upgraded */
	char *rx;                  /* reassembly of a message split over several callbacks */
	size_t rx_len, rx_cap;
} lg_conn;

typedef struct {
	uint64_t b;
	uint64_t t; /* 0: free */
	uint32_t got;
} lg_bslot;

struct lg {
	lg_config cfg;
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct lws_protocols *protos;
	uv_timer_t tick;
	uv_check_t check; /* after each loop turn: start connections, flush writes */
	lg_phase phase;
	lg_conn *conns;
	uint32_t nconns; /* cfg.conns, plus the sender for broadcast */
	uint32_t started, connecting, ready, failed, joined;
	uint64_t dropped; /* connections lost after they were ready */

	uint64_t t0, t_conn_done, t_phase, t_measure, t_run_end, t_last_recv;
	double cpu_mark, cpu_used; /* this process, over cpu_span seconds */
	double cpu_span;
	double scpu_mark, scpu_used; /* the server's, when its pid is known */

	uint64_t rx_now; /* --client raw: kernel receive time of what is being read, or 0 */
	uint64_t sent, recv, recv_measured, outstanding;
	uint64_t lost, dup, bad;
	lg_hist lat;  /* round trip, or broadcast until the last receiver */
	lg_hist lat2; /* broadcast: every single delivery */
	lg_hist clat; /* connect: start to Socket.IO CONNECT reply */

	lg_conn **dirty; /* batch mode: connections with something to write */
	uint32_t ndirty;
	lg_conn **upq; /* --upgrade: handshakes done, WebSocket to start */
	uint32_t nupq;

	lg_bslot *bslots; /* broadcasts in flight */
	uint64_t bnext;   /* next broadcast number (from 1) */
	uint32_t boutstanding;

	unsigned char *txbuf; /* LWS_PRE + txcap */
	size_t txcap;
	unsigned char *bin; /* binary attachment template (cfg.size bytes) */
	char *pad;          /* string padding for echo/ack (cfg.size bytes) */
	uint64_t rng;

	long rss_before, rss_after, rss_client;
	char fail[256];

	/* cluster (loadgen_cluster.c) */
	uv_pipe_t ctl; /* commands on stdin */
	char ctlbuf[512];
	size_t ctllen;
	int ctl_open;
	uint32_t members;   /* receivers in the small room */
	uint32_t join_want; /* joins asked for (both rooms) */
	int joined_said;    /* "JOINED" printed */
	uint64_t cl_b;      /* the broadcast expected now */
	uint32_t cl_expect; /* how many receivers here get it */
	uint32_t cl_got;    /* how many have it */
	uint64_t cl_first, cl_last;
	uint64_t cl_send_b; /* sender: the broadcast to send */
	char cl_room[32];
};

/* ---- libwebsockets glue (loadgen_lws.c) ---- */

extern const struct lws_protocols lg_protocols[];

/**
 * Starts connection c: a WebSocket connect through lws, or with --upgrade
 * first the HTTP long-polling handshake (the WebSocket then starts from
 * lg_conn_start_upgrades). Returns 0 or -1 (and c is gone).
 */
int lg_conn_start(lg *g, lg_conn *c);
/** --upgrade: starts the WebSockets of the connections whose handshake is done. */
void lg_conn_start_upgrades(lg *g);

/* ---- The raw client (loadgen_raw.c) ---- */

/** Starts c on the raw client. Returns 0 or -1 (and c is gone). */
int lg_raw_start(lg *g, lg_conn *c);
/** Sends (or queues) len bytes of frames on c. Returns 0 or -1. */
int lg_raw_send(lg_conn *c, const void *p, size_t len);
/** Whether c still has bytes queued from an earlier send. */
int lg_raw_busy(const lg_conn *c);
/** Asks for a writable event on c (then lg_conn_write runs). */
void lg_raw_want_write(lg_conn *c);
/** Drops c's transport and reports c gone. */
void lg_raw_fail(lg_conn *c, const char *why);
/** Closes c's transport quietly (tear-down). */
void lg_raw_close(lg_conn *c);

/* ---- Connections (loadgen_conn.c) ---- */

/** Appends to c's reassembly buffer. Returns 0 or -1. */
int lg_conn_rx_append(lg_conn *c, const void *p, size_t n);
/** Asks lws for a writable callback on c if it has something to send. */
void lg_conn_kick(lg_conn *c);
/** A whole WebSocket message arrived on c. Returns -1 to close the connection. */
int lg_conn_on_message(lg_conn *c, int binary, const char *p, size_t n);
/** The writable callback of c: writes what c has to send. Returns -1 to close. */
int lg_conn_write(lg_conn *c);
/** Batch mode: writes what every queued connection has to send. */
void lg_flush(lg *g);
/** Whether c may issue a new request now. */
int lg_conn_can_send(const lg_conn *c);

/* ---- Cluster scenario (loadgen_cluster.c) ---- */

/** The server port of connection c (--ports round robin, or --port). */
int lg_conn_port(const lg *g, const lg_conn *c);
/** Whether receiver c joins the small room ("r1k"). */
int lg_cluster_member(const lg *g, const lg_conn *c);
/** Starts reading commands on stdin ("quit" works from the start). */
void lg_cluster_start(lg *g);
/** All connections are up (or failed): says so on stdout. */
void lg_cluster_connected(lg *g);
/** A join was acknowledged. */
void lg_cluster_joined(lg *g);
/** A tick(B, T) arrived on c. */
void lg_cluster_tick(lg_conn *c, uint64_t b);
/** Sender: appends the owed broadcast-room text to out, returns its length. */
size_t lg_cluster_bcast_text(lg *g, char *out, size_t cap);

/* ---- Options (loadgen_opts.c) ---- */

const char *lg_scenario_name(lg_scenario s);
void lg_usage(FILE *f);
/** Fills cf from the command line. Returns 0, or -1 after a message on stderr. */
int lg_parse_args(lg_config *cf, int argc, char **argv);

/* ---- The driver (loadgen.c), called back from the connections ---- */

void lg_on_ready(lg *g, lg_conn *c);
void lg_on_gone(lg *g, lg_conn *c, const char *why);
void lg_on_joined(lg *g, lg_conn *c);
void lg_fail(lg *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
