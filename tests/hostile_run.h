/* SPDX-License-Identifier: MIT */
/*
 * hostile_run.h: a channel to peer_hostile running a mode after a correct
 * handshake, for the tests that use it (test_hostile, test_trust): we
 * accept (the peer is the client) or connect (the peer is the server).
 */
#ifndef EVSHM_TEST_HOSTILE_RUN_H
#define EVSHM_TEST_HOSTILE_RUN_H

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include "evshm.h"
#include "util.h"

#define HOSTILE_PEER TU_PEER("peer_hostile")

/* The peer must exit 0: its own checks passed. */
static inline void hostile_reap(pid_t pid, const char *mode)
{
	int status;

	tu_assert_res(tu_wait(pid, 60000, &status), 0);
	if (tu_exit_code(status) != 0)
		fail_msg("peer_hostile %s exited with %d", mode,
			 tu_exit_code(status));
}

struct hostile_run {
	pid_t pid;
	const char *mode;
	char name[108];
	struct evshm_listener *l;
	struct evshm_chan *c;
	int fds0;       /* our descriptors before it */
};

static inline void hostile_up(struct hostile_run *r, bool peer_is_server,
			      const char *mode, const struct evshm_opts *o)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->fds0 = tu_count_fds();
	tu_unique_name(r->name, sizeof(r->name),
		       peer_is_server ? "hostile-cli" : "hostile-srv", true);
	char *argv[] = { "peer_hostile", peer_is_server ? "server" : "client",
			 r->name, (char *)mode, NULL };
	if (peer_is_server) {
		tu_assert_res(tu_spawn(&r->pid, HOSTILE_PEER, argv), 0);
		tu_assert_res(tu_connect_retry(&r->c, r->name, o, 10000, NULL), 0);
	} else {
		tu_assert_res(evshm_listen(&r->l, r->name, o), 0);
		tu_assert_res(tu_spawn(&r->pid, HOSTILE_PEER, argv), 0);
		tu_assert_res(evshm_accept(r->l, &r->c, 10000), 0);
	}
}

static inline void hostile_down(struct hostile_run *r)
{
	evshm_close(r->c);
	evshm_listener_close(r->l);
	hostile_reap(r->pid, r->mode);
}

#endif
