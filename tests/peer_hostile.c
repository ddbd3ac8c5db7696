/* SPDX-License-Identifier: MIT */
/*
 * peer_hostile: the far side of test_hostile and test_trust.  A separately
 * exec'd program built from evshm's internals (endpoint, fdpass, os, proto,
 * region, ring), not from its public API: it speaks docs/protocol.md
 * (version 2) by hand so that it can break any rule of it on purpose.
 *
 *   peer_hostile client NAME MODE [options]   the test waits in evshm_accept()
 *   peer_hostile server NAME MODE [options]   the test calls evshm_connect()
 *   peer_hostile honest NAME TIMEOUT_MS       a real evshm_connect() (public
 *                                             API), then echo; prints the
 *                                             connect time in ms on stdout
 *   peer_hostile flood NAME N                 open N connections to NAME and
 *                                             hold them; see run_flood()
 *   peer_hostile symlinker DIR BASE VICTIM MS race evshm_listen() in DIR;
 *                                             see run_symlinker()
 * options:
 *   --reject=N   (client) the test must answer with a REJECT of reason N
 *                (0: whatever comes, if anything)
 *   --user=NAME  become that user first (needs root)
 *   --n=N        repetitions of a soak mode
 *   --fds        (server, client) announce feature FDS
 *
 * Handshake modes spoil one thing of the HELLO (client) or of READY /
 * WELCOME (server) that an honest side sends; see spoil().  Data modes run
 * a correct handshake and then misbehave; see run_data().
 *
 * Exit 0 when the script ran as planned (and every REJECT it expected
 * came), 1 with the reason on stderr otherwise, 77 when this machine
 * cannot run the mode.  An alarm kills it if the test forgets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "endpoint.h"
#include "evshm.h"
#include "fdpass.h"
#include "handshake.h"
#include "opts.h"
#include "os.h"
#include "proto.h"
#include "region.h"
#include "ring.h"
#include "util.h"

#define RING 4096u        /* every ring in these tests */
#define LONG_MS 30000     /* "the test will act long before this" */
#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)
#define LINGER_S 3        /* SO_LINGER of the sockets of the slow-close modes */

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool starts(const char *a, const char *prefix)
{
	return strncmp(a, prefix, strlen(prefix)) == 0;
}

static uint32_t opt_features;  /* --fds */
static unsigned opt_n = 1;     /* --n */

/* --- our half of a channel, by hand ---------------------------------------- */

struct raw {
	int sock;
	struct region *mine;        /* ours, mapped read-write for good */
	size_t mine_len;
	int mine_fd;                /* our memfd, read-write (kept for attacks) */
	int ro_fd;                  /* its read-only reopen, what we offer */
	int kick;                   /* the test's bell: we kick it */
	int kick_rd;                /* our bell's kicking end, for the test */
	bool no_drain;              /* never empty our bell (let it fill) */
	const struct region *peer;  /* the test's region, read-only */
	size_t peer_len;
	int peer_fd;                /* the test's region descriptor, kept */
	int bell;                   /* our bell: we sleep on it */
	struct ring_tx tx;
	struct ring_rx rx;
	struct ring_role txr, rxr;
};

static void raw_init(struct raw *x)
{
	memset(x, 0, sizeof(*x));
	x->sock = x->mine_fd = x->ro_fd = x->peer_fd = -1;
	x->kick = x->kick_rd = x->bell = -1;
}

/* The honest header (docs/protocol.md 4.1) of a channel side's region. */
static void region_header(struct region *r, uint32_t ring, uint32_t role,
			  const uint8_t *id)
{
	r->magic = REGION_MAGIC;
	r->version = REGION_VERSION;
	r->kind = REGION_CHAN;
	r->hdr_size = REGION_HDR_SIZE;
	r->ring_size = ring;
	r->role = role;
	r->pid = (uint32_t)getpid();
	r->features = opt_features;
	if (id)
		memcpy(r->id, id, REGION_ID_SIZE);
	atomic_store(&r->space_event, UINT64_MAX);
	atomic_store(&r->data_event, UINT64_MAX);
}

/* Our region: a memfd named @name of @size bytes whose header says @ring,
 * mapped read-write, sealed with @seals, and a read-only reopen to offer.
 * The honest recipe (docs/protocol.md 4.2) unless a mode turns a knob. */
static void make_region_named(struct raw *x, const char *name, uint32_t ring,
			      size_t size, int seals, uint32_t role)
{
	tu_check_res(os_memfd(name, size, &x->mine_fd), 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       x->mine_fd, 0);
	tu_check(p != MAP_FAILED);
	x->mine = p;
	x->mine_len = size;
	region_header(x->mine, ring, role, NULL);
	if (seals)
		tu_check(fcntl(x->mine_fd, F_ADD_SEALS, seals) == 0);
	tu_check_res(os_reopen_ro(x->mine_fd, &x->ro_fd), 0);
}

static void make_region(struct raw *x, uint32_t ring, size_t size, int seals,
			uint32_t role)
{
	make_region_named(x, "evshm:chan", ring, size, seals, role);
}

static void make_bell(struct raw *x)
{
	tu_check_res(os_bell_pair(&x->bell, &x->kick_rd), 0);
}

/* Map what an honest peer offered and set the rings up. */
static void take_offer(struct raw *x, const struct proto_msg *m,
		       const int fds[PROTO_NFDS])
{
	x->peer_fd = fds[PROTO_FD_REGION];
	x->kick = fds[PROTO_FD_BELL];
	x->peer_len = m->region_size;
	void *p = mmap(NULL, x->peer_len, PROT_READ, MAP_SHARED, x->peer_fd, 0);
	tu_check(p != MAP_FAILED);
	x->peer = p;
	tu_check(x->peer->magic == REGION_MAGIC &&
		 x->peer->ring_size == m->ring_size);
	ring_tx_init(&x->tx, x->mine, x->mine->ring_size);
	ring_rx_init(&x->rx, x->mine, region_cdata(x->peer), m->ring_size);
	ring_role_init(&x->txr, &x->mine->tx_state, false);
	ring_role_init(&x->rxr, &x->mine->rx_state, false);
}

/* Connect and read the test's READY: the client's way in. */
static struct hs_client client_start(const char *name)
{
	struct hs_client hc;
	struct evshm_opts o;

	tu_check_res(opts_resolve(&o, NULL), 0);
	tu_check_res(hs_client_start(name, &o, PROTO_KIND_CHAN, LONG_MS, &hc), 0);
	return hc;
}

/* A correct handshake as the client. */
static void hs_client(struct raw *x, const char *name)
{
	struct hs_client hc = client_start(name);
	struct proto_msg hello, m;
	int fds[PROTO_NFDS];
	uint8_t id[PROTO_ID_SIZE];

	x->sock = hc.sock;
	hc.deadline = os_deadline(LONG_MS);
	os_random(id, sizeof(id));
	make_region(x, RING, region_size(RING), SEALS_ALL, REGION_CLIENT);
	memcpy(x->mine->id, id, sizeof(id));
	make_bell(x);
	proto_hello(&hello, PROTO_KIND_CHAN, opt_features, RING, 0, id, 0);
	int ours[PROTO_NFDS] = { x->ro_fd, x->kick_rd };
	tu_check_res(hs_client_finish(&hc, &hello, ours, &m, fds, EVSHM_RING_MAX), 0);
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

static void send_ready(int sock)
{
	struct proto_msg m;

	proto_ready(&m, PROTO_KIND_CHAN, opt_features, 1u << 20, 0, NULL);
	tu_check_res(fdp_send(sock, &m, sizeof(m), NULL, 0, LONG_MS), 0);
}

/* Receive the test's HELLO (honest) and its descriptors. */
static void recv_hello(int sock, struct proto_msg *m, int fds[PROTO_NFDS])
{
	unsigned char buf[256];
	unsigned nfds = 0;
	int r = fdp_recv(sock, buf, sizeof(buf), fds, PROTO_NFDS, &nfds, LONG_MS);

	tu_check_res(r, (long)sizeof(*m));
	tu_check_res(proto_parse(buf, (size_t)r, PROTO_HELLO, m), 0);
	tu_check(nfds == PROTO_NFDS);
}

/* A correct handshake as the server. */
static void hs_server(struct raw *x, const char *name)
{
	struct proto_msg hello, m;
	int fds[PROTO_NFDS];

	x->sock = listen_accept(name);
	send_ready(x->sock);
	recv_hello(x->sock, &hello, fds);
	uint32_t ring = hello.peer_ring_size ? hello.peer_ring_size : RING;
	make_region(x, ring, region_size(ring), SEALS_ALL, REGION_SERVER);
	memcpy(x->mine->id, hello.id, sizeof(hello.id));
	make_bell(x);
	take_offer(x, &hello, fds);
	proto_welcome(&m, PROTO_KIND_CHAN, opt_features, ring, hello.id, 0, 0);
	int ours[PROTO_NFDS] = { x->ro_fd, x->kick_rd };
	tu_check_res(fdp_send(x->sock, &m, sizeof(m), ours, PROTO_NFDS, LONG_MS), 0);
}

/* Wait until the test hangs up (or @timeout_ms): 0 on hang-up,
 * -ETIMEDOUT.  Anything it sends on the socket is read and dropped; *got
 * (may be NULL) counts those messages. */
static int wait_hangup_count(int sock, int timeout_ms, unsigned *got)
{
	uint64_t deadline = os_deadline(timeout_ms);

	for (;;) {
		unsigned char buf[256];
		int fds[FDP_MAX_FDS];
		unsigned nfds;
		int r = fdp_recv(sock, buf, sizeof(buf), fds, FDP_MAX_FDS, &nfds,
				 os_remaining_ms(deadline));
		if (r == -EPIPE || r == -ECONNRESET)
			return 0;
		if (r == -ETIMEDOUT || r == -EAGAIN)
			return -ETIMEDOUT;
		tu_check(r >= 0);
		if (got)
			(*got)++;
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static int wait_hangup(int sock, int timeout_ms)
{
	return wait_hangup_count(sock, timeout_ms, NULL);
}

/* Sleep on our bell until the test kicks it, or hangs up. */
static int raw_sleep(struct raw *x, struct ring_role *role)
{
	struct pollfd pfd[2] = {
		{ .fd = x->bell, .events = POLLIN },
		{ .fd = x->sock, .events = POLLRDHUP },
	};

	ring_role_asleep(role, true);
	int n = os_poll(pfd, 2, os_deadline(LONG_MS));
	ring_role_asleep(role, false);
	tu_check(n > 0);
	if (pfd[1].revents)
		return -EPIPE;
	if (!x->no_drain)
		os_bell_drain(x->bell);
	return 0;
}

/* The test may be fenceless (6.4): then an arming needs its barrier. */
static int after_arm(int r, struct raw *x, size_t len, bool tx)
{
	if (r != RING_BARRIER)
		return r;
	tu_check_res(os_membarrier(), 0);
	if (tx)
		return ring_tx_check(&x->tx, x->peer, len);
	return ring_rx_ready(&x->rx) ? 0 : -EAGAIN;
}

/* The next message from the test, honestly; -EPIPE once it hung up. */
static int raw_recv(struct raw *x, void *buf, size_t cap)
{
	for (;;) {
		const void *p;
		size_t len;
		uint64_t old, new_;
		int r = ring_rx_peek(&x->rx, &p, &len, NULL);

		if (r == 0) {
			tu_check(len <= cap);
			memcpy(buf, p, len);
			tu_check_res(ring_rx_release(&x->rx, &old, &new_), 0);
			if (ring_rx_wake(&x->rxr, x->peer, old, new_))
				(void)os_bell_kick(x->kick);
			return (int)len;
		}
		tu_check_res(r, -EAGAIN);
		ring_role_fence_on(&x->rxr);
		r = after_arm(ring_rx_arm(&x->rx, x->peer), x, 0, false);
		if (r == 0)
			continue;
		tu_check_res(r, -EAGAIN);
		r = raw_sleep(x, &x->rxr);
		if (r < 0)
			return r;
	}
}

/* Commit @len bytes of @buf with record @flags, honestly (room known). */
static void raw_commit(struct raw *x, const void *buf, size_t len,
		       uint32_t flags)
{
	uint64_t old, new_;
	void *p;
	int r = ring_tx_reserve(&x->tx, len, &p);

	if (r == -EAGAIN) {
		tu_check_res(ring_tx_refresh_head(&x->tx, x->peer), 0);
		r = ring_tx_reserve(&x->tx, len, &p);
	}
	tu_check_res(r, 0);
	memcpy(p, buf, len);
	tu_check_res(ring_tx_publish(&x->tx, len, flags, x->tx.head,
				     &old, &new_), 0);
	if (ring_tx_wake(&x->txr, x->peer, old, new_))
		(void)os_bell_kick(x->kick);
}

/* Send one message to the test, honestly; -EPIPE once it hung up. */
static int raw_send(struct raw *x, const void *buf, size_t len)
{
	for (;;) {
		void *p;
		int r = ring_tx_reserve(&x->tx, len, &p);

		if (r == -EAGAIN) {
			tu_check_res(ring_tx_refresh_head(&x->tx, x->peer), 0);
			r = ring_tx_reserve(&x->tx, len, &p);
		}
		if (r == 0) {
			ring_tx_cancel(&x->tx);
			break;
		}
		tu_check_res(r, -EAGAIN);
		ring_role_fence_on(&x->txr);
		r = after_arm(ring_tx_arm(&x->tx, x->peer, len), x, len, true);
		if (r == 0)
			continue;
		tu_check_res(r, -EAGAIN);
		r = raw_sleep(x, &x->txr);
		if (r < 0)
			return r;
	}
	raw_commit(x, buf, len, 0);
	return 0;
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

/* Poll (the test runs concurrently) until *@idx, in the test's region,
 * is at least @want; 5 s at most. */
static void await_at_least(const _Atomic uint64_t *idx, uint64_t want)
{
	uint64_t end = os_deadline(5000);

	while (atomic_load_explicit(idx, memory_order_acquire) < want) {
		tu_check(os_now_ns() < end);
		usleep(100);
	}
}

/* A record header at @pos of our ring, published with @seq (5.1). */
static void put_rec(struct raw *x, uint32_t pos, uint32_t len, uint32_t flags,
		    uint64_t seq)
{
	uint8_t *rec = region_data(x->mine) + pos;
	uint32_t hdr[2] = { len, flags };

	memcpy(rec, hdr, sizeof(hdr));
	__atomic_store_n((uint64_t *)(void *)(rec + 8), seq, __ATOMIC_RELEASE);
	atomic_thread_fence(memory_order_seq_cst);
	(void)os_bell_kick(x->kick);
}

static void set_head(struct raw *x, uint64_t head)
{
	atomic_store_explicit(&x->mine->head, head, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	(void)os_bell_kick(x->kick);
}

/* Clear O_NONBLOCK on @fd.  The flag belongs to the open file description,
 * which SCM_RIGHTS shares: the other process's descriptor loses it too. */
static void make_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	tu_check(fl >= 0);
	tu_check(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0);
}

/* A TCP socket whose last close blocks for LINGER_S seconds (see
 * tu_lingering_socket); *@keep must stay open meanwhile. */
static int lingering_socket(int *keep)
{
	return tu_lingering_socket(keep, LINGER_S);
}

/* One end (@which: 0 read, 1 write) of a new anonymous pipe; *@keep is the
 * other, kept open meanwhile. */
static int pipe_end(int *keep, int which)
{
	int p[2];

	tu_check(pipe2(p, O_CLOEXEC) == 0);
	*keep = p[!which];
	return p[which];
}

/* --- flooding the bell -------------------------------------------------------- */

static atomic_bool flood_stop;

/* Kick the test's bell as fast as we can. */
static void *flood_main(void *arg)
{
	const struct raw *x = arg;
	const char one = 1;

	while (!atomic_load(&flood_stop))
		if (write(x->kick, &one, 1) < 0)
			sched_yield(); /* full: the test has not drained yet */
	return NULL;
}

static void flood_start(struct raw *x, pthread_t *t)
{
	tu_check(pthread_create(t, NULL, flood_main, x) == 0);
}

static void flood_end(pthread_t t)
{
	atomic_store(&flood_stop, true);
	pthread_join(t, NULL);
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

/* Write over the test's head through /proc/self/mem (FOLL_FORCE, what a
 * debugger uses to plant breakpoints in read-only text). */
static int try_proc_mem(const struct raw *x)
{
	uint64_t junk = 0xdeadbeefu;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pwrite(fd, &junk, sizeof(junk),
			   (off_t)(uintptr_t)&x->peer->head);
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
	 * open file description.  What stops the writable mapping is
	 * F_SEAL_FUTURE_WRITE (docs/protocol.md 4.3).
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rw = open(path, O_RDWR | O_CLOEXEC);
	note(r, "b_reopen_rdwr", rw < 0 ? -errno : 0, "info");
	res = rw < 0 ? -errno : try_mmap(rw, len, PROT_READ | PROT_WRITE);
	attack(r, "b_reopen_mmap_shared_rw", res);

	/* (c) write(2) and pwrite(2), over the header and over the ring. */
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
	 * Linux has no call that removes a seal. */
	attack(r, "e_add_seal_write_ro", sys(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
	attack(r, "e_add_seal_write_rw",
	       rw < 0 ? rw : sys(fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE)));
	attack(r, "e_add_no_seal_rw", rw < 0 ? rw : sys(fcntl(rw, F_ADD_SEALS, 0)));
	note(r, "e_seals", fcntl(fd, F_GET_SEALS), "info");

	/* (f) mprotect a read-only shared mapping to writable. */
	attack(r, "f_mprotect_ro", try_mprotect(fd, len));
	attack(r, "f_mprotect_rw", rw < 0 ? rw : try_mprotect(rw, len));

	/* (g) Drop the pages of a read-only mapping, force a write through
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

	/* (h) A private writable mapping is allowed (copy-on-write) and must
	 * not show through: scribble over the whole header page. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	note(r, "h_mmap_private_rw", p == MAP_FAILED ? -errno : 0, "info");
	if (p != MAP_FAILED) {
		memset(p, 0xff, REGION_HDR_SIZE);
		bool leak = x->peer->magic != REGION_MAGIC ||
			    atomic_load(&x->peer->head) != 0;
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
		      atomic_load(&x->peer->head) == 0;
	note(r, "z_header_intact", intact ? -EPERM : 0, intact ? "blocked" : "LEAK");
}

/* --- after a correct handshake ---------------------------------------------- */

/* An FDS message (7) with @nfds copies of @fd. */
static void send_fds(struct raw *x, const void *m, size_t len, int fd,
		     unsigned nfds)
{
	int fds[FDP_MAX_FDS];

	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fd;
	tu_check_res(fdp_send(x->sock, m, len, fds, nfds, LONG_MS), 0);
}

/* The FDS modes: a message that does not match the record that follows. */
static void fds_lie(struct raw *x, const char *mode)
{
	unsigned char buf[sizeof(struct proto_fds) + 1] = { 0 };
	struct proto_fds m;
	size_t len = sizeof(m);

	proto_fds(&m, is(mode, "fds_count") ? 2 : 1, is(mode, "fds_seq") ? 1 : 0);
	if (is(mode, "fds_reserved"))
		m.reserved = 1;
	if (is(mode, "fds_garbage"))
		tu_fill(&m, sizeof(m), 7);
	memcpy(buf, &m, sizeof(m));
	if (is(mode, "fds_trailing"))
		len++; /* 25 bytes: exactly 24 or malformed (7) */
	send_fds(x, buf, len, x->kick_rd, 1);
	raw_commit(x, "12345678", 8, RING_F_FDS);
}

static int run_data(struct raw *x, const char *mode)
{
	static uint8_t buf[RING];
	pthread_t t;

	if (is(mode, "honest")) {
		echo(x);
		return 0;
	}
	if (is(mode, "rec_huge")) {
		put_rec(x, 0, 0xfffffff0u, 0, 1);
	} else if (is(mode, "rec_fit")) {
		/* Three honest messages of 1008 bytes (1024 in the ring),
		 * then at 3072 a record of 1100 that runs past the end. */
		for (int i = 0; i < 3; i++)
			tu_check_res(raw_send(x, buf, 1008), 0);
		await_at_least(&x->peer->head, 3072);
		put_rec(x, 3072, 1100, 0, 4);
	} else if (is(mode, "rec_flags")) {
		/* A reserved flag on an ordinary record (5.1: MUST be 0). */
		put_rec(x, 0, 8, 0x4, 1);
	} else if (is(mode, "rec_seq_ahead")) {
		/* A record with a sequence number from the future: not the
		 * one expected, so not published; nothing is delivered. */
		put_rec(x, 0, 8, 0, 2);
	} else if (is(mode, "pad_flags")) {
		put_rec(x, 0, RING - RING_REC_HDR, RING_F_PAD | 0x4, 1);
	} else if (is(mode, "pad_short")) {
		/* A pad that does not reach the end of the ring. */
		put_rec(x, 0, 100, RING_F_PAD, 1);
	} else if (is(mode, "pad_alone") || is(mode, "pad_pad")) {
		/* One honest message of half the ring; then a pad after it
		 * whose record at 0 is not published, or is a pad too. */
		memset(buf, 'p', RING / 2 - RING_REC_HDR);
		tu_check_res(raw_send(x, buf, RING / 2 - RING_REC_HDR), 0);
		await_at_least(&x->peer->head, RING / 2);
		if (is(mode, "pad_pad"))
			put_rec(x, 0, RING - RING_REC_HDR, RING_F_PAD, 2);
		put_rec(x, RING / 2, RING / 2 - RING_REC_HDR, RING_F_PAD, 2);
	} else if (is(mode, "fds_unwanted") || is(mode, "fds_missing")) {
		/* Descriptors announced, none on the socket (the test refuses
		 * them, or accepts them and none came). */
		put_rec(x, 0, 8, RING_F_FDS, 1);
	} else if (starts(mode, "fds_") && !is(mode, "fds_then_missing") &&
		   !starts(mode, "fds_linger") && !is(mode, "fds_stuff")) {
		fds_lie(x, mode);
	} else if (is(mode, "fds_then_missing")) {
		/* One honest message with a descriptor, then a lie. */
		struct proto_fds m;
		proto_fds(&m, 1, 0);
		send_fds(x, &m, sizeof(m), x->kick_rd, 1);
		raw_commit(x, "12345678", 8, RING_F_FDS);
		await_at_least(&x->peer->head, 32);
		put_rec(x, 32, 8, RING_F_FDS, 2);
	} else if (is(mode, "fds_stuff")) {
		/* Fill the test's socket with descriptors that no record
		 * refers to, then behave: they must cost it no descriptor. */
		struct proto_fds m;
		int i, r = 0;
		int fds[FDP_MAX_FDS];
		for (i = 0; i < FDP_MAX_FDS; i++)
			fds[i] = x->kick_rd;
		proto_fds(&m, FDP_MAX_FDS, 0);
		for (i = 0; i < 16 && r == 0; i++)
			r = fdp_send(x->sock, &m, sizeof(m), fds, FDP_MAX_FDS,
				     LONG_MS);
		tu_check(r == 0 || (r == -ETOOMANYREFS && i > 1));
		echo(x);
		return 0;
	} else if (starts(mode, "fds_linger")) {
		/* Messages whose descriptor is a socket with a slow close.
		 * fds_linger: one, with its record; the test reads it with
		 * plain evshm_recv(), which closes what nobody took.
		 * fds_linger_queued: four on the test's socket with no record
		 * that names them, then "ready": the test closes the channel
		 * with them still in its queue. */
		bool queued = is(mode, "fds_linger_queued");
		int keep, s = lingering_socket(&keep);
		struct proto_fds m;

		proto_fds(&m, 1, 0);
		for (int i = 0; i < (queued ? 4 : 1); i++)
			send_fds(x, &m, sizeof(m), s, 1);
		close(s); /* the test's copies are the last ones */
		if (queued)
			tu_check_res(raw_send(x, "ready", 5), 0);
		else
			raw_commit(x, "12345678", 8, RING_F_FDS);
		tu_check_res(wait_hangup(x->sock, LONG_MS), 0);
		close(keep);
		return 0;
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
			tu_check_res(raw_recv(x, buf, sizeof(buf)),
				     RING / 2 - RING_REC_HDR);
		await_at_least(&x->peer->tail, 5 * (RING / 2));
		set_head(x, 2 * (RING / 2));
	} else if (is(mode, "flood")) {
		/* Kick the test's bell in a tight loop while echoing. */
		flood_start(x, &t);
		echo(x);
		flood_end(t);
		return 0;
	} else if (is(mode, "flood_silent")) {
		/* Kick it in a tight loop and do nothing else: every call of
		 * the test that waits is woken all the time, for nothing. */
		flood_start(x, &t);
		tu_check_res(wait_hangup(x->sock, LONG_MS), 0);
		flood_end(t);
		return 0;
	} else if (is(mode, "bells_blocking")) {
		/* Clear O_NONBLOCK on the kicking end of our bell, which the
		 * test shares (one open file description), fill the bell and
		 * never empty it: the test's kicks must still never block. */
		make_blocking(x->kick_rd);
		while (send(x->kick_rd, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
			;
		x->no_drain = true;
		echo(x);
		return 0;
	} else if (is(mode, "bell_watch")) {
		/* Our bell in 100,000 epoll entries: every kick of the test
		 * walks them all in its thread.  Echo meanwhile. */
		tu_check_res(tu_watch_widely(x->bell, 200, 500, NULL), 0);
		echo(x);
		return 0;
	} else if (is(mode, "bell_shut")) {
		/* Shut the test's bell down (its kicking end, which we hold)
		 * and stay: it must take that as our leaving, not spin. */
		tu_check(shutdown(x->kick, SHUT_WR) == 0);
		tu_check_res(wait_hangup(x->sock, LONG_MS), 0);
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
	int keep;            /* a descriptor to keep open until the end */
};

static const char *const hs_modes[] = {
	"garbage", "garbage_long", "short", "magic", "version", "type",
	"kind", "kind_bad", "status", "param", "param2", "region_size",
	"ring_npot", "ring_small", "ring_over_max", "peer_ring_over_max",
	"peer_ring_npot", "peer_ring_set", "ring_mismatch", "ring_huge",
	"ring_over_client_max", "id", "nfds0", "nfds1", "nfds3", "nfds253",
	"bell_pipe", "bell_pipe_wr", "bell_dgram", "bell_seqpacket",
	"bell_unconnected", "bell_eventfd", "bell_memfd", "bell_fifo",
	"bell_linger", "nfds3_linger", "region_pipe", "region_socket",
	"region_tmpfile",
	"region_otmpfile",
	"region_shm", "region_wronly", "region_opath", "region_linger",
	"unsealed", "noshrink", "nogrow", "noseal", "nowriteseal",
	"size_small", "size_large", "hdr_magic", "hdr_version", "hdr_kind",
	"hdr_ring", "hdr_hdrsize", "hugetlb", "race", "race_soak",
	"version_over_max", "over_max_unsealed",
	"reject1", "reject2", "reject3", "reject4", "reject5", "reject99",
	"reject_fds", "reject_close", "reject_fields", "ready_kind",
	"ready_fields", "silent_ready", "silent", "close", "hello_die",
	"squat",
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
	region_header(&hdr, RING, REGION_CLIENT, NULL);
	tu_check(pwrite(fd, &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
	return fd;
}

/*
 * A MFD_HUGETLB memfd of exactly @size bytes (fallocate sets a size that is
 * not a multiple of the huge page), with an honest header and every seal:
 * it passes all the checks of 0.1 (docs/protocol.md 4.4 step 2 refuses it).
 * Exits 77 if this machine has no huge page to give.
 */
static int hugetlb_region(size_t size, uint32_t role)
{
	int fd = memfd_create("evshm:chan", MFD_CLOEXEC | MFD_ALLOW_SEALING |
						    MFD_HUGETLB);
	if (fd < 0 || fallocate(fd, 0, 0, (off_t)size) < 0) {
		fprintf(stderr, "peer_hostile: no huge pages: %s\n",
			strerror(errno));
		exit(TU_EXIT_SKIP);
	}
	size_t map = (size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	void *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	tu_check(p != MAP_FAILED);
	region_header(p, (uint32_t)(size - REGION_HDR_SIZE), role, NULL);
	munmap(p, map);
	tu_check(fcntl(fd, F_ADD_SEALS, SEALS_ALL) == 0);
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

static int named_fifo(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/fifo", tu_tmpdir());
	tu_check(mkfifo(path, 0600) == 0);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	tu_check(fd >= 0);
	unlink(path);
	return fd;
}

/*
 * Build our offer, a message of @type (HELLO or WELCOME) for a ring of
 * @ring bytes with its two descriptors, and spoil it as @mode says; @id is
 * the channel's identity.  Everything the mode does not name is what an
 * honest side would send.
 */
static void spoil(struct raw *x, struct offer *o, const char *mode,
		  uint16_t type, uint32_t ring, const uint8_t *id)
{
	uint32_t role = type == PROTO_HELLO ? REGION_CLIENT : REGION_SERVER;
	int seals = SEALS_ALL;
	size_t size;
	struct proto_msg m;

	if (is(mode, "ring_over_max") || is(mode, "over_max_unsealed") ||
	    is(mode, "version_over_max"))
		/* Consistent and valid, only larger than the server takes. */
		ring = 1u << 17;
	else if (is(mode, "ring_mismatch"))
		/* The test asks for RING back; we answer with another size. */
		ring = 2 * RING;
	else if (is(mode, "ring_over_client_max"))
		ring = 1u << 20;
	else if (is(mode, "ring_huge"))
		/* 1 GiB: a sparse file, nothing is written into it. */
		ring = EVSHM_RING_MAX;
	size = region_size(ring);
	if (is(mode, "size_small"))
		size -= 4096;
	else if (is(mode, "size_large"))
		size += 4096;
	if (is(mode, "unsealed") || is(mode, "over_max_unsealed") ||
	    starts(mode, "race"))
		seals = 0;
	else if (is(mode, "noshrink"))
		seals &= ~F_SEAL_SHRINK;
	else if (is(mode, "nogrow"))
		seals &= ~F_SEAL_GROW;
	else if (is(mode, "noseal"))
		seals &= ~F_SEAL_SEAL;
	else if (is(mode, "nowriteseal"))
		seals &= ~F_SEAL_FUTURE_WRITE;
	if (is(mode, "ring_huge")) {
		/* Map only the header page of it. */
		tu_check_res(os_memfd("evshm:chan", size, &x->mine_fd), 0);
		struct region hdr;
		memset(&hdr, 0, sizeof(hdr));
		region_header(&hdr, ring, role, id);
		tu_check(pwrite(x->mine_fd, &hdr, sizeof(hdr), 0) ==
			 (ssize_t)sizeof(hdr));
		tu_check(fcntl(x->mine_fd, F_ADD_SEALS, SEALS_ALL) == 0);
		tu_check_res(os_reopen_ro(x->mine_fd, &x->ro_fd), 0);
	} else {
		make_region_named(x, starts(mode, "race") ? "race" : "evshm:chan",
				  ring, size, seals, role);
		memcpy(x->mine->id, id, PROTO_ID_SIZE);
	}
	make_bell(x);

	if (type == PROTO_HELLO)
		proto_hello(&m, PROTO_KIND_CHAN, opt_features, ring, 0, id, 0);
	else
		proto_welcome(&m, PROTO_KIND_CHAN, opt_features, ring, id, 0, 0);
	o->len = sizeof(m);
	o->fds[PROTO_FD_REGION] = x->ro_fd;
	o->fds[PROTO_FD_BELL] = x->kick_rd;
	o->nfds = PROTO_NFDS;
	o->keep = -1;

	if (is(mode, "magic"))
		m.magic ^= 1;
	else if (is(mode, "version") || is(mode, "version_over_max"))
		m.version = PROTO_VERSION + 1;
	else if (is(mode, "type"))
		m.type = type == PROTO_HELLO ? PROTO_WELCOME : PROTO_HELLO;
	else if (is(mode, "kind"))
		m.kind = PROTO_KIND_TOPIC;
	else if (is(mode, "kind_bad"))
		m.kind = 3;
	else if (is(mode, "status"))
		m.status = 1;
	else if (is(mode, "param"))
		m.param = 1;
	else if (is(mode, "param2"))
		m.param2 = 1;
	else if (is(mode, "id"))
		m.id[0] ^= 1;
	else if (is(mode, "region_size"))
		m.region_size += 16;
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
	else if (is(mode, "hdr_kind"))
		x->mine->kind = REGION_PUB;
	else if (is(mode, "hdr_ring"))
		x->mine->ring_size = 2 * ring;
	else if (is(mode, "hdr_hdrsize"))
		x->mine->hdr_size = 2 * REGION_HDR_SIZE;
	else if (is(mode, "nfds0") || is(mode, "nfds1"))
		o->nfds = (unsigned)(mode[4] - '0');
	else if (is(mode, "nfds3") || is(mode, "nfds253")) {
		o->nfds = is(mode, "nfds3") ? 3 : FDP_MAX_FDS;
		for (unsigned i = PROTO_NFDS; i < o->nfds; i++)
			o->fds[i] = x->kick_rd; /* the same file again */
	} else if (is(mode, "bell_pipe")) {
		/* The read end of an anonymous pipe (protocol 2 drafts). */
		o->fds[PROTO_FD_BELL] = pipe_end(&o->keep, 0);
	} else if (is(mode, "bell_pipe_wr")) {
		o->fds[PROTO_FD_BELL] = pipe_end(&o->keep, 1);
	} else if (is(mode, "bell_dgram") || is(mode, "bell_seqpacket")) {
		int sv[2];
		tu_check(socketpair(AF_UNIX, (is(mode, "bell_dgram") ?
					      SOCK_DGRAM : SOCK_SEQPACKET) |
					     SOCK_CLOEXEC, 0, sv) == 0);
		o->fds[PROTO_FD_BELL] = sv[1];
		o->keep = sv[0];
	} else if (is(mode, "bell_unconnected")) {
		o->fds[PROTO_FD_BELL] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					       0);
		tu_check(o->fds[PROTO_FD_BELL] >= 0);
	} else if (is(mode, "bell_eventfd")) {
		tu_check_res(tu_eventfd(&o->fds[PROTO_FD_BELL]), 0);
	} else if (is(mode, "bell_memfd")) {
		o->fds[PROTO_FD_BELL] = x->ro_fd;
	} else if (is(mode, "bell_fifo")) {
		o->fds[PROTO_FD_BELL] = named_fifo();
	} else if (is(mode, "bell_linger")) {
		o->fds[PROTO_FD_BELL] = lingering_socket(&o->keep);
	} else if (is(mode, "region_linger")) {
		o->fds[PROTO_FD_REGION] = lingering_socket(&o->keep);
	} else if (is(mode, "nfds3_linger")) {
		/* One too many, a receiver rejects the message whole. */
		o->nfds = 3;
		o->fds[2] = lingering_socket(&o->keep);
	} else if (is(mode, "region_pipe")) {
		o->fds[PROTO_FD_REGION] = pipe_end(&o->keep, 0);
	} else if (is(mode, "region_socket")) {
		o->fds[PROTO_FD_REGION] = x->kick_rd;
	} else if (is(mode, "region_tmpfile") || is(mode, "region_otmpfile") ||
		   is(mode, "region_shm")) {
		o->fds[PROTO_FD_REGION] = fake_region_file(mode, size);
	} else if (is(mode, "region_wronly")) {
		/* A sealed memfd of the right size, as the checks want, but
		 * one that cannot be mapped for reading. */
		o->fds[PROTO_FD_REGION] = reopen(x->mine_fd, O_WRONLY);
	} else if (is(mode, "region_opath")) {
		o->fds[PROTO_FD_REGION] = reopen(x->mine_fd, O_PATH);
	} else if (is(mode, "hugetlb")) {
		o->fds[PROTO_FD_REGION] = hugetlb_region(size, role);
	} else if (starts(mode, "race")) {
		/* Unsealed, of the right size: we truncate and seal it as
		 * soon as it is sent (run_race()). */
		o->fds[PROTO_FD_REGION] = x->mine_fd;
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

/*
 * Right after the offer is sent.  race_soak: the attack of item 1 of the
 * 0.1 review, truncate the region to nothing and seal it, so that a
 * receiver that checks the size before the seals maps an empty file (in
 * mode race the test does that itself at the worst moment).  *_linger:
 * drop our copy of the lingering socket, so that the test's is the last.
 * As a client we say "closed" on stdout then, and the test reads our HELLO
 * only after that.  As a server we cannot wait for the test, which reads
 * our WELCOME at once: if it closes its copy first, ours is the last and
 * our close lingers; a thread does it, so that we still go on.
 */
static void *close_main(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

static void after_send(struct raw *x, struct offer *o, const char *mode,
		       bool client)
{
	int fd = is(mode, "bell_linger")   ? o->fds[PROTO_FD_BELL] :
		 is(mode, "region_linger") ? o->fds[PROTO_FD_REGION] :
		 is(mode, "nfds3_linger")  ? o->fds[2] :
					     -1;
	pthread_t t;

	if (is(mode, "race_soak")) {
		tu_check(ftruncate(x->mine_fd, 0) == 0);
		tu_check(fcntl(x->mine_fd, F_ADD_SEALS, SEALS_ALL) == 0);
	} else if (fd >= 0 && client) {
		close(fd);
		printf("closed\n");
		fflush(stdout);
	} else if (fd >= 0) {
		tu_check(pthread_create(&t, NULL, close_main,
					(void *)(intptr_t)fd) == 0);
		pthread_detach(t);
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

static void raw_free(struct raw *x)
{
	if (x->mine)
		munmap(x->mine, x->mine_len);
	if (x->peer)
		munmap((void *)x->peer, x->peer_len);
	int fds[] = { x->sock, x->mine_fd, x->ro_fd, x->kick, x->kick_rd,
		      x->peer_fd, x->bell };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	raw_init(x);
}

/* Client: connect, read READY, send a spoilt HELLO (@opt_n times for a
 * soak mode). */
static int run_hello(const char *name, const char *mode, uint32_t reject)
{
	for (unsigned i = 0; i < opt_n; i++) {
		struct raw x;
		struct offer o;
		uint8_t id[PROTO_ID_SIZE];

		raw_init(&x);
		if (is(mode, "silent")) {
			/* Say nothing: the test's evshm_accept() must give up on
			 * its own (handshake_timeout_ms) and hang up. */
			tu_check_res(ep_connect(name, LONG_MS, &x.sock), 0);
			tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
			raw_free(&x);
			continue;
		}
		struct hs_client hc = client_start(name);
		x.sock = hc.sock;
		if (is(mode, "close")) {
			raw_free(&x);
			continue;
		}
		os_random(id, sizeof(id));
		spoil(&x, &o, mode, PROTO_HELLO, RING, id);
		send_spoilt(&x, &o);
		after_send(&x, &o, mode, true);
		if (!is(mode, "hello_die"))
			expect_reject(&x, reject);
		if (o.keep >= 0)
			close(o.keep);
		raw_free(&x);
	}
	return 0;
}

/* Server: accept, send READY, read the HELLO, answer with a spoilt
 * WELCOME or a REJECT, then wait for the test to hang up; @opt_n times for
 * a soak mode. */
static int run_welcome(const char *name, const char *mode)
{
	struct ep_listener l;
	bool squat = is(mode, "squat");

	tu_check_res(ep_listen(&l, name, 0, 0), 0);
	for (unsigned i = 0; i < opt_n; i++) {
		struct raw x;
		struct offer o;
		struct proto_msg m, hello;
		int fds[PROTO_NFDS];

		raw_init(&x);
		tu_check_res(ep_accept(&l, LONG_MS, &x.sock), 0);
		if (is(mode, "silent_ready") || squat) {
			unsigned got = 0;

			/* A squatter: READY (if the client still listens),
			 * then whatever the client sends is a leak. */
			if (squat) {
				proto_ready(&m, PROTO_KIND_CHAN, 0, 1u << 20, 0, NULL);
				(void)fdp_send(x.sock, &m, sizeof(m), NULL, 0, 0);
			}
			tu_check_res(wait_hangup_count(x.sock, LONG_MS, &got), 0);
			if (got) {
				fprintf(stderr, "peer_hostile: the client sent "
					"%u message(s) to a server it had not "
					"vetted\n", got);
				return 1;
			}
			raw_free(&x);
			continue;
		}
		if (is(mode, "ready_kind") || is(mode, "ready_fields")) {
			proto_ready(&m, PROTO_KIND_CHAN, 0, 1u << 20, 0, NULL);
			if (is(mode, "ready_kind"))
				m.kind = PROTO_KIND_TOPIC, m.param = PROTO_POLICY_RELIABLE;
			else
				m.region_size = 4096;
			tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0, LONG_MS), 0);
			tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
			raw_free(&x);
			continue;
		}
		send_ready(x.sock);
		recv_hello(x.sock, &hello, fds);
		for (unsigned j = 0; j < PROTO_NFDS; j++)
			close(fds[j]);

		if (is(mode, "silent")) {
			tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
			raw_free(&x);
			continue;
		}
		if (is(mode, "close")) {
			raw_free(&x);
			continue;
		}
		if (is(mode, "reject_fds")) {
			/* A REJECT (which carries none) with descriptors. */
			make_bell(&x);
			int bells[2] = { x.bell, x.kick_rd };
			proto_reject(&m, PROTO_REJ_VERSION);
			tu_check_res(fdp_send(x.sock, &m, sizeof(m), bells, 2,
					      LONG_MS), 0);
		} else if (is(mode, "reject_fields")) {
			proto_reject(&m, PROTO_REJ_FULL);
			m.ring_size = RING;
			tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0,
					      LONG_MS), 0);
		} else if (is(mode, "reject_close")) {
			/* Refuse and be gone at once. */
			proto_reject(&m, PROTO_REJ_FULL);
			tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0,
					      LONG_MS), 0);
			raw_free(&x);
			continue;
		} else if (starts(mode, "reject")) {
			proto_reject(&m, (uint32_t)atoi(mode + 6));
			tu_check_res(fdp_send(x.sock, &m, sizeof(m), NULL, 0,
					      LONG_MS), 0);
		} else {
			spoil(&x, &o, mode, PROTO_WELCOME, RING, hello.id);
			send_spoilt(&x, &o);
			after_send(&x, &o, mode, false);
			if (o.keep >= 0)
				close(o.keep);
		}
		tu_check_res(wait_hangup(x.sock, LONG_MS), 0);
		raw_free(&x);
	}
	ep_listener_close(&l);
	return 0;
}

/* --- the public API, for an honest client among hostile ones --------------- */

static int run_honest(const char *name, int timeout_ms)
{
	struct evshm_opts o = { .ring_size = RING };
	struct evshm_chan *c = NULL;
	static uint8_t buf[RING];
	uint64_t t0 = tu_now_ms();
	int res = evshm_connect(&c, name, &o, timeout_ms);

	printf("%llu\n", (unsigned long long)(tu_now_ms() - t0));
	fflush(stdout);
	if (res < 0) {
		fprintf(stderr, "peer_hostile honest: connect: %s\n",
			evshm_strerror(res));
		return 1;
	}
	while ((res = evshm_recv(c, buf, sizeof(buf), LONG_MS)) >= 0)
		if (evshm_send(c, buf, (size_t)res, LONG_MS) < 0)
			break;
	evshm_close(c);
	return res == -EPIPE ? 0 : 1;
}

/* --- a flood of connections ------------------------------------------------- */

/*
 * Open @n connections to @name (typically as another user) as fast as the
 * listener's backlog allows, and hold them.  Print "connected N", then wait
 * until the listener has closed every one (at most 20 s) and print
 * "refused K": how many got a REJECT with reason 4 (access denied) first.
 */
static int run_flood(const char *name, unsigned n)
{
	struct ep_addr a;
	int *fds = calloc(n, sizeof(int));
	unsigned connected = 0, refused = 0, closed = 0;

	tu_check(fds);
	tu_check_res(ep_parse(name, &a), 0);
	for (unsigned i = 0; i < n; i++) {
		uint64_t end = os_deadline(10000);

		fds[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
						 SOCK_CLOEXEC, 0);
		tu_check(fds[i] >= 0);
		while (connect(fds[i], (struct sockaddr *)&a.sun, a.len) < 0) {
			/* A full backlog: wait for room, bounded. */
			tu_check(errno == EAGAIN && os_now_ns() < end);
			usleep(200);
		}
		connected++;
	}
	printf("connected %u\n", connected);
	fflush(stdout);
	uint64_t end = os_deadline(20000);
	while (closed < n && os_now_ns() < end) {
		for (unsigned i = 0; i < n; i++) {
			struct proto_msg m;
			unsigned nf;
			int r;

			if (fds[i] < 0)
				continue;
			r = fdp_recv(fds[i], &m, sizeof(m), NULL, 0, &nf, 0);
			if (r == -EAGAIN)
				continue;
			if (r == (int)sizeof(m) && m.type == PROTO_REJECT &&
			    m.status == PROTO_REJ_DENIED)
				refused++;
			if (r == (int)sizeof(m))
				continue; /* the hang-up comes next */
			close(fds[i]);
			fds[i] = -1;
			closed++;
		}
		usleep(1000);
	}
	printf("refused %u\n", refused);
	fflush(stdout);
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

/* --- racing evshm_listen's socket file (item 6 of the 0.1 review) ----------- */

/*
 * For @ms milliseconds, in directory @dir (which we may write, no sticky
 * bit), try to make the test's evshm_listen(@dir/@base, .mode = 0666)
 * change the mode of @victim: swap a symlink to it in at @dir/@base (what
 * broke 0.1's chmod after bind), and replace any directory the test makes
 * in @dir by one of ours, in which a symlink to @victim keeps replacing
 * whatever the test binds.  Counts what it did on stdout.
 */
static int run_symlinker(const char *dir, const char *base, const char *victim,
			 int ms)
{
	char path[PATH_MAX], sub[PATH_MAX], tmp[PATH_MAX + 64], link_tmp[PATH_MAX + 8];
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	unsigned swaps = 0, dirs = 0;
	uint64_t end = os_deadline(ms);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	tu_check(in >= 0);
	tu_check(inotify_add_watch(in, dir, IN_CREATE | IN_ONLYDIR) >= 0);
	snprintf(path, sizeof(path), "%s/%s", dir, base);
	snprintf(tmp, sizeof(tmp), "%s/.link-%d", dir, (int)getpid());
	while (os_now_ns() < end) {
		/* The final name: a symlink to the victim. */
		if (symlink(victim, tmp) == 0 && rename(tmp, path) == 0)
			swaps++;
		unlink(tmp);
		/* A fresh private directory of the test's: ours instead. */
		ssize_t len = read(in, evbuf, sizeof(evbuf));
		for (char *p = evbuf; len > 0 && p < evbuf + len;) {
			struct inotify_event *ev = (struct inotify_event *)(void *)p;

			p += sizeof(*ev) + ev->len;
			if (!ev->len || !starts(ev->name, ".evshm-"))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dir, ev->name);
			snprintf(tmp, sizeof(tmp), "%s/.gone-%s", dir, ev->name);
			if (rename(sub, tmp) < 0 || mkdir(sub, 0777) < 0)
				continue;
			dirs++;
			/* Whatever gets bound in it: replaced by the link. */
			snprintf(tmp, sizeof(tmp), "%s/s", sub);
			snprintf(link_tmp, sizeof(link_tmp), "%s/.l", sub);
			for (int i = 0; i < 2000; i++) {
				if (symlink(victim, link_tmp) == 0)
					rename(link_tmp, tmp);
			}
			unlink(tmp);
			rmdir(sub);
		}
		snprintf(tmp, sizeof(tmp), "%s/.link-%d", dir, (int)getpid());
	}
	printf("swaps %u dirs %u\n", swaps, dirs);
	fflush(stdout);
	close(in);
	return 0;
}

/* --- main --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	uint32_t reject = 0;
	const char *user = NULL;
	struct raw x;
	int nargs = argc;

	if (argc < 4) {
		fprintf(stderr, "usage: peer_hostile ROLE NAME ARG... [options]\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (starts(argv[i], "--") && nargs == argc)
			nargs = i;
		if (starts(argv[i], "--reject="))
			reject = (uint32_t)strtoul(argv[i] + 9, NULL, 0);
		else if (starts(argv[i], "--user="))
			user = argv[i] + 7;
		else if (starts(argv[i], "--n="))
			opt_n = (unsigned)strtoul(argv[i] + 4, NULL, 0);
		else if (is(argv[i], "--fds"))
			opt_features = PROTO_F_FDS;
	}
	/* Never outlive a test that forgot us. */
	alarm(120);
	signal(SIGPIPE, SIG_IGN);

	const char *role = argv[1], *name = argv[2], *mode = argv[3];
	if (is(role, "flood")) {
		/* Room for the descriptors while still root. */
		struct rlimit rl = { .rlim_cur = 4096, .rlim_max = 4096 };
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (user && tu_become(user) < 0) {
		fprintf(stderr, "peer_hostile: cannot become %s\n", user);
		return TU_EXIT_SKIP;
	}
	if (is(role, "honest"))
		return run_honest(name, atoi(mode));
	if (is(role, "flood"))
		return run_flood(name, (unsigned)atoi(mode));
	if (is(role, "symlinker")) {
		if (nargs < 6)
			return 2;
		return run_symlinker(name, mode, argv[4], atoi(argv[5]));
	}
	bool client = is(role, "client");
	if (!client && !is(role, "server")) {
		fprintf(stderr, "peer_hostile: unknown role %s\n", role);
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
	int res = run_data(&x, mode);
	raw_free(&x);
	return res;
}
