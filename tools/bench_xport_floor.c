/* SPDX-License-Identifier: MIT */
/*
 * bench_xport_floor.c: the floors of the machine, measured between the
 * same two processes as the transports, each the least that a transport
 * of its kind could do:
 *
 *   cache line   spin ping-pong on one shared 64-bit word: the floor of
 *                a round trip by spinning (two cache-line transfers);
 *   eventfd      blocking ping-pong with write(2) and read(2) on two
 *                eventfds: the floor of a round trip that sleeps (two
 *                wakeups, four system calls);
 *   slot ring    a minimal spinning single-producer single-consumer ring
 *                of 64-byte slots, one per direction, carrying the same
 *                payload as every transport: the floor of streaming small
 *                messages through shared memory with one publication per
 *                message.
 *   framed ring  the slot ring with the bytes a framed message needs:
 *                each message behind a 16-byte header (its length), the
 *                records packed at 16-byte alignment as evshm packs its
 *                own (a 64-byte message takes 80 bytes, not one line):
 *                what the framing alone costs, apart from the protocol.
 *
 * The shared memory is a memfd, the eventfds are eventfds, that side A
 * creates and passes to B with the spec.  The floors' memory is mapped
 * with MAP_POPULATE: a floor pays no page faults.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_xport.h"

/* --- spinning, bounded -------------------------------------------------- */

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

/* --- shared memory ------------------------------------------------------ */

/* Side A: a memfd of @size bytes mapped at *map, its descriptor for B. */
static int shm_open_a(size_t size, void **map, int fds[SYS_MAX_FDS],
		      unsigned *nfds)
{
	int fd, res = sys_memfd("evshm-bench-floor", size, &fd);

	*nfds = 0;
	if (res < 0)
		return res;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		    fd, 0);
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
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		    fds[0], 0);
	if (*map == MAP_FAILED) {
		*map = NULL;
		return -errno;
	}
	return 0;
}

/* --- the cache line ----------------------------------------------------- */

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

/* --- eventfds ----------------------------------------------------------- */

/* A -> B and B -> A, each a blocking eventfd: a hop writes the value,
 * which wakes the other side sleeping in read() on it. */
struct efd_link {
	int out, in;
	bool own;       /* side A made them; B's are the caller's */
};

static int efd_new(struct link *l)
{
	struct efd_link *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->out = e->in = -1;
	l->priv = e;
	return 0;
}

static int efd_open_a(struct link *l, const struct bench_spec *s,
		      int fds[SYS_MAX_FDS], unsigned *nfds)
{
	int res = efd_new(l);
	struct efd_link *e = l->priv;

	(void)s;
	*nfds = 0;
	if (res < 0)
		return res;
	e->own = true;
	if ((res = sys_eventfd(&e->out)) < 0 || (res = sys_eventfd(&e->in)) < 0)
		return res;
	/* B's copies; the caller closes them once sent. */
	fds[0] = fcntl(e->out, F_DUPFD_CLOEXEC, 0);
	if (fds[0] < 0)
		return -errno;
	fds[1] = fcntl(e->in, F_DUPFD_CLOEXEC, 0);
	if (fds[1] < 0) {
		res = -errno;
		close(fds[0]);
		return res;
	}
	*nfds = 2;
	return 0;
}

/* Is @fd an eventfd, in blocking mode (what came with the spec is
 * checked like anything else from the other process)? */
static int efd_check(int fd)
{
	char path[64], target[64];
	ssize_t n;
	int fl;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:[eventfd]"))
		return -EPROTO;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int efd_open_b(struct link *l, const struct bench_spec *s,
		      const int *fds, unsigned nfds)
{
	int res = efd_new(l);
	struct efd_link *e = l->priv;

	(void)s;
	if (res < 0)
		return res;
	if (nfds != 2)
		return -EPROTO;
	if ((res = efd_check(fds[0])) < 0 || (res = efd_check(fds[1])) < 0)
		return res;
	e->in = fds[0];  /* A's out */
	e->out = fds[1]; /* A's in */
	return 0;
}

static void efd_close(struct link *l)
{
	struct efd_link *e = l->priv;

	if (!e)
		return;
	if (e->own) {
		sys_close(e->out);
		sys_close(e->in);
	}
	free(e);
	l->priv = NULL;
}

static int efd_send(struct link *l, uint64_t v)
{
	struct efd_link *e = l->priv;
	ssize_t n;

	do
		n = write(e->out, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(v) ? 0 : n < 0 ? -errno : -EPROTO;
}

/* Blocking, like the floor it is: the wait is bounded by the test's
 * watchdog, not by a poll() that would add a system call per hop. */
static int efd_recv(struct link *l, uint64_t *v)
{
	struct efd_link *e = l->priv;
	ssize_t n;

	do
		n = read(e->in, v, sizeof(*v));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*v) ? 0 : n < 0 ? -errno : -EPROTO;
}

const struct xport xport_eventfd = {
	.name = "eventfd",
	.open_a = efd_open_a, .open_b = efd_open_b, .close = efd_close,
	.hop_send = efd_send, .hop_recv = efd_recv,
};

/* --- the slot ring ------------------------------------------------------ */

/*
 * One direction: two free-running 64-bit indices on lines of their own,
 * then 2^k slots of the message size rounded up to 64 bytes.  The
 * producer writes a slot, then publishes tail (release); the consumer
 * reads tail (acquire), then the slot, then publishes head (release),
 * which the producer reads (acquire) before it writes that slot again.
 * Each side keeps the other's index cached and reads it again only when
 * the cached one says full / empty: the least traffic a ring with one
 * publication per message can have.
 */
struct slot_hdr {
	alignas(64) _Atomic uint64_t head;   /* the consumer's */
	alignas(64) _Atomic uint64_t tail;   /* the producer's */
};

struct slot_dir {
	struct slot_hdr *h;
	uint8_t *data;
	uint64_t mine;      /* tail (producing) or head (consuming) */
	uint64_t theirs;    /* the other index, as last read */
};

struct slot_link {
	void *map;
	size_t len, slot;
	uint64_t nslots;    /* a power of two */
	size_t off;         /* the payload's offset in its slot: 0, or
			       FRAME_HDR for the framed ring */
	struct slot_dir tx, rx;
};

#define FRAME_HDR 16u   /* { u32 len; u32 flags; u64 unused; }, as evshm's */

#define SLOT_HDRS (2 * sizeof(struct slot_hdr))

/* The geometry for @s: the slot size, the slots per direction (the
 * largest power of two whose slots fit s->ring), the mapping's size. */
static int slot_geometry(const struct bench_spec *s, struct slot_link *sl)
{
	uint64_t ring = s->ring ? s->ring : EVSHM_RING_DEFAULT;

	if (s->xport == BX_FRAMED) {
		sl->off = FRAME_HDR;
		sl->slot = (FRAME_HDR + (size_t)s->size + 15) & ~(size_t)15;
	} else {
		sl->slot = ((size_t)s->size + 63) & ~(size_t)63;
	}
	if (ring < EVSHM_RING_MIN || ring > EVSHM_RING_MAX ||
	    sl->slot > ring / 2)
		return -EINVAL;
	for (sl->nslots = 2; sl->nslots * 2 * sl->slot <= ring;)
		sl->nslots *= 2;
	sl->len = SLOT_HDRS + 2 * sl->nslots * sl->slot;
	return 0;
}

/* Direction 0 is A -> B, direction 1 is B -> A. */
static void slot_dirs(struct link *l, struct slot_link *sl)
{
	struct slot_hdr *h = sl->map;
	uint8_t *data = (uint8_t *)sl->map + SLOT_HDRS;
	size_t bytes = sl->nslots * sl->slot;
	int tx = l->a ? 0 : 1;

	sl->tx = (struct slot_dir){ .h = &h[tx], .data = data + tx * bytes };
	sl->rx = (struct slot_dir){ .h = &h[!tx], .data = data + !tx * bytes };
}

static int slot_open(struct link *l, const struct bench_spec *s,
		     struct slot_link **out)
{
	struct slot_link *sl = calloc(1, sizeof(*sl));

	if (!sl)
		return -ENOMEM;
	l->priv = sl;
	*out = sl;
	return slot_geometry(s, sl);
}

static int slot_open_a(struct link *l, const struct bench_spec *s,
		       int fds[SYS_MAX_FDS], unsigned *nfds)
{
	struct slot_link *sl;
	int res = slot_open(l, s, &sl);

	*nfds = 0;
	if (res < 0 || (res = shm_open_a(sl->len, &sl->map, fds, nfds)) < 0)
		return res;
	slot_dirs(l, sl);
	return 0;
}

static int slot_open_b(struct link *l, const struct bench_spec *s,
		       const int *fds, unsigned nfds)
{
	struct slot_link *sl;
	int res = slot_open(l, s, &sl);

	if (res < 0 || (res = shm_open_b(sl->len, &sl->map, fds, nfds)) < 0)
		return res;
	slot_dirs(l, sl);
	return 0;
}

static void slot_close(struct link *l)
{
	struct slot_link *sl = l->priv;

	if (!sl)
		return;
	if (sl->map)
		munmap(sl->map, sl->len);
	free(sl);
	l->priv = NULL;
}

/* The slot the index @d->mine points at. */
static uint8_t *slot_at(const struct slot_link *sl, const struct slot_dir *d)
{
	return d->data + (d->mine & (sl->nslots - 1)) * sl->slot;
}

static int slot_tx_get(struct link *l, void **p)
{
	struct slot_link *sl = l->priv;
	struct slot_dir *d = &sl->tx;
	struct spin sp = { 0 };

	while (d->mine - d->theirs >= sl->nslots) {
		/* Acquire: the consumer is done with the slot we reuse. */
		d->theirs = atomic_load_explicit(&d->h->head,
						 memory_order_acquire);
		if (d->mine - d->theirs > sl->nslots)
			return -EPROTO; /* an index no honest peer writes */
		if (d->mine - d->theirs == sl->nslots &&
		    spin_more(&sp) < 0)
			return -ETIMEDOUT;
	}
	*p = slot_at(sl, d) + sl->off;
	return 0;
}

static int slot_tx_put(struct link *l)
{
	struct slot_link *sl = l->priv;
	struct slot_dir *d = &sl->tx;

	if (sl->off) {
		/* The header: written with the message, published with it. */
		uint32_t *h = (uint32_t *)(void *)slot_at(sl, d);
		h[0] = (uint32_t)l->size;
		h[1] = 0;
	}

	/* Release: the slot's bytes before the index that publishes them. */
	atomic_store_explicit(&d->h->tail, ++d->mine, memory_order_release);
	return 0;
}

static int slot_rx_get(struct link *l, const void **p, size_t *len)
{
	struct slot_link *sl = l->priv;
	struct slot_dir *d = &sl->rx;
	struct spin sp = { 0 };

	while (d->mine == d->theirs) {
		/* Acquire: pairs with the producer's release of tail. */
		d->theirs = atomic_load_explicit(&d->h->tail,
						 memory_order_acquire);
		if (d->theirs - d->mine > sl->nslots)
			return -EPROTO;
		if (d->mine == d->theirs && spin_more(&sp) < 0)
			return -ETIMEDOUT;
	}
	const uint8_t *slot = slot_at(sl, d);
	/* Framed: the length comes from the header, read once. */
	*len = sl->off ? *(const volatile uint32_t *)(const void *)slot : l->size;
	*p = slot + sl->off;
	return 0;
}

static int slot_rx_put(struct link *l)
{
	struct slot_link *sl = l->priv;
	struct slot_dir *d = &sl->rx;

	/* Release: we are done reading the slot before the producer may
	 * write it again. */
	atomic_store_explicit(&d->h->head, ++d->mine, memory_order_release);
	return 0;
}

const struct xport xport_slot_ring = {
	.name = "slot ring",
	.open_a = slot_open_a, .open_b = slot_open_b, .close = slot_close,
	.tx_get = slot_tx_get, .tx_put = slot_tx_put,
	.rx_get = slot_rx_get, .rx_put = slot_rx_put,
};

const struct xport xport_framed_ring = {
	.name = "framed ring",
	.open_a = slot_open_a, .open_b = slot_open_b, .close = slot_close,
	.tx_get = slot_tx_get, .tx_put = slot_tx_put,
	.rx_get = slot_rx_get, .rx_put = slot_rx_put,
};
