/* SPDX-License-Identifier: MIT */
/*
 * peer_topic_hostile: the far side of test_topic_hostile, built from the
 * internals so that it can break docs/protocol.md section 8 on purpose.
 *
 *   peer_topic_hostile sub NAME MODE   a hostile subscriber of the test's
 *                                      real publisher
 *   peer_topic_hostile pub NAME MODE   a hostile publisher; the test's real
 *                                      subscriber joins it
 *
 * sub modes:
 *   head-ahead     publish a head beyond the publisher's tail; expect DROP
 *                  (reason 2) and the publisher's close
 *   head-unaligned the same with a head that is not a multiple of 16
 *   write-memory   try every way to write the publisher's region; exit 0
 *                  only if each one failed
 *   bell-flood     for 2 s, write our bell to the publisher as fast as
 *                  possible while claiming to keep up (head = its tail)
 *   bell-flood-stall  write it as fast as possible and never read, until
 *                  the publisher drops us or closes (5 s at most)
 *   head-stale     keep up, walking the records, and note where records
 *                  started in the first lap; once the ring has lapped,
 *                  put our head where one started a lap ago but which
 *                  now lies inside a record; expect DROP (reason 2)
 *   head-creep     never read a message, but move our head on by 16 bytes
 *                  (into the middle of a record) every 20 ms, so that it
 *                  always "moved" within any stall bound; say "dropped N"
 *                  when the publisher drops us (DROP status N), or
 *                  "kept" after 20 s
 *   splice-lock    try for 30 s to make the publisher's kicks block: clear
 *                  O_NONBLOCK on the kicking end of our bell (the
 *                  publisher shares its description), fill the bell and
 *                  never read it, and splice(2) from it into a full
 *                  blocking pipe (with pipe bells that held the pipe's
 *                  mutex, and every kick waited for it uninterruptibly);
 *                  our data_event follows its tail, so that every commit
 *                  kicks; say "locked" first
 *   join-four      (instead of joining once) open four connections and
 *                  take each one's READY first, then send the four HELLOs;
 *                  say "joined J full F" (F: refused with -EUSERS), keep
 *                  them until the publisher closes (30 s at most)
 *   bell-watch     put our bell's sleeping end in 500 epoll sets, 200
 *                  times in each (dup(2): 100,000 entries), so that every
 *                  kick the publisher makes walks them all in its thread;
 *                  say "watching", then keep up (head = its tail) with our
 *                  data_event at the head, so that every commit kicks;
 *                  expect DROP (reason 2) within 20 s
 *   bell-hup       close the publisher's bell (its kicking end; it hangs up), say
 *                  "closed", keep the socket and keep up (head = its tail)
 *                  until the publisher closes (10 s at most)
 *   kick-lock      queue a byte into the kicking end of our bell before we
 *                  hand it over, then hold that socket's read lock (a recv
 *                  from our copy of it whose copy faults on a page a
 *                  userfaultfd never fills); say "locked" (or "skip" where
 *                  userfaultfd cannot catch the kernel's faults), ask for a
 *                  kick at every commit and keep up for 6 s whatever the
 *                  publisher does
 *   pipe-lock      join with a pipe's write end as our bell (the publisher
 *                  refuses it), while a thread of ours holds that pipe's
 *                  mutex (a splice from it into a full blocking socket),
 *                  and close our copy: the publisher's is the last.  Say
 *                  "ready" once the splice holds the mutex, send the HELLO
 *                  at the test's SIGUSR1 (the test serves nothing
 *                  meanwhile, so our close comes first), close our copy,
 *                  say "sent"; say "answered" when the publisher answered
 *                  or closed, hold the mutex until the next SIGUSR1 (30 s
 *                  at most each)
 *   kick-oob       before we hand over the kicking end of our bell, queue
 *                  into it a byte sent MSG_OOB with a lingering TCP socket
 *                  (SCM_RIGHTS), and take the byte back out of band: a
 *                  message of no length that still holds the socket; close
 *                  our copy of that end, say "queued", keep up for 6 s
 *   sleep-lapped   (latest) fall asleep below the publisher's tail, as an
 *                  honest subscriber does that jumped to an oldest torn
 *                  from two updates (protocol.md 8.5): once the tail is two
 *                  records past our head, ask to be woken at our head and
 *                  say "asleep"; say "kicked" when the publisher kicks us
 *                  (its horizon passed our head), or "not kicked ..." and
 *                  exit 1 if it has not within 5 s
 *   rearm-same     (latest) never read; once the horizon has passed our
 *                  head, arm there with tag 1 (as a call with timeout 0
 *                  that gave up its jumps, 8.7) and say "armed"; once
 *                  kicked, empty the bell, say "kicked", and at the
 *                  test's SIGUSR1 (it publishes nothing meanwhile) arm
 *                  sixteen more times, the last one with the same
 *                  data_event again (four bits of tag), as a subscriber
 *                  whose armings no commit saw would, and say "rearmed";
 *                  say "kicked again" when the publisher kicks that
 *                  arming, or "not kicked ..." and exit 1 if it has not
 *                  within 10 s
 * pub modes:
 *   ring-lie       WELCOME announces twice the ring its region has
 *   start-unaligned  WELCOME's start index is not a multiple of 16
 *   rec-len        a published record longer than the largest message
 *   rec-flags      a published record with a reserved flag
 *   rec-fds        a published record with the FDS flag (topics carry none)
 *   rec-fit        a record that runs past the end of the ring
 *   oldest-back    latest: a horizon above the subscriber and an "oldest"
 *                  below it
 *   oldest-seq-back  latest: a horizon above the subscriber, an oldest
 *                  above it too, but an oldest_seq below the number it
 *                  expects
 *   lap-forever    latest: record 1; once it was read, a whole record 5
 *                  at 64 named as the oldest, and a horizon above it (a
 *                  jump target always "overwritten meanwhile"), for ever
 *   horizon-storm  latest: the horizon jumps about for 2 s while garbage
 *                  is published; the subscriber must never deliver it
 *   bell-flood     publish nothing, write the subscriber's bell as fast as
 *                  possible until it leaves (5 s at most)
 *   stale-cue      latest, played honestly, publishing when the test says:
 *                  messages of half the ring (the largest), whose
 *                  payloads start and end with their number; at each
 *                  SIGUSR1, publish until
 *                  the horizon lies above the subscriber's head (what it
 *                  has peeked is overwritten) and say "moved"; at SIGUSR2
 *                  publish the last message and say "last" (30 s at most)
 *   drop-early     reliable, played honestly: publish record 1; once it
 *                  was read, drop the subscriber (DROP, then the count)
 *                  before anything is overwritten (the horizon stays),
 *                  publish record 2; once that was read (1 s at most),
 *                  overwrite the place of record 3 as a publisher that no
 *                  longer waits for it would (horizon first, then the
 *                  bytes: "BAD") and publish it.  Good payloads are "good"
 *   drop-bad       as drop-early, but at once after the drop: overwrite the
 *                  place of record 2 (horizon first, then "BAD") and
 *                  publish it, then say "ready": the subscriber finds it
 *                  whole when it looks
 * Exit 0 when the script ran as planned, 1 otherwise (with why on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bell.h"
#include "endpoint.h"
#include "fdpass.h"
#include "handshake.h"
#include "opts.h"
#include "os.h"
#include "proto.h"
#include "region.h"
#include "ring.h"
#include "util.h"

#define RING 65536u
#define LONG_MS 30000

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static bool opt_prequeue; /* kick-lock: a byte waits in the kicking end */
static bool opt_oob;      /* kick-oob: a message of no length, with a socket */
static int linger_fd = -1, linger_keep = -1;

/* A message on a Unix socket: @len bytes of @buf, and @nfds descriptors. */
struct fdmsg {
	struct iovec iov;
	_Alignas(struct cmsghdr) char b[CMSG_SPACE(PROTO_NFDS * sizeof(int))];
};

static struct msghdr fdmsg(struct fdmsg *f, const void *buf, size_t len,
			   const int *fds, unsigned nfds)
{
	f->iov = (struct iovec){ .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &f->iov, .msg_iovlen = 1,
			     .msg_control = f->b,
			     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	return mh;
}

/* --- a hostile subscriber ---------------------------------------------------- */

struct hsub {
	struct hs_client hc;
	struct region *mine;
	int region_fd;
	int kick;            /* the publisher's bell: we kick it for room */
	int bell, bell_out;  /* our bell, and its kicking end (sent, kept) */
	const struct region *pub;
	int pub_fd;          /* the publisher's region descriptor, kept */
	uint32_t size;
};

static void sub_join(struct hsub *s, const char *name)
{
	struct evshm_opts o;
	struct proto_msg m, w;
	int ours[PROTO_NFDS], fds[PROTO_NFDS];

	tu_check_res(opts_resolve(&o, NULL), 0);
	tu_check_res(hs_client_start(name, &o, PROTO_KIND_TOPIC, LONG_MS, &s->hc), 0);
	struct region_info ri = { .kind = REGION_SUB, .role = REGION_CLIENT,
				  .id = s->hc.ready.id };
	tu_check_res(region_create(&ri, &s->mine, &s->region_fd), 0);
	tu_check_res(bell_make(&s->bell, &s->bell_out), 0);
	/* Before the publisher shuts the kicking end for reading: what is
	 * queued stays there. */
	if (opt_prequeue)
		tu_check(send(s->bell, "q", 1, MSG_NOSIGNAL) == 1);
	if (opt_oob)
		linger_fd = tu_lingering_socket(&linger_keep, 60);
	if (opt_oob) {
		char b;

		struct fdmsg f;
		struct msghdr mh = fdmsg(&f, "o", 1, &linger_fd, 1);

		/* The byte goes, its skb (with the socket) stays queued. */
		tu_check(sendmsg(s->bell, &mh, MSG_OOB | MSG_NOSIGNAL) == 1);
		tu_check(recv(s->bell_out, &b, 1, MSG_OOB | MSG_DONTWAIT) == 1);
	}
	ours[PROTO_FD_REGION] = s->region_fd;
	ours[PROTO_FD_BELL] = s->bell_out;
	proto_hello(&m, PROTO_KIND_TOPIC, 0, 0, 0, s->hc.ready.id, 0);
	tu_check_res(hs_client_finish(&s->hc, &m, ours, &w, fds, EVSHM_RING_MAX), 0);
	if (linger_fd >= 0)
		linger_fd = os_close(linger_fd); /* in flight: the last one */
	if (opt_oob)
		s->bell_out = os_close(s->bell_out); /* the publisher's is last */
	s->size = w.ring_size;
	tu_check_res(region_attach(fds[PROTO_FD_REGION], REGION_PUB, s->size,
				   &s->pub), 0);
	s->pub_fd = fds[PROTO_FD_REGION];
	s->kick = fds[PROTO_FD_BELL];
	atomic_store(&s->mine->head, w.param);
}

/* Wait for the publisher to drop us: DROP with @reason, then its close. */
static int await_drop(struct hsub *s, uint32_t reason)
{
	unsigned char buf[sizeof(struct proto_msg)];
	struct proto_msg m;
	unsigned n;
	int res = fdp_recv(s->hc.sock, buf, sizeof(buf), NULL, 0, &n, LONG_MS);

	if (res != (int)sizeof(buf)) {
		fprintf(stderr, "no DROP: %s\n", tu_errname(res));
		return 1;
	}
	memcpy(&m, buf, sizeof(m));
	if (proto_parse(buf, sizeof(buf), PROTO_DROP, &m) != -ECONNABORTED ||
	    m.status != reason) {
		fprintf(stderr, "not DROP %u (status %u)\n", reason, m.status);
		return 1;
	}
	return 0;
}

static int bell_watch(struct hsub *s)
{
	uint64_t end;

	tu_check_res(tu_watch_widely(s->bell, 200, 500, NULL), 0);
	printf("watching\n");
	fflush(stdout);
	end = os_now_ns() + 20000000000u;
	while (os_now_ns() < end) {
		struct pollfd pfd = { .fd = s->hc.sock, .events = POLLIN | POLLRDHUP };
		uint64_t t = atomic_load(&s->pub->tail);

		if (t > atomic_load(&s->mine->head) && !(t & 15))
			atomic_store(&s->mine->head, t);
		atomic_store(&s->mine->data_event, atomic_load(&s->mine->head));
		if (poll(&pfd, 1, 1) == 1)
			return await_drop(s, PROTO_DROP_INVALID);
	}
	fprintf(stderr, "the publisher never dropped us\n");
	return 1;
}

static int try_write(struct hsub *s)
{
	size_t len = region_size(s->size);
	char path[64];
	int bad = 0, fd;
	void *p;

	/* A writable mapping of the descriptor we got (read-only). */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->pub_fd, 0);
	bad += p != MAP_FAILED;
	/* Our read-only mapping made writable. */
	bad += mprotect((void *)s->pub, len, PROT_READ | PROT_WRITE) == 0;
	/* A new read-write open of the same file, then a writable mapping,
	 * write(2), truncation, a hole. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->pub_fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		bad += p != MAP_FAILED;
		bad += pwrite(fd, "x", 1, 4096) == 1;
		bad += ftruncate(fd, 4096) == 0;
		bad += fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 4096, 4096) == 0;
		os_close(fd);
	}
	if (bad)
		fprintf(stderr, "%d ways to write the publisher's region worked\n",
			bad);
	return bad ? 1 : 0;
}

/* Kick @kick as fast as possible until @sock hangs up or @ms pass; with
 * @head, claim to keep up meanwhile (our head follows its tail). */
static int kick_flood(int kick, int sock, int ms, struct hsub *head)
{
	uint64_t end = os_now_ns() + (uint64_t)ms * 1000000u;

	while (os_now_ns() < end) {
		struct pollfd pfd = { .fd = sock, .events = POLLRDHUP };

		if (head) {
			uint64_t t = atomic_load(&head->pub->tail);
			if (t > atomic_load(&head->mine->head) && !(t & 15))
				atomic_store(&head->mine->head, t);
		}
		for (int i = 0; i < 64; i++)
			os_bell_kick(kick);
		if (sock >= 0 && poll(&pfd, 1, 0) == 1)
			break;
	}
	return 0;
}

/* Keep our head at the publisher's tail until it closes our socket (1) or
 * @ms pass (0). */
static int keep_up(struct hsub *s, int ms)
{
	uint64_t end = os_now_ns() + (uint64_t)ms * 1000000u;

	while (os_now_ns() < end) {
		struct pollfd pfd = { .fd = s->hc.sock, .events = POLLRDHUP };
		uint64_t t = atomic_load(&s->pub->tail);

		if (t > atomic_load(&s->mine->head) && !(t & 15))
			atomic_store(&s->mine->head, t);
		if (poll(&pfd, 1, 1) == 1)
			return 1;
	}
	fprintf(stderr, "the publisher kept us for %d ms\n", ms);
	return 0;
}

static _Atomic bool arm_stop;

/* Ask for a kick at every commit (our data_event at its tail). */
static void *arm_always(void *arg)
{
	struct hsub *s = arg;

	while (!atomic_load(&arm_stop)) {
		atomic_store(&s->mine->data_event, atomic_load(&s->pub->tail));
		usleep(100);
	}
	return NULL;
}

struct splicer {
	int from, to;
};

/* Blocks for good: nobody reads the pipe. */
static void *splice_main(void *arg)
{
	struct splicer *sp = arg;

	(void)splice(sp->from, NULL, sp->to, NULL, 1, 0);
	return NULL;
}

static int splice_lock(struct hsub *s)
{
	static char junk[65536];
	struct splicer sp;
	pthread_t t, u;
	int p[2];

	/* A pipe, full, then blocking. */
	tu_check_res(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	fcntl(p[1], F_SETFL, 0);
	/* The kicking end's description is the publisher's too. */
	fcntl(s->bell_out, F_SETFL, 0);
	while (send(s->bell_out, "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		;
	fcntl(s->bell, F_SETFL, 0);
	sp = (struct splicer){ .from = s->bell, .to = p[1] };
	tu_check_res(pthread_create(&u, NULL, splice_main, &sp), 0);
	tu_check_res(pthread_create(&t, NULL, arm_always, s), 0);
	printf("locked\n");
	fflush(stdout);
	/* 10 s, or until the publisher closes; the splice never ends, and
	 * goes with the process. */
	struct pollfd pfd = { .fd = s->hc.sock, .events = POLLRDHUP };
	(void)poll(&pfd, 1, 10000);
	atomic_store(&arm_stop, true);
	pthread_join(t, NULL);
	fflush(NULL);
	_exit(0);
}

/* Keep up for 6 s, whatever the publisher does (it may close at once),
 * then exit (threads stuck for good go with the process). */
__attribute__((noreturn)) static void hold(struct hsub *s)
{
	uint64_t end = os_now_ns() + 6000000000u;

	while (os_now_ns() < end) {
		uint64_t tail = atomic_load(&s->pub->tail);

		if (tail > atomic_load(&s->mine->head) && !(tail & 15))
			atomic_store(&s->mine->head, tail);
		usleep(1000);
	}
	fflush(NULL);
	_exit(0);
}

struct locker {
	int fd;
	void *buf;
};

/* Never returns: its copy faults on a page nobody fills, and the socket's
 * read lock is held meanwhile. */
static void *lock_main(void *arg)
{
	struct locker *l = arg;

	(void)recv(l->fd, l->buf, 1, 0);
	return NULL;
}

static int kick_lock(struct hsub *s)
{
	static struct locker l;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	pthread_t t;

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0) {
		printf("skip\n");
		fflush(stdout);
		return 0;
	}
	l.buf = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tu_check(l.buf != MAP_FAILED);
	reg.range.start = (uintptr_t)l.buf;
	reg.range.len = pg;
	tu_check(ioctl(uffd, UFFDIO_REGISTER, &reg) == 0);
	l.fd = s->bell_out;
	tu_check_res(pthread_create(&t, NULL, lock_main, &l), 0);
	/* The fault is reported once the recv holds the lock. */
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1) {
		fprintf(stderr, "the recv never faulted\n");
		return 1;
	}
	/* Every commit kicks us meanwhile: kicks take no read lock. */
	tu_check_res(pthread_create(&t, NULL, arm_always, s), 0);
	printf("locked\n");
	fflush(stdout);
	hold(s);
}

static int head_stale(struct hsub *s)
{
	const uint8_t *d = region_data((struct region *)s->pub);
	uint8_t *was = calloc(s->size / 16, 1); /* first-lap record starts */
	uint64_t h0 = atomic_load(&s->mine->head), h = h0;
	uint64_t end = os_now_ns() + 20000000000u;

	tu_check(was != NULL);
	while (os_now_ns() < end) {
		uint64_t t = atomic_load(&s->pub->tail);

		/* Nothing at or above our head is overwritten (reliable): the
		 * headers read here are the ones published. */
		while (h < t) {
			uint32_t pos = (uint32_t)h & (s->size - 1), len, flags;

			memcpy(&len, d + pos, 4);
			memcpy(&flags, d + pos + 4, 4);
			uint32_t span = flags & RING_F_PAD ?
						s->size - pos :
						ring_align(RING_REC_HDR + len);
			if (h < h0 + s->size) {
				was[pos / 16] = 1;
			} else {
				for (uint32_t q = 16; q < span; q += 16)
					if (was[(pos + q) / 16]) {
						printf("stale %" PRIu64 " in [%" PRIu64
						       ", +%u)\n", h + q, h, span);
						fflush(stdout);
						free(was);
						atomic_store(&s->mine->head, h + q);
						return await_drop(s, PROTO_DROP_INVALID);
					}
			}
			h += span;
		}
		atomic_store(&s->mine->head, h);
		usleep(200);
	}
	free(was);
	fprintf(stderr, "no stale start found\n");
	return 1;
}

static int creep(struct hsub *s)
{
	uint64_t end = os_now_ns() + 20000000000u;
	struct proto_msg m;
	unsigned char buf[sizeof(m)];
	unsigned n;

	while (os_now_ns() < end) {
		struct pollfd pfd = { .fd = s->hc.sock, .events = POLLIN };
		uint64_t h = atomic_load(&s->mine->head);

		if (h + 16 <= atomic_load(&s->pub->tail))
			atomic_store(&s->mine->head, h + 16);
		if (poll(&pfd, 1, 20) == 1)
			break;
	}
	if (fdp_recv(s->hc.sock, buf, sizeof(buf), NULL, 0, &n, 0) ==
		    (int)sizeof(buf) &&
	    proto_parse(buf, sizeof(buf), PROTO_DROP, &m) == -ECONNABORTED)
		printf("dropped %u\n", m.status);
	else
		printf("kept\n");
	return 0;
}

/* Wait up to @ms for a kick on our bell, then empty it. */
static bool await_kick(struct hsub *s, int ms)
{
	struct pollfd pfd = { .fd = s->bell, .events = POLLIN };
	char buf[256];

	if (poll(&pfd, 1, ms) != 1)
		return false;
	while (recv(s->bell, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	return true;
}

static int sleep_lapped(struct hsub *s)
{
	uint64_t head = atomic_load(&s->mine->head);
	uint64_t end = os_now_ns() + 10000000000u;

	/* Two records on: the commit that passed our head is done (its
	 * kick check saw no event of ours), the next one started above. */
	while (atomic_load(&s->pub->tail) < head + 2048) {
		if (os_now_ns() > end) {
			fprintf(stderr, "nothing published\n");
			return 1;
		}
		usleep(1000);
	}
	/* What an honest subscriber does at a head where the record does
	 * not show the number it expects (6.3, 8.5). */
	atomic_store(&s->mine->rx_state, WS_ASLEEP);
	atomic_store(&s->mine->data_event, head);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&s->pub->horizon) > head) {
		fprintf(stderr, "lapped before we slept\n");
		return 1;
	}
	printf("asleep\n");
	fflush(stdout);
	if (await_kick(s, 5000)) {
		printf("kicked\n");
		return 0;
	}
	printf("not kicked (head %" PRIu64 ", horizon %" PRIu64 ", tail %"
	       PRIu64 ")\n", head, (uint64_t)atomic_load(&s->pub->horizon),
	       (uint64_t)atomic_load(&s->pub->tail));
	return 1;
}

static int rearm_same(struct hsub *s)
{
	uint64_t head = atomic_load(&s->mine->head);
	uint64_t end = os_now_ns() + 10000000000u;
	struct timespec ts = { .tv_sec = 30 };
	sigset_t go;

	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	tu_check_res(pthread_sigmask(SIG_BLOCK, &go, NULL), 0);

	while (atomic_load(&s->pub->horizon) <= head) {
		if (os_now_ns() > end) {
			fprintf(stderr, "never lapped\n");
			return 1;
		}
		usleep(1000);
	}
	atomic_store(&s->mine->data_event, head | 1);
	atomic_thread_fence(memory_order_seq_cst);
	printf("armed\n");
	fflush(stdout);
	if (!await_kick(s, 10000)) {
		printf("not kicked at all\n");
		return 1;
	}
	printf("kicked\n");
	fflush(stdout);
	if (sigtimedwait(&go, NULL, &ts) != SIGUSR1) {
		fprintf(stderr, "no go\n");
		return 1;
	}
	/* Sixteen more armings at this head, none seen by a commit: the
	 * last one's tag is 1 again. */
	for (unsigned tag = 2; tag <= 17; tag++) {
		atomic_store(&s->mine->data_event, head | (tag & 15));
		atomic_thread_fence(memory_order_seq_cst);
	}
	printf("rearmed\n");
	fflush(stdout);
	if (await_kick(s, 10000)) {
		printf("kicked again\n");
		return 0;
	}
	printf("not kicked again (head %" PRIu64 ", horizon %" PRIu64 ")\n",
	       head, (uint64_t)atomic_load(&s->pub->horizon));
	return 1;
}

static int flood(struct hsub *s)
{
	return kick_flood(s->kick, -1, 2000, s);
}

/* Four connections admitted at once, each sent its HELLO only after all
 * four were: the publisher's subscriber limit must hold at the HELLO. */
static int join_four(const char *name)
{
	struct hs_client hc[4];
	struct evshm_opts o;
	unsigned joined = 0, full = 0;

	tu_check_res(opts_resolve(&o, NULL), 0);
	for (int i = 0; i < 4; i++)
		tu_check_res(hs_client_start(name, &o, PROTO_KIND_TOPIC, LONG_MS,
					     &hc[i]), 0);
	for (int i = 0; i < 4; i++) {
		struct region_info ri = { .kind = REGION_SUB,
					  .role = REGION_CLIENT,
					  .id = hc[i].ready.id };
		struct proto_msg m, w;
		struct region *mine;
		int ours[PROTO_NFDS], fds[PROTO_NFDS], bell, res;

		tu_check_res(region_create(&ri, &mine, &ours[PROTO_FD_REGION]), 0);
		tu_check_res(bell_make(&bell, &ours[PROTO_FD_BELL]), 0);
		proto_hello(&m, PROTO_KIND_TOPIC, 0, 0, 0, hc[i].ready.id, 0);
		res = hs_client_finish(&hc[i], &m, ours, &w, fds, EVSHM_RING_MAX);
		joined += res == 0;
		full += res == -EUSERS;
	}
	printf("joined %u full %u\n", joined, full);
	fflush(stdout);
	struct pollfd pfd = { .fd = hc[0].sock, .events = POLLRDHUP };
	os_poll(&pfd, 1, os_deadline(LONG_MS));
	return 0;
}

/* /proc/self/task/@tid/@what into @buf (@n bytes, NUL-terminated). */
static int read_task(pid_t tid, const char *what, char *buf, size_t n)
{
	char path[64];
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read(fd, buf, n - 1);
	os_close(fd);
	buf[got > 0 ? got : 0] = '\0';
	return 0;
}

/* Wait until @tid sleeps in splice(2) (at most @ms): it then holds the
 * pipe's mutex, which it took before it waited for room in the socket (a
 * wait for the mutex itself would be uninterruptible, state D). */
static int await_splicing(pid_t tid, int ms)
{
	uint64_t end = os_now_ns() + (uint64_t)ms * 1000000u;
	char call[512], stat[512], want[16];
	int res;

	snprintf(want, sizeof(want), "%ld ", (long)SYS_splice);
	while (os_now_ns() < end) {
		if ((res = read_task(tid, "syscall", call, sizeof(call))) < 0 ||
		    (res = read_task(tid, "stat", stat, sizeof(stat))) < 0)
			return res;
		const char *st = strrchr(stat, ')');
		if (!strncmp(call, want, strlen(want)) && st && st[1] == ' ' &&
		    st[2] == 'S')
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static _Atomic pid_t splicer_tid;

static void *pipe_splice_main(void *arg)
{
	atomic_store(&splicer_tid, (pid_t)syscall(SYS_gettid));
	return splice_main(arg);
}

static int pipe_lock(const char *name)
{
	static char junk[4096];
	static struct splicer sp;
	struct hs_client hc;
	struct evshm_opts o;
	struct region *mine;
	struct proto_msg m, w;
	int ours[PROTO_NFDS], fds[PROTO_NFDS], p[2], sv[2];
	struct timespec ts = { .tv_sec = LONG_MS / 1000 };
	sigset_t go;
	pthread_t t;

	/* The test's go (SIGUSR1) waits for us, whenever it comes. */
	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	tu_check_res(pthread_sigmask(SIG_BLOCK, &go, NULL), 0);
	tu_check_res(opts_resolve(&o, NULL), 0);
	tu_check_res(hs_client_start(name, &o, PROTO_KIND_TOPIC, LONG_MS, &hc), 0);
	struct region_info ri = { .kind = REGION_SUB, .role = REGION_CLIENT,
				  .id = hc.ready.id };
	tu_check_res(region_create(&ri, &mine, &ours[PROTO_FD_REGION]), 0);
	/* A socket whose send buffer is full, then blocking; a pipe with a
	 * byte in it, spliced into that socket. */
	tu_check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	while (write(sv[0], junk, sizeof(junk)) > 0)
		;
	fcntl(sv[0], F_SETFL, 0);
	tu_check(pipe2(p, O_CLOEXEC) == 0);
	tu_check(write(p[1], "x", 1) == 1);
	sp = (struct splicer){ .from = p[0], .to = sv[0] };
	/* Blocks while the socket is full, holding the pipe's mutex. */
	tu_check_res(pthread_create(&t, NULL, pipe_splice_main, &sp), 0);
	while (!atomic_load(&splicer_tid))
		usleep(1000);
	tu_check_res(await_splicing(atomic_load(&splicer_tid), LONG_MS), 0);
	/* The test serves no more until we said "sent": our copy of the end
	 * we send must go before the publisher's (the HELLO in flight holds
	 * the pipe meanwhile), or ours is the last, and its close waits for
	 * our own splice for ever. */
	printf("ready\n");
	fflush(stdout);
	tu_check(sigtimedwait(&go, NULL, &ts) == SIGUSR1);
	ours[PROTO_FD_BELL] = p[1];
	proto_hello(&m, PROTO_KIND_TOPIC, 0, 0, 0, hc.ready.id, 0);
	tu_check_res(hs_send(hc.sock, &m, ours, PROTO_NFDS, os_deadline(LONG_MS)),
		     0);
	os_close(p[1]);
	printf("sent\n");
	fflush(stdout);
	/* Whatever the publisher answers (it refuses the bell); then hold the
	 * mutex until the test is done (its second SIGUSR1). */
	(void)hs_recv(hc.sock, PROTO_WELCOME, &w, fds, PROTO_NFDS,
		      os_deadline(LONG_MS));
	printf("answered\n");
	fflush(stdout);
	tu_check(sigtimedwait(&go, NULL, &ts) == SIGUSR1);
	fflush(NULL);
	_exit(0);
}

static int run_sub(const char *name, const char *mode)
{
	struct hsub s;

	if (is(mode, "join-four"))
		return join_four(name);
	if (is(mode, "pipe-lock"))
		return pipe_lock(name);
	opt_prequeue = is(mode, "kick-lock");
	opt_oob = is(mode, "kick-oob");
	sub_join(&s, name);
	/* No kick for us until we ask. */
	if (is(mode, "sleep-lapped") || is(mode, "rearm-same"))
		atomic_store(&s.mine->data_event, UINT64_MAX);
	printf("joined\n");
	fflush(stdout);
	if (is(mode, "head-ahead")) {
		atomic_store(&s.mine->head, 1u << 30);
		return await_drop(&s, PROTO_DROP_INVALID);
	}
	if (is(mode, "head-unaligned")) {
		atomic_store(&s.mine->head, 8);
		return await_drop(&s, PROTO_DROP_INVALID);
	}
	if (is(mode, "write-memory"))
		return try_write(&s);
	if (is(mode, "bell-flood"))
		return flood(&s);
	if (is(mode, "bell-flood-stall"))
		return kick_flood(s.kick, s.hc.sock, 5000, NULL);
	if (is(mode, "splice-lock"))
		return splice_lock(&s);
	if (is(mode, "head-creep"))
		return creep(&s);
	if (is(mode, "head-stale"))
		return head_stale(&s);
	if (is(mode, "kick-lock"))
		return kick_lock(&s);
	if (is(mode, "kick-oob")) {
		printf("queued\n");
		fflush(stdout);
		hold(&s);
	}
	if (is(mode, "bell-watch"))
		return bell_watch(&s);
	if (is(mode, "sleep-lapped"))
		return sleep_lapped(&s);
	if (is(mode, "rearm-same"))
		return rearm_same(&s);
	if (is(mode, "bell-hup")) {
		s.kick = os_close(s.kick);
		printf("closed\n");
		fflush(stdout);
		return keep_up(&s, 10000) ? 0 : 1;
	}
	fprintf(stderr, "unknown sub mode %s\n", mode);
	return 2;
}

/* --- a hostile publisher ------------------------------------------------------ */

struct hpub {
	int sock;
	struct region *mine;
	int region_fd, sub_fd;
	int kick;            /* the subscriber's bell: we kick it for data */
	int bell, bell_out;  /* our bell, and its kicking end (sent, kept) */
	const struct region *sub;
};

static void put_payload(struct hpub *p, uint32_t pos, const char *bytes)
{
	memcpy(region_data(p->mine) + pos + RING_REC_HDR, bytes, strlen(bytes));
}

static void put_rec(struct hpub *p, uint32_t pos, uint32_t len, uint32_t flags,
		    uint64_t seq)
{
	uint8_t *h = region_data(p->mine) + pos;

	memcpy(h, &len, 4);
	memcpy(h + 4, &flags, 4);
	__atomic_store_n((uint64_t *)(void *)(h + 8), seq, __ATOMIC_RELEASE);
	os_bell_kick(p->kick);
}

/* stale-cue: an honest latest publisher of records of half the ring, back
 * to back, whose payloads start and end with their number (8 bytes, so
 * that a torn copy shows), and whose kicks follow 8.7. */
#define CHASE_REC (RING / 2)
#define CHASE_LEN (CHASE_REC - RING_REC_HDR)

struct cued {
	uint64_t tail, seq;  /* the next record's index and number */
	uint64_t horizon;
	uint64_t lap_ev;     /* the event we last kicked below the horizon */
};

static void cue_publish(struct hpub *p, struct cued *c, const char *what)
{
	uint64_t at = c->tail;
	uint8_t *rec = region_data(p->mine) + (at & (RING - 1));

	if (at + CHASE_REC > RING) {
		/* 8.5: everything below h may be overwritten; the first
		 * record at or after it (h itself: records are back to
		 * back) is the oldest whole one. */
		uint64_t h = at + CHASE_REC - RING;

		atomic_store_explicit(&p->mine->oldest_seq, c->seq - 1,
				      memory_order_relaxed);
		atomic_store_explicit(&p->mine->oldest, h, memory_order_release);
		atomic_store_explicit(&p->mine->horizon, h, memory_order_release);
		atomic_thread_fence(memory_order_release);
		c->horizon = h;
	}
	/* Only what marks it: the rest of a payload is whatever it was. */
	memcpy(rec + RING_REC_HDR, &c->seq, 8);
	memcpy(rec + RING_REC_HDR + CHASE_LEN - 8, &c->seq, 8);
	if (what)
		memcpy(rec + RING_REC_HDR + 8, what, strlen(what));
	uint32_t len = CHASE_LEN, flags = 0;
	memcpy(rec, &len, 4);
	memcpy(rec + 4, &flags, 4);
	__atomic_store_n((uint64_t *)(void *)(rec + 8), c->seq, __ATOMIC_RELEASE);
	c->tail += CHASE_REC;
	c->seq++;
	/* 6.3 and 8.7: after the fence, kick if the move passed its event,
	 * or once per value below the horizon. */
	atomic_thread_fence(memory_order_seq_cst);
	uint64_t ev = atomic_load_explicit(&p->sub->data_event,
					   memory_order_relaxed);
	bool below = ev < c->horizon;
	if (ring_passes(ev, at, c->tail) || (below && ev != c->lap_ev)) {
		if (below)
			c->lap_ev = ev;
		os_bell_kick(p->kick);
	}
}

static void stale_cue(struct hpub *p)
{
	struct cued c = { .tail = 0, .seq = 1, .lap_ev = UINT64_MAX };
	struct timespec ts = { .tv_sec = LONG_MS / 1000 };
	sigset_t cues;
	int sig;

	sigemptyset(&cues);
	sigaddset(&cues, SIGUSR1);
	sigaddset(&cues, SIGUSR2);
	atomic_store(&p->mine->oldest_seq, 1);
	cue_publish(p, &c, NULL);
	while ((sig = sigtimedwait(&cues, NULL, &ts)) == SIGUSR1) {
		while (c.horizon <= atomic_load_explicit(&p->sub->head,
							 memory_order_acquire))
			cue_publish(p, &c, NULL);
		printf("moved\n");
		fflush(stdout);
	}
	cue_publish(p, &c, "last");
	printf("last\n");
	fflush(stdout);
}

/* drop-early, drop-bad: publish record 1 ("good"); once it was read,
 * drop the subscriber (DROP, then the count). */
static void drop_after_first(struct hpub *p, uint64_t deadline)
{
	struct proto_msg m;

	put_payload(p, 0, "good");
	put_rec(p, 0, 4, 0, 1);
	while (atomic_load(&p->sub->head) < 32 && os_now_ns() < deadline)
		usleep(1000);
	proto_drop(&m, 1);
	tu_check_res(fdp_send(p->sock, &m, sizeof(m), NULL, 0, 0), 0);
	atomic_store_explicit(&p->mine->dropped, 1, memory_order_release);
}

static int run_pub(const char *name, const char *mode)
{
	struct ep_listener l;
	struct hpub p;
	struct proto_msg m;
	uint8_t id[PROTO_ID_SIZE] = { 7 };
	int fds[PROTO_NFDS], ours[PROTO_NFDS];
	bool latest = is(mode, "oldest-back") || is(mode, "horizon-storm") ||
		      is(mode, "oldest-seq-back") || is(mode, "lap-forever") ||
		      is(mode, "stale-cue");
	uint64_t deadline = os_deadline(LONG_MS);

	if (is(mode, "stale-cue")) {
		/* Taken by sigtimedwait(), whenever they come. */
		sigset_t cues;
		sigemptyset(&cues);
		sigaddset(&cues, SIGUSR1);
		sigaddset(&cues, SIGUSR2);
		sigprocmask(SIG_BLOCK, &cues, NULL);
	}
	tu_check_res(ep_listen(&l, name, 0, 0), 0);
	printf("listening\n");
	fflush(stdout);
	tu_check_res(ep_accept(&l, LONG_MS, &p.sock), 0);
	proto_ready(&m, PROTO_KIND_TOPIC, 0, RING,
		    latest ? PROTO_POLICY_LATEST : PROTO_POLICY_RELIABLE, id);
	tu_check_res(hs_send(p.sock, &m, NULL, 0, deadline), 0);
	tu_check_res(hs_recv(p.sock, PROTO_HELLO, &m, fds, PROTO_NFDS, deadline), 0);
	p.sub_fd = fds[0];
	p.kick = fds[1];
	tu_check_res(region_attach(p.sub_fd, REGION_SUB, 0, &p.sub), 0);
	struct region_info ri = { .kind = REGION_PUB, .role = REGION_SERVER,
				  .ring_size = RING, .id = id };
	tu_check_res(region_create(&ri, &p.mine, &p.region_fd), 0);
	tu_check_res(bell_make(&p.bell, &p.bell_out), 0);
	ours[PROTO_FD_REGION] = p.region_fd;
	ours[PROTO_FD_BELL] = p.bell_out;
	uint32_t ring = is(mode, "ring-lie") ? 2 * RING : RING;
	uint64_t start = is(mode, "start-unaligned") ? 8 :
			 is(mode, "rec-fit")	     ? RING - 64 :
						       0;
	proto_welcome(&m, PROTO_KIND_TOPIC, 0, ring, id, start, 1);
	tu_check_res(hs_send(p.sock, &m, ours, PROTO_NFDS, deadline), 0);

	if (is(mode, "rec-len"))
		put_rec(&p, 0, RING, 0, 1);
	else if (is(mode, "rec-flags"))
		put_rec(&p, 0, 5, 0x4, 1);
	else if (is(mode, "rec-fds"))
		put_rec(&p, 0, 5, RING_F_FDS, 1);
	else if (is(mode, "rec-fit"))
		/* 64 bytes before the end, a record of 128 (not a pad). */
		put_rec(&p, RING - 64, 100, 0, 1);
	else if (is(mode, "oldest-back")) {
		put_rec(&p, 0, 5, 0, 1);
		/* Once it has read that one (head 32): a horizon above its
		 * head, and an "oldest" below it. */
		while (atomic_load(&p.sub->head) < 32 && os_now_ns() < deadline)
			usleep(1000);
		atomic_store(&p.mine->oldest_seq, 2);
		atomic_store(&p.mine->oldest, 0);
		atomic_store(&p.mine->horizon, 64);
		os_bell_kick(p.kick);
	} else if (is(mode, "oldest-seq-back") || is(mode, "lap-forever")) {
		put_rec(&p, 0, 5, 0, 1);
		while (atomic_load(&p.sub->head) < 32 && os_now_ns() < deadline)
			usleep(1000);
		bool back = is(mode, "oldest-seq-back");
		/* A whole record there, with that number: only the horizon
		 * above it keeps the subscriber from it. */
		put_payload(&p, 64, "hello");
		put_rec(&p, 64, 5, 0, 5);
		atomic_store(&p.mine->oldest_seq, back ? 1 : 5);
		atomic_store(&p.mine->oldest, 64);
		atomic_store(&p.mine->horizon, back ? 64 : 128);
		os_bell_kick(p.kick);
	} else if (is(mode, "horizon-storm")) {
		uint64_t end = os_now_ns() + 2000000000u;
		uint32_t r = 1;
		/* Garbage everywhere, the seq the subscriber wants here and
		 * there, the horizon and oldest moving: nothing may come out
		 * of evshm_sub_recv but -EPROTO or nothing at all. */
		while (os_now_ns() < end) {
			r = r * 1103515245u + 12345u;
			uint32_t pos = (r >> 4) & (RING - 16) & ~15u;
			put_rec(&p, pos, r & 0xffff, 0, (r & 1) ? 1 : r);
			atomic_store(&p.mine->horizon, (uint64_t)(r % 3) << 16);
			atomic_store(&p.mine->oldest, pos);
			atomic_store(&p.mine->oldest_seq, 1 + (r & 3));
		}
	} else if (is(mode, "bell-flood")) {
		kick_flood(p.kick, p.sock, 5000, NULL);
	} else if (is(mode, "stale-cue")) {
		stale_cue(&p);
	} else if (is(mode, "drop-early")) {
		drop_after_first(&p, deadline);
		put_payload(&p, 32, "good");
		put_rec(&p, 32, 4, 0, 2);
		uint64_t wait = os_deadline(1000);
		while (atomic_load(&p.sub->head) < 64 && os_now_ns() < wait)
			usleep(1000);
		atomic_store(&p.mine->horizon, 96);
		atomic_thread_fence(memory_order_release);
		put_payload(&p, 64, "BAD");
		put_rec(&p, 64, 3, 0, 3);
	} else if (is(mode, "drop-bad")) {
		drop_after_first(&p, deadline);
		atomic_store(&p.mine->horizon, 64);
		atomic_thread_fence(memory_order_release);
		put_payload(&p, 32, "BAD");
		put_rec(&p, 32, 3, 0, 2);
		printf("ready\n");
		fflush(stdout);
	} else if (!is(mode, "ring-lie") && !is(mode, "start-unaligned")) {
		fprintf(stderr, "unknown pub mode %s\n", mode);
		return 2;
	}
	/* Hold everything open until the subscriber has gone. */
	struct pollfd pfd = { .fd = p.sock, .events = POLLRDHUP };
	os_poll(&pfd, 1, os_deadline(LONG_MS));
	ep_listener_close(&l);
	return 0;
}

int main(int argc, char **argv)
{
	alarm(60); /* if the test forgets us */
	if (argc != 4) {
		fprintf(stderr, "usage: peer_topic_hostile sub|pub NAME MODE\n");
		return 2;
	}
	if (is(argv[1], "sub"))
		return run_sub(argv[2], argv[3]);
	if (is(argv[1], "pub"))
		return run_pub(argv[2], argv[3]);
	return 2;
}
