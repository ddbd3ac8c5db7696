/* SPDX-License-Identifier: MIT */
/*
 * peer_ps: one end of a channel or topic for tests/tool/ps_*.sh, which
 * compare what `evshm ps` shows with what each process says of itself.
 * Public API only.
 *
 *   peer_ps server NAME [--ring=R] [--recv=K] [--send=M] [--size=S]
 *   peer_ps client NAME [--ring=R] [--send=N] [--recv=M] [--size=S]
 *   peer_ps pub    NAME [--ring=R] [--subs=J] [--send=N] [--size=S]
 *   peer_ps sub    NAME [--recv=K] [--wait]
 *   common:        [--hold=MS]
 *
 * server: listen, accept one client, receive K messages, then send M.
 * client: connect, send N messages, then receive M.
 * pub:    open a topic, wait for J subscribers, publish N messages.
 * sub:    subscribe, receive K messages.
 * Messages are S bytes (default 100).  Every side then prints its own
 * figures, one "key value" per line (pid, msgs_sent, bytes_sent, msgs_recv,
 * bytes_recv, kicks, sleeps, spins, lost, error, reason), then "ready",
 * and makes no further evshm call: it sleeps --hold ms (default 300000;
 * the test kills it first, and it dies with the test's shell) and exits 0,
 * so that the test looks at a channel that stands still.
 * sub --wait: instead of sleeping, wait in evshm_sub_recv() (never
 * spinning) for a message that does not come, so that it is seen asleep.
 * A receive that fails is reported (error, reason), not fatal: the
 * sticky-error test makes a server fail on purpose.  Exit 1 on any other
 * failure, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evshm.h"
#include "util.h"

#define MEET_MS 10000
#define IO_MS 10000

struct args {
	const char *mode, *name;
	uint64_t ring, send, recv, size, subs, hold;
	bool wait;
};

static uint64_t opt(const char *arg, const char *name, uint64_t dflt)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return strtoull(arg + n + 1, NULL, 0);
	return dflt;
}

static void report(const struct evshm_stats *st, int err, const char *reason)
{
	printf("pid %d\n", (int)getpid());
	printf("msgs_sent %" PRIu64 "\nbytes_sent %" PRIu64 "\n", st->msgs_sent,
	       st->bytes_sent);
	printf("msgs_recv %" PRIu64 "\nbytes_recv %" PRIu64 "\n", st->msgs_recv,
	       st->bytes_recv);
	printf("kicks %" PRIu64 "\nsleeps %" PRIu64 "\nspins %" PRIu64 "\n",
	       st->kicks_sent, st->sleeps, st->spins);
	printf("lost %" PRIu64 "\n", st->lost);
	printf("error %s\n", err ? tu_errname(err) : "none");
	if (reason)
		printf("reason %s\n", reason);
	printf("ready\n");
	fflush(stdout);
}

static void hold(const struct args *a)
{
	struct timespec ts = { .tv_sec = (time_t)(a->hold / 1000),
			       .tv_nsec = (long)(a->hold % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Send or receive @n messages of @a->size bytes; the first error. */
static int xfer(struct evshm_chan *c, uint8_t *buf, const struct args *a,
		uint64_t n, bool recv)
{
	for (uint64_t i = 0; i < n; i++) {
		int res = recv ? evshm_recv(c, buf, a->size, IO_MS)
			       : evshm_send(c, buf, a->size, IO_MS);
		if (res < 0)
			return res;
	}
	return 0;
}

static int run_chan(const struct args *a, uint8_t *buf)
{
	struct evshm_opts o = { .ring_size = (uint32_t)a->ring };
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	struct evshm_stats st;
	bool server = !strcmp(a->mode, "server");
	int res;

	if (server) {
		tu_check_res(evshm_listen(&l, a->name, &o), 0);
		res = evshm_accept(l, &c, MEET_MS);
		evshm_listener_close(l);
	} else {
		tu_check_res(tu_wait_listening(a->name, MEET_MS), 0);
		res = evshm_connect(&c, a->name, &o, MEET_MS);
	}
	tu_check_res(res, 0);
	/* The server receives first, the client sends first. */
	res = xfer(c, buf, a, server ? a->recv : a->send, server);
	if (res == 0)
		res = xfer(c, buf, a, server ? a->send : a->recv, !server);
	if (res < 0 && res != -EPROTO)
		tu_check_res(res, 0);
	evshm_stats(c, &st);
	report(&st, res, evshm_error_reason(c));
	hold(a);
	evshm_close(c);
	return 0;
}

static int run_pub(const struct args *a, uint8_t *buf)
{
	struct evshm_opts o = { .ring_size = (uint32_t)a->ring };
	struct evshm_pub_stats ps;
	struct evshm_stats st;
	struct evshm_pub *p;
	uint64_t deadline = tu_now_ms() + MEET_MS;
	int n;

	tu_check_res(evshm_pub_open(&p, a->name, &o), 0);
	while ((n = evshm_pub_serve(p, 100)) < (int)a->subs) {
		tu_check(n >= 0);
		tu_check(tu_now_ms() < deadline);
	}
	for (uint64_t i = 0; i < a->send; i++)
		tu_check_res(evshm_pub_send(p, buf, a->size, IO_MS), 0);
	evshm_pub_stats(p, &ps);
	st = (struct evshm_stats){ .msgs_sent = ps.msgs_sent,
				   .bytes_sent = ps.bytes_sent,
				   .kicks_sent = ps.kicks_sent,
				   .sleeps = ps.sleeps };
	report(&st, 0, NULL);
	hold(a);
	evshm_pub_close(p);
	return 0;
}

static int run_sub(const struct args *a, uint8_t *buf)
{
	struct evshm_opts o = { .spin_ns = EVSHM_SPIN_NEVER };
	struct evshm_stats st;
	struct evshm_sub *s;
	int res = 0;

	tu_check_res(tu_wait_listening(a->name, MEET_MS), 0);
	tu_check_res(evshm_sub_open(&s, a->name, &o, MEET_MS), 0);
	/* Joined: the test waits for this line before it lets the
	 * publisher publish, to know every subscriber sees every message. */
	printf("joined\n");
	fflush(stdout);
	for (uint64_t i = 0; i < a->recv && res >= 0; i++)
		res = evshm_sub_recv(s, buf, a->size, IO_MS);
	if (res < 0 && res != -EPROTO)
		tu_check_res(res, 0);
	evshm_sub_stats(s, &st);
	report(&st, res < 0 ? res : 0, evshm_sub_error_reason(s));
	if (a->wait) {
		/* Nothing more comes: asleep in the library until the
		 * publisher goes (-EPIPE) or the hold ends. */
		res = evshm_sub_recv(s, buf, a->size, (int)a->hold);
		tu_check(res == -EPIPE || res == -ETIMEDOUT);
	} else {
		hold(a);
	}
	evshm_sub_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { .ring = 1 << 16, .size = 100, .subs = 1,
			  .hold = 300000 };
	uint8_t *buf;
	int res;

	if (argc < 3) {
		fprintf(stderr, "usage: peer_ps server|client|pub|sub NAME "
				"[--ring=R] [--send=N] [--recv=K] [--size=S] "
				"[--subs=J] [--wait] [--hold=MS]\n");
		return 2;
	}
	tu_check_res(tu_die_with_parent(), 0);
	a.mode = argv[1];
	a.name = argv[2];
	for (int i = 3; i < argc; i++) {
		a.ring = opt(argv[i], "--ring", a.ring);
		a.send = opt(argv[i], "--send", a.send);
		a.recv = opt(argv[i], "--recv", a.recv);
		a.size = opt(argv[i], "--size", a.size);
		a.subs = opt(argv[i], "--subs", a.subs);
		a.hold = opt(argv[i], "--hold", a.hold);
		if (!strcmp(argv[i], "--wait"))
			a.wait = true;
	}
	buf = calloc(1, a.size ? a.size : 1);
	tu_check(buf != NULL);
	memset(buf, 0x5a, a.size);
	if (!strcmp(a.mode, "server") || !strcmp(a.mode, "client"))
		res = run_chan(&a, buf);
	else if (!strcmp(a.mode, "pub"))
		res = run_pub(&a, buf);
	else if (!strcmp(a.mode, "sub"))
		res = run_sub(&a, buf);
	else
		res = 2;
	free(buf);
	return res;
}
