/* SPDX-License-Identifier: MIT */
/*
 * frame-pass: large data travels as a descriptor, not through the ring.
 *
 *   frame-pass server NAME     accept one client, check its frames
 *   frame-pass client NAME [--frames=N] [--mib=M]
 *
 * The client puts each "video frame" (M MiB, default 100) in a memfd,
 * fills it, seals it and sends it with evshm_send_fds() beside a small
 * header (frame number, size, checksum).  The server maps it read-only,
 * recomputes the checksum and answers.  The frame is never copied: both
 * processes map the same pages.  Exit 0 when every frame was verified.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

struct frame_hdr {
	uint64_t number;
	uint64_t size;     /* bytes of the memfd */
	uint64_t checksum; /* of its contents */
};

struct frame_ack {
	uint64_t number;
	uint64_t checksum; /* as the server computed it */
	int32_t status;    /* 0, or the negative errno of the refusal */
	uint32_t pad;
};

/* The seals a receiver needs before it maps a frame: no shrinking (a
 * shrink under its mapping would be SIGBUS), no growing, no writes (the
 * contents it checked stay what it checked), and no more seal changes. */
#define FRAME_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* FNV-1a over 64-bit words: the size is a multiple of 8. */
static uint64_t checksum(const uint64_t *w, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Make frame @number: a sealed memfd of @size bytes.  Returns the fd or
 * -errno; *sum gets its checksum. */
static int make_frame(uint64_t number, size_t size, uint64_t *sum)
{
	int fd = memfd_create("frame", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint64_t *w;
	int res;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto out_errno;
	w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		goto out_errno;
	for (size_t i = 0; i < size / 8; i++)
		w[i] = number * 0x9e3779b97f4a7c15ull + i;
	*sum = checksum(w, size / 8);
	/* F_SEAL_WRITE is refused while a writable mapping exists. */
	munmap(w, size);
	if (fcntl(fd, F_ADD_SEALS, FRAME_SEALS) < 0)
		goto out_errno;
	return fd;

out_errno:
	res = -errno;
	close(fd);
	return res;
}

static int client(struct evshm_chan *c, uint64_t frames, size_t size)
{
	for (uint64_t f = 1; f <= frames; f++) {
		struct frame_hdr h = { .number = f, .size = size };
		struct frame_ack a;
		double t0 = now_s();
		int fd = make_frame(f, size, &h.checksum), res;

		if (fd < 0)
			return fd;
		res = evshm_send_fds(c, &h, sizeof(h), &fd, 1, 10000);
		close(fd); /* the server has its own descriptor now */
		if (res < 0)
			return res;
		res = evshm_recv(c, &a, sizeof(a), 30000);
		if (res < 0)
			return res;
		if (res != sizeof(a) || a.number != f)
			return -EPROTO;
		if (a.status < 0 || a.checksum != h.checksum) {
			fprintf(stderr, "frame %" PRIu64 ": server says %s\n", f,
				evshm_strerror(a.status ? a.status : -EBADMSG));
			return -EBADMSG;
		}
		printf("client: frame %" PRIu64 " (%zu MiB) sent and verified "
		       "in %.0f ms\n", f, size >> 20, (now_s() - t0) * 1e3);
	}
	return 0;
}

/* Check a received frame; 0 or -errno for the ack. */
static int check_frame(int fd, const struct frame_hdr *h, uint64_t *sum)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	const uint64_t *w;

	/* Trust nothing about a descriptor a peer sent: what it is, its
	 * size, and whether it can change under the mapping. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != h->size || h->size % 8)
		return -EINVAL;
	if (seals < 0 || (seals & FRAME_SEALS) != FRAME_SEALS)
		return -EPERM;
	w = mmap(NULL, (size_t)h->size, PROT_READ, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		return -errno;
	*sum = checksum(w, (size_t)h->size / 8);
	munmap((void *)w, (size_t)h->size);
	return *sum == h->checksum ? 0 : -EBADMSG;
}

static int server(struct evshm_chan *c)
{
	unsigned bad = 0;

	for (;;) {
		struct frame_hdr h;
		struct frame_ack a = { 0 };
		unsigned nfds = 1;
		int fd = -1;
		int res = evshm_recv_fds(c, &h, sizeof(h), &fd, &nfds, -1);

		if (res == -EPIPE)
			break; /* the client is done */
		if (res < 0)
			return res;
		if (res != sizeof(h) || nfds != 1) {
			if (nfds)
				close(fd);
			return -EPROTO;
		}
		a.number = h.number;
		a.status = check_frame(fd, &h, &a.checksum);
		close(fd);
		bad += a.status != 0;
		printf("server: frame %" PRIu64 " (%" PRIu64 " MiB): %s\n",
		       h.number, h.size >> 20,
		       a.status ? evshm_strerror(a.status) : "checksum ok");
		res = evshm_send(c, &a, sizeof(a), 10000);
		if (res < 0)
			return res;
	}
	return bad ? -EBADMSG : 0;
}

int main(int argc, char **argv)
{
	uint64_t frames = 3, mib = 100;
	/* Descriptors are opt-in: each side says it takes them. */
	const struct evshm_opts o = { .flags = EVSHM_OPT_FDS };
	struct evshm_chan *c = NULL;
	struct evshm_listener *l = NULL;
	int res;

	if (argc < 3 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: frame-pass server|client NAME "
			"[--frames=N] [--mib=M]\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (strncmp(argv[i], "--frames=", 9) == 0)
			frames = strtoull(argv[i] + 9, NULL, 0);
		else if (strncmp(argv[i], "--mib=", 6) == 0)
			mib = strtoull(argv[i] + 6, NULL, 0);
	}

	if (strcmp(argv[1], "server") == 0) {
		res = evshm_listen(&l, argv[2], &o);
		if (res == 0)
			res = evshm_accept(l, &c, 30000);
		if (res == 0)
			res = server(c);
	} else {
		/* The server may not be listening yet. */
		for (int i = 0; i < 1000; i++) {
			res = evshm_connect(&c, argv[2], &o, 10000);
			if (res != -ENOENT && res != -ECONNREFUSED)
				break;
			usleep(10000);
		}
		if (res == 0)
			res = client(c, frames, (size_t)(mib << 20));
	}
	if (res < 0)
		fprintf(stderr, "frame-pass %s: %s\n", argv[1], evshm_strerror(res));
	evshm_close(c);
	evshm_listener_close(l);
	return res < 0;
}
