/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c: one side of one `evshm bench` test.
 *
 * Every transport is driven through the same four steps, so that the loops
 * (round trip, streaming) are shared and each transport does exactly the
 * work its API asks for:
 *   tx_get   where to write the next message (a private buffer, or for
 *            evshm zero copy a reservation in the ring);
 *   tx_put   send it (write a frame, send, evshm_send, or evshm_commit);
 *   rx_get   the next message (read frames from a buffer refilled with
 *            large reads, recv, evshm_recv, or evshm_peek);
 *   rx_put   done with it (evshm_release; nothing for the others).
 * Stream sockets and pipes carry frames: an 8-byte length, then the
 * payload; reads fill a buffer and frames are cut from it, handling partial
 * reads and writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <evshm.h>

#include "bench.h"
#include "endpoint.h"
#include "os.h"
#include "tool.h"
#include "bell.h"

/* Longest any single wait may take before the test is declared hung. */
#define WAIT_MS 30000
/* Frame header of the byte-stream transports. */
#define FRAME_HDR 8u
/* Streaming: look at the clock every this many messages (small ones). */
#define CLOCK_EVERY 16

struct link {
	enum bench_xport x;
	int rfd, wfd;           /* sockets and pipes */
	struct evshm_chan *c;
	/* send side */
	uint8_t *wbuf;          /* FRAME_HDR + payload, 8-aligned payload */
	/* receive side */
	uint8_t *rbuf;
	size_t rcap, r, w;      /* frames: unread bytes are rbuf[r, w) */
	size_t size;            /* payload bytes of every message */
	char *err;
};

static int fail(char *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, BENCH_ERR_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *xname(enum bench_xport x)
{
	static const char *const n[] = { "unix-stream", "unix-seqpacket",
					 "pipe", "evshm", "evshm-zc", "floor" };
	return n[x];
}

/* --- plain descriptors ------------------------------------------------------ */

/* Make sure rbuf[r, w) holds at least @need bytes. */
static int rd_fill(struct link *l, size_t need)
{
	if (l->r == l->w)
		l->r = l->w = 0;
	if (l->r + need > l->rcap) {
		memmove(l->rbuf, l->rbuf + l->r, l->w - l->r);
		l->w -= l->r;
		l->r = 0;
	}
	while (l->w - l->r < need) {
		ssize_t n = tool_read(l->rfd, l->rbuf + l->w, l->rcap - l->w);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		l->w += (size_t)n;
	}
	return 0;
}

/* --- the four steps --------------------------------------------------------- */

static int tx_get(struct link *l, void **p)
{
	switch (l->x) {
	case BX_EVSHM_ZC: {
		int res = evshm_reserve(l->c, l->size, p, WAIT_MS);
		return res < 0 ? fail(l->err, "evshm_reserve: %s",
				      evshm_strerror(res)) : 0;
	}
	default:
		*p = l->wbuf + FRAME_HDR;
		return 0;
	}
}

static int tx_put(struct link *l)
{
	int res;

	switch (l->x) {
	case BX_STREAM:
	case BX_PIPE:
		res = tool_write_all(l->wfd, l->wbuf, FRAME_HDR + l->size);
		break;
	case BX_SEQPACKET: {
		ssize_t n;
		do
			n = send(l->wfd, l->wbuf + FRAME_HDR, l->size,
				 MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		res = n < 0 ? -errno : n == (ssize_t)l->size ? 0 : -EPROTO;
		break;
	}
	case BX_EVSHM:
		res = evshm_send(l->c, l->wbuf + FRAME_HDR, l->size, WAIT_MS);
		break;
	case BX_EVSHM_ZC:
		res = evshm_commit(l->c, l->size);
		break;
	default:
		res = -EINVAL;
	}
	return res < 0 ? fail(l->err, "sending: %s", evshm_strerror(res)) : 0;
}

/* The next message: *p and *len; -EPIPE at end of file. */
static int rx_get(struct link *l, const void **p, size_t *len)
{
	int res;

	switch (l->x) {
	case BX_STREAM:
	case BX_PIPE: {
		uint64_t flen;
		res = rd_fill(l, FRAME_HDR);
		if (res < 0)
			break;
		memcpy(&flen, l->rbuf + l->r, sizeof(flen));
		if (flen > l->rcap - FRAME_HDR) {
			res = -EPROTO;
			break;
		}
		res = rd_fill(l, FRAME_HDR + (size_t)flen);
		if (res < 0)
			break;
		*p = l->rbuf + l->r + FRAME_HDR;
		*len = (size_t)flen;
		l->r += FRAME_HDR + (size_t)flen;
		return 0;
	}
	case BX_SEQPACKET: {
		ssize_t n;
		do
			n = recv(l->rfd, l->rbuf, l->rcap, MSG_TRUNC);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			res = -errno;
			break;
		}
		if (n == 0) {
			res = -EPIPE;
			break;
		}
		if ((size_t)n > l->rcap) {
			res = -EMSGSIZE;
			break;
		}
		*p = l->rbuf;
		*len = (size_t)n;
		return 0;
	}
	case BX_EVSHM:
		res = evshm_recv(l->c, l->rbuf, l->rcap, WAIT_MS);
		if (res >= 0) {
			*p = l->rbuf;
			*len = (size_t)res;
			return 0;
		}
		break;
	case BX_EVSHM_ZC:
		res = evshm_peek(l->c, p, len, WAIT_MS);
		if (res == 0)
			return 0;
		break;
	default:
		res = -EINVAL;
	}
	if (res == -EPIPE)
		return -EPIPE;
	return fail(l->err, "receiving: %s", evshm_strerror(res));
}

static int rx_put(struct link *l)
{
	if (l->x != BX_EVSHM_ZC)
		return 0;
	int res = evshm_release(l->c);
	return res < 0 ? fail(l->err, "evshm_release: %s", evshm_strerror(res))
		       : 0;
}

/* --- setting links up and down ----------------------------------------------- */

static void *alloc_buf(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, n))
		return NULL;
	memset(p, 0, n); /* fault the pages in before the clock runs */
	return p;
}

static int link_bufs(struct link *l, const struct bench_spec *s)
{
	l->size = s->size;
	l->wbuf = alloc_buf(FRAME_HDR + s->size);
	/* Frame readers refill a buffer with large reads: room for several
	 * frames, so that one read() brings many small ones. */
	if (l->x == BX_STREAM || l->x == BX_PIPE)
		l->rcap = 4 * (FRAME_HDR + (size_t)s->size);
	else
		l->rcap = s->size;
	if (l->rcap < (256u << 10) && (l->x == BX_STREAM || l->x == BX_PIPE))
		l->rcap = 256u << 10;
	l->rbuf = alloc_buf(l->rcap);
	if (!l->wbuf || !l->rbuf)
		return fail(l->err, "out of memory");
	uint64_t flen = s->size;
	memcpy(l->wbuf, &flen, sizeof(flen));
	return 0;
}

static void link_close(struct link *l)
{
	evshm_close(l->c);
	if (l->rfd >= 0)
		close(l->rfd);
	if (l->wfd >= 0 && l->wfd != l->rfd)
		close(l->wfd);
	free(l->wbuf);
	free(l->rbuf);
}

static struct evshm_opts evshm_opts_for(const struct bench_spec *s)
{
	struct evshm_opts o = { .ring_size = s->ring, .spin_ns = s->spin_ns,
				.max_ring_size = EVSHM_RING_MAX };
	return o;
}

/* seqpacket: a message must fit the sender's buffer, and a few of them in
 * flight keep the pipeline going; raise SO_SNDBUF to 4 messages when the
 * default is smaller (it cannot carry 1 MiB otherwise). */
static void seqpacket_sndbuf(int fd, uint32_t size)
{
	int cur = 0;
	socklen_t sl = sizeof(cur);
	long want = 4L * ((long)size + 1024);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &sl) == 0 &&
	    cur < want && want < (1L << 30)) {
		int v = (int)want;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
}

static int blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -errno : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -errno : 0;
}

int bench_prep(const struct bench_spec *s, struct bench_prep *p,
	       char err[BENCH_ERR_MAX])
{
	int res = 0;

	memset(p, 0, sizeof(*p));
	p->lfd = p->mine[0] = p->mine[1] = p->theirs[0] = p->theirs[1] = -1;
	if (s->kind == BK_LINE) {
		res = os_memfd("evshm-bench-line", 4096, &p->mine[0]);
		if (res < 0)
			return fail(err, "memfd: %s", strerror(-res));
		p->theirs[0] = p->mine[0];
		p->ntheirs = 1;
		return 0;
	}
	switch (s->xport) {
	case BX_STREAM:
	case BX_SEQPACKET: {
		struct ep_addr a;
		int type = s->xport == BX_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
		if ((res = ep_parse(s->name, &a)) < 0)
			break;
		p->lfd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a.sun, a.len) < 0 ||
		    listen(p->lfd, 1) < 0)
			res = -errno;
		break;
	}
	case BX_PIPE: {
		int ab[2], ba[2]; /* A -> B, B -> A */
		if (pipe2(ab, O_CLOEXEC) < 0)
			return fail(err, "pipe: %s", strerror(errno));
		if (pipe2(ba, O_CLOEXEC) < 0) {
			res = -errno;
			close(ab[0]);
			close(ab[1]);
			break;
		}
		p->mine[0] = ba[0];   /* A reads */
		p->mine[1] = ab[1];   /* A writes */
		p->theirs[0] = ab[0]; /* B reads */
		p->theirs[1] = ba[1]; /* B writes */
		p->ntheirs = 2;
		break;
	}
	case BX_EVSHM:
	case BX_EVSHM_ZC: {
		struct evshm_opts o = evshm_opts_for(s);
		res = evshm_listen(&p->l, s->name, &o);
		break;
	}
	default:
		res = -EINVAL;
	}
	if (res < 0) {
		bench_prep_drop(p);
		return fail(err, "setting up %s at %s: %s", xname(s->xport),
			    s->name, evshm_strerror(res));
	}
	return 0;
}

void bench_prep_drop(struct bench_prep *p)
{
	if (p->lfd >= 0)
		close(p->lfd);
	evshm_listener_close(p->l);
	for (int i = 0; i < 2; i++) {
		if (p->mine[i] >= 0)
			close(p->mine[i]);
		if (p->theirs[i] >= 0 && p->theirs[i] != p->mine[i])
			close(p->theirs[i]);
	}
	memset(p, 0, sizeof(*p));
	p->lfd = p->mine[0] = p->mine[1] = p->theirs[0] = p->theirs[1] = -1;
}

/* Side A: accept B on what bench_prep made. */
static int link_accept(struct link *l, const struct bench_spec *s,
		       struct bench_prep *p)
{
	int res = 0;

	switch (s->xport) {
	case BX_STREAM:
	case BX_SEQPACKET: {
		struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };
		int n = os_poll(&pfd, 1, os_deadline(WAIT_MS));
		if (n <= 0)
			return fail(l->err, "the peer did not connect");
		l->rfd = l->wfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (l->rfd < 0)
			res = -errno;
		else if (s->xport == BX_SEQPACKET)
			seqpacket_sndbuf(l->wfd, s->size);
		break;
	}
	case BX_PIPE:
		l->rfd = p->mine[0];
		l->wfd = p->mine[1];
		p->mine[0] = p->mine[1] = -1;
		break;
	case BX_EVSHM:
	case BX_EVSHM_ZC:
		res = evshm_accept(p->l, &l->c, WAIT_MS);
		break;
	default:
		res = -EINVAL;
	}
	bench_prep_drop(p);
	if (res < 0)
		return fail(l->err, "accepting the peer (%s): %s",
			    xname(s->xport), evshm_strerror(res));
	return 0;
}

/* Side B: connect to A, or take the pipe ends A sent. */
static int link_connect(struct link *l, const struct bench_spec *s, int fds[2])
{
	int res = 0;

	switch (s->xport) {
	case BX_STREAM:
	case BX_SEQPACKET: {
		struct ep_addr a;
		int type = s->xport == BX_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
		if ((res = ep_parse(s->name, &a)) < 0)
			break;
		l->rfd = l->wfd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (l->rfd < 0 ||
		    connect(l->rfd, (struct sockaddr *)&a.sun, a.len) < 0)
			res = -errno;
		else if (s->xport == BX_SEQPACKET)
			seqpacket_sndbuf(l->wfd, s->size);
		break;
	}
	case BX_PIPE:
		l->rfd = fds[0];
		l->wfd = fds[1];
		fds[0] = fds[1] = -1;
		if ((res = blocking(l->rfd)) == 0)
			res = blocking(l->wfd);
		break;
	case BX_EVSHM:
	case BX_EVSHM_ZC: {
		struct evshm_opts o = evshm_opts_for(s);
		res = evshm_connect(&l->c, s->name, &o, WAIT_MS);
		break;
	}
	default:
		res = -EINVAL;
	}
	if (res < 0)
		return fail(l->err, "connecting (%s): %s", xname(s->xport),
			    evshm_strerror(res));
	return 0;
}

/* --- checks --------------------------------------------------------------- */

static int check_msg(struct link *l, const void *p, size_t len, uint64_t want,
		     uint64_t *seq)
{
	switch (pl_check(p, len, l->size, seq)) {
	case PL_BAD_LEN:
		return fail(l->err, "message %llu: %zu bytes, expected %zu",
			    (unsigned long long)want, len, l->size);
	case PL_BAD_SUM:
		return fail(l->err, "message %llu is corrupt (checksum over "
			    "the payload does not match)",
			    (unsigned long long)want);
	case PL_OK:
		break;
	}
	if ((*seq & ~PL_END) != want)
		return fail(l->err, "message %llu lost: got sequence number "
			    "%llu instead", (unsigned long long)want,
			    (unsigned long long)(*seq & ~PL_END));
	return 0;
}

/* --- round trips ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, uint64_t n, double q)
{
	uint64_t i = (uint64_t)(q * (double)n + 0.999999);
	return (double)sorted[i ? i - 1 : 0];
}

static void percentiles(uint64_t *samples, uint64_t n, struct bench_result *r)
{
	qsort(samples, n, sizeof(*samples), cmp_u64);
	r->p50 = pct(samples, n, 0.5);
	r->p99 = pct(samples, n, 0.99);
	r->p999 = pct(samples, n, 0.999);
}

/* One round trip: send message @seq, get it back, check it. */
static int rtt_once(struct link *l, uint64_t seq)
{
	const void *q;
	size_t len;
	void *p;
	uint64_t got;

	if (tx_get(l, &p) < 0)
		return -1;
	pl_fill(p, l->size / 8, seq);
	if (tx_put(l) < 0)
		return -1;
	int res = rx_get(l, &q, &len);
	if (res == -EPIPE)
		return fail(l->err, "the echo side went away");
	if (res < 0 || check_msg(l, q, len, seq & ~PL_END, &got) < 0)
		return -1;
	return rx_put(l);
}

static int rtt_ping(struct link *l, const struct bench_spec *s,
		    uint64_t *samples, struct bench_result *r)
{
	uint64_t total = s->warmup + s->count;

	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = os_now_ns();
		if (rtt_once(l, i) < 0)
			return -1;
		if (i >= s->warmup)
			samples[i - s->warmup] = os_now_ns() - t0;
	}
	if (rtt_once(l, total | PL_END) < 0)
		return -1;
	percentiles(samples, s->count, r);
	return 0;
}

static int rtt_echo(struct link *l, uint64_t *echoed)
{
	for (uint64_t want = 0;; want++) {
		const void *q;
		size_t len;
		void *p;
		uint64_t seq = 0;
		int res = rx_get(l, &q, &len);
		if (res == -EPIPE)
			return fail(l->err, "the ping side went away");
		if (res < 0 || check_msg(l, q, len, want, &seq) < 0)
			return -1;
		if (tx_get(l, &p) < 0)
			return -1;
		memcpy(p, q, len);
		if (rx_put(l) < 0 || tx_put(l) < 0)
			return -1;
		if (seq & PL_END) {
			*echoed = want;
			return 0;
		}
	}
}

/* --- streaming -------------------------------------------------------------- */

static int stream_send(struct link *l, const struct bench_spec *s,
		       uint64_t *sent)
{
	uint64_t n = s->count ? s->warmup + s->count : UINT64_MAX;
	uint64_t deadline = UINT64_MAX, seq = 0;
	uint64_t fault_at = s->fault ? s->warmup + 3 : UINT64_MAX;
	size_t words = l->size / 8;
	unsigned every = l->size <= 4096 ? CLOCK_EVERY : 1;

	for (uint64_t i = 0; i < n; i++, seq++) {
		void *p;
		if (i == s->warmup && !s->count)
			deadline = os_now_ns() + (uint64_t)(s->seconds * 1e9);
		if (i == fault_at && s->fault == BF_DROP)
			seq++; /* a message that never leaves */
		if (tx_get(l, &p) < 0)
			return -1;
		pl_fill(p, words, seq);
		if (i == fault_at && s->fault == BF_CORRUPT)
			((uint8_t *)p)[l->size - 1] ^= 0x40;
		if (tx_put(l) < 0)
			return -1;
		if (i % every == 0 && os_now_ns() >= deadline) {
			i++, seq++;
			n = i;
			break;
		}
	}
	void *p;
	if (tx_get(l, &p) < 0)
		return -1;
	pl_fill(p, words, seq | PL_END);
	if (tx_put(l) < 0)
		return -1;
	*sent = n;
	return 0;
}

static int stream_recv(struct link *l, const struct bench_spec *s,
		       struct bench_result *r, uint64_t *received)
{
	uint64_t t0 = os_now_ns(), t1;
	const void *q;
	size_t len;
	uint64_t seq = 0;

	for (uint64_t want = 0;; want++) {
		int res = rx_get(l, &q, &len);
		if (res == -EPIPE)
			return fail(l->err, "the sender went away after %llu "
				    "messages, before the end",
				    (unsigned long long)want);
		if (res < 0 || check_msg(l, q, len, want, &seq) < 0)
			return -1;
		if (rx_put(l) < 0)
			return -1;
		if (want + 1 == s->warmup)
			t0 = os_now_ns();
		if (seq & PL_END) {
			t1 = os_now_ns();
			/* Messages after the clock started, the end one
			 * included: it is a message like the others. */
			double n = (double)(want + 1 - (s->warmup ? s->warmup : 0));
			double dt = (double)(t1 - t0) / 1e9;
			r->msgs_s = n / dt;
			r->gb_s = r->msgs_s * (double)l->size / 1e9;
			*received = want;
			return 0;
		}
	}
}

/* --- the floor: one cache line ------------------------------------------------- */

struct line {
	alignas(64) _Atomic uint64_t v;
};

static struct line *line_map(int fd, char *err)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fail(err, "mmap: %s", strerror(errno));
		return NULL;
	}
	return p;
}

/* Wait until the line holds @want; 0, or -1 after WAIT_MS. */
static int line_wait(struct line *ln, uint64_t want, char *err)
{
	uint64_t end = 0;

	for (;;) {
		for (int i = 0; i < 4096; i++) {
			if (atomic_load_explicit(&ln->v, memory_order_acquire) == want)
				return 0;
			cpu_relax();
		}
		uint64_t now = os_now_ns();
		if (!end)
			end = now + (uint64_t)WAIT_MS * 1000000u;
		else if (now > end)
			return fail(err, "the other side stopped spinning");
	}
}

static int line_ping(struct line *ln, const struct bench_spec *s,
		     uint64_t *samples, struct bench_result *r, char *err)
{
	uint64_t total = s->warmup + s->count;

	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = os_now_ns();
		atomic_store_explicit(&ln->v, 2 * i + 1, memory_order_release);
		if (line_wait(ln, 2 * i + 2, err) < 0)
			return -1;
		if (i >= s->warmup)
			samples[i - s->warmup] = os_now_ns() - t0;
	}
	atomic_store_explicit(&ln->v, PL_END, memory_order_release);
	percentiles(samples, s->count, r);
	return 0;
}

static int line_echo(struct line *ln, const struct bench_spec *s, char *err)
{
	uint64_t total = s->warmup + s->count;

	for (uint64_t i = 0; i < total; i++) {
		if (line_wait(ln, 2 * i + 1, err) < 0)
			return -1;
		atomic_store_explicit(&ln->v, 2 * i + 2, memory_order_release);
	}
	return line_wait(ln, PL_END, err);
}

/* --- the two sides ----------------------------------------------------------- */

static void fill_kicks(const struct evshm_stats *st, uint64_t msgs,
		       double *kicks, double *sleeps)
{
	double m = msgs ? (double)msgs : 1;
	*kicks = (double)st->kicks_sent / m;
	*sleeps = (double)st->sleeps / m;
}

int bench_run_a(const struct bench_spec *s, struct bench_prep *p,
		uint64_t *samples, struct bench_result *r,
		char err[BENCH_ERR_MAX])
{
	struct link l = { .x = s->xport, .rfd = -1, .wfd = -1, .err = err };
	int res;

	memset(r, 0, sizeof(*r));
	if (s->kind == BK_LINE) {
		struct line *ln = line_map(p->mine[0], err);
		bench_prep_drop(p);
		if (!ln)
			return -1;
		res = line_ping(ln, s, samples, r, err);
		munmap(ln, 4096);
		return res;
	}
	if (link_bufs(&l, s) < 0 || link_accept(&l, s, p) < 0) {
		bench_prep_drop(p);
		link_close(&l);
		return -1;
	}
	uint64_t n = 0;
	if (s->kind == BK_RTT) {
		res = rtt_ping(&l, s, samples, r);
		n = s->warmup + s->count + 1;
	} else {
		res = stream_recv(&l, s, r, &n);
		r->msgs = n;
	}
	if (res == 0 && l.c) {
		struct evshm_stats st;
		evshm_stats(l.c, &st);
		fill_kicks(&st, n, &r->kicks_a, &r->sleeps_a);
	}
	link_close(&l);
	return res;
}

int bench_run_b(const struct bench_spec *s, int fds[2],
		struct bench_report *rep)
{
	struct link l = { .x = s->xport, .rfd = -1, .wfd = -1, .err = rep->err };
	int res;

	memset(rep, 0, sizeof(*rep));
	if (s->kind == BK_LINE) {
		struct line *ln = line_map(fds[0], rep->err);
		if (!ln)
			return rep->status = -1;
		res = line_echo(ln, s, rep->err);
		munmap(ln, 4096);
		return rep->status = res;
	}
	if (link_bufs(&l, s) < 0 || link_connect(&l, s, fds) < 0) {
		link_close(&l);
		return rep->status = -1;
	}
	if (s->kind == BK_RTT)
		res = rtt_echo(&l, &rep->msgs);
	else
		res = stream_send(&l, s, &rep->msgs);
	if (l.c)
		evshm_stats(l.c, &rep->st);
	link_close(&l);
	return rep->status = res;
}

/* --- floors in one process ---------------------------------------------------- */

/* Where the verify floor puts its sums so the compiler cannot drop them
 * (a local volatile is "set but not used" to clang). */
static volatile uint64_t floor_sink;

double bench_floor(enum bench_floor what, uint32_t size, double seconds)
{
	uint64_t *a = alloc_buf(size), *b = alloc_buf(size);
	uint64_t budget = (uint64_t)(seconds * 1e9), n = 0, t0, t = 0;
	unsigned batch = size >= (64u << 10) ? 1 : (64u << 10) / size;

	if (!a || !b)
		goto out;
	pl_fill(a, size / 8, 1);
	for (t0 = os_now_ns(); (t = os_now_ns() - t0) < budget;) {
		for (unsigned i = 0; i < batch; i++, n++) {
			switch (what) {
			case BFL_MEMCPY:
				memcpy(b, a, size);
				break;
			case BFL_GENERATE:
				pl_fill(b, size / 8, n);
				break;
			case BFL_VERIFY:
				floor_sink += pl_sum(a, size / 8);
				break;
			}
			/* Each round's stores must really happen. */
			__asm__ __volatile__("" ::: "memory");
		}
	}
out:
	free(a);
	free(b);
	return t ? (double)(n * size) / (double)t : 0;
}
