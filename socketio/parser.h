/*
 * parser.h: the Socket.IO parser as an ops table (internal to socketio/).
 *
 * A server picks its parser once, when it is created (sio_options.parser):
 * the default one (text packets, binary attachments as separate messages)
 * or socket.io-msgpack-parser (one binary message per packet). Everything
 * that leaves the server goes through the parser's encode — an emit to one
 * socket, an ack, a broadcast (encoded once, the result shared by every
 * receiver), a packet another node hands in through the adapter, a packet
 * replayed by connection state recovery — and everything that comes in goes
 * through its decode. No other file knows a wire format.
 *
 * Both sides work on the same description of a packet: its data as JSON
 * text, binary values as attachments beside it, referenced from the JSON by
 * {"_placeholder":true,"num":N} (see packet.h).
 */
#ifndef SIO_PARSER_H
#define SIO_PARSER_H

#include "packet.h"

/* ---- out --------------------------------------------------------------- */

/*
 * A packet to send, before any wire format. Nothing is copied into it: the
 * slices must stay valid until encode returns.
 */
typedef struct {
	/*
	 * CONNECT, DISCONNECT, EVENT, ACK or CONNECT_ERROR. An EVENT or ACK with
	 * attachments is a BINARY_EVENT or BINARY_ACK on the wire.
	 */
	sio_packet_type type;
	base_slice nsp;
	int64_t id;        /* ack id; -1 when none */
	base_slice event;  /* EVENT: the event name */
	int event_escaped; /* event is already JSON-escaped (as sio_packet.event), else raw */
	base_slice args;   /* EVENT, ACK: the arguments, JSON without brackets; may be empty */
	base_slice data;   /* the other types: the JSON payload; may be empty */
	const base_slice *atts;
	size_t n_atts; /* at most SIO_MAX_ATTACHMENTS */
} sio_out;

/* Most parts one wire message is gathered from. */
#define SIO_WIRE_MAX_PARTS 4

/* One Engine.IO message, gathered from parts when it is sent or shared. */
typedef struct {
	int binary;
	size_t n_parts;
	base_slice parts[SIO_WIRE_MAX_PARTS];
} sio_wire_msg;

/*
 * An encoded packet: its Engine.IO messages, in order. Parts point into buf,
 * into the sio_out's slices, or at static text; so a wire is used (sent, or
 * turned into shared messages) before those change, then freed.
 */
typedef struct {
	base_buf buf;
	size_t n_msgs;
	sio_wire_msg msgs[1 + SIO_MAX_ATTACHMENTS];
} sio_wire;

void sio__wire_init(sio_wire *w);
void sio__wire_free(sio_wire *w);

/* ---- in ---------------------------------------------------------------- */

typedef struct sio_binary_wait sio_binary_wait;

/* What a parser keeps between the Engine.IO messages of one connection. */
typedef struct {
	size_t max_pending;    /* bytes of attachments one packet may wait for */
	sio_binary_wait *bin;  /* default parser: a packet waiting for its attachments */
	sio_binary_wait *done; /* default parser: the last complete one, until done */
	base_buf json;         /* msgpack parser: the last packet's data as JSON text */
} sio_decoder;

/* A complete incoming packet. Its slices live until sio__decoder_done. */
typedef struct {
	sio_packet pkt;
	base_slice atts[SIO_MAX_ATTACHMENTS];
	size_t n_atts;
} sio_decoded;

/** Frees a waiting binary packet (default parser). NULL is fine. */
void sio__binary_wait_free(sio_binary_wait *w);
/** Releases what the last complete packet held. Call after each decode. */
void sio__decoder_done(sio_decoder *d);
/** Frees everything, a half-received packet included. */
void sio__decoder_free(sio_decoder *d);

/* ---- the ops table ----------------------------------------------------- */

typedef struct {
	const char *name;
	/*
	 * Encodes p into w (initialised, empty). Returns 0,
	 * SIO_EBAD_ARGS (arguments that are not JSON, placeholders without
	 * their attachment: the msgpack parser has to read them; the default
	 * parser sends arguments as they are) or SIO_ETOO_MANY_ATTACHMENTS.
	 * Pure: no I/O, nothing kept.
	 */
	int (*encode)(const sio_out *p, sio_wire *w);
	/*
	 * Feeds one Engine.IO message of a connection. Returns 1 when a packet
	 * is complete in *out, 0 when it waits for more messages (attachments),
	 * -1 with *err (static text) when the message is not acceptable: the
	 * caller closes the connection. No I/O; data need only live during the
	 * call, unless out's slices point into it (then until done).
	 */
	int (*decode)(sio_decoder *d, int binary, const char *data, size_t len, sio_decoded *out,
	              const char **err);
} sio_parser_ops;

extern const sio_parser_ops sio__parser_json;
extern const sio_parser_ops sio__parser_msgpack;

/** Checks n_atts against the limit, initialises w, and calls ops->encode. */
int sio__encode(const sio_parser_ops *ops, const sio_out *p, sio_wire *w);

/**
 * Appends the JSON data of an EVENT or ACK (["event",args...] or [args...])
 * to out: what the adapter carries between nodes.
 */
void sio__out_data(base_buf *out, const sio_out *p);

/**
 * 1 when every {"_placeholder":true,"num":N} in the JSON text names one of
 * n_atts attachments (and the text is JSON), else 0.
 */
int sio__placeholders_valid(base_slice json, size_t n_atts);

#endif
