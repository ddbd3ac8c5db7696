/* SPDX-License-Identifier: MIT */
#include "proto.h"

#include <errno.h>
#include <string.h>

#include "evshm.h"
#include "ring.h"

static void proto_init(struct proto_msg *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->magic = PROTO_MAGIC;
	m->version = PROTO_VERSION;
	m->type = type;
}

void proto_hello(struct proto_msg *m, uint32_t ring_size,
		 uint32_t peer_ring_size)
{
	proto_init(m, PROTO_HELLO);
	m->ring_size = ring_size;
	m->peer_ring_size = peer_ring_size;
	m->region_size = REGION_HDR_SIZE + ring_size;
}

void proto_welcome(struct proto_msg *m, uint32_t ring_size)
{
	proto_init(m, PROTO_WELCOME);
	m->ring_size = ring_size;
	m->region_size = REGION_HDR_SIZE + ring_size;
}

void proto_reject(struct proto_msg *m, uint32_t reason)
{
	proto_init(m, PROTO_REJECT);
	m->status = reason;
}

int proto_ring_size_ok(uint32_t size)
{
	return size >= EVSHM_RING_MIN && size <= EVSHM_RING_MAX &&
	       (size & (size - 1)) == 0;
}

int proto_reject_errno(uint32_t reason)
{
	switch (reason) {
	case PROTO_REJ_VERSION: return -EPROTONOSUPPORT;
	case PROTO_REJ_RING: return -EFBIG;
	case PROTO_REJ_FULL: return -EUSERS;
	case PROTO_REJ_DENIED: return -EACCES;
	default: return -EPROTO;
	}
}

uint32_t proto_errno_reject(int err)
{
	switch (err) {
	case -EPROTONOSUPPORT: return PROTO_REJ_VERSION;
	case -EFBIG: return PROTO_REJ_RING;
	case -EUSERS: return PROTO_REJ_FULL;
	case -EACCES: return PROTO_REJ_DENIED;
	default: return PROTO_REJ_INVALID;
	}
}

int proto_parse(const void *buf, size_t len, enum proto_type want,
		struct proto_msg *m)
{
	/* A later minor version may append fields: take the first 32 bytes. */
	if (len < sizeof(*m))
		return -EPROTO;
	memcpy(m, buf, sizeof(*m));
	if (m->magic != PROTO_MAGIC)
		return -EPROTO;
	if (m->version != PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (m->type == PROTO_REJECT && want == PROTO_WELCOME)
		return proto_reject_errno(m->status);
	if (m->type != want || m->status != 0)
		return -EPROTO;
	if (!proto_ring_size_ok(m->ring_size) ||
	    m->region_size != REGION_HDR_SIZE + m->ring_size)
		return -EPROTO;
	if (want == PROTO_HELLO) {
		if (m->peer_ring_size && !proto_ring_size_ok(m->peer_ring_size))
			return -EPROTO;
	} else if (m->peer_ring_size) {
		return -EPROTO;
	}
	return 0;
}

void proto_fds(struct proto_fds *m, uint32_t nfds, uint64_t seq)
{
	memset(m, 0, sizeof(*m));
	m->magic = PROTO_MAGIC;
	m->version = PROTO_VERSION;
	m->type = PROTO_FDS;
	m->nfds = nfds;
	m->seq = seq;
}

int proto_parse_fds(const void *buf, size_t len, uint32_t nfds, uint64_t seq)
{
	struct proto_fds m;

	if (len < sizeof(m))
		return -EPROTO;
	memcpy(&m, buf, sizeof(m));
	if (m.magic != PROTO_MAGIC || m.version != PROTO_VERSION ||
	    m.type != PROTO_FDS || m.nfds != nfds || m.reserved || m.seq != seq)
		return -EPROTO;
	return 0;
}
