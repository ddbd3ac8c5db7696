/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c: the socket messages of protocol 2 (docs/protocol.md 3 and
 * 7) on arbitrary bytes: proto_parse() as each type a side waits for, and
 * proto_parse_fds().
 *
 * libFuzzer hands us a heap copy of exactly @size bytes, so ASan catches a
 * read past the message.  A 0 must mean a message the rest of the
 * handshake may trust, checked here against an independent statement of
 * the rules (the table of 3.1): 64 bytes, right magic, version and type,
 * every field the type does not use 0, ring sizes powers of two in
 * [EVSHM_RING_MIN, EVSHM_RING_MAX], a region exactly the header page plus
 * the ring.  What we would send with the same values parses the same way.
 * Any other result must be one of the documented errors, and the right one
 * where the input decides it (size, magic, version, a REJECT's reason).
 */
#include "evshm.h"
#include "proto.h"
#include "region.h"

#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int size_ok(uint32_t s)
{
	return s >= EVSHM_RING_MIN && s <= EVSHM_RING_MAX && !(s & (s - 1));
}

static int zero_id(const struct proto_msg *m)
{
	for (size_t i = 0; i < sizeof(m->id); i++)
		if (m->id[i])
			return 0;
	return 1;
}

/* Parse what we would send, and compare. */
static void same_again(const struct proto_msg *out, enum proto_type want,
		       const struct proto_msg *m)
{
	struct proto_msg back;

	CHECK(proto_parse(out, sizeof(*out), want, &back) == 0);
	CHECK(memcmp(&back, m, sizeof(back)) == 0);
}

static void check_ok(const struct proto_msg *m, const uint8_t *data,
		     enum proto_type want)
{
	struct proto_msg out;
	int chan = m->kind == PROTO_KIND_CHAN;

	/* Copied as it came: nothing rewritten. */
	CHECK(memcmp(m, data, sizeof(*m)) == 0);
	CHECK(m->magic == PROTO_MAGIC && m->version == PROTO_VERSION);
	CHECK(m->type == want);
	CHECK(m->kind == PROTO_KIND_CHAN || m->kind == PROTO_KIND_TOPIC);
	CHECK(m->status == 0);
	switch (want) {
	case PROTO_READY:
		CHECK(m->ring_size == 0 && m->region_size == 0 && m->param2 == 0);
		CHECK(size_ok(m->peer_ring_size));
		if (chan)
			CHECK(zero_id(m) && m->param == 0);
		else
			CHECK(m->param == PROTO_POLICY_RELIABLE ||
			      m->param == PROTO_POLICY_LATEST);
		proto_ready(&out, m->kind, m->features, m->peer_ring_size,
			    m->param, chan ? NULL : m->id);
		break;
	case PROTO_HELLO:
		CHECK(m->param2 == 0);
		CHECK((uint64_t)m->region_size ==
		      (uint64_t)REGION_HDR_SIZE + m->ring_size);
		if (chan)
			CHECK(size_ok(m->ring_size) && m->param == 0 &&
			      (m->peer_ring_size == 0 || size_ok(m->peer_ring_size)));
		else
			CHECK(m->ring_size == 0 && m->peer_ring_size == 0);
		proto_hello(&out, m->kind, m->features, m->ring_size,
			    m->peer_ring_size, m->id, m->param);
		break;
	case PROTO_WELCOME:
		CHECK(m->peer_ring_size == 0 && size_ok(m->ring_size));
		CHECK((uint64_t)m->region_size ==
		      (uint64_t)REGION_HDR_SIZE + m->ring_size);
		if (chan)
			CHECK(m->param == 0 && m->param2 == 0);
		proto_welcome(&out, m->kind, m->features, m->ring_size, m->id,
			      m->param, m->param2);
		break;
	default:
		CHECK(0); /* REJECT and DROP never parse as 0 */
		return;
	}
	same_again(&out, want, m);
}

/* Every field but the header and `status` is 0: a well-formed REJECT or
 * DROP (3.1). */
static int bare(const struct proto_msg *m)
{
	return m->kind == 0 && m->features == 0 && m->ring_size == 0 &&
	       m->peer_ring_size == 0 && m->region_size == 0 && zero_id(m) &&
	       m->param == 0 && m->param2 == 0;
}

static void check_err(int res, const uint8_t *data, size_t size,
		      enum proto_type want)
{
	struct proto_msg raw;

	CHECK(res == -EPROTO || res == -EPROTONOSUPPORT || res == -EFBIG ||
	      res == -EUSERS || res == -EACCES || res == -ECONNABORTED);
	if (size != sizeof(raw)) {
		/* Exactly 64 bytes: no trailing bytes to ignore (13). */
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
	if (raw.type == PROTO_REJECT && bare(&raw) &&
	    (want == PROTO_READY || want == PROTO_WELCOME)) {
		/* Its reason, both ways; unknown reasons are 5 (3.4). */
		struct proto_msg out, back;
		uint32_t why = raw.status;

		CHECK(res == proto_reject_errno(why));
		CHECK(proto_errno_reject(res) ==
		      (why >= PROTO_REJ_VERSION && why <= PROTO_REJ_DENIED ?
			       why : (uint32_t)PROTO_REJ_INVALID));
		proto_reject(&out, why);
		CHECK(proto_parse(&out, sizeof(out), want, &back) == res);
		return;
	}
	if (raw.type == PROTO_DROP && bare(&raw) && want == PROTO_DROP) {
		struct proto_msg out, back;

		CHECK(res == -ECONNABORTED);
		proto_drop(&out, raw.status);
		CHECK(proto_parse(&out, sizeof(out), PROTO_DROP, &back) ==
		      -ECONNABORTED);
		return;
	}
	CHECK(res == -EPROTO);
}

/*
 * proto_parse_fds() against its whole contract: 0 exactly when the input
 * is 24 bytes, a PROTO_FDS of this version with reserved 0 and the @nfds
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
		ok = size == sizeof(raw) && raw.magic == PROTO_MAGIC &&
		     raw.version == PROTO_VERSION && raw.type == PROTO_FDS &&
		     raw.reserved == 0;
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
	static const enum proto_type want[] = {
		PROTO_READY, PROTO_HELLO, PROTO_WELCOME, PROTO_DROP,
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
