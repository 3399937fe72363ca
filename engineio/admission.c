/*
 * admission.c: which handshakes may open a session. Two bounds: the number
 * of sessions at once (max_sessions), and handshakes per second from one
 * client address (a token bucket per address, handshake_rate per second up
 * to handshake_burst at once). Each session costs memory until it expires,
 * and a client can ask for one per request, pipelined on a keep-alive
 * connection: without them a single client fills the memory in seconds.
 *
 * The buckets live in a fixed table (set-associative, EIO_RATE_WAYS
 * entries per set): memory stays bounded however many addresses knock.
 * When a set is full the entry that has been quiet longest gives way; an
 * address that loses its entry starts again with a full bucket, which only
 * favours it, so eviction never refuses anyone wrongly.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engineio_internal.h"

#define EIO_RATE_SETS 1024
#define EIO_RATE_WAYS 4
/* How often refusals are logged (with their count). */
#define EIO_REFUSE_LOG_MS 10000

struct eio_rate_slot {
	uint64_t last_ms; /* loop time of the last refill */
	uint64_t milli;   /* tokens, in thousandths */
	char addr[48];    /* "" when the slot is free */
};

static size_t addr_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29));
}

/* The bucket of addr with its tokens brought up to now; NULL when out of memory. */
static eio_rate_slot *bucket(eio_server *srv, const char *addr, uint64_t now)
{
	uint64_t cap = (uint64_t)srv->opts.handshake_burst * 1000;
	eio_rate_slot *set, *pick = NULL;

	if (!srv->rate) {
		srv->rate = calloc((size_t)EIO_RATE_SETS * EIO_RATE_WAYS, sizeof(*srv->rate));
		if (!srv->rate)
			return NULL;
	}
	set = srv->rate + (addr_hash(addr) % EIO_RATE_SETS) * EIO_RATE_WAYS;
	for (int i = 0; i < EIO_RATE_WAYS; i++) {
		eio_rate_slot *e = &set[i];
		if (e->addr[0] && strcmp(e->addr, addr) == 0) {
			uint64_t add = (now - e->last_ms) * srv->opts.handshake_rate;
			e->milli = e->milli + add > cap ? cap : e->milli + add;
			e->last_ms = now;
			return e;
		}
		if (!pick || !e->addr[0] || (pick->addr[0] && e->last_ms < pick->last_ms))
			pick = e;
	}
	snprintf(pick->addr, sizeof(pick->addr), "%s", addr);
	pick->last_ms = now;
	pick->milli = cap;
	return pick;
}

static void log_refusal(eio_server *srv, const char *why, const char *addr)
{
	uint64_t now = uv_now(http_server_loop(srv->http));

	srv->refused++;
	if (srv->refused_logged && now - srv->refused_logged < EIO_REFUSE_LOG_MS)
		return;
	BASE_LOGW("eio",
	          "handshake refused: %s (from %s; %zu refused since the last report, "
	          "%zu sessions open)",
	          why, addr, srv->refused, srv->sids.n);
	srv->refused = 0;
	srv->refused_logged = now ? now : 1;
}

const char *eio__admit(eio_server *srv, const http_request *req)
{
	const char *why = NULL;

	if (srv->opts.max_sessions && srv->sids.n >= srv->opts.max_sessions) {
		why = "Too many sessions";
	} else if (srv->opts.handshake_rate) {
		uint64_t now = uv_now(http_server_loop(srv->http));
		eio_rate_slot *e = bucket(srv, req->remote_addr, now);

		if (!e)
			why = "Server busy";
		else if (e->milli < 1000)
			why = "Too many handshakes";
		else
			e->milli -= 1000;
	}
	if (why)
		log_refusal(srv, why, req->remote_addr);
	return why;
}

void eio__admission_free(eio_server *srv)
{
	free(srv->rate);
	srv->rate = NULL;
}
