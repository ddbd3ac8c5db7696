/* SPDX-License-Identifier: MIT */
/*
 * peer_hostile: the far side of test_hostile.  A separately exec'd program
 * built from evshm's internals (endpoint, fdpass, os, proto, ring), not
 * from its public API: it speaks docs/protocol.md by hand so that it can
 * break any rule of it on purpose.
 *
 *   peer_hostile client NAME MODE [--reject=N]
 *   peer_hostile server NAME MODE
 *
 * client: connect to NAME, where the test waits in evshm_accept().
 * server: listen at NAME, accept the test's evshm_connect() once.
 *
 * Handshake modes spoil one thing of the HELLO (client) or WELCOME
 * (server) that an honest side sends; see spoil().  --reject=N: the client
 * must then receive a REJECT with reason N (0: whatever comes).
 * Data modes run a correct handshake and then misbehave; see run_data().
 *
 * Exit 0 when the script ran as planned (and every REJECT it expected
 * came), 1 with the reason on stderr otherwise.  An alarm kills it if the
 * test forgets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "endpoint.h"
#include "evshm.h"
#include "fdpass.h"
#include "os.h"
#include "proto.h"
#include "ring.h"
#include "util.h"

#define RING 4096u        /* every ring in these tests */
#define LONG_MS 30000     /* "the test will act long before this" */
#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)
#define SATURATED 0xfffffffffffffffeull /* largest eventfd counter */

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* --- our half of a channel, by hand ---------------------------------------- */

struct raw {
	int sock;
	struct region *mine;        /* ours, mapped read-write for good */
	size_t mine_len;
	int mine_fd;                /* our memfd (read-write) */
	int ro_fd;                  /* its read-only reopen, what we offer */
	int bell_data, bell_space;  /* ours: the test kicks them */
	const struct region *peer;  /* the test's region, read-only */
	size_t peer_len;
	int peer_fd;                /* the test's region descriptor, kept */
	int kick_data, kick_space;  /* the test's bells: we kick them */
	struct ring_tx tx;
	struct ring_rx rx;
};

static void raw_init(struct raw *x)
{
	memset(x, 0, sizeof(*x));
	x->sock = x->mine_fd = x->ro_fd = x->peer_fd = -1;
	x->bell_data = x->bell_space = x->kick_data = x->kick_space = -1;
}

/* Our region: a memfd of @size bytes whose header says @ring, mapped
 * read-write, sealed with @seals, and a read-only reopen to offer.  The
 * honest recipe (docs/protocol.md 4.2) unless a mode changes a knob. */
static void make_region(struct raw *x, uint32_t ring, size_t size, int seals)
{
	tu_check_res(os_memfd("hostile", size, &x->mine_fd), 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       x->mine_fd, 0);
	tu_check(p != MAP_FAILED);
	x->mine = p;
	x->mine_len = size;
	region_init(x->mine, ring);
	if (seals)
		tu_check(fcntl(x->mine_fd, F_ADD_SEALS, seals) == 0);
	tu_check_res(os_reopen_ro(x->mine_fd, &x->ro_fd), 0);
}

static void make_bells(struct raw *x)
{
	tu_check_res(os_eventfd(&x->bell_data), 0);
	tu_check_res(os_eventfd(&x->bell_space), 0);
}

/* Map what an honest peer offered and set the rings up. */
static void take_offer(struct raw *x, const struct proto_msg *m,
		       const int fds[PROTO_NFDS])
{
	x->peer_fd = fds[PROTO_FD_REGION];
	x->kick_data = fds[PROTO_FD_DATA_BELL];
	x->kick_space = fds[PROTO_FD_SPACE_BELL];
	x->peer_len = m->region_size;
	void *p = mmap(NULL, x->peer_len, PROT_READ, MAP_SHARED, x->peer_fd, 0);
	tu_check(p != MAP_FAILED);
	x->peer = p;
	tu_check(x->peer->magic == REGION_MAGIC &&
		 x->peer->ring_size == m->ring_size);
	ring_tx_init(&x->tx, x->mine, x->peer, x->mine->ring_size);
	ring_rx_init(&x->rx, x->mine, x->peer, m->ring_size);
}

/* Receive an honest peer's HELLO or WELCOME and its three descriptors. */
static void recv_offer(struct raw *x, enum proto_type want, struct proto_msg *m,
		       int fds[PROTO_NFDS])
{
	unsigned char buf[256];
	unsigned nfds = 0;
	int r = fdp_recv(x->sock, buf, sizeof(buf), fds, PROTO_NFDS, &nfds,
			 LONG_MS);

	tu_check(r >= (int)sizeof(*m));
	tu_check_res(proto_parse(buf, (size_t)r, want, m), 0);
	tu_check(nfds == PROTO_NFDS);
}

static void send_offer(struct raw *x, const struct proto_msg *m)
{
	int fds[PROTO_NFDS] = { x->ro_fd, x->bell_data, x->bell_space };
	tu_check_res(fdp_send(x->sock, m, sizeof(*m), fds, PROTO_NFDS, LONG_MS), 0);
}

/* A correct handshake as the client. */
static void hs_client(struct raw *x, const char *name)
{
	struct proto_msg m;
	int fds[PROTO_NFDS];

	tu_check_res(ep_connect(name, &x->sock), 0);
	make_region(x, RING, REGION_HDR_SIZE + RING, SEALS_ALL);
	make_bells(x);
	proto_hello(&m, RING, 0);
	send_offer(x, &m);
	recv_offer(x, PROTO_WELCOME, &m, fds);
	take_offer(x, &m, fds);
}

/* Listen at @name and accept one connection. */
static int listen_accept(const char *name)
{
	struct ep_listener l;
	int sock;

	tu_check_res(ep_listen(&l, name, 0, 0), 0);
	tu_check_res(ep_accept(&l, LONG_MS, &sock), 0);
	ep_listener_close(&l);
	return sock;
}

/* A correct handshake as the server. */
static void hs_server(struct raw *x, const char *name)
{
	struct proto_msg hello, m;
	int fds[PROTO_NFDS];

	x->sock = listen_accept(name);
	recv_offer(x, PROTO_HELLO, &hello, fds);
	uint32_t ring = hello.peer_ring_size ? hello.peer_ring_size : RING;
	make_region(x, ring, REGION_HDR_SIZE + ring, SEALS_ALL);
	make_bells(x);
	take_offer(x, &hello, fds);
	proto_welcome(&m, ring);
	send_offer(x, &m);
}

/* Wait until the test hangs up (or @timeout_ms): 0 on hang-up,
 * -ETIMEDOUT.  Anything it sends on the socket is read and dropped. */
static int wait_hangup(int sock, int timeout_ms)
{
	uint64_t deadline = os_deadline(timeout_ms);

	for (;;) {
		unsigned char buf[256];
		int fds[8];
		unsigned nfds;
		int r = fdp_recv(sock, buf, sizeof(buf), fds, 8, &nfds,
				 os_remaining_ms(deadline));
		if (r == -EPIPE || r == -ECONNRESET)
			return 0;
		if (r == -ETIMEDOUT || r == -EAGAIN)
			return -ETIMEDOUT;
		tu_check(r >= 0);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

/* Sleep on one of our bells until kicked or the test hangs up. */
static int raw_sleep(struct raw *x, int bell)
{
	struct pollfd pfd[2] = {
		{ .fd = bell, .events = POLLIN },
		{ .fd = x->sock, .events = POLLRDHUP },
	};
	int n = os_poll(pfd, 2, os_deadline(LONG_MS));

	tu_check(n > 0);
	if (pfd[1].revents)
		return -EPIPE;
	os_eventfd_drain(bell);
	return 0;
}

/* Kick one of the test's bells.  Errors are ignored on purpose: in flood
 * modes the bell may be saturated already, which rings it anyway. */
static void raw_kick(int bell)
{
	(void)os_eventfd_kick(bell);
}

/* The next message from the test, honestly; -EPIPE once it hung up. */
static int raw_recv(struct raw *x, void *buf, size_t cap)
{
	for (;;) {
		const void *p;
		size_t len;
		int r = ring_rx_peek(&x->rx, &p, &len, NULL);

		if (r == 0) {
			tu_check(len <= cap);
			memcpy(buf, p, len);
			if (ring_rx_release(&x->rx) == 1)
				raw_kick(x->kick_space);
			return (int)len;
		}
		tu_check_res(r, -EAGAIN);
		r = ring_rx_prepare_wait(&x->rx);
		if (r == 0)
			continue;
		tu_check_res(r, -EAGAIN);
		r = raw_sleep(x, x->bell_data);
		if (r < 0)
			return r;
	}
}

/* Send one message to the test, honestly; -EPIPE once it hung up. */
static int raw_send(struct raw *x, const void *buf, size_t len)
{
	void *p;

	for (;;) {
		int r = ring_tx_reserve(&x->tx, len, &p);

		if (r == 0)
			break;
		tu_check_res(r, -EAGAIN);
		r = ring_tx_prepare_wait(&x->tx, len);
		if (r == 0)
			continue;
		tu_check_res(r, -EAGAIN);
		r = raw_sleep(x, x->bell_space);
		if (r < 0)
			return r;
	}
	memcpy(p, buf, len);
	if (ring_tx_commit(&x->tx, len) == 1)
		raw_kick(x->kick_data);
	return 0;
}

/* Commit a message with record @flags (RING_F_FDS), honestly. */
static int raw_send_flags(struct raw *x, const void *buf, size_t len,
			  uint32_t flags)
{
	void *p;

	tu_check_res(ring_tx_reserve(&x->tx, len, &p), 0);
	memcpy(p, buf, len);
	if (ring_tx_commit_flags(&x->tx, len, flags) == 1)
		raw_kick(x->kick_data);
	return 0;
}

/* A message on the socket with @nfds copies of @fd. */
static void send_fds(struct raw *x, const struct proto_fds *m, int fd,
		     unsigned nfds)
{
	int fds[FDP_MAX_FDS];

	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fd;
	tu_check_res(fdp_send(x->sock, m, sizeof(*m), fds, nfds, LONG_MS), 0);
}

/* Send back whatever comes, until the test hangs up. */
static void echo(struct raw *x)
{
	static uint8_t buf[RING];
	int n;

	while ((n = raw_recv(x, buf, sizeof(buf))) >= 0)
		if (raw_send(x, buf, (size_t)n) < 0)
			break;
}

/* Spin (the test runs concurrently) until *@idx, in the test's region,
 * reaches @want; 5 s at most. */
static void await_index(const _Atomic uint32_t *idx, uint32_t want)
{
	uint64_t end = os_deadline(5000);

	while (atomic_load_explicit(idx, memory_order_acquire) != want) {
		tu_check(os_now_ns() < end);
		usleep(100);
	}
}

static void await_at_least(const _Atomic uint32_t *idx, uint32_t want)
{
	uint64_t end = os_deadline(5000);

	while (atomic_load_explicit(idx, memory_order_acquire) < want) {
		tu_check(os_now_ns() < end);
		usleep(100);
	}
}

static void put_hdr(struct raw *x, uint32_t pos, uint32_t len, uint32_t flags)
{
	uint32_t hdr[2] = { len, flags };
	memcpy(region_data(x->mine) + pos, hdr, sizeof(hdr));
}

static void set_tail(struct raw *x, uint32_t tail)
{
	atomic_store_explicit(&x->mine->tail, tail, memory_order_release);
	raw_kick(x->kick_data);
}

static void set_head(struct raw *x, uint32_t head)
{
	atomic_store_explicit(&x->mine->head, head, memory_order_release);
	raw_kick(x->kick_space);
}

/* Clear O_NONBLOCK on @fd.  The flag belongs to the open file description,
 * which SCM_RIGHTS shares: the other process's descriptor loses it too. */
static void make_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	tu_check(fl >= 0);
	tu_check(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0);
}

static void saturate(int bell)
{
	uint64_t v = SATURATED;
	tu_check(write(bell, &v, sizeof(v)) == (ssize_t)sizeof(v));
}

/* --- flooding the bells ----------------------------------------------------- */

static atomic_bool flood_stop;

static void *flood_main(void *arg)
{
	const struct raw *x = arg;
	const uint64_t one = 1, big = SATURATED;
	const int bells[4] = { x->kick_data, x->kick_space, x->bell_data,
			       x->bell_space };

	for (unsigned long i = 0; !atomic_load(&flood_stop); i++) {
		for (int b = 0; b < 4; b++)
			(void)!write(bells[b], &one, sizeof(one));
		/* Now and then a counter the test must reset in one read. */
		if (i % 4096 == 0) {
			(void)!write(x->kick_data, &big, sizeof(big));
			(void)!write(x->kick_space, &big, sizeof(big));
		}
	}
	return NULL;
}

/* --- write protection of the test's region -------------------------------- */

struct report {
	char text[RING / 2];
	size_t n;
};

/* One line "what result verdict": result is 0 or -errno; verdict is
 * "blocked" (an attack that failed, as it must), "LEAK" (an attack that
 * worked) or "info". */
static void note(struct report *r, const char *what, int res, const char *verdict)
{
	int n = snprintf(r->text + r->n, sizeof(r->text) - r->n, "%s %d %s\n",
			 what, res, verdict);
	tu_check(n > 0 && (size_t)n < sizeof(r->text) - r->n);
	r->n += (size_t)n;
}

static void attack(struct report *r, const char *what, int res)
{
	note(r, what, res, res < 0 ? "blocked" : "LEAK");
}

static int sys(long r)
{
	return r < 0 ? -errno : 0;
}

/* mmap @fd with @prot and MAP_SHARED; 0 or -errno (unmapped again). */
static int try_mmap(int fd, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	munmap(p, len);
	return 0;
}

/* A read-only shared mapping of @fd made writable with mprotect. */
static int try_mprotect(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	int res = sys(mprotect(p, len, PROT_READ | PROT_WRITE));
	munmap(p, len);
	return res;
}

/* Write over the test's tail through /proc/self/mem (FOLL_FORCE, what a
 * debugger uses to plant breakpoints in read-only text). */
static int try_proc_mem(const struct raw *x)
{
	uint32_t junk = 0xdeadbeefu;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pwrite(fd, &junk, sizeof(junk),
			   (off_t)(uintptr_t)&x->peer->tail);
	int res = n < 0 ? -errno : (n == 0 ? -EIO : 0);
	close(fd);
	return res;
}

/* Everything we can think of to write the test's region, whose read-only
 * descriptor the handshake gave us (x->peer_fd). */
static void write_protection(struct raw *x, struct report *r)
{
	const int fd = x->peer_fd;
	const size_t len = x->peer_len;
	const uint32_t junk[2] = { 0xdeadbeefu, 0xdeadbeefu };
	char path[64];
	int res;

	/* (a) A writable shared mapping of the descriptor as received:
	 * refused because it is open O_RDONLY (EACCES). */
	attack(r, "a_mmap_shared_rw", try_mmap(fd, len, PROT_READ | PROT_WRITE));

	/*
	 * (b) Reopen it read-write.  The open works: a memfd's inode has mode
	 * 0777 and /proc/self/fd/N is a magic link to the file itself, so the
	 * O_RDONLY of the descriptor we were given is no barrier for a new
	 * open file description (os_reopen_ro() alone would not stop this).
	 * What stops the writable mapping is F_SEAL_FUTURE_WRITE, which the
	 * owner added after mapping its region read-write and before handing
	 * it over: from then on no new writable shared mapping (EPERM), no
	 * write(2), no hole punching, through any descriptor, while the owner's
	 * earlier mapping keeps working.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rw = open(path, O_RDWR | O_CLOEXEC);
	note(r, "b_reopen_rdwr", rw < 0 ? -errno : 0, "info");
	res = rw < 0 ? -errno : try_mmap(rw, len, PROT_READ | PROT_WRITE);
	attack(r, "b_reopen_mmap_shared_rw", res);

	/* (c) write(2) and pwrite(2), over the header and over the tail. */
	attack(r, "c_write_ro", sys(write(fd, junk, sizeof(junk))));
	attack(r, "c_pwrite_ro", sys(pwrite(fd, junk, sizeof(junk), 128)));
	attack(r, "c_write_rw", rw < 0 ? rw : sys(write(rw, junk, sizeof(junk))));
	attack(r, "c_pwrite_rw",
	       rw < 0 ? rw : sys(pwrite(rw, junk, sizeof(junk), 128)));
	struct iovec iov = { .iov_base = (void *)junk, .iov_len = sizeof(junk) };
	attack(r, "c_pwritev2_rw",
	       rw < 0 ? rw : sys(pwritev2(rw, &iov, 1, REGION_HDR_SIZE, 0)));

	/* (d) Change its size: smaller would SIGBUS the owner's mapping. */
	attack(r, "d_truncate_small_ro", sys(ftruncate(fd, 4096)));
	attack(r, "d_truncate_large_ro", sys(ftruncate(fd, (off_t)len * 2)));
	attack(r, "d_truncate_small_rw", rw < 0 ? rw : sys(ftruncate(rw, 4096)));
	attack(r, "d_truncate_large_rw",
	       rw < 0 ? rw : sys(ftruncate(rw, (off_t)len * 2)));
	attack(r, "d_fallocate_grow_rw",
	       rw < 0 ? rw : sys(fallocate(rw, 0, 0, (off_t)len * 2)));
	/* Punching a hole would zero the owner's ring under it. */
	attack(r, "d_punch_hole_rw",
	       rw < 0 ? rw : sys(fallocate(rw, FALLOC_FL_PUNCH_HOLE |
						   FALLOC_FL_KEEP_SIZE,
					   0, (off_t)len)));

	/* (e) Seals.  Adding any (even none) is refused: F_SEAL_SEAL is set.
	 * Linux has no call that removes a seal; F_GET_SEALS must still show
	 * all four at the end. */
	attack(r, "e_add_seal_write_ro", sys(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
	attack(r, "e_add_seal_write_rw",
	       rw < 0 ? rw : sys(fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE)));
	attack(r, "e_add_no_seal_rw", rw < 0 ? rw : sys(fcntl(rw, F_ADD_SEALS, 0)));
	note(r, "e_seals", fcntl(fd, F_GET_SEALS), "info");

	/* (f) mprotect a read-only shared mapping to writable: refused
	 * (EACCES) because the mapping lacks VM_MAYWRITE, from the O_RDONLY
	 * descriptor or, on the read-write reopen, from F_SEAL_FUTURE_WRITE. */
	attack(r, "f_mprotect_ro", try_mprotect(fd, len));
	attack(r, "f_mprotect_rw", rw < 0 ? rw : try_mprotect(rw, len));

	/* More: drop the pages of a read-only mapping, force a write through
	 * /proc/self/mem, copy_file_range() into it. */
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	tu_check(p != MAP_FAILED);
	attack(r, "g_madv_remove", sys(madvise(p, len, MADV_REMOVE)));
	munmap(p, len);
	attack(r, "g_proc_self_mem", try_proc_mem(x));
	if (rw >= 0) {
		loff_t in_off = 0, out_off = 128;
		res = sys(copy_file_range(x->mine_fd, &in_off, rw, &out_off,
					  8, 0));
		attack(r, "g_copy_file_range_rw", res);
	}

	/* A private writable mapping is allowed (copy-on-write) and must not
	 * show through: scribble over the whole header page. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	note(r, "h_mmap_private_rw", p == MAP_FAILED ? -errno : 0, "info");
	if (p != MAP_FAILED) {
		memset(p, 0xff, REGION_HDR_SIZE);
		bool leak = x->peer->magic != REGION_MAGIC ||
			    atomic_load(&x->peer->tail) != 0;
		note(r, "h_private_shows_through", leak ? 0 : -EPERM,
		     leak ? "LEAK" : "blocked");
		munmap(p, len);
	}
	if (rw >= 0)
		close(rw);
	/* Whatever happened, the header still says what it said. */
	bool intact = x->peer->magic == REGION_MAGIC &&
		      x->peer->ring_size == RING &&
		      x->peer->hdr_size == REGION_HDR_SIZE &&
		      atomic_load(&x->peer->tail) == 0;
	note(r, "z_header_intact", intact ? -EPERM : 0, intact ? "blocked" : "LEAK");
}

/* --- after a correct handshake ---------------------------------------------- */

static int run_data(struct raw *x, const char *mode)
{
	static uint8_t buf[RING];

	if (is(mode, "honest")) {
		echo(x);
		return 0;
	}
	if (is(mode, "tail_beyond")) {
		/* More published than the ring holds. */
		set_tail(x, RING + 8);
	} else if (is(mode, "tail_misaligned")) {
		put_hdr(x, 0, 0, 0);
		set_tail(x, 4);
	} else if (is(mode, "tail_backwards")) {
		/* Two honest messages; once both are consumed, take the
		 * second back. */
		tu_check_res(raw_send(x, "12345678", 8), 0);
		tu_check_res(raw_send(x, "abcdefgh", 8), 0);
		await_index(&x->peer->head, 32);
		set_tail(x, 16);
	} else if (is(mode, "rec_huge")) {
		put_hdr(x, 0, 0xfffffff0u, 0);
		set_tail(x, 16);
	} else if (is(mode, "rec_over_tail")) {
		/* A length that runs past what is published. */
		put_hdr(x, 0, 100, 0);
		set_tail(x, 16);
	} else if (is(mode, "rec_flags")) {
		/* A reserved flag on an ordinary record (5.1: MUST be 0). */
		put_hdr(x, 0, 8, 0x4);
		set_tail(x, 16);
	} else if (is(mode, "fds_missing")) {
		/* Descriptors announced, none on the socket. */
		put_hdr(x, 0, 8, RING_F_FDS);
		set_tail(x, 16);
	} else if (is(mode, "fds_seq") || is(mode, "fds_count") ||
		   is(mode, "fds_garbage")) {
		/* Descriptors on the socket, but a message that does not
		 * match the record: a skipped sequence number, a count that
		 * is not what came, or no PROTO_FDS at all. */
		struct proto_fds m;
		proto_fds(&m, is(mode, "fds_count") ? 2 : 1,
			  is(mode, "fds_seq") ? 1 : 0);
		if (is(mode, "fds_garbage"))
			tu_fill(&m, sizeof(m), 7);
		send_fds(x, &m, x->bell_data, 1);
		tu_check_res(raw_send_flags(x, "12345678", 8, RING_F_FDS), 0);
	} else if (is(mode, "fds_then_missing")) {
		/* One honest message with a descriptor, then a lie. */
		struct proto_fds m;
		proto_fds(&m, 1, 0);
		send_fds(x, &m, x->bell_data, 1);
		tu_check_res(raw_send_flags(x, "12345678", 8, RING_F_FDS), 0);
		await_index(&x->peer->head, 16);
		put_hdr(x, 16, 8, RING_F_FDS);
		set_tail(x, 32);
	} else if (is(mode, "fds_stuff")) {
		/* Fill the test's socket with descriptors that no record
		 * refers to, then behave: they must cost it no descriptor. */
		struct proto_fds m;
		int fds[FDP_MAX_FDS];
		int i, r = 0;
		for (i = 0; i < FDP_MAX_FDS; i++)
			fds[i] = x->bell_data;
		proto_fds(&m, FDP_MAX_FDS, 0);
		/* Unprivileged, the descriptors a user may have in flight
		 * are capped at RLIMIT_NOFILE (ETOOMANYREFS): stop there. */
		for (i = 0; i < 16 && r == 0; i++)
			r = fdp_send(x->sock, &m, sizeof(m), fds, FDP_MAX_FDS,
				     LONG_MS);
		tu_check(r == 0 || (r == -ETOOMANYREFS && i > 1));
		echo(x);
		return 0;
	} else if (is(mode, "rec_padflags")) {
		put_hdr(x, 0, RING - 8, RING_F_PAD | 0x4);
		set_tail(x, RING);
	} else if (is(mode, "pad_short")) {
		/* A pad that does not reach the end of the ring. */
		put_hdr(x, 0, 100, RING_F_PAD);
		set_tail(x, RING);
	} else if (is(mode, "pad_alone") || is(mode, "pad_pad")) {
		/* One honest message of half the ring; then a pad after it
		 * with nothing published behind it, or followed by a pad. */
		memset(buf, 'p', RING / 2 - 8);
		tu_check_res(raw_send(x, buf, RING / 2 - 8), 0);
		await_index(&x->peer->head, RING / 2);
		put_hdr(x, RING / 2, RING / 2 - 8, RING_F_PAD);
		if (is(mode, "pad_pad")) {
			put_hdr(x, 0, RING - 8, RING_F_PAD);
			set_tail(x, RING + 64);
		} else {
			set_tail(x, RING);
		}
	} else if (is(mode, "head_past")) {
		/* Claim to have consumed what was never sent. */
		set_head(x, 0x10000);
	} else if (is(mode, "head_misaligned")) {
		await_at_least(&x->peer->tail, RING / 2);
		set_head(x, 4);
	} else if (is(mode, "head_backwards")) {
		/* Consume three half-ring messages, let the test see that,
		 * then give one back. */
		for (int i = 0; i < 3; i++)
			tu_check_res(raw_recv(x, buf, sizeof(buf)), RING / 2 - 8);
		await_at_least(&x->peer->tail, 5 * (RING / 2));
		set_head(x, 2 * (RING / 2));
	} else if (is(mode, "saturate") || is(mode, "saturate_block")) {
		/* Once the test's handshake is over (it says "go": before
		 * that, its checks would see the trap and refuse us), our
		 * data bell, which it kicks after a commit: full, optionally
		 * blocking; and our event index asks for a kick on its next
		 * commit. */
		tu_check_res(raw_recv(x, buf, sizeof(buf)), 2);
		if (is(mode, "saturate_block"))
			make_blocking(x->bell_data);
		saturate(x->bell_data);
		atomic_store(&x->mine->data_event,
			     atomic_load(&x->peer->tail));
		/* The test receives this before it sends: the trap is set. */
		tu_check_res(raw_send(x, "ready", 5), 0);
		/* The test sends once and hangs up.  Still there after 3 s:
		 * its kick is stuck in write(2).  Free it, and fail. */
		if (wait_hangup(x->sock, 3000) == 0)
			return 0;
		os_eventfd_drain(x->bell_data);
		if (is(mode, "saturate_block")) {
			fprintf(stderr, "peer_hostile: the test's kick of our "
				"blocking saturated data bell blocked\n");
			return 1;
		}
	} else if (is(mode, "saturate_space_block")) {
		/* The same on the space bell, kicked by the test's release of
		 * the message we send once the trap is set. */
		tu_check_res(raw_recv(x, buf, sizeof(buf)), 2);
		make_blocking(x->bell_space);
		saturate(x->bell_space);
		atomic_store(&x->mine->space_event,
			     atomic_load(&x->peer->head));
		tu_check_res(raw_send(x, "12345678", 8), 0);
		if (wait_hangup(x->sock, 3000) == 0)
			return 0;
		os_eventfd_drain(x->bell_space);
		fprintf(stderr, "peer_hostile: the test's kick of our blocking "
			"saturated space bell blocked\n");
		return 1;
	} else if (is(mode, "flood")) {
		pthread_t t;
		tu_check(pthread_create(&t, NULL, flood_main, x) == 0);
		echo(x);
		atomic_store(&flood_stop, true);
		pthread_join(t, NULL);
		return 0;
	} else if (is(mode, "bells_blocking")) {
		/* The test's own bells, which it only polls and drains: a
		 * plain read(2) of an empty one would now block. */
		make_blocking(x->kick_data);
		make_blocking(x->kick_space);
		echo(x);
		return 0;
	} else if (is(mode, "wprot")) {
		struct report r = { .n = 0 };
		write_protection(x, &r);
		tu_check_res(raw_send(x, r.text, r.n), 0);
		echo(x);
		return 0;
	} else {
		fprintf(stderr, "peer_hostile: unknown mode %s\n", mode);
		return 2;
	}
	tu_check_res(wait_hangup(x->sock, LONG_MS), 0);
	return 0;
}

/* --- handshake modes ----------------------------------------------------------- */

/* What a HELLO or WELCOME carries once a mode has spoilt it. */
struct offer {
	unsigned char msg[512];
	size_t len;
	int fds[FDP_MAX_FDS];
	unsigned nfds;
};

static const char *const hs_modes[] = {
	"garbage", "garbage_long", "short", "magic", "version", "type",
	"status", "region_size", "ring_npot", "ring_small", "ring_over_max",
	"peer_ring_over_max", "peer_ring_npot", "peer_ring_set",
	"ring_mismatch", "nfds0", "nfds1", "nfds2", "nfds4", "nfds253",
	"bell_pipe", "bell_blocking", "bell_memfd", "region_eventfd",
	"region_tmpfile", "region_otmpfile", "region_shm", "region_wronly",
	"region_opath", "unsealed", "noshrink", "nogrow", "noseal",
	"size_small", "size_large", "hdr_magic", "hdr_version", "hdr_ring",
	"hdr_hdrsize", "reject1", "reject2", "reject3", "reject4", "reject5",
	"reject99", "reject_fds", "reject_close", "silent", "close",
	"hello_die",
};

static bool is_hs_mode(const char *mode)
{
	for (size_t i = 0; i < sizeof(hs_modes) / sizeof(hs_modes[0]); i++)
		if (is(mode, hs_modes[i]))
			return true;
	return false;
}

/* A file that is not a memfd, with a region inside, opened read-write:
 * an O_TMPFILE in /tmp, a file on tmpfs (/dev/shm, where F_GET_SEALS works
 * and says F_SEAL_SEAL), or one in our scratch directory.  Where the first
 * two are not available the third stands in. */
static int fake_region_file(const char *mode, size_t size)
{
	char path[256];
	int fd = -1;

	if (is(mode, "region_otmpfile"))
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		struct stat st;
		if (is(mode, "region_shm") && stat("/dev/shm", &st) == 0)
			snprintf(path, sizeof(path), "/dev/shm/evshm-hostile-%d",
				 (int)getpid());
		else
			snprintf(path, sizeof(path), "%s/region", tu_tmpdir());
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	}
	tu_check(fd >= 0);
	tu_check(ftruncate(fd, (off_t)size) == 0);
	struct region hdr;
	memset(&hdr, 0, sizeof(hdr));
	region_init(&hdr, RING);
	tu_check(pwrite(fd, &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
	return fd;
}

static int reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, flags | O_CLOEXEC);
	tu_check(nfd >= 0);
	return nfd;
}

/*
 * Build our offer, a message of @type (HELLO or WELCOME) for a ring of
 * @ring bytes with its three descriptors, and spoil it as @mode says.
 * Everything the mode does not name is what an honest side would send.
 */
static void spoil(struct raw *x, struct offer *o, const char *mode,
		  uint16_t type, uint32_t ring)
{
	size_t size = REGION_HDR_SIZE + ring;
	uint32_t region_ring = ring;
	int seals = SEALS_ALL;
	struct proto_msg m;

	if (is(mode, "size_small"))
		size -= 4096;
	else if (is(mode, "size_large"))
		size += 4096;
	else if (is(mode, "unsealed"))
		seals = 0;
	else if (is(mode, "noshrink"))
		seals &= ~F_SEAL_SHRINK;
	else if (is(mode, "nogrow"))
		seals &= ~F_SEAL_GROW;
	else if (is(mode, "noseal"))
		seals &= ~F_SEAL_SEAL;
	else if (is(mode, "ring_over_max"))
		/* Consistent and valid, only larger than the server takes. */
		ring = 1u << 17;
	else if (is(mode, "ring_mismatch"))
		/* The test asks for RING back; we answer with another size. */
		ring = 2 * RING;
	if (ring != region_ring) {
		region_ring = ring;
		size = REGION_HDR_SIZE + ring;
	}
	make_region(x, region_ring, size, seals);
	make_bells(x);

	if (type == PROTO_HELLO)
		proto_hello(&m, ring, 0);
	else
		proto_welcome(&m, ring);
	o->len = sizeof(m);
	o->fds[0] = x->ro_fd;
	o->fds[1] = x->bell_data;
	o->fds[2] = x->bell_space;
	o->nfds = 3;

	if (is(mode, "magic"))
		m.magic ^= 1;
	else if (is(mode, "version"))
		m.version = PROTO_VERSION + 1;
	else if (is(mode, "type"))
		m.type = type == PROTO_HELLO ? PROTO_WELCOME : PROTO_HELLO;
	else if (is(mode, "status"))
		m.status = 1;
	else if (is(mode, "region_size"))
		m.region_size += 8;
	else if (is(mode, "ring_npot") || is(mode, "ring_small")) {
		m.ring_size = is(mode, "ring_npot") ? 5000 : EVSHM_RING_MIN / 2;
		m.region_size = REGION_HDR_SIZE + m.ring_size;
	} else if (is(mode, "peer_ring_over_max"))
		m.peer_ring_size = 1u << 20;
	else if (is(mode, "peer_ring_npot"))
		m.peer_ring_size = 3 * RING;
	else if (is(mode, "peer_ring_set"))
		m.peer_ring_size = RING; /* a WELCOME must say 0 */
	else if (is(mode, "hdr_magic"))
		x->mine->magic ^= 1;
	else if (is(mode, "hdr_version"))
		x->mine->version = REGION_VERSION + 1;
	else if (is(mode, "hdr_ring"))
		x->mine->ring_size = 2 * ring;
	else if (is(mode, "hdr_hdrsize"))
		x->mine->hdr_size = 2 * REGION_HDR_SIZE;
	else if (is(mode, "nfds0") || is(mode, "nfds1") || is(mode, "nfds2"))
		o->nfds = (unsigned)(mode[4] - '0');
	else if (is(mode, "nfds4") || is(mode, "nfds253")) {
		o->nfds = is(mode, "nfds4") ? 4 : FDP_MAX_FDS;
		for (unsigned i = 3; i < o->nfds; i++)
			o->fds[i] = x->bell_data; /* the same file again */
	} else if (is(mode, "bell_pipe")) {
		int p[2];
		tu_check(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
		o->fds[1] = p[1];
	} else if (is(mode, "bell_blocking")) {
		o->fds[2] = eventfd(0, EFD_CLOEXEC);
		tu_check(o->fds[2] >= 0);
	} else if (is(mode, "bell_memfd")) {
		o->fds[1] = x->mine_fd;
	} else if (is(mode, "region_eventfd")) {
		o->fds[0] = x->bell_data;
	} else if (is(mode, "region_tmpfile") || is(mode, "region_otmpfile") ||
		   is(mode, "region_shm")) {
		o->fds[0] = fake_region_file(mode, size);
	} else if (is(mode, "region_wronly")) {
		/* A sealed memfd of the right size, as the checks want, but
		 * one that cannot be mapped for reading. */
		o->fds[0] = reopen(x->mine_fd, O_WRONLY);
	} else if (is(mode, "region_opath")) {
		o->fds[0] = reopen(x->mine_fd, O_PATH);
	}

	memcpy(o->msg, &m, sizeof(m));
	if (is(mode, "garbage") || is(mode, "garbage_long")) {
		o->len = is(mode, "garbage") ? sizeof(m) : 300;
		tu_fill(o->msg, o->len, (uint32_t)getpid());
		if (o->msg[0] == (PROTO_MAGIC & 0xff))
			o->msg[0] ^= 0xff;
		o->nfds = 0;
	} else if (is(mode, "short")) {
		o->len = sizeof(m) / 2;
	}
}

static void send_spoilt(struct raw *x, const struct offer *o)
{
	tu_check_res(fdp_send(x->sock, o->msg, o->len, o->fds, o->nfds,
			      LONG_MS), 0);
}

/* After our spoilt offer: the REJECT the test's side must send (reason
 * @reject; 0: whatever comes, if anything), then the end. */
static void expect_reject(struct raw *x, uint32_t reject)
{
	unsigned char buf[256];
	int fds[8];
	unsigned nfds = 0;
	int r = fdp_recv(x->sock, buf, sizeof(buf), fds, 8, &nfds, LONG_MS);

	if (reject) {
		struct proto_msg m;

		tu_check_res(r, (long)sizeof(m));
		tu_check(nfds == 0);
		memcpy(&m, buf, sizeof(m));
		tu_check(m.magic == PROTO_MAGIC && m.version == PROTO_VERSION);
		tu_check_res(m.type, PROTO_REJECT);
		tu_check_res(m.status, reject);
	}
	if (r >= 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		tu_check_res(wait_hangup(x->sock, LONG_MS), 0);
	}
}

/* Client: connect and send a spoilt HELLO. */
static int run_hello(const char *name, const char *mode, uint32_t reject)
{
	struct raw x;
	struct offer o;

	raw_init(&x);
	tu_check_res(ep_connect(name, &x.sock), 0);
	if (is(mode, "silent")) {
		/* Say nothing: the test's evshm_accept() must give up on
		 * its own (handshake_timeout_ms) and hang up. */
		tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
		return 0;
	}
	if (is(mode, "close"))
		return 0;
	spoil(&x, &o, mode, PROTO_HELLO, RING);
	send_spoilt(&x, &o);
	if (is(mode, "hello_die"))
		return 0; /* exit before any WELCOME */
	expect_reject(&x, reject);
	return 0;
}

/* Server: accept, read the HELLO, answer with a spoilt WELCOME or a
 * REJECT, then wait for the test to hang up. */
static int run_welcome(const char *name, const char *mode)
{
	struct raw x;
	struct offer o;
	struct proto_msg m;
	int fds[PROTO_NFDS];
	unsigned char buf[256];
	unsigned nfds;

	raw_init(&x);
	x.sock = listen_accept(name);
	int r = fdp_recv(x.sock, buf, sizeof(buf), fds, PROTO_NFDS, &nfds,
			 LONG_MS);
	tu_check_res(r, (long)sizeof(m));
	tu_check(nfds == PROTO_NFDS);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);

	if (is(mode, "silent")) {
		tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
		return 0;
	}
	if (is(mode, "close"))
		return 0;
	if (is(mode, "reject_fds")) {
		/* A REJECT (which carries none) with descriptors. */
		make_bells(&x);
		int bells[2] = { x.bell_data, x.bell_space };
		proto_reject(&m, PROTO_REJ_VERSION);
		tu_check_res(fdp_send(x.sock, &m, sizeof(m), bells, 2, LONG_MS), 0);
	} else if (is(mode, "reject_close")) {
		/* Refuse and be gone at once. */
		proto_reject(&m, PROTO_REJ_FULL);
		tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0, LONG_MS), 0);
		return 0;
	} else if (strncmp(mode, "reject", 6) == 0) {
		proto_reject(&m, (uint32_t)atoi(mode + 6));
		tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0, LONG_MS), 0);
	} else {
		spoil(&x, &o, mode, PROTO_WELCOME, RING);
		send_spoilt(&x, &o);
	}
	tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t reject = 0;
	struct raw x;

	if (argc < 4) {
		fprintf(stderr, "usage: peer_hostile client|server NAME MODE "
			"[--reject=N]\n");
		return 2;
	}
	for (int i = 4; i < argc; i++)
		if (strncmp(argv[i], "--reject=", 9) == 0)
			reject = (uint32_t)strtoul(argv[i] + 9, NULL, 0);
	/* Never outlive a test that forgot us. */
	alarm(120);
	signal(SIGPIPE, SIG_IGN);

	const char *role = argv[1], *name = argv[2], *mode = argv[3];
	bool client = is(role, "client");
	if (!client && !is(role, "server")) {
		fprintf(stderr, "peer_hostile: role must be client or server\n");
		return 2;
	}
	if (is_hs_mode(mode))
		return client ? run_hello(name, mode, reject)
			      : run_welcome(name, mode);
	raw_init(&x);
	if (client)
		hs_client(&x, name);
	else
		hs_server(&x, name);
	return run_data(&x, mode);
}
