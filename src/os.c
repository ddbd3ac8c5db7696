/* SPDX-License-Identifier: MIT */
/*
 * os.c: the memfds and bells evshm creates, the checks a receiver runs on
 * descriptors a peer handed over, and how those are closed again.  Sockets
 * are made in endpoint.c, epoll sets in bell.c and received descriptors in
 * fdpass.c, with the same rule: every descriptor is close-on-exec from
 * birth, so an exec in another thread never leaks one.
 */
#include "os.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Linux 6.16: a receiver may refuse SCM_RIGHTS (the sender gets EPERM). */
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif
/* The kernel's SCM_MAX_FD: the most descriptors one message carries. */
#define SCM_MAX_FD_ 253

/* "/proc/self/fd/" + a decimal int + NUL */
#define FD_PATH_MAX 32

static void fd_path(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

/* readlink() of /proc/self/fd/@fd into @buf, NUL-terminated.  A target that
 * does not fit is an error: all callers compare against short prefixes.
 * The magic link is resolved by procfs alone: no file system is asked. */
static int fd_link(int fd, char *buf, size_t n)
{
	char path[FD_PATH_MAX];
	ssize_t len;

	fd_path(path, sizeof(path), fd);
	len = readlink(path, buf, n);
	if (len < 0)
		return -errno;
	if ((size_t)len >= n)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int os_memfd(const char *name, size_t size, int *out_fd)
{
	int fd, res;

	if (!name || !out_fd || size > (size_t)INT64_MAX)
		return -EINVAL;
	/* MFD_ALLOW_SEALING: without it F_ADD_SEALS fails and the receiver
	 * could not trust the size (a shrink would SIGBUS its mapping). */
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		res = -errno;
		goto out_close_fd;
	}
	*out_fd = fd;
	return 0;

out_close_fd:
	os_close(fd);
	return res;
}

int os_memfd_seal(int fd)
{
	/* SHRINK: the peer's mapping can never SIGBUS.  GROW: the size it
	 * checked stays true.  FUTURE_WRITE: nobody (the peer included) can
	 * create a new writable mapping, write(2) or punch a hole, while
	 * mappings made before sealing stay writable; unlike F_SEAL_WRITE it
	 * does not fail with EBUSY because such a mapping exists.  SEAL: none
	 * of it can be undone. */
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
			  F_SEAL_SEAL;

	if (fcntl(fd, F_ADD_SEALS, seals) < 0)
		return -errno;
	return 0;
}

int os_reopen_ro(int fd, int *out_fd)
{
	char path[FD_PATH_MAX];
	int nfd;

	if (fd < 0 || !out_fd)
		return -EINVAL;
	/* A new open file description: its access mode is O_RDONLY whatever
	 * @fd's is, so a mapping of it can never be made writable. */
	fd_path(path, sizeof(path), fd);
	nfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	*out_fd = nfd;
	return 0;
}

int os_passrights(int sock, bool on)
{
	int v = on;

	if (setsockopt(sock, SOL_SOCKET, SO_PASSRIGHTS, &v, sizeof(v)) < 0)
		return -errno;
	return 0;
}

int os_bell_pair(int *rd, int *wr)
{
	const int sndbuf = 256 << 10;
	int sv[2];

	if (!rd || !wr)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0)
		return -errno;
	/* Best effort both: the kernel may cap the one and lack the other
	 * (the drain closes what rides along anyway). */
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	(void)os_passrights(sv[0], false);
	*rd = sv[0];
	*wr = sv[1];
	return 0;
}

int os_epoll_add(int ep, int fd, uint32_t events, uint32_t tag)
{
	struct epoll_event ev = { .events = events, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int os_event(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

void os_event_signal(int efd)
{
	const uint64_t one = 1;

	/* Only a counter at 2^64 - 2 refuses (EAGAIN): readable already. */
	while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void os_event_clear(int efd)
{
	uint64_t n;

	while (read(efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

int os_timer(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

void os_timer_at(int tfd, uint64_t when)
{
	struct itimerspec its = { 0 };

	if (when != UINT64_MAX) {
		/* 0 would disarm: "now" is one nanosecond from now. */
		when = when ? when : 1;
		its.it_value.tv_sec = (time_t)(when / 1000000000u);
		its.it_value.tv_nsec = (long)(when % 1000000000u);
	}
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * The order is the point.  A peer may still hold the memfd and change it
 * while we look, until the seals forbid it:
 *  1. F_GET_SEALS first.  It works on any file without asking its file
 *     system (non-shmem files just say EINVAL), and once SHRINK, GROW and
 *     SEAL are there, the size can never change again: a size checked
 *     *after* this is final.  (0.1 read the size first: a peer could
 *     truncate the file between the two checks, then seal it, and our
 *     first read of the mapping died with SIGBUS.)  A write seal is
 *     required too: without one the peer could punch a hole in the file
 *     (FALLOC_FL_PUNCH_HOLE), which faults a hugetlbfs mapping.
 *  2. fstatfs: only tmpfs.  A MFD_HUGETLB memfd passes the seal check
 *     but its pages are a pool that can run dry under our mapping.
 *  3. fstat: a regular file of exactly the announced size.
 *  4. the name: an anonymous memfd, not a tmpfs file someone else can
 *     open by path (defence in depth: such files cannot carry seals).
 * fstatfs and fstat come only after step 1 has proved the file is shmem,
 * whose file system never blocks (on a FUSE file they would wait for the
 * FUSE server).
 */
int os_check_memfd(int fd, size_t size)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	const int write_seals = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
	char link[64];
	struct statfs sfs;
	struct stat st;
	int seals;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & need) != need || !(seals & write_seals))
		return ERR_PROTO(FD_SEALS);
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
		return ERR_PROTO(FD_FS);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size != (uint64_t)size)
		return ERR_PROTO(FD_SIZE);
	if (fd_link(fd, link, sizeof(link)) < 0 || !has_prefix(link, "/memfd:"))
		return ERR_PROTO(FD_NAME);
	return 0;
}

static int sockopt_int(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0 || len != sizeof(v))
		return -1;
	return v;
}

int os_check_bell(int fd, pid_t pid, uid_t uid, gid_t gid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	char link[64];

	/* The link first: a socket reads "socket:[inode]", and nothing below
	 * reaches a file system. */
	if (fd_link(fd, link, sizeof(link)) < 0 || !has_prefix(link, "socket:[") ||
	    sockopt_int(fd, SO_DOMAIN) != AF_UNIX ||
	    sockopt_int(fd, SO_TYPE) != SOCK_STREAM ||
	    sockopt_int(fd, SO_ACCEPTCONN) != 0)
		return ERR_PROTO(FD_BELL);
	/* A socketpair's ends carry the credentials of the process that made
	 * it; a socket connected elsewhere (a daemon that trusts its peers'
	 * credentials) carries that other end's. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
	    len != sizeof(uc) || uc.pid != pid || uc.uid != uid ||
	    uc.gid != gid)
		return ERR_PROTO(FD_BELL);
	/* We only send: nothing the peer writes from its end (descriptors
	 * included) can be queued for us from now on.  Fails if unconnected. */
	if (shutdown(fd, SHUT_RD) < 0)
		return ERR_PROTO(FD_BELL);
	return 0;
}

int os_bell_kick(int wr)
{
	const char one = 1;
	ssize_t n;

	do {
		n = send(wr, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
		return 0;
	return n < 0 ? -errno : -EIO;
}

/* Close the descriptors a message brought (the peer chose them). */
static void close_rights(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		int fds[SCM_MAX_FD_];
		unsigned n = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		if (n > SCM_MAX_FD_)
			n = SCM_MAX_FD_;
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		os_close_untrusted(fds, n);
	}
}

int os_bell_drain(int rd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(SCM_MAX_FD_ * sizeof(int))];
	} ctl;
	char buf[1024];
	int total = 0;

	/* A read stops at kicks that carry descriptors; each takes the
	 * rest of the queue up to the buffer.  Bounded: a peer refilling it
	 * cannot keep us here. */
	for (int i = 0; i < 16; i++) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(rd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (m.msg_controllen)
			close_rights(&m);
		if (n == 0)
			return total ? total : -EPIPE;
		total += (int)n;
		if ((size_t)n < sizeof(buf) && !m.msg_controllen)
			break;
	}
	return total;
}

int os_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;

		/* Linux always releases the descriptor, even on EINTR: never
		 * retry (the number may already belong to another thread). */
		close(fd);
		errno = saved;
	}
	return -1;
}

/* --- closing what a peer chose ------------------------------------------- */

/*
 * The last close of a file runs its release code in the closing thread
 * (the kernel defers it to the return to user space, but in the same
 * task): for a TCP socket with SO_LINGER that waits for the linger time,
 * for a FUSE file until its server answers.  A peer that sends such a file
 * would hold whichever evshm call closes it.  So an unknown file is closed
 * by a detached thread, with every signal blocked so that it never takes
 * one meant for the application.
 *
 * At most CLOSERS_MAX such threads live at once; the files wait for them in
 * a queue.  Without the bound a peer would choose how many threads we make:
 * one FUSE server that never answers a FLUSH holds every close of its
 * files, and a thread per file would spend the user's RLIMIT_NPROC, which
 * all of the user's processes share.  What is held stays bounded by our
 * own RLIMIT_NOFILE: queued files are still open files.
 */
#define CLOSERS_MAX 4

static pthread_mutex_t closes_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t closes_once = PTHREAD_ONCE_INIT;
static int *closes_q;			/* under closes_lock */
static unsigned closes_len, closes_cap;	/* under closes_lock */
static unsigned closers;		/* threads alive, under closes_lock */
static _Atomic unsigned closes_pending;	/* queued or being closed */

/* A fork while a closer holds the lock must not leave it held in the
 * child, which has no closer threads: what was queued is closed by the
 * child's first closer (the child's copies; a file a closer was closing
 * stays open in the child). */
static void closes_prefork(void)
{
	pthread_mutex_lock(&closes_lock);
}

static void closes_postfork(void)
{
	pthread_mutex_unlock(&closes_lock);
}

static void closes_child(void)
{
	closers = 0;
	atomic_store_explicit(&closes_pending, closes_len, memory_order_relaxed);
	pthread_mutex_unlock(&closes_lock);
}

static void closes_init(void)
{
	pthread_atfork(closes_prefork, closes_postfork, closes_child);
}

/* Take the next queued file, or, with none left, retire the calling
 * closer; under closes_lock. */
static int closes_next(void)
{
	if (closes_len)
		return closes_q[--closes_len];
	closers--;
	free(closes_q);
	closes_q = NULL;
	closes_cap = 0;
	return -1;
}

static void close_one(int fd)
{
	close(fd);
	atomic_fetch_sub_explicit(&closes_pending, 1, memory_order_release);
}

static void *closer_main(void *arg)
{
	int fd;

	(void)arg;
	pthread_mutex_lock(&closes_lock);
	while ((fd = closes_next()) >= 0) {
		pthread_mutex_unlock(&closes_lock);
		close_one(fd);
		pthread_mutex_lock(&closes_lock);
	}
	pthread_mutex_unlock(&closes_lock);
	return NULL;
}

static int closer_start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (pthread_attr_init(&attr) != 0)
		return -1;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* close() needs little stack; sanitizers need more. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t, &attr, closer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return r;
}

static void close_async(const int *fds, unsigned n)
{
	bool start = false;

	pthread_once(&closes_once, closes_init);
	pthread_mutex_lock(&closes_lock);
	if (closes_len + n > closes_cap) {
		unsigned cap = 2 * (closes_len + n) > 64 ? 2 * (closes_len + n) : 64;
		int *q = realloc(closes_q, cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&closes_lock);
			/* No memory: the one thing left is to close here
			 * (docs/protocol.md, security considerations). */
			for (unsigned i = 0; i < n; i++)
				os_close(fds[i]);
			return;
		}
		closes_q = q;
		closes_cap = cap;
	}
	memcpy(closes_q + closes_len, fds, n * sizeof(*fds));
	closes_len += n;
	atomic_fetch_add_explicit(&closes_pending, n, memory_order_relaxed);
	if (closers < CLOSERS_MAX) {
		closers++;
		start = true;
	}
	pthread_mutex_unlock(&closes_lock);
	if (!start || closer_start() == 0)
		return;
	/* No thread: the files wait for a closer already running, or, with
	 * none, are closed here. */
	pthread_mutex_lock(&closes_lock);
	closers--;
	while (!closers && closes_len) {
		int fd = closes_q[--closes_len];

		pthread_mutex_unlock(&closes_lock);
		close_one(fd);
		pthread_mutex_lock(&closes_lock);
	}
	pthread_mutex_unlock(&closes_lock);
}

/* Known kinds whose release never waits for anyone.  Not a pipe: its
 * release takes the pipe's mutex, which whoever holds either end can keep
 * for as long as it likes (a splice from it into a full blocking socket),
 * and waits for it uninterruptibly (docs/protocol.md 6.1, 10.5). */
static bool close_is_prompt(int fd)
{
	char link[64];

	if (fd_link(fd, link, sizeof(link)) < 0)
		return false;
	if (!strcmp(link, "anon_inode:[eventfd]"))
		return true;
	/* F_GET_SEALS succeeds only on shmem and hugetlbfs files. */
	return has_prefix(link, "/memfd:") && fcntl(fd, F_GET_SEALS) >= 0;
}

void os_close_untrusted(int *fds, unsigned n)
{
	int slow[64];
	unsigned nslow = 0;

	for (unsigned i = 0; i < n; i++) {
		if (fds[i] < 0)
			continue;
		if (close_is_prompt(fds[i])) {
			os_close(fds[i]);
		} else {
			slow[nslow++] = fds[i];
			if (nslow == sizeof(slow) / sizeof(slow[0])) {
				close_async(slow, nslow);
				nslow = 0;
			}
		}
		fds[i] = -1;
	}
	if (nslow)
		close_async(slow, nslow);
}

/*
 * How many descriptors wait in the receive queue of Unix socket @sock: the
 * kernel's own count (fdinfo "scm_fds", Linux 5.7), read by procfs without
 * any lock of the socket.  -1 if unknown.  Neither MSG_PEEK nor SIOCINQ
 * can say it: a message of no length (SOCK_SEQPACKET) or the skb of an
 * out-of-band byte already taken (SOCK_STREAM) looks empty and may still
 * hold descriptors; and every read, a peek included, first takes the
 * socket's read lock, which a peer that shares the socket can hold.
 */
static int queued_fds(int sock)
{
	char path[48], buf[512];
	const char *at;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", sock);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	os_close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	at = strstr(buf, "\nscm_fds:");
	if (!at)
		return -1;
	long v = strtol(at + 9, NULL, 10);
	return v < 0 || v > INT_MAX ? -1 : (int)v;
}

/* Close @sock here if @refused (nothing carrying descriptors can be queued
 * any more) and no descriptor is queued: its release then frees only
 * memory.  Else by a thread. */
static void close_if_empty(int sock, bool refused)
{
	if (refused && queued_fds(sock) == 0)
		os_close(sock);
	else
		close_async(&sock, 1);
}

void os_close_sock(int sock, bool fds_possible)
{
	if (sock < 0)
		return;
	if (!fds_possible)
		os_close(sock);
	else
		close_if_empty(sock, os_passrights(sock, false) == 0);
}

void os_close_bell(int fd, bool shut)
{
	if (fd < 0)
		return;
	/* One we kick: the peer made it and may hold it too, and every read
	 * of a Unix stream socket (a peek included) first takes its read
	 * lock, which the peer can hold for as long as it likes (a recv whose
	 * copy to its memory faults on a page nobody fills): never read.  It
	 * was shut for reading at its check. */
	if (!shut)
		(void)os_bell_drain(fd);
	/* Ours refuses descriptors (SO_PASSRIGHTS, Linux 6.16). */
	close_if_empty(fd, shut || os_passrights(fd, false) == 0);
}

unsigned os_close_pending(void)
{
	return atomic_load_explicit(&closes_pending, memory_order_acquire);
}

unsigned os_close_wait(int timeout_ms)
{
	uint64_t deadline = os_deadline(timeout_ms);
	struct timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };
	unsigned n;

	while ((n = os_close_pending()) && os_now_ns() < deadline)
		nanosleep(&ms, NULL);
	return n;
}

/* --- time, CPUs ------------------------------------------------------------ */

uint64_t os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return os_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int os_remaining_ms(uint64_t deadline)
{
	uint64_t now, left;

	if (deadline == UINT64_MAX)
		return -1;
	now = os_now_ns();
	if (now >= deadline)
		return 0;
	/* Round up: poll() sleeping 1 ms short of the deadline and reporting
	 * a timeout would be a timeout that came early. */
	left = (deadline - now + 999999u) / 1000000u;
	return left > INT_MAX ? INT_MAX : (int)left;
}

int os_poll(struct pollfd *fds, unsigned n, uint64_t deadline)
{
	int r;

	for (;;) {
		r = poll(fds, (nfds_t)n, os_remaining_ms(deadline));
		if (r > 0)
			return r;
		if (r < 0 && errno != EINTR)
			return -errno;
		/* EINTR, or a timeout: go round again with the time that is
		 * really left, so neither a signal nor a coarse timer ends
		 * the wait before the deadline. */
		if (r == 0 && os_now_ns() >= deadline)
			return 0;
	}
}

int os_wait_fd(int fd, short events, uint64_t deadline, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r = os_poll(&pfd, 1, deadline);

	if (r < 0)
		return r;
	if (r == 0)
		return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
	if (pfd.revents & POLLNVAL)
		return -EBADF;
	return 0;
}

int os_ncpus(void)
{
	size_t ncpu = CPU_SETSIZE;

	/* A static cpu_set_t holds 1024 CPUs; sched_getaffinity() fails with
	 * EINVAL when the kernel's mask is larger, so grow and retry. */
	for (;;) {
		size_t sz = CPU_ALLOC_SIZE(ncpu);
		cpu_set_t *set = CPU_ALLOC(ncpu);
		int count;

		if (!set)
			return -ENOMEM;
		if (sched_getaffinity(0, sz, set) == 0) {
			count = CPU_COUNT_S(sz, set);
			CPU_FREE(set);
			return count > 0 ? count : 1;
		}
		CPU_FREE(set);
		if (errno != EINVAL || ncpu >= (1u << 20))
			return -errno;
		ncpu *= 2;
	}
}

int os_cpu(void)
{
	return sched_getcpu();
}

void os_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	/* Early boot, or a seccomp filter: an identity still has to differ
	 * between channels, not be secret. */
	for (uint64_t x = os_now_ns() ^ ((uint64_t)getpid() << 32); got < n; got++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[got] ^= (uint8_t)x;
	}
}

/* --- asymmetric fences ----------------------------------------------------- */

int os_membarrier(void)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
		return -errno;
	return 0;
}

static int membarrier_registered;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register_once(void)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
		    0, 0) < 0)
		membarrier_registered = -errno;
}

int os_membarrier_register(void)
{
	pthread_once(&membarrier_once, membarrier_register_once);
	return membarrier_registered;
}
