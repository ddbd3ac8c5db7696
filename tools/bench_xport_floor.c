/* SPDX-License-Identifier: MIT */
/*
 * bench_xport_floor.c: the floors of the machine, measured between the
 * same two processes as the transports, each the least that a transport
 * of its kind could do:
 *
 *   cache line   spin ping-pong on one shared 64-bit word: the floor of
 *                a round trip by spinning (two cache-line transfers).
 *
 * The shared memory is a memfd that side A creates and passes to B with
 * the spec.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_xport.h"

/* --- spinning, bounded -------------------------------------------------------- */

struct spin {
	uint64_t end;
	unsigned n;
};

/* Call after each look that found nothing: 0 to look again, -ETIMEDOUT
 * once BENCH_WAIT_MS have passed (the clock is read every 4096 looks). */
static inline int spin_more(struct spin *sp)
{
	sys_cpu_relax();
	if (++sp->n & 4095)
		return 0;
	uint64_t now = sys_now_ns();
	if (!sp->end)
		sp->end = now + (uint64_t)BENCH_WAIT_MS * 1000000u;
	else if (now > sp->end)
		return -ETIMEDOUT;
	return 0;
}

/* --- shared memory ------------------------------------------------------------ */

/* Side A: a memfd of @size bytes mapped at *map, its descriptor for B. */
static int shm_open_a(size_t size, void **map, int fds[SYS_MAX_FDS],
		      unsigned *nfds)
{
	int fd, res = sys_memfd("evshm-bench-floor", size, &fd);

	*nfds = 0;
	if (res < 0)
		return res;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED) {
		res = -errno;
		*map = NULL;
		close(fd);
		return res;
	}
	fds[0] = fd; /* the caller sends it to B, then closes it */
	*nfds = 1;
	return 0;
}

/* Side B: map the memfd that came with the spec, if it is as large as
 * expected (a smaller one would SIGBUS us). */
static int shm_open_b(size_t size, void **map, const int *fds, unsigned nfds)
{
	struct stat sb;

	if (nfds != 1 || fstat(fds[0], &sb) < 0 || sb.st_size < (off_t)size)
		return -EPROTO;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (*map == MAP_FAILED) {
		*map = NULL;
		return -errno;
	}
	return 0;
}

/* --- the cache line ------------------------------------------------------------ */

/* Both sides write the one word: side A even values, side B odd ones,
 * 2v + side, so that each can tell the other's latest value from its own. */
struct line {
	alignas(64) _Atomic uint64_t v;
};

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the line must be lock-free");

#define LINE_MAP 4096u

struct line_link {
	struct line *ln;
	uint64_t last;  /* the other side's value we saw last */
};

static int line_new(struct link *l)
{
	l->priv = calloc(1, sizeof(struct line_link));
	return l->priv ? 0 : -ENOMEM;
}

static int line_open_a(struct link *l, const struct bench_spec *s,
		       int fds[SYS_MAX_FDS], unsigned *nfds)
{
	struct line_link *ll;
	int res = line_new(l);

	(void)s;
	*nfds = 0;
	if (res < 0)
		return res;
	ll = l->priv;
	return shm_open_a(LINE_MAP, (void **)&ll->ln, fds, nfds);
}

static int line_open_b(struct link *l, const struct bench_spec *s,
		       const int *fds, unsigned nfds)
{
	struct line_link *ll;
	int res = line_new(l);

	(void)s;
	if (res < 0)
		return res;
	ll = l->priv;
	return shm_open_b(LINE_MAP, (void **)&ll->ln, fds, nfds);
}

static void line_close(struct link *l)
{
	struct line_link *ll = l->priv;

	if (!ll)
		return;
	if (ll->ln)
		munmap(ll->ln, LINE_MAP);
	free(ll);
	l->priv = NULL;
}

static int line_send(struct link *l, uint64_t v)
{
	struct line_link *ll = l->priv;

	/* Release: pairs with the acquire load of the other side. */
	atomic_store_explicit(&ll->ln->v, 2 * v + !l->a, memory_order_release);
	return 0;
}

static int line_recv(struct link *l, uint64_t *v)
{
	struct line_link *ll = l->priv;
	uint64_t theirs = l->a, x;
	struct spin sp = { 0 };

	for (;;) {
		x = atomic_load_explicit(&ll->ln->v, memory_order_acquire);
		if ((x & 1) == theirs && x != ll->last)
			break;
		if (spin_more(&sp) < 0)
			return -ETIMEDOUT;
	}
	ll->last = x;
	*v = x >> 1;
	return 0;
}

const struct xport xport_line = {
	.name = "cache line",
	.open_a = line_open_a, .open_b = line_open_b, .close = line_close,
	.hop_send = line_send, .hop_recv = line_recv,
};
