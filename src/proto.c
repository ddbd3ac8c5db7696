/* SPDX-License-Identifier: MIT */
#include "proto.h"

#include <errno.h>
#include <string.h>

#include "err.h"
#include "evshm.h"
#include "region.h"

static void proto_init(struct proto_msg *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->magic = PROTO_MAGIC;
	m->version = PROTO_VERSION;
	m->type = type;
}

void proto_ready(struct proto_msg *m, uint32_t kind, uint32_t features,
		 uint32_t max_ring, uint64_t policy,
		 const uint8_t id[PROTO_ID_SIZE])
{
	proto_init(m, PROTO_READY);
	if (id)
		memcpy(m->id, id, PROTO_ID_SIZE);
	m->kind = kind;
	m->features = features;
	m->peer_ring_size = max_ring;
	m->param = policy;
}

void proto_hello(struct proto_msg *m, uint32_t kind, uint32_t features,
		 uint32_t ring_size, uint32_t peer_ring_size,
		 const uint8_t id[PROTO_ID_SIZE], uint64_t history)
{
	proto_init(m, PROTO_HELLO);
	m->kind = kind;
	m->features = features;
	m->ring_size = ring_size;
	m->peer_ring_size = peer_ring_size;
	m->region_size = REGION_HDR_SIZE + ring_size;
	memcpy(m->id, id, PROTO_ID_SIZE);
	m->param = history;
}

void proto_welcome(struct proto_msg *m, uint32_t kind, uint32_t features,
		   uint32_t ring_size, const uint8_t id[PROTO_ID_SIZE],
		   uint64_t start, uint64_t start_seq)
{
	proto_init(m, PROTO_WELCOME);
	m->kind = kind;
	m->features = features;
	m->ring_size = ring_size;
	m->region_size = REGION_HDR_SIZE + ring_size;
	memcpy(m->id, id, PROTO_ID_SIZE);
	m->param = start;
	m->param2 = start_seq;
}

void proto_reject(struct proto_msg *m, uint32_t reason)
{
	proto_init(m, PROTO_REJECT);
	m->status = reason;
}

void proto_drop(struct proto_msg *m, uint32_t reason)
{
	proto_init(m, PROTO_DROP);
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

static int zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The fields each type uses; every other one must be 0. */
static int parse_body(const struct proto_msg *m)
{
	int chan = m->kind == PROTO_KIND_CHAN;
	int topic = m->kind == PROTO_KIND_TOPIC;

	switch (m->type) {
	case PROTO_READY:
		if ((!chan && !topic) || m->status || m->ring_size ||
		    m->region_size || (chan && !zero(m->id, sizeof(m->id))) ||
		    m->param2)
			return ERR_PROTO(HS_FIELDS);
		if (!proto_ring_size_ok(m->peer_ring_size))
			return ERR_PROTO(HS_FIELDS);
		if (chan ? m->param != 0 :
			   m->param != PROTO_POLICY_RELIABLE &&
				   m->param != PROTO_POLICY_LATEST)
			return ERR_PROTO(HS_FIELDS);
		return 0;
	case PROTO_HELLO:
		if ((!chan && !topic) || m->status || m->param2)
			return ERR_PROTO(HS_FIELDS);
		if (m->region_size != REGION_HDR_SIZE + m->ring_size)
			return ERR_PROTO(HS_FIELDS);
		if (chan)
			return proto_ring_size_ok(m->ring_size) && !m->param &&
					       (!m->peer_ring_size ||
						proto_ring_size_ok(m->peer_ring_size)) ?
				       0 :
				       ERR_PROTO(HS_FIELDS);
		/* A subscriber has no outbound ring. */
		return m->ring_size == 0 && m->peer_ring_size == 0 ?
			       0 :
			       ERR_PROTO(HS_FIELDS);
	case PROTO_WELCOME:
		if ((!chan && !topic) || m->status || m->peer_ring_size ||
		    !proto_ring_size_ok(m->ring_size) ||
		    m->region_size != REGION_HDR_SIZE + m->ring_size)
			return ERR_PROTO(HS_FIELDS);
		if (chan && (m->param || m->param2))
			return ERR_PROTO(HS_FIELDS);
		return 0;
	case PROTO_REJECT:
	case PROTO_DROP:
		if (m->kind || m->features || m->ring_size || m->peer_ring_size ||
		    m->region_size || !zero(m->id, sizeof(m->id)) || m->param ||
		    m->param2)
			return ERR_PROTO(HS_FIELDS);
		return 0;
	default:
		return ERR_PROTO(HS_TYPE);
	}
}

int proto_parse(const void *buf, size_t len, enum proto_type want,
		struct proto_msg *m)
{
	/* Exactly the defined size: a later version would say so in its
	 * version field, not in trailing bytes. */
	if (len != sizeof(*m))
		return ERR_PROTO(HS_SIZE);
	memcpy(m, buf, sizeof(*m)); /* copy, then validate the copy */
	if (m->magic != PROTO_MAGIC)
		return ERR_PROTO(HS_MAGIC);
	if (m->version != PROTO_VERSION) {
		ERR_PROTO(HS_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (parse_body(m) < 0)
		return -EPROTO;
	if (m->type == PROTO_REJECT && (want == PROTO_READY || want == PROTO_WELCOME))
		return proto_reject_errno(m->status);
	if (m->type == PROTO_DROP && want == PROTO_DROP)
		return -ECONNABORTED;
	if (m->type != want)
		return ERR_PROTO(HS_TYPE);
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

	if (len != sizeof(m))
		return ERR_PROTO(FDS_MSG);
	memcpy(&m, buf, sizeof(m));
	if (m.magic != PROTO_MAGIC || m.version != PROTO_VERSION ||
	    m.type != PROTO_FDS || m.nfds != nfds || m.reserved || m.seq != seq)
		return ERR_PROTO(FDS_MSG);
	return 0;
}
