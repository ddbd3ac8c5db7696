/* SPDX-License-Identifier: MIT */
#include "opts.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

int opts_resolve(struct evshm_opts *o, const struct evshm_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < sizeof(o->reserved_) / sizeof(o->reserved_[0]); i++)
		if (o->reserved_[i])
			return -EINVAL;
	if (!o->ring_size)
		o->ring_size = EVSHM_RING_DEFAULT;
	if (!o->max_ring_size)
		o->max_ring_size = OPTS_MAX_RING_DEFAULT;
	if (!o->handshake_timeout_ms)
		o->handshake_timeout_ms = OPTS_HANDSHAKE_TIMEOUT_MS;
	if (!o->stall_timeout_ms)
		o->stall_timeout_ms = OPTS_STALL_TIMEOUT_MS;
	if (!o->policy)
		o->policy = EVSHM_RELIABLE;
	if (!proto_ring_size_ok(o->ring_size) ||
	    (o->peer_ring_size && !proto_ring_size_ok(o->peer_ring_size)) ||
	    !proto_ring_size_ok(o->max_ring_size) ||
	    o->handshake_timeout_ms < 0 || o->stall_timeout_ms < 0 ||
	    (o->mode & ~07777u) || (o->flags & ~(uint32_t)EVSHM_OPT_FDS) ||
	    (o->policy != EVSHM_RELIABLE && o->policy != EVSHM_LATEST))
		return -EINVAL;
	return 0;
}

int opts_authorize(const struct evshm_opts *o, bool server, pid_t pid,
		   uid_t uid, gid_t gid)
{
	if (o->authorize) {
		int res = o->authorize(o->authorize_arg, pid, uid, gid);
		return res > 0 ? -EACCES : res;
	}
	if (uid == geteuid() || (!server && uid == 0))
		return 0;
	return -EACCES;
}
