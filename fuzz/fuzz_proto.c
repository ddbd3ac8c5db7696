/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c: proto_parse() on arbitrary bytes, as each message type.
 *
 * libFuzzer hands us a heap copy of exactly @size bytes, so ASan catches a
 * read past the message.  A 0 return must mean a message that the rest of
 * the handshake may trust: right magic, version and type, status 0, ring
 * sizes that are powers of two in [EVSHM_RING_MIN, EVSHM_RING_MAX] and a
 * region that is exactly the header page plus the ring.  Any other return
 * must be one of the documented errors.  proto_parse_fds() is checked
 * against an independent statement of its rules.
 */
#include "evshm.h"
#include "proto.h"
#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

static int size_ok(uint32_t s)
{
	return s >= EVSHM_RING_MIN && s <= EVSHM_RING_MAX && !(s & (s - 1));
}

static void check_ok(const struct proto_msg *m, const uint8_t *data,
		     enum proto_type want)
{
	/* The first 32 bytes, as they came: nothing rewritten. */
	CHECK(memcmp(m, data, sizeof(*m)) == 0);
	CHECK(m->magic == PROTO_MAGIC);
	CHECK(m->version == PROTO_VERSION);
	CHECK(m->type == want);
	CHECK(m->status == 0);
	CHECK(size_ok(m->ring_size));
	CHECK(proto_ring_size_ok(m->ring_size));
	CHECK((uint64_t)m->region_size ==
	      (uint64_t)REGION_HDR_SIZE + m->ring_size);
	CHECK(ring_max_msg(m->ring_size) == EVSHM_MAX_MSG(m->ring_size));
	if (want == PROTO_HELLO)
		CHECK(m->peer_ring_size == 0 || size_ok(m->peer_ring_size));
	else
		CHECK(m->peer_ring_size == 0);

	/* What we would send with the same sizes parses the same way. */
	struct proto_msg out, back;
	if (want == PROTO_HELLO)
		proto_hello(&out, m->ring_size, m->peer_ring_size);
	else if (want == PROTO_WELCOME)
		proto_welcome(&out, m->ring_size);
	else
		return;
	CHECK(proto_parse(&out, sizeof(out), want, &back) == 0);
	CHECK(back.ring_size == m->ring_size &&
	      back.peer_ring_size == m->peer_ring_size &&
	      back.region_size == m->region_size);
}

static void check_err(int res, const uint8_t *data, size_t size,
		      enum proto_type want)
{
	struct proto_msg raw;

	CHECK(res == -EPROTO || res == -EPROTONOSUPPORT || res == -EFBIG ||
	      res == -EUSERS || res == -EACCES);
	if (size < sizeof(raw)) {
		CHECK(res == -EPROTO);
		return;
	}
	memcpy(&raw, data, sizeof(raw));
	if (raw.magic != PROTO_MAGIC) {
		CHECK(res == -EPROTO);
		return;
	}
	if (raw.version != PROTO_VERSION) {
		CHECK(res == -EPROTONOSUPPORT);
		return;
	}
	/* Only a client reads a REJECT; its reason maps both ways, and what
	 * a server would send for it parses the same. */
	if (want == PROTO_WELCOME && raw.type == PROTO_REJECT) {
		struct proto_msg out, back;
		uint32_t why = raw.status;

		CHECK(res == proto_reject_errno(why));
		CHECK(proto_errno_reject(res) ==
		      (why >= PROTO_REJ_VERSION && why <= PROTO_REJ_DENIED ?
			       why : (uint32_t)PROTO_REJ_INVALID));
		proto_reject(&out, why);
		CHECK(proto_parse(&out, sizeof(out), PROTO_WELCOME, &back) == res);
	} else {
		CHECK(res == -EPROTO);
	}
}

/*
 * proto_parse_fds() against its whole contract: 0 exactly when the first
 * 24 bytes are a PROTO_FDS of this version with reserved 0 and the @nfds
 * and @seq the receiver expects.  The expected values are taken from the
 * input itself (so that a match is reachable) and then perturbed.
 */
static void fuzz_fds(const uint8_t *data, size_t size)
{
	struct proto_fds raw, out;
	uint32_t nfds = 0;
	uint64_t seq = 0;
	int ok = 0;

	if (size >= sizeof(raw)) {
		memcpy(&raw, data, sizeof(raw));
		nfds = raw.nfds;
		seq = raw.seq;
		ok = raw.magic == PROTO_MAGIC && raw.version == PROTO_VERSION &&
		     raw.type == PROTO_FDS && raw.reserved == 0;
	}
	int res = proto_parse_fds(data, size, nfds, seq);
	CHECK(res == 0 || res == -EPROTO);
	CHECK((res == 0) == ok);
	CHECK(proto_parse_fds(data, size, nfds + 1, seq) == -EPROTO);
	CHECK(proto_parse_fds(data, size, nfds, seq ^ 1) == -EPROTO);
	CHECK(proto_parse_fds(data, size, nfds, seq ^ (1ull << 63)) == -EPROTO);

	proto_fds(&out, nfds, seq);
	CHECK(proto_parse_fds(&out, sizeof(out), nfds, seq) == 0);
	CHECK(proto_parse_fds(&out, sizeof(out) - 1, nfds, seq) == -EPROTO);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* HELLO and WELCOME are what proto_parse() is for; the others must
	 * not crash it either, and a 0 must still mean a sane message. */
	static const enum proto_type want[] = {
		PROTO_HELLO, PROTO_WELCOME, PROTO_REJECT, PROTO_FDS,
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct proto_msg m;
		int res = proto_parse(data, size, want[i], &m);
		if (res == 0)
			check_ok(&m, data, want[i]);
		else
			check_err(res, data, size, want[i]);
	}
	fuzz_fds(data, size);
	return 0;
}
