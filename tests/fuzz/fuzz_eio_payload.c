/*
 * fuzz_eio_payload.c: libFuzzer driver for engineio/packet.c.
 *
 * Decodes the input as a polling payload (over a writable copy), re-encodes
 * what was decoded, and checks that decoding the re-encoded payload gives the
 * same packets, and that encoding those again gives the same bytes. The input
 * is also tried as one WebSocket text frame, and as Engine.IO 3 payloads
 * (packet_v3.c: text and binary format) with the same round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKETS 256

/* Decodes all of buf into pk; returns the packet count, or -1 when invalid or too many. */
static int decode(char *buf, size_t len, eio_packet *pk)
{
	size_t at = 0;
	int n = 0;

	while (at < len) {
		ssize_t r;

		if (n == MAX_PACKETS)
			return -1;
		r = eio_payload_next(buf + at, len - at, &pk[n]);
		if (r < 0)
			return -1;
		if (r == 0 || (size_t)r > len - at)
			abort();
		/* A packet's data lies inside the record it was decoded from. */
		if (pk[n].data.base < buf + at ||
		    pk[n].data.base + pk[n].data.len > buf + at + (size_t)r)
			abort();
		if ((unsigned)pk[n].type > EIO_NOOP || (pk[n].binary && pk[n].type != EIO_MESSAGE))
			abort();
		at += (size_t)r;
		n++;
	}
	return n;
}

static void encode(const eio_packet *pk, int n, base_buf *out)
{
	for (int i = 0; i < n; i++) {
		eio_payload_append(out, pk[i].type, pk[i].binary, pk[i].data.base, pk[i].data.len);
	}
}

/* The same for v3 payloads (bin: the binary format); empty packets are skipped. */
static int decode3(char *buf, size_t len, int bin, eio_packet *pk)
{
	size_t at = 0;
	int n = 0;

	while (at < len) {
		ssize_t r;

		if (n == MAX_PACKETS)
			return -1;
		r = eio3_payload_next(buf + at, len - at, bin, &pk[n]);
		if (r < 0)
			return -1;
		if (r == 0 || (size_t)r > len - at)
			abort();
		at += (size_t)r;
		if ((int)pk[n].type == -1)
			continue;
		if (pk[n].data.base < buf || pk[n].data.base + pk[n].data.len > buf + at)
			abort();
		if ((unsigned)pk[n].type > EIO_NOOP || (pk[n].binary && pk[n].type != EIO_MESSAGE))
			abort();
		n++;
	}
	return n;
}

static void encode3(const eio_packet *pk, int n, int bin, base_buf *out)
{
	for (int i = 0; i < n; i++)
		eio3_payload_append(out, bin, pk[i].type, pk[i].binary, pk[i].data.base,
		                    pk[i].data.len);
}

static void roundtrip3(const uint8_t *data, size_t size, int bin)
{
	static eio_packet first[MAX_PACKETS], second[MAX_PACKETS];
	base_buf enc1 = BASE_BUF_INIT, enc2 = BASE_BUF_INIT;
	char *copy = malloc(size ? size : 1), *copy2 = NULL;
	int n1, n2;

	memcpy(copy, data, size);
	n1 = decode3(copy, size, bin, first);
	if (n1 <= 0)
		goto out;
	encode3(first, n1, bin, &enc1);
	copy2 = malloc(enc1.len);
	memcpy(copy2, enc1.data, enc1.len);
	n2 = decode3(copy2, enc1.len, bin, second);
	if (n2 != n1)
		abort();
	for (int i = 0; i < n1; i++) {
		if (first[i].type != second[i].type || first[i].binary != second[i].binary ||
		    first[i].data.len != second[i].data.len ||
		    (first[i].data.len > 0 &&
		     memcmp(first[i].data.base, second[i].data.base, first[i].data.len) != 0))
			abort();
	}
	encode3(second, n2, bin, &enc2);
	if (enc1.len != enc2.len || memcmp(enc1.data, enc2.data, enc1.len) != 0)
		abort();
out:
	free(copy);
	free(copy2);
	base_buf_free(&enc1);
	base_buf_free(&enc2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static eio_packet first[MAX_PACKETS], second[MAX_PACKETS];
	base_buf enc1 = BASE_BUF_INIT, enc2 = BASE_BUF_INIT;
	char *copy = malloc(size ? size : 1), *copy2 = NULL;
	eio_packet one;
	int n1, n2;

	roundtrip3(data, size, 0);
	roundtrip3(data, size, 1);
	memcpy(copy, data, size);
	if (eio_packet_decode(copy, size, &one) == 0 &&
	    (one.data.base != copy + 1 || one.data.len != size - 1 || one.binary))
		abort();

	n1 = decode(copy, size, first);
	if (n1 <= 0)
		goto out;
	encode(first, n1, &enc1);
	copy2 = malloc(enc1.len);
	memcpy(copy2, enc1.data, enc1.len);
	n2 = decode(copy2, enc1.len, second);
	if (n2 != n1)
		abort();
	for (int i = 0; i < n1; i++) {
		if (first[i].type != second[i].type || first[i].binary != second[i].binary ||
		    first[i].data.len != second[i].data.len ||
		    (first[i].data.len > 0 &&
		     memcmp(first[i].data.base, second[i].data.base, first[i].data.len) != 0))
			abort();
	}
	encode(second, n2, &enc2);
	if (enc1.len != enc2.len || memcmp(enc1.data, enc2.data, enc1.len) != 0)
		abort();
out:
	free(copy);
	free(copy2);
	base_buf_free(&enc1);
	base_buf_free(&enc2);
	return 0;
}
