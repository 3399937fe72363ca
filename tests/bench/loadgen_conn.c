/*
 * loadgen_conn.c: one bench-loadgen connection. Engine.IO v4 and Socket.IO v5
 * over a libwebsockets client: the open packet, pings, the namespace CONNECT,
 * and the bench contract's requests and replies, each checked against the
 * connection's window of outstanding sequence numbers.
 *
 * Wire shapes (namespace "/", so no namespace prefix):
 *   echo      42["message",C,S]            -> 42["message-back",C,S]
 *   ack       42S["message-with-ack",C,S]  -> 43S[C,S]
 *   binary    451-["message",C,S,{"_placeholder":true,"num":0}] + attachment
 *                                          -> 451-["message-back",C,S,{...}] + attachment
 *   join      420["join","bench"]          -> 430[]
 *   broadcast 42["broadcast-room","bench",B] -> every receiver: 42["tick",B]
 * C is the connection number and S a per-connection sequence number, so a
 * reply that is lost, repeated, or delivered to the wrong socket is noticed.
 * An attachment starts with C and S (8 bytes each, little endian) and goes
 * on with a fixed pattern that is compared byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define LG_ROOM "bench"
#define LG_ROOM2 "r1k" /* cluster: the small room */

/* ---- Small parsing helpers over [p, end) ---- */

static int parse_u64(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

static int expect(const char **pp, const char *end, char ch)
{
	if (*pp >= end || **pp != ch)
		return -1;
	(*pp)++;
	return 0;
}

/* Reads a JSON string without escapes (event names) into a slice. */
static int parse_name(const char **pp, const char *end, const char **name, size_t *len)
{
	const char *p = *pp;
	if (expect(&p, end, '"'))
		return -1;
	const char *s = p;
	while (p < end && *p != '"' && *p != '\\')
		p++;
	if (p >= end || *p != '"')
		return -1;
	*name = s;
	*len = (size_t)(p - s);
	*pp = p + 1;
	return 0;
}

static int name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* ---- Sending ---- */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * Appends one masked client frame (payload a then b) at out, returning its
 * length. Used in batch mode, where several frames leave in one write.
 */
static size_t frame_append(lg *g, unsigned char *out, unsigned opcode, const void *a, size_t na,
                           const void *b, size_t nb)
{
	size_t len = na + nb, h = 0;
	out[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		out[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (unsigned char)(len >> 8);
		out[h++] = (unsigned char)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	uint32_t m32 = (uint32_t)xorshift(&g->rng);
	unsigned char mask[4];
	memcpy(mask, &m32, 4);
	memcpy(out + h, mask, 4);
	h += 4;
	unsigned char *p = out + h;
	if (na)
		memmove(p, a, na); /* a may already lie in out, a little further on */
	if (nb)
		memcpy(p + na, b, nb);
	/* Mask eight bytes at a time; the mask repeats every four. */
	uint64_t m64 = (uint64_t)m32 | ((uint64_t)m32 << 32);
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		w ^= m64;
		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] ^= mask[i & 3];
	return h + len;
}

int lg_conn_can_send(const lg_conn *c)
{
	const lg *g = c->lg;
	if (g->phase != LG_PH_RUN || c->state != LG_CS_READY || !c->slots)
		return 0;
	if (g->cfg.count && g->sent >= g->cfg.count)
		return 0;
	if (c->outstanding >= g->cfg.window)
		return 0;
	/* A slot still held by a lost reply blocks it for good; the end counts it. */
	return c->slots[c->next_seq % g->cfg.window].t == 0;
}

static int broadcaster_can_send(const lg_conn *c)
{
	const lg *g = c->lg;
	if (g->phase != LG_PH_RUN || c->state != LG_CS_READY || c->id != g->cfg.conns)
		return 0;
	if (g->cfg.count && g->sent >= g->cfg.count)
		return 0;
	if (g->boutstanding >= g->cfg.window)
		return 0;
	return g->bslots[g->bnext % g->cfg.window].t == 0;
}

static int has_pending(const lg_conn *c)
{
	if (c->pongs || c->send_probe || c->send_upgrade || c->send_connect || c->send_join ||
	    c->send_join2 || c->send_bcast || c->bin_tx)
		return 1;
	if (c->lg->cfg.scenario == LG_BROADCAST)
		return broadcaster_can_send(c);
	return lg_conn_can_send(c);
}

/*
 * In lws mode a connection with something to send asks for a writable
 * callback. In batch mode it goes on the dirty list instead, and lg_flush
 * writes it once per loop turn, after every read of that turn: fewer
 * epoll_ctl calls and writes than a POLLOUT round per request.
 */
void lg_conn_kick(lg_conn *c)
{
	if ((!c->wsi && !c->raw) || c->state == LG_CS_GONE || !has_pending(c))
		return;
	if (!c->lg->cfg.tx_batch) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (!c->dirty) {
		c->dirty = 1;
		c->lg->dirty[c->lg->ndirty++] = c;
	}
}

/*
 * Builds the text part of the next request of c into out (at least 128 +
 * cfg.size bytes) and books it in the window. Sets *bin when an attachment
 * follows.
 */
static size_t next_request(lg_conn *c, char *out, int *bin)
{
	lg *g = c->lg;
	uint64_t now = uv_hrtime();
	size_t n = 0;
	*bin = 0;
	if (g->cfg.scenario == LG_BROADCAST) {
		uint64_t b = g->bnext++;
		lg_bslot *s = &g->bslots[b % g->cfg.window];
		s->b = b;
		s->t = now;
		s->got = 0;
		g->boutstanding++;
		g->sent++;
		return (size_t)sprintf(out, "42[\"broadcast-room\",\"" LG_ROOM "\",%llu]",
		                       (unsigned long long)b);
	}
	uint64_t seq = c->next_seq++;
	lg_slot *s = &c->slots[seq % g->cfg.window];
	s->seq = seq;
	s->t = now;
	c->outstanding++;
	g->outstanding++;
	g->sent++;
	unsigned long long cid = c->id, sq = seq;
	switch (g->cfg.scenario) {
	case LG_ACK:
		n = (size_t)sprintf(out, "42%llu[\"message-with-ack\",%llu,%llu", sq, cid, sq);
		break;
	case LG_BINARY:
		*bin = 1;
		return (size_t)sprintf(
		    out, "451-[\"message\",%llu,%llu,{\"_placeholder\":true,\"num\":0}]", cid, sq);
	default:
		n = (size_t)sprintf(out, "42[\"message\",%llu,%llu", cid, sq);
		break;
	}
	if (g->cfg.size) {
		out[n++] = ',';
		out[n++] = '"';
		memcpy(out + n, g->pad, g->cfg.size);
		n += g->cfg.size;
		out[n++] = '"';
	}
	out[n++] = ']';
	return n;
}

static void attachment_head(const lg_conn *c, uint64_t seq, unsigned char head[16])
{
	uint64_t cid = c->id;
	memcpy(head, &cid, 8);
	memcpy(head + 8, &seq, 8);
}

/*
 * lws mode: one frame per writable callback, framed and masked by lws.
 * Returns -1 to close the connection.
 */
static int write_one(lg_conn *c)
{
	lg *g = c->lg;
	unsigned char *p = g->txbuf + LWS_PRE;
	size_t n = 0;
	enum lws_write_protocol wp = LWS_WRITE_TEXT;
	int bin = 0;
	if (c->pongs) {
		c->pongs--;
		p[n++] = '3';
	} else if (c->send_probe) {
		c->send_probe = 0;
		memcpy(p, "2probe", 6);
		n = 6;
	} else if (c->send_upgrade) {
		c->send_upgrade = 0;
		p[n++] = '5';
	} else if (c->send_connect) {
		c->send_connect = 0;
		p[n++] = '4';
		p[n++] = '0';
	} else if (c->send_join) {
		c->send_join = 0;
		n = (size_t)sprintf((char *)p, "420[\"join\",\"" LG_ROOM "\"]");
	} else if (c->send_join2) {
		c->send_join2 = 0;
		n = (size_t)sprintf((char *)p, "421[\"join\",\"" LG_ROOM2 "\"]");
	} else if (c->send_bcast) {
		c->send_bcast = 0;
		n = lg_cluster_bcast_text(g, (char *)p, 256);
	} else if (c->bin_tx) {
		c->bin_tx = 0;
		attachment_head(c, c->bin_tx_seq, p);
		memcpy(p + 16, g->bin + 16, g->cfg.size - 16);
		n = g->cfg.size;
		wp = LWS_WRITE_BINARY;
	} else if (g->cfg.scenario == LG_BROADCAST ? broadcaster_can_send(c)
	                                           : lg_conn_can_send(c)) {
		uint64_t seq = c->next_seq;
		n = next_request(c, (char *)p, &bin);
		if (bin) {
			c->bin_tx = 1;
			c->bin_tx_seq = seq;
		}
	} else {
		return 0;
	}
	if (lws_write(c->wsi, p, n, wp) < (int)n)
		return -1;
	lg_conn_kick(c);
	return 0;
}

/*
 * Batch mode: everything c has to send, framed here and gathered into one
 * raw write (up to about 64 KiB, and at least one request).
 */
static int write_batch(lg_conn *c)
{
	lg *g = c->lg;
	unsigned char *base = g->txbuf + LWS_PRE, *o = base;
	char tmp[160];
	const size_t budget = 65536;
	while (c->pongs) {
		c->pongs--;
		o += frame_append(g, o, 1, "3", 1, NULL, 0);
	}
	if (c->send_probe) {
		c->send_probe = 0;
		o += frame_append(g, o, 1, "2probe", 6, NULL, 0);
	}
	if (c->send_upgrade) {
		c->send_upgrade = 0;
		o += frame_append(g, o, 1, "5", 1, NULL, 0);
	}
	if (c->send_connect) {
		c->send_connect = 0;
		o += frame_append(g, o, 1, "40", 2, NULL, 0);
	}
	if (c->send_join) {
		c->send_join = 0;
		int n = sprintf(tmp, "420[\"join\",\"" LG_ROOM "\"]");
		o += frame_append(g, o, 1, tmp, (size_t)n, NULL, 0);
	}
	if (c->send_join2) {
		c->send_join2 = 0;
		int n = sprintf(tmp, "421[\"join\",\"" LG_ROOM2 "\"]");
		o += frame_append(g, o, 1, tmp, (size_t)n, NULL, 0);
	}
	if (c->send_bcast) {
		c->send_bcast = 0;
		size_t n = lg_cluster_bcast_text(g, tmp, sizeof(tmp));
		o += frame_append(g, o, 1, tmp, n, NULL, 0);
	}
	int is_bc = g->cfg.scenario == LG_BROADCAST;
	while ((size_t)(o - base) < budget &&
	       (is_bc ? broadcaster_can_send(c) : lg_conn_can_send(c))) {
		int bin;
		uint64_t seq = c->next_seq;
		if (g->cfg.scenario == LG_BINARY || g->cfg.size == 0) {
			size_t n = next_request(c, tmp, &bin);
			o += frame_append(g, o, 1, tmp, n, NULL, 0);
		} else {
			/* Padded text does not fit tmp: build it past the largest header. */
			char *t = (char *)o + 14;
			size_t n = next_request(c, t, &bin);
			o += frame_append(g, o, 1, t, n, NULL, 0);
		}
		if (bin) {
			unsigned char head[16];
			attachment_head(c, seq, head);
			o += frame_append(g, o, 2, head, 16, g->bin + 16, g->cfg.size - 16);
		}
	}
	size_t len = (size_t)(o - base);
	if (c->raw) {
		if (len && lg_raw_send(c, base, len))
			return -1;
		/* Over budget: the rest goes when the socket has room again. */
		if (has_pending(c))
			lg_raw_want_write(c);
		return 0;
	}
	if (len && lws_write(c->wsi, base, len, LWS_WRITE_RAW) < (int)len)
		return -1;
	if (has_pending(c))
		lws_callback_on_writable(c->wsi);
	return 0;
}

void lg_flush(lg *g)
{
	/* Nothing here queues a connection again, so each is on the list once. */
	for (uint32_t i = 0; i < g->ndirty; i++) {
		lg_conn *c = g->dirty[i];
		c->dirty = 0;
		if ((!c->wsi && !c->raw) || c->state == LG_CS_GONE)
			continue;
		if (c->raw) {
			/* Bytes still queued: the writable event writes the rest. */
			if (!lg_raw_busy(c) && write_batch(c))
				lg_raw_fail(c, "write error");
			continue;
		}
		if (lws_partial_buffered(c->wsi)) {
			/* lws still holds part of an earlier write: wait for POLLOUT. */
			lws_callback_on_writable(c->wsi);
			continue;
		}
		if (write_batch(c))
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
			                LWS_TO_KILL_ASYNC);
	}
	g->ndirty = 0;
}

int lg_conn_write(lg_conn *c)
{
	return c->lg->cfg.tx_batch ? write_batch(c) : write_one(c);
}

/* ---- Receiving ---- */

int lg_conn_rx_append(lg_conn *c, const void *p, size_t n)
{
	if (c->rx_len + n > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 4096;
		while (cap < c->rx_len + n)
			cap *= 2;
		char *r = realloc(c->rx, cap);
		if (!r)
			return -1;
		c->rx = r;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, p, n);
	c->rx_len += n;
	return 0;
}

/* A reply to request seq of connection cid arrived on c. */
static void reply(lg_conn *c, uint64_t cid, uint64_t seq)
{
	lg *g = c->lg;
	if (cid != c->id || seq >= c->next_seq || !c->slots) {
		g->bad++;
		return;
	}
	lg_slot *s = &c->slots[seq % g->cfg.window];
	if (s->t == 0 || s->seq != seq) {
		g->dup++;
		return;
	}
	uint64_t now = g->rx_now ? g->rx_now : uv_hrtime();
	if (now < s->t)
		now = s->t;
	if (now >= g->t_measure && g->phase >= LG_PH_RUN) {
		lg_hist_record(&g->lat, now - s->t);
		g->recv_measured++;
	}
	s->t = 0;
	c->outstanding--;
	g->outstanding--;
	g->recv++;
	g->t_last_recv = now;
	lg_conn_kick(c);
}

static void tick(lg_conn *c, uint64_t b)
{
	lg *g = c->lg;
	if (b >= g->bnext || b == 0) {
		g->bad++;
		return;
	}
	if (b <= c->last_tick) {
		g->dup++;
		return;
	}
	c->last_tick = b;
	g->recv++;
	uint64_t now = g->rx_now ? g->rx_now : uv_hrtime();
	g->t_last_recv = now;
	lg_bslot *s = &g->bslots[b % g->cfg.window];
	if (s->t == 0 || s->b != b)
		return; /* a broadcast already given up on */
	if (now < s->t)
		now = s->t;
	int measured = s->t >= g->t_measure;
	if (measured) {
		lg_hist_record(&g->lat2, now - s->t);
		g->recv_measured++;
	}
	if (++s->got == g->cfg.conns) {
		if (measured)
			lg_hist_record(&g->lat, now - s->t);
		s->t = 0;
		g->boutstanding--;
		lg_conn_kick(&g->conns[g->cfg.conns]);
	}
}

/* The attachment of the binary event c->bin_seq. */
static void on_attachment(lg_conn *c, const unsigned char *p, size_t n)
{
	lg *g = c->lg;
	unsigned char head[16];
	c->bin_wait = 0;
	attachment_head(c, c->bin_seq, head);
	memcpy(head, &c->bin_cid, 8);
	if (n != g->cfg.size || memcmp(p, head, 16) != 0 ||
	    memcmp(p + 16, g->bin + 16, n - 16) != 0) {
		g->bad++;
		return;
	}
	reply(c, c->bin_cid, c->bin_seq);
}

/* An EVENT, ACK, BINARY_EVENT or BINARY_ACK body: [optional id] JSON array. */
static void on_sio_data(lg_conn *c, char type, const char *p, const char *end)
{
	lg *g = c->lg;
	uint64_t id = 0, attachments = 0, a = 0, b = 0;
	int has_id = 0;
	if (type == '5' || type == '6') {
		if (parse_u64(&p, end, &attachments) || expect(&p, end, '-'))
			goto bad;
	}
	if (p < end && *p >= '0' && *p <= '9') {
		parse_u64(&p, end, &id);
		has_id = 1;
	}
	if (expect(&p, end, '['))
		goto bad;
	if (type == '3' || type == '6') {
		/*
		 * An ack: join's is id 0 (cluster: 1 for the small room), its
		 * arguments ignored; the ack scenario's is [C,S].
		 */
		if (g->cfg.scenario == LG_CLUSTER && has_id && id == 1) {
			if (!c->joined2) {
				c->joined2 = 1;
				g->joined++;
				lg_cluster_joined(g);
			} else {
				g->dup++;
			}
			return;
		}
		if ((g->cfg.scenario == LG_BROADCAST || g->cfg.scenario == LG_CLUSTER) && has_id &&
		    id == 0) {
			if (!c->joined) {
				c->joined = 1;
				lg_on_joined(g, c);
				if (g->cfg.scenario == LG_CLUSTER)
					lg_cluster_joined(g);
			} else {
				g->dup++;
			}
			return;
		}
		if (g->cfg.scenario != LG_ACK || !has_id || parse_u64(&p, end, &a) ||
		    expect(&p, end, ',') || parse_u64(&p, end, &b) || b != id)
			goto bad;
		reply(c, a, b);
		return;
	}
	const char *name;
	size_t nlen;
	if (parse_name(&p, end, &name, &nlen))
		goto bad;
	if (name_is(name, nlen, "message-back")) {
		if (expect(&p, end, ',') || parse_u64(&p, end, &a) || expect(&p, end, ',') ||
		    parse_u64(&p, end, &b))
			goto bad;
		if (g->cfg.scenario == LG_BINARY) {
			if (attachments != 1 || c->bin_wait)
				goto bad;
			c->bin_wait = 1;
			c->bin_cid = a;
			c->bin_seq = b;
			return;
		}
		if (g->cfg.scenario != LG_ECHO)
			goto bad;
		reply(c, a, b);
		return;
	}
	if (name_is(name, nlen, "tick") && g->cfg.scenario == LG_CLUSTER) {
		if (expect(&p, end, ',') || parse_u64(&p, end, &b))
			goto bad;
		lg_cluster_tick(c, b);
		return;
	}
	if (name_is(name, nlen, "tick")) {
		if (g->cfg.scenario != LG_BROADCAST || expect(&p, end, ',') ||
		    parse_u64(&p, end, &b))
			goto bad;
		tick(c, b);
		return;
	}
bad:
	g->bad++;
	if (g->cfg.verbose)
		fprintf(stderr, "loadgen: conn %u: unexpected packet '%c'\n", c->id, type);
}

static int on_text(lg_conn *c, const char *p, size_t n)
{
	lg *g = c->lg;
	const char *end = p + n;
	if (n == 0)
		goto bad;
	switch (p[0]) {
	case '0': /* Engine.IO open */
		if (c->state != LG_CS_WS)
			goto bad;
		c->state = LG_CS_EIO;
		c->send_connect = 1;
		lg_conn_kick(c);
		return 0;
	case '2': /* ping */
		c->pongs++;
		lg_conn_kick(c);
		return 0;
	case '1': /* close */
		return -1;
	case '3': /* pong: "3probe" answers the upgrade probe */
		if (c->state == LG_CS_PROBE) {
			if (n != 6 || memcmp(p, "3probe", 6) != 0)
				goto bad;
			c->state = LG_CS_EIO;
			c->send_upgrade = 1;
			c->send_connect = 1;
			free(c->sid);
			c->sid = NULL;
			lg_conn_kick(c);
		}
		return 0;
	case '6':
		return 0;
	case '4':
		break;
	default:
		goto bad;
	}
	if (n < 2)
		goto bad;
	switch (p[1]) {
	case '0': /* Socket.IO CONNECT answered */
		if (c->state != LG_CS_EIO)
			goto bad;
		c->state = LG_CS_READY;
		lg_on_ready(g, c);
		return 0;
	case '4': /* CONNECT_ERROR */
	case '1': /* DISCONNECT */
		return -1;
	case '2':
	case '3':
	case '5':
	case '6':
		if (c->state != LG_CS_READY)
			goto bad;
		on_sio_data(c, p[1], p + 2, end);
		return 0;
	default:
		break;
	}
bad:
	g->bad++;
	if (g->cfg.verbose)
		fprintf(stderr, "loadgen: conn %u: unexpected message %.*s\n", c->id,
		        (int)(n > 60 ? 60 : n), p);
	return 0;
}

int lg_conn_on_message(lg_conn *c, int binary, const char *p, size_t n)
{
	if (!binary)
		return on_text(c, p, n);
	if (!c->bin_wait) {
		c->lg->bad++;
		return 0;
	}
	on_attachment(c, (const unsigned char *)p, n);
	return 0;
}
