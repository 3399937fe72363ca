/*
 * loadgen_cluster.c: the "cluster" scenario of bench-loadgen, one of several
 * generator processes that tests/bench/scale.py drives together against
 * several server processes (--ports, round robin by global connection number
 * --id-base + i, as an L4 balancer would spread them).
 *
 * The process opens its connections, prints
 *   CONNECTED <ready> <failed> <t0_ns> <done_ns>
 * (times on CLOCK_MONOTONIC, comparable between processes), then reads
 * commands on stdin, one a line, and answers on stdout:
 *   join              every receiver joins "bench"; one in --room-every per
 *                     node also joins "r1k"  -> JOINED <acks>
 *   expect B ROOM     broadcast B to ROOM comes next -> ARMED B <expected here>
 *   send B ROOM       (--sender) emits broadcast-room(ROOM, B, T), T the
 *                     send time in ns             -> SENT B <T>
 *                     every receiver process, once all its members have B:
 *                                                 -> GOT B <n> <first_ns> <last_ns>
 *   status            -> STATUS <b> <got> <expect> <recv> <dup> <bad> <dropped>
 *   quit              -> STATS <recv> <dup> <bad> <dropped> <failed>, exit
 * Receipt times are the kernel's receive timestamps (--client raw). A tick
 * for a broadcast other than the one expected counts as bad, a repeated or
 * older one on the same connection as duplicated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

int lg_conn_port(const lg *g, const lg_conn *c)
{
	if (g->cfg.nports == 0)
		return g->cfg.port;
	if (g->cfg.scenario == LG_CLUSTER && g->cfg.sender && c->id == g->cfg.conns)
		return g->cfg.ports[0];
	return g->cfg.ports[(g->cfg.id_base + c->id) % (uint32_t)g->cfg.nports];
}

int lg_cluster_member(const lg *g, const lg_conn *c)
{
	uint32_t n = g->cfg.nports ? (uint32_t)g->cfg.nports : 1;
	if (c->id >= g->cfg.conns || g->cfg.room_every == 0)
		return 0;
	/* Global numbers k*n .. k*n+n-1 are one per node: take every room_every-th block. */
	return ((g->cfg.id_base + c->id) / n) % g->cfg.room_every == 0;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void quit(lg *g)
{
	say("STATS %llu %llu %llu %llu %u", (unsigned long long)g->recv, (unsigned long long)g->dup,
	    (unsigned long long)g->bad, (unsigned long long)g->dropped, g->failed);
	fflush(stderr);
	/* Tens of thousands of sockets: the kernel closes them faster than lws. */
	_exit(g->dup || g->bad || g->dropped || g->failed ? 1 : 0);
}

static void command(lg *g, char *line)
{
	char room[32];
	unsigned long long b;
	if (strcmp(line, "join") == 0) {
		g->join_want = 0;
		for (uint32_t i = 0; i < g->cfg.conns; i++) {
			lg_conn *c = &g->conns[i];
			if (c->state != LG_CS_READY)
				continue;
			c->send_join = 1;
			g->join_want++;
			if (lg_cluster_member(g, c)) {
				c->send_join2 = 1;
				g->join_want++;
			}
			lg_conn_kick(c);
		}
		g->joined_said = 0;
		lg_cluster_joined(g); /* nothing to join: say so now */
	} else if (sscanf(line, "expect %llu %31s", &b, room) == 2) {
		g->cl_b = b;
		g->cl_got = 0;
		g->cl_first = g->cl_last = 0;
		g->cl_expect = 0;
		for (uint32_t i = 0; i < g->cfg.conns; i++) {
			const lg_conn *c = &g->conns[i];
			if (c->state == LG_CS_READY &&
			    (strcmp(room, "r1k") == 0 ? c->joined2 : c->joined))
				g->cl_expect++;
		}
		/* Not in bnext terms: ticks are checked against cl_b. */
		g->bnext = b + 1;
		say("ARMED %llu %u", b, g->cl_expect);
		if (g->cl_expect == 0)
			say("GOT %llu 0 0 0", b);
	} else if (sscanf(line, "send %llu %31s", &b, room) == 2) {
		if (!g->cfg.sender) {
			say("ERROR not the sender");
			return;
		}
		g->cl_send_b = b;
		snprintf(g->cl_room, sizeof(g->cl_room), "%s", room);
		lg_conn *s = &g->conns[g->cfg.conns];
		s->send_bcast = 1;
		lg_conn_kick(s);
	} else if (strcmp(line, "status") == 0) {
		say("STATUS %llu %u %u %llu %llu %llu %llu", (unsigned long long)g->cl_b, g->cl_got,
		    g->cl_expect, (unsigned long long)g->recv, (unsigned long long)g->dup,
		    (unsigned long long)g->bad, (unsigned long long)g->dropped);
	} else if (strcmp(line, "quit") == 0) {
		quit(g);
	} else {
		say("ERROR unknown command");
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	lg *g = h->data;
	buf->base = g->ctlbuf + g->ctllen;
	buf->len = sizeof(g->ctlbuf) - 1 - g->ctllen;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	lg *g = s->data;
	if (n < 0) {
		/* The driver went away: nothing more to do. */
		quit(g);
		return;
	}
	g->ctllen += (size_t)n;
	char *nl;
	while ((nl = memchr(g->ctlbuf, '\n', g->ctllen)) != NULL) {
		*nl = 0;
		command(g, g->ctlbuf);
		size_t used = (size_t)(nl + 1 - g->ctlbuf);
		memmove(g->ctlbuf, nl + 1, g->ctllen - used);
		g->ctllen -= used;
	}
	if (g->ctllen == sizeof(g->ctlbuf) - 1)
		g->ctllen = 0; /* a line too long: dropped */
}

void lg_cluster_connected(lg *g)
{
	uint32_t m = 0;
	for (uint32_t i = 0; i < g->cfg.conns; i++)
		m += (uint32_t)lg_cluster_member(g, &g->conns[i]);
	g->members = m;
	say("CONNECTED %u %u %llu %llu", g->ready, g->failed, (unsigned long long)g->t0,
	    (unsigned long long)g->t_conn_done);
}

void lg_cluster_start(lg *g)
{
	if (g->ctl_open)
		return;
	g->ctl_open = 1;
	uv_pipe_init(g->loop, &g->ctl, 0);
	g->ctl.data = g;
	if (uv_pipe_open(&g->ctl, 0) != 0 ||
	    uv_read_start((uv_stream_t *)&g->ctl, on_alloc, on_read) != 0) {
		say("ERROR cannot read stdin");
		quit(g);
	}
}

void lg_cluster_joined(lg *g)
{
	if (!g->joined_said && g->joined >= g->join_want) {
		g->joined_said = 1;
		say("JOINED %u", g->joined);
	}
}

void lg_cluster_tick(lg_conn *c, uint64_t b)
{
	lg *g = c->lg;
	if (b <= c->last_tick) {
		g->dup++;
		return;
	}
	c->last_tick = b;
	if (b != g->cl_b) {
		g->bad++;
		return;
	}
	g->recv++;
	uint64_t now = g->rx_now ? g->rx_now : uv_hrtime();
	if (g->cl_got == 0 || now < g->cl_first)
		g->cl_first = now;
	if (now > g->cl_last)
		g->cl_last = now;
	if (++g->cl_got == g->cl_expect)
		say("GOT %llu %u %llu %llu", (unsigned long long)b, g->cl_got,
		    (unsigned long long)g->cl_first, (unsigned long long)g->cl_last);
}

size_t lg_cluster_bcast_text(lg *g, char *out, size_t cap)
{
	uint64_t t = uv_hrtime();
	int n = snprintf(out, cap, "42[\"broadcast-room\",\"%s\",%llu,%llu]", g->cl_room,
	                 (unsigned long long)g->cl_send_b, (unsigned long long)t);
	say("SENT %llu %llu", (unsigned long long)g->cl_send_b, (unsigned long long)t);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
