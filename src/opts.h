/* SPDX-License-Identifier: MIT */
/*
 * opts.h: struct evshm_opts resolved to its defaults, and the access
 * policy both ends apply to the other (SO_PEERCRED, then authorize).
 */
#ifndef EVSHM_OPTS_H
#define EVSHM_OPTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "evshm.h"

#define OPTS_HANDSHAKE_TIMEOUT_MS 2000
#define OPTS_MAX_RING_DEFAULT (64u << 20)
#define OPTS_STALL_TIMEOUT_MS 1000

/* Copy @in (NULL: all defaults) into @o with every zero replaced by its
 * default.  -EINVAL for a value out of range or a reserved field set. */
int opts_resolve(struct evshm_opts *o, const struct evshm_opts *in);

/*
 * May the peer with these credentials be at the other end?  The
 * authorize callback if there is one (a positive return counts as
 * -EACCES); otherwise a server admits its own effective uid, and a client
 * a server of its own effective uid or root (anyone can bind an abstract
 * name first: without this a squatter would get our data).
 */
int opts_authorize(const struct evshm_opts *o, bool server, pid_t pid,
		   uid_t uid, gid_t gid);

#endif
