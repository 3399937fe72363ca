/*
 * loadgen_lws.c: bench-loadgen's libwebsockets side: starting connections
 * (straight to WebSocket, or an Engine.IO handshake over HTTP long-polling
 * followed by the upgrade), and the protocol callback that feeds
 * loadgen_conn.c whole messages.
 */
#define _GNU_SOURCE /* memmem, strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static int on_receive(lg_conn *c, struct lws *wsi, const char *in, size_t len)
{
	int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
	if (first && final && c->rx_len == 0)
		return lg_conn_on_message(c, lws_frame_is_binary(wsi), in, len);
	if (first && c->rx_len == 0)
		c->rx_bin = (uint8_t)lws_frame_is_binary(wsi);
	if (lg_conn_rx_append(c, in, len))
		return -1;
	if (!final)
		return 0;
	int rc = lg_conn_on_message(c, c->rx_bin, c->rx, c->rx_len);
	c->rx_len = 0;
	if (c->rx_cap > 1 << 20) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	return rc;
}

/* ---- The handshake over HTTP long-polling (--upgrade) ---- */

/* The body of the handshake GET arrived: 0{"sid":"...",...}. */
static void polled(lg_conn *c)
{
	lg *g = c->lg;
	static const char key[] = "\"sid\":\"";
	const char *p = c->rx_len && c->rx[0] == '0' ? memmem(c->rx, c->rx_len, key, 7) : NULL;
	const char *end = c->rx + c->rx_len, *q = p ? p + 7 : NULL;
	while (q && q < end && *q != '"')
		q++;
	if (!p || !q || q >= end || q - (p + 7) > 64) {
		c->rx_len = 0;
		lg_on_gone(g, c, "polling handshake: no sid in the open packet");
		return;
	}
	c->sid = strndup(p + 7, (size_t)(q - (p + 7)));
	c->rx_len = 0;
	c->state = LG_CS_POLLED;
	g->upq[g->nupq++] = c;
}

static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static void connect_info(lg *g, lg_conn *c, struct lws_client_connect_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->context = g->ctx;
	ci->address = g->cfg.host;
	ci->port = lg_conn_port(g, c);
	ci->host = g->cfg.host;
	ci->origin = NULL;
	ci->protocol = NULL; /* no Sec-WebSocket-Protocol: Socket.IO servers do not answer one */
	ci->local_protocol_name = "sio";
	ci->ietf_version_or_minus_one = -1;
	ci->opaque_user_data = c;
	/*
	 * No lws validity pings: Engine.IO has its own heartbeat, and each lws
	 * validity timer is a sorted-list insertion that walks every other
	 * connection's timer.
	 */
	ci->retry_and_idle_policy = &no_validity;
	if (g->cfg.nsrc)
		ci->iface = g->cfg.src[c->id % (uint32_t)g->cfg.nsrc];
}

static void start_websocket(lg *g, lg_conn *c)
{
	struct lws_client_connect_info ci;
	char path[160];
	connect_info(g, c, &ci);
	if (c->sid) {
		snprintf(path, sizeof(path), "/socket.io/?EIO=4&transport=websocket&sid=%s",
		         c->sid);
		ci.path = path;
	} else {
		ci.path = "/socket.io/?EIO=4&transport=websocket";
	}
	ci.pwsi = &c->wsi;
	c->state = LG_CS_CONNECTING;
	if (!lws_client_connect_via_info(&ci)) {
		c->wsi = NULL;
		lg_on_gone(g, c, "lws_client_connect_via_info failed");
	}
}

void lg_conn_start_upgrades(lg *g)
{
	for (uint32_t i = 0; i < g->nupq; i++)
		if (g->upq[i]->state == LG_CS_POLLED)
			start_websocket(g, g->upq[i]);
	g->nupq = 0;
}

/* ---- lws glue ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	lg_conn *c = lws_get_opaque_user_data(wsi);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c) {
			c->wsi = NULL;
			lg_on_gone(c->lg, c, in ? (const char *)in : "connection error");
		}
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (c && c->sid) {
			/* Upgrading: the session exists; probe the new transport. */
			c->state = LG_CS_PROBE;
			c->send_probe = 1;
			lg_conn_kick(c);
		} else if (c) {
			c->state = LG_CS_WS;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		if (c && c->state == LG_CS_POLL && lws_http_client_http_response(wsi) != 200) {
			lg_on_gone(c->lg, c, "polling handshake: HTTP status not 200");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
		char buf[LWS_PRE + 2048], *p = buf + LWS_PRE;
		int n = (int)sizeof(buf) - LWS_PRE;
		return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
	}
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (c && c->state == LG_CS_POLL &&
		    (c->rx_len + len > 65536 || lg_conn_rx_append(c, in, len)))
			return -1;
		return 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		if (c && c->state == LG_CS_POLL)
			polled(c);
		return -1; /* done with this HTTP connection */
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (c && c->state == LG_CS_POLL)
			lg_on_gone(c->lg, c, "polling handshake: connection closed");
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!c)
			return -1;
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!c || c->state == LG_CS_GONE)
			return -1;
		return lg_conn_write(c);
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c) {
			c->wsi = NULL;
			lg_on_gone(c->lg, c, "closed by the server");
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (c && c->wsi == wsi) {
			c->wsi = NULL;
			lg_on_gone(c->lg, c, "connection destroyed");
		}
		return 0;
	default:
		return 0;
	}
}

const struct lws_protocols lg_protocols[] = {
    {"sio", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int lg_conn_start(lg *g, lg_conn *c)
{
	c->t_start = uv_hrtime();
	if (g->cfg.raw)
		return lg_raw_start(g, c);
	if (!g->cfg.upgrade) {
		start_websocket(g, c);
		return c->state == LG_CS_GONE ? -1 : 0;
	}
	/*
	 * The HTTP connection is not kept in c->wsi (nor given as pwsi): c->wsi
	 * is the WebSocket's, which may start before lws has destroyed this one.
	 */
	struct lws_client_connect_info ci;
	connect_info(g, c, &ci);
	ci.method = "GET";
	ci.path = "/socket.io/?EIO=4&transport=polling";
	c->state = LG_CS_POLL;
	if (!lws_client_connect_via_info(&ci)) {
		lg_on_gone(g, c, "lws_client_connect_via_info failed");
		return -1;
	}
	return 0;
}
