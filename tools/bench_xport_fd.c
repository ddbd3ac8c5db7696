/* SPDX-License-Identifier: MIT */
/*
 * bench_xport_fd.c: the transports evshm is compared with, on plain
 * descriptors: a Unix stream socket, a Unix seqpacket socket, two pipes.
 *
 * Stream sockets and pipes carry frames: an 8-byte length, then the
 * payload, written with one write(2) per message; the reader refills a
 * buffer of at least 256 KiB (four frames) with large reads and cuts frames
 * from it, handling partial reads and writes.  Seqpacket sockets carry
 * one message per send(2) / recv(2).
 *
 * Fan-out to N subscribers over N stream sockets: the publisher writes
 * each frame to each socket, one after the other (what a program without
 * shared memory does); each subscriber reads frames as above.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_xport.h"
#include "tool.h"

#define FRAME_HDR 8u
#define FRAME_RBUF_MIN (256u << 10)

struct fd_link {
	int type;               /* SOCK_STREAM, SOCK_SEQPACKET; 0: pipes */
	int lfd;                /* side A: the listening socket */
	int rfd, wfd;
	bool own;               /* rfd and wfd are ours to close */
	uint8_t *wbuf;          /* FRAME_HDR + payload, payload 8-aligned */
	uint8_t *rbuf;
	size_t rcap, r, w;      /* frames: unread bytes are rbuf[r, w) */
	int outs[BENCH_MAX_SUBS]; /* fan-out publisher: every subscriber */
	unsigned nouts;
};

static bool framed(const struct fd_link *f)
{
	return f->type != SOCK_SEQPACKET;
}

static int fd_new(struct link *l, const struct bench_spec *s, int type)
{
	struct fd_link *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	*f = (struct fd_link){ .type = type, .lfd = -1, .rfd = -1, .wfd = -1 };
	l->priv = f;
	f->wbuf = bench_alloc(FRAME_HDR + s->size);
	/* Frame readers refill a buffer with large reads: room for several
	 * frames, so that one read() brings many small ones. */
	f->rcap = framed(f) ? 4 * (FRAME_HDR + (size_t)s->size) : s->size;
	if (framed(f) && f->rcap < FRAME_RBUF_MIN)
		f->rcap = FRAME_RBUF_MIN;
	f->rbuf = bench_alloc(f->rcap);
	if (!f->wbuf || !f->rbuf)
		return -ENOMEM;
	uint64_t flen = s->size;
	memcpy(f->wbuf, &flen, sizeof(flen));
	return 0;
}

static void fd_close(struct link *l)
{
	struct fd_link *f = l->priv;

	if (!f)
		return;
	sys_close(f->lfd);
	for (unsigned i = 0; i < f->nouts; i++)
		sys_close(f->outs[i]);
	if (f->own) {
		sys_close(f->rfd);
		if (f->wfd != f->rfd)
			sys_close(f->wfd);
	}
	free(f->wbuf);
	free(f->rbuf);
	free(f);
	l->priv = NULL;
}

/* seqpacket: a message must fit the sender's buffer, and a few of them in
 * flight keep the pipeline going; raise SO_SNDBUF to 4 messages when the
 * default is smaller (it cannot carry 1 MiB otherwise). */
static void seqpacket_sndbuf(int fd, size_t size)
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

/* --- sockets ------------------------------------------------------------ */

static int sock_open_a(struct link *l, const struct bench_spec *s, int type)
{
	int res = fd_new(l, s, type);
	struct fd_link *f = l->priv;

	return res < 0 ? res : sys_listen(s->name, type, &f->lfd);
}

static int stream_open_a(struct link *l, const struct bench_spec *s,
			 int fds[SYS_MAX_FDS], unsigned *nfds)
{
	(void)fds;
	*nfds = 0;
	return sock_open_a(l, s, SOCK_STREAM);
}

static int seqpacket_open_a(struct link *l, const struct bench_spec *s,
			    int fds[SYS_MAX_FDS], unsigned *nfds)
{
	(void)fds;
	*nfds = 0;
	return sock_open_a(l, s, SOCK_SEQPACKET);
}

static int sock_meet_a(struct link *l, const struct bench_spec *s)
{
	struct fd_link *f = l->priv;
	int res = sys_accept(f->lfd, BENCH_WAIT_MS, &f->rfd);

	f->lfd = sys_close(f->lfd);
	if (res < 0)
		return res;
	f->wfd = f->rfd;
	f->own = true;
	if (f->type == SOCK_SEQPACKET)
		seqpacket_sndbuf(f->wfd, s->size);
	return 0;
}

static int sock_open_b(struct link *l, const struct bench_spec *s, int type)
{
	int res = fd_new(l, s, type);
	struct fd_link *f = l->priv;

	if (res < 0 || (res = sys_connect(s->name, type, &f->rfd)) < 0)
		return res;
	f->wfd = f->rfd;
	f->own = true;
	if (type == SOCK_SEQPACKET)
		seqpacket_sndbuf(f->wfd, s->size);
	return 0;
}

static int stream_open_b(struct link *l, const struct bench_spec *s,
			 const int *fds, unsigned nfds)
{
	(void)fds;
	(void)nfds;
	return sock_open_b(l, s, SOCK_STREAM);
}

static int seqpacket_open_b(struct link *l, const struct bench_spec *s,
			    const int *fds, unsigned nfds)
{
	(void)fds;
	(void)nfds;
	return sock_open_b(l, s, SOCK_SEQPACKET);
}

/* --- pipes -------------------------------------------------------------- */

static int pipe_open_a(struct link *l, const struct bench_spec *s,
		       int fds[SYS_MAX_FDS], unsigned *nfds)
{
	int ab[2], ba[2]; /* A -> B, B -> A */
	int res = fd_new(l, s, 0);
	struct fd_link *f = l->priv;

	*nfds = 0;
	if (res < 0)
		return res;
	if (pipe2(ab, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ba, O_CLOEXEC) < 0) {
		res = -errno;
		close(ab[0]);
		close(ab[1]);
		return res;
	}
	f->rfd = ba[0];
	f->wfd = ab[1];
	f->own = true;
	fds[0] = ab[0]; /* B reads */
	fds[1] = ba[1]; /* B writes */
	*nfds = 2;
	return 0;
}

static int pipe_open_b(struct link *l, const struct bench_spec *s,
		       const int *fds, unsigned nfds)
{
	int res = fd_new(l, s, 0);
	struct fd_link *f = l->priv;

	if (res < 0)
		return res;
	if (nfds != 2)
		return -EPROTO;
	f->rfd = fds[0];
	f->wfd = fds[1];
	/* What crossed the socket is the peer's word: make sure we block. */
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK) < 0)
			return -errno;
	}
	return 0;
}

/* --- the four steps ----------------------------------------------------- */

static int fd_tx_get(struct link *l, void **p)
{
	struct fd_link *f = l->priv;

	*p = f->wbuf + FRAME_HDR;
	return 0;
}

static int fd_tx_put(struct link *l)
{
	struct fd_link *f = l->priv;

	if (framed(f))
		return tool_write_all(f->wfd, f->wbuf, FRAME_HDR + l->size);
	ssize_t n;
	do
		n = send(f->wfd, f->wbuf + FRAME_HDR, l->size, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n == (ssize_t)l->size ? 0 : -EPROTO;
}

/* Make sure rbuf[r, w) holds at least @need bytes. */
static int rd_fill(struct fd_link *f, size_t need)
{
	if (f->r == f->w)
		f->r = f->w = 0;
	if (f->r + need > f->rcap) {
		memmove(f->rbuf, f->rbuf + f->r, f->w - f->r);
		f->w -= f->r;
		f->r = 0;
	}
	while (f->w - f->r < need) {
		ssize_t n = tool_read(f->rfd, f->rbuf + f->w, f->rcap - f->w);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		f->w += (size_t)n;
	}
	return 0;
}

static int frame_rx_get(struct fd_link *f, const void **p, size_t *len)
{
	uint64_t flen;
	int res = rd_fill(f, FRAME_HDR);

	if (res < 0)
		return res;
	memcpy(&flen, f->rbuf + f->r, sizeof(flen));
	if (flen > f->rcap - FRAME_HDR)
		return -EPROTO;
	if ((res = rd_fill(f, FRAME_HDR + (size_t)flen)) < 0)
		return res;
	*p = f->rbuf + f->r + FRAME_HDR;
	*len = (size_t)flen;
	f->r += FRAME_HDR + (size_t)flen;
	return 0;
}

static int fd_rx_get(struct link *l, const void **p, size_t *len)
{
	struct fd_link *f = l->priv;
	ssize_t n;

	if (framed(f))
		return frame_rx_get(f, p, len);
	do
		n = recv(f->rfd, f->rbuf, f->rcap, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n > f->rcap)
		return -EMSGSIZE;
	*p = f->rbuf;
	*len = (size_t)n;
	return 0;
}

static int fd_rx_put(struct link *l)
{
	(void)l;
	return 0;
}

/* --- fan-out: N stream sockets -------------------------------------------- */

static int fan_meet_a(struct link *l, const struct bench_spec *s)
{
	struct fd_link *f = l->priv;
	int res = 0;

	while (f->nouts < s->subs && res == 0)
		if ((res = sys_accept(f->lfd, BENCH_WAIT_MS, &f->outs[f->nouts])) == 0)
			f->nouts++;
	f->lfd = sys_close(f->lfd);
	return res;
}

static int fan_tx_put(struct link *l)
{
	struct fd_link *f = l->priv;
	int res = 0;

	for (unsigned i = 0; i < f->nouts && res == 0; i++)
		res = tool_write_all(f->outs[i], f->wbuf, FRAME_HDR + l->size);
	return res;
}

#define FD_STEPS                                                              \
	.close = fd_close, .tx_get = fd_tx_get, .tx_put = fd_tx_put,          \
	.rx_get = fd_rx_get, .rx_put = fd_rx_put

const struct xport xport_unix_stream = {
	.name = "unix stream",
	.open_a = stream_open_a, .meet_a = sock_meet_a, .open_b = stream_open_b,
	FD_STEPS,
};

const struct xport xport_unix_seqpacket = {
	.name = "unix seqpacket",
	.open_a = seqpacket_open_a, .meet_a = sock_meet_a,
	.open_b = seqpacket_open_b,
	FD_STEPS,
};

const struct xport xport_pipe = {
	.name = "pipe",
	.open_a = pipe_open_a, .open_b = pipe_open_b,
	FD_STEPS,
};

const struct xport xport_fan_stream = {
	.name = "unix stream sockets",
	.open_a = stream_open_a, .meet_a = fan_meet_a, .open_b = stream_open_b,
	.close = fd_close, .tx_get = fd_tx_get, .tx_put = fan_tx_put,
	.rx_get = fd_rx_get, .rx_put = fd_rx_put,
};
