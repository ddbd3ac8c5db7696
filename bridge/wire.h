/* SPDX-License-Identifier: MIT */
/*
 * wire.h: the bridge protocol, frame by frame (docs/bridge.md, "Framing").
 *
 * Every ZeroMQ message between two bridges is one frame: a 16-byte header,
 * then a payload whose meaning depends on the type.  All integers are
 * little-endian on the wire (the two hosts may differ).  The export side's
 * ROUTER socket adds and strips the routing id frame in front; nothing
 * else is multipart.
 *
 *   offset size field
 *        0    1 type      (enum wire_type)
 *        1    1 flags     0
 *        2    2 reserved  0
 *        4    4 stream    0 for session frames, 1..max_streams otherwise
 *        8    8 arg       per type: DATA sequence number (of its first
 *                         message), CREDIT bytes, CLOSE / BYE errno,
 *                         otherwise 0
 *
 * A DATA payload holds one or more messages, each a 4-byte length and
 * that many bytes, back to back: the sending bridge puts in one frame the
 * small messages that are already waiting in the local ring (it never
 * waits to fill a frame), which saves ZeroMQ, CURVE and wake-up costs
 * per message.  Message boundaries are those of the lengths.
 *
 * The receiver of a frame trusts nothing in it: wire_parse() checks
 * everything that does not depend on session state, and the session and
 * the relay check the rest (stream open, sequence, credit).
 */
#ifndef EVSHM_BRIDGE_WIRE_H
#define EVSHM_BRIDGE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HDR_SIZE 16u
#define WIRE_LEN_SIZE 4u     /* before each message in a DATA payload */
#define WIRE_MAGIC 0x52425645u  /* "EVBR" in little-endian memory */
#define WIRE_VERSION 1u

/* What one message costs against a credit window beyond its payload: the
 * header, the ZeroMQ message and the queue slot that hold it.  So 0-byte
 * messages take credit too, and a window bounds memory, not only bytes. */
#define WIRE_MSG_COST 64u

/* Bounds a peer's announced numbers must respect. */
#define WIRE_WINDOW_MIN (64u << 10)
#define WIRE_WINDOW_MAX (1u << 30)
#define WIRE_MSG_MAX ((uint64_t)1 << 30)
#define WIRE_TIMEOUT_MIN_MS 100u
#define WIRE_TIMEOUT_MAX_MS 3600000u
#define WIRE_STREAMS_MAX 65535u
#define WIRE_REASON_MAX 200u

enum wire_type {
	WIRE_HELLO = 1,   /* import -> export: a session starts */
	WIRE_WELCOME = 2, /* export -> import: the session is up */
	WIRE_BYE = 3,     /* either: the session ends now; arg: errno */
	WIRE_PING = 4,    /* either: nothing else to say (liveness) */
	WIRE_OPEN = 5,    /* import -> export: open stream `stream` */
	WIRE_OPENED = 6,  /* export -> import: the far end is there */
	WIRE_DATA = 7,    /* one message; arg: its sequence number */
	WIRE_CREDIT = 8,  /* arg: bytes of window handed back */
	WIRE_CLOSE = 9,   /* this end of the stream is done; arg: errno */
	WIRE_TYPE_MAX = WIRE_CLOSE,
};

/* What may travel in a stream (docs/bridge.md, "Topics"). */
enum wire_kind {
	WIRE_KIND_CHANNEL = 1,
	WIRE_KIND_TOPIC = 2,  /* one way, export -> import */
};

struct wire_hdr {
	uint8_t type;
	uint32_t stream;
	uint64_t arg;
};

/* HELLO and WELCOME payload (16 bytes; more may follow and is ignored). */
struct wire_hello {
	uint32_t timeout_ms;  /* the sender declares the session dead after
			       * this long without a frame: send more often */
	uint32_t max_streams; /* WELCOME: streams the import may open at once;
			       * HELLO: 0 */
};

/* OPEN and OPENED payload (24 bytes, then for a topic 8 more; what
 * follows is ignored). */
struct wire_open {
	uint16_t kind;        /* enum wire_kind */
	uint32_t window;      /* the sender's receive window, bytes; a topic's
			       * OPENED: the window the export uses */
	uint64_t max_in;      /* largest message the sender can deliver to
			       * its local peer: do not send it larger */
	uint64_t max_out;     /* largest message the sender's local peer
			       * may send */
	uint32_t policy;      /* a topic's OPENED: EVSHM_RELIABLE (1) or
			       * EVSHM_LATEST (2); otherwise 0 */
};

#define WIRE_HELLO_SIZE 16u
#define WIRE_OPEN_SIZE 24u
#define WIRE_OPEN_MAX 32u     /* with a topic's policy and a reserved 0 */

/* Encode a header into @buf (WIRE_HDR_SIZE bytes). */
void wire_put_hdr(uint8_t *buf, uint8_t type, uint32_t stream, uint64_t arg);
/* Encode a HELLO/WELCOME payload (WIRE_HELLO_SIZE bytes). */
void wire_put_hello(uint8_t *buf, const struct wire_hello *h);
/* Encode an OPEN/OPENED payload into @buf (WIRE_OPEN_MAX bytes of room);
 * returns its size: WIRE_OPEN_SIZE, or WIRE_OPEN_MAX when o->policy is
 * set (a topic's OPENED). */
size_t wire_put_open(uint8_t *buf, const struct wire_open *o);

/*
 * Check and decode one frame of @len bytes.  On success the header is in
 * @*h, and for HELLO/WELCOME and OPEN/OPENED the payload in @*hello or
 * @*open (either may be NULL if the caller does not expect that type);
 * the payload of DATA starts at buf + WIRE_HDR_SIZE.
 * Returns 0 or -EPROTO (malformed, unknown type, a non-zero reserved
 * field, a session frame on a stream or the reverse, a number out of its
 * bounds) or -EPROTONOSUPPORT (HELLO/WELCOME of another version).
 */
int wire_parse(const uint8_t *buf, size_t len, struct wire_hdr *h,
	       struct wire_hello *hello, struct wire_open *open);

/* The length prefix of a message in a DATA payload. */
void wire_put_len(uint8_t *p, uint32_t len);
uint32_t wire_get_len(const uint8_t *p);

/* A frame type's name, for logs ("DATA"; "?" if unknown). */
const char *wire_type_name(unsigned type);

#endif
