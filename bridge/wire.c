/* SPDX-License-Identifier: MIT */
/* wire.c: see wire.h. */
#include "wire.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void wire_put_hdr(uint8_t *buf, uint8_t type, uint32_t stream, uint64_t arg)
{
	buf[0] = type;
	buf[1] = 0;
	put16(buf + 2, 0);
	put32(buf + 4, stream);
	put64(buf + 8, arg);
}

void wire_put_len(uint8_t *p, uint32_t len)
{
	put32(p, len);
}

uint32_t wire_get_len(const uint8_t *p)
{
	return get32(p);
}

void wire_put_hello(uint8_t *buf, const struct wire_hello *h)
{
	put32(buf, WIRE_MAGIC);
	put16(buf + 4, WIRE_VERSION);
	put16(buf + 6, 0);
	put32(buf + 8, h->timeout_ms);
	put32(buf + 12, h->max_streams);
}

size_t wire_put_open(uint8_t *buf, const struct wire_open *o)
{
	put16(buf, o->kind);
	put16(buf + 2, 0);
	put32(buf + 4, o->window);
	put64(buf + 8, o->max_in);
	put64(buf + 16, o->max_out);
	if (!o->policy)
		return WIRE_OPEN_SIZE;
	put32(buf + 24, o->policy);
	put32(buf + 28, 0);
	return WIRE_OPEN_MAX;
}

static int parse_hello(const uint8_t *p, size_t n, bool welcome,
		       struct wire_hello *h)
{
	if (n < WIRE_HELLO_SIZE || get32(p) != WIRE_MAGIC)
		return -EPROTO;
	if (get16(p + 4) != WIRE_VERSION)
		return -EPROTONOSUPPORT;
	h->timeout_ms = get32(p + 8);
	h->max_streams = get32(p + 12);
	if (get16(p + 6) != 0 || h->timeout_ms < WIRE_TIMEOUT_MIN_MS ||
	    h->timeout_ms > WIRE_TIMEOUT_MAX_MS)
		return -EPROTO;
	if (welcome ? h->max_streams == 0 || h->max_streams > WIRE_STREAMS_MAX
		    : h->max_streams != 0)
		return -EPROTO;
	return 0;
}

static int parse_open(const uint8_t *p, size_t n, struct wire_open *o)
{
	if (n < WIRE_OPEN_SIZE || get16(p + 2) != 0)
		return -EPROTO;
	o->kind = get16(p);
	o->window = get32(p + 4);
	o->max_in = get64(p + 8);
	o->max_out = get64(p + 16);
	/* A topic's OPENED says its policy (the stream checks it); the
	 * import's OPEN of a topic has nothing more. */
	o->policy = o->kind == WIRE_KIND_TOPIC && n >= WIRE_OPEN_MAX
			    ? get32(p + 24) : 0;
	/* An unknown kind is not malformed: the export refuses that one
	 * stream (a newer import may ask for topics). */
	if (o->kind == 0 || o->window < WIRE_WINDOW_MIN ||
	    o->window > WIRE_WINDOW_MAX || o->max_in > WIRE_MSG_MAX ||
	    o->max_out > WIRE_MSG_MAX)
		return -EPROTO;
	return 0;
}

int wire_parse(const uint8_t *buf, size_t len, struct wire_hdr *h,
	       struct wire_hello *hello, struct wire_open *open)
{
	struct wire_hello hello_tmp;
	struct wire_open open_tmp;

	if (len < WIRE_HDR_SIZE || buf[1] != 0 || get16(buf + 2) != 0)
		return -EPROTO;
	h->type = buf[0];
	h->stream = get32(buf + 4);
	h->arg = get64(buf + 8);

	const uint8_t *p = buf + WIRE_HDR_SIZE;
	size_t n = len - WIRE_HDR_SIZE;
	bool session_frame = h->type == WIRE_HELLO || h->type == WIRE_WELCOME ||
			     h->type == WIRE_BYE || h->type == WIRE_PING;

	if (h->type == 0 || h->type > WIRE_TYPE_MAX)
		return -EPROTO;
	if (session_frame != (h->stream == 0))
		return -EPROTO;

	switch ((enum wire_type)h->type) {
	case WIRE_HELLO:
	case WIRE_WELCOME:
		if (h->arg != 0)
			return -EPROTO;
		return parse_hello(p, n, h->type == WIRE_WELCOME,
				   hello ? hello : &hello_tmp);
	case WIRE_OPEN:
	case WIRE_OPENED:
		if (h->arg != 0)
			return -EPROTO;
		return parse_open(p, n, open ? open : &open_tmp);
	case WIRE_BYE:
		return h->arg < 4096 && n <= WIRE_REASON_MAX ? 0 : -EPROTO;
	case WIRE_CLOSE:
		return h->arg < 4096 && n == 0 ? 0 : -EPROTO;
	case WIRE_PING:
		return h->arg == 0 && n == 0 ? 0 : -EPROTO;
	case WIRE_CREDIT:
		return h->arg != 0 && n == 0 ? 0 : -EPROTO;
	case WIRE_DATA:
		/* At least one length; the relay walks the rest against its
		 * credit and its local limit. */
		return n >= WIRE_LEN_SIZE ? 0 : -EPROTO;
	}
	return -EPROTO;
}

const char *wire_type_name(unsigned type)
{
	static const char *const names[] = {
		[WIRE_HELLO] = "HELLO",   [WIRE_WELCOME] = "WELCOME",
		[WIRE_BYE] = "BYE",       [WIRE_PING] = "PING",
		[WIRE_OPEN] = "OPEN",     [WIRE_OPENED] = "OPENED",
		[WIRE_DATA] = "DATA",     [WIRE_CREDIT] = "CREDIT",
		[WIRE_CLOSE] = "CLOSE",
	};

	if (type == 0 || type > WIRE_TYPE_MAX)
		return "?";
	return names[type];
}
