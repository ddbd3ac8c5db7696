/* SPDX-License-Identifier: MIT */
/* fdmsg.c: see fdmsg.h. */
#include "fdmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msgpat.h"

#define FDMSG_HDR 16u

unsigned fdmsg_nfds(uint64_t seq)
{
	uint64_t x = pat_mix(seq ^ 0xf00d);
	return x % 4 == 0 ? 0 : 1 + (unsigned)((x >> 8) % 3);
}

size_t fdmsg_len(uint64_t seq)
{
	return FDMSG_HDR + (size_t)(pat_mix(seq) % 49);
}

static void fill(uint8_t *p, size_t len, uint64_t seq, unsigned nfds)
{
	uint32_t hdr[2] = { nfds, 0 };
	memcpy(p, &seq, 8);
	memcpy(p + 8, hdr, 8);
	for (size_t j = FDMSG_HDR; j < len; j++)
		p[j] = (uint8_t)(seq * 7 + j);
}

static int text(char *buf, size_t n, uint64_t seq, unsigned k)
{
	return snprintf(buf, n, "%" PRIu64 ":%u", seq, k);
}

int fdmsg_open(uint64_t seq, unsigned k, int *out)
{
	char name[64], body[48];
	int len = text(body, sizeof(body), seq, k), fd, p[2];

	switch ((seq + k) % 3) {
	case 0:
		snprintf(name, sizeof(name), "fdmsg-%" PRIu64 "-%u", seq, k);
		fd = memfd_create(name, MFD_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (write(fd, body, (size_t)len) != len) {
			close(fd);
			return -EIO;
		}
		break;
	case 1:
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return -errno;
		if (write(p[1], body, (size_t)len) != len) {
			close(p[0]);
			close(p[1]);
			return -EIO;
		}
		close(p[1]);
		fd = p[0];
		break;
	default:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
		uint64_t v = seq * 256 + k + 1;
		if (write(fd, &v, 8) != 8) {
			close(fd);
			return -EIO;
		}
		break;
	}
	*out = fd;
	return 0;
}

static bool why(uint64_t seq, unsigned k, int fd, const char *what)
{
	fprintf(stderr, "fdmsg: message %" PRIu64 " descriptor %u (fd %d): %s\n",
		seq, k, fd, what);
	return false;
}

bool fdmsg_check_fd(uint64_t seq, unsigned k, int fd)
{
	char path[64], link[128], want[128], body[48], got[64];
	int len = text(body, sizeof(body), seq, k), fl;
	struct stat st;
	ssize_t n;

	fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return why(seq, k, fd, "not open");
	if (!(fl & FD_CLOEXEC))
		return why(seq, k, fd, "not close-on-exec");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 || fstat(fd, &st) < 0)
		return why(seq, k, fd, "readlink/fstat failed");
	link[n] = '\0';

	switch ((seq + k) % 3) {
	case 0:
		snprintf(want, sizeof(want), "/memfd:fdmsg-%" PRIu64 "-%u (deleted)",
			 seq, k);
		if (strcmp(link, want) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_size != len)
			return why(seq, k, fd, link);
		if (pread(fd, got, sizeof(got), 0) != len ||
		    memcmp(got, body, (size_t)len) != 0)
			return why(seq, k, fd, "memfd contents");
		return true;
	case 1:
		if (!S_ISFIFO(st.st_mode))
			return why(seq, k, fd, link);
		if (read(fd, got, sizeof(got)) != len ||
		    memcmp(got, body, (size_t)len) != 0)
			return why(seq, k, fd, "pipe contents");
		if (read(fd, got, sizeof(got)) != 0)
			return why(seq, k, fd, "pipe: no end-of-file");
		return true;
	default: {
		uint64_t v;
		if (strcmp(link, "anon_inode:[eventfd]") != 0)
			return why(seq, k, fd, link);
		if (read(fd, &v, 8) != 8 || v != seq * 256 + k + 1)
			return why(seq, k, fd, "eventfd counter");
		return true;
	}
	}
}

int fdmsg_send(struct evshm_chan *c, uint64_t seq, unsigned nfds, bool empty,
	       int timeout_ms, uint64_t *retries)
{
	int fds[EVSHM_MAX_FDS];
	uint8_t buf[64];
	size_t len = empty ? 0 : fdmsg_len(seq);
	unsigned k;
	int res = 0;

	if (nfds > EVSHM_MAX_FDS)
		return -EINVAL;
	fill(buf, len, seq, nfds);
	for (k = 0; k < nfds; k++) {
		res = fdmsg_open(seq, k, &fds[k]);
		if (res < 0)
			goto out_close;
	}
	for (;;) {
		res = nfds ? evshm_send_fds(c, buf, len, fds, nfds, timeout_ms)
			   : evshm_send(c, buf, len, timeout_ms);
		if (res != -ETOOMANYREFS)
			break;
		if (retries)
			++*retries;
		usleep(1000);
	}
out_close:
	/* Ours to close, sent or not: the receiver has its own. */
	while (k > 0)
		close(fds[--k]);
	return res;
}

int fdmsg_recv(struct evshm_chan *c, uint64_t seq, unsigned nfds, bool empty,
	       int timeout_ms)
{
	int fds[EVSHM_MAX_FDS];
	uint8_t buf[64], want[64];
	unsigned n = EVSHM_MAX_FDS, k;
	size_t len = empty ? 0 : fdmsg_len(seq);
	int res = evshm_recv_fds(c, buf, sizeof(buf), fds, &n, timeout_ms);

	if (res < 0)
		return res;
	fill(want, len, seq, nfds);
	if ((size_t)res != len || memcmp(buf, want, len) != 0) {
		fprintf(stderr, "fdmsg: message %" PRIu64 " is wrong: %d bytes, "
			"claims to be %" PRIu64 "\n", seq, res,
			pat_seq(buf, (size_t)res));
		res = -EBADMSG;
	} else if (n != nfds) {
		fprintf(stderr, "fdmsg: message %" PRIu64 " came with %u "
			"descriptors, expected %u\n", seq, n, nfds);
		res = -EBADMSG;
	} else {
		res = 0;
	}
	for (k = 0; k < n; k++) {
		if (res == 0 && !fdmsg_check_fd(seq, k, fds[k]))
			res = -EBADMSG;
		close(fds[k]);
	}
	return res;
}
