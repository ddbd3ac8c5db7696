/* SPDX-License-Identifier: MIT */
/*
 * sys.h: what the evshm tool needs of the system besides the library:
 * clocks, CPU placement and CPU time, Unix sockets at a name, one message
 * with descriptors (SCM_RIGHTS), memfds and eventfds.  Plain POSIX and
 * Linux calls: tools/ builds against an installed libevshm and never
 * reaches into its internals.
 *
 * Every descriptor made here is close-on-exec.  Functions return 0 (or a
 * count) or a negative errno.  The tool is single-threaded; so are these.
 */
#ifndef EVSHM_TOOL_SYS_H
#define EVSHM_TOOL_SYS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* --- time --------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds: one clock for every process of the
 * machine, so a time taken in one process can be compared in another. */
uint64_t sys_now_ns(void);
/* @timeout_ms from now; -1: never (UINT64_MAX). */
uint64_t sys_deadline(int timeout_ms);
/* Milliseconds left until @deadline, for poll(): -1 for never, 0 if past,
 * rounded up so that a wait never ends early. */
int sys_ms_left(uint64_t deadline);
/* poll() until an event or @deadline, retrying EINTR with the time left.
 * The number of ready descriptors (0: the deadline passed) or -errno. */
int sys_poll(struct pollfd *fds, unsigned n, uint64_t deadline);
/* Sleep @ns nanoseconds (EINTR: the rest is slept). */
void sys_sleep_ns(uint64_t ns);

/* --- CPUs --------------------------------------------------------------- */

/* Run the calling thread on @cpu only; @cpu < 0: on every CPU it was
 * allowed when it first called this (its placement "unpinned").
 * -EINVAL for a CPU out of range, else sched_setaffinity's error. */
int sys_cpu_pin(int cpu);
/* The first two CPUs this thread may run on; -ENODEV when it may run on
 * fewer than two. */
int sys_cpu_two(int *a, int *b);
/* CPU time this process has used, user + system, in seconds
 * (getrusage(RUSAGE_SELF): every thread, exact to the scheduler's
 * accounting). */
double sys_cpu_seconds(void);

/* In a spin loop: let the sibling hyperthread run (x86 pause, arm yield). */
static inline void sys_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* --- Unix sockets ------------------------------------------------------- */

/* Listen at @name ("@x": the Linux abstract name "x"; else a path, which
 * must not exist) with a socket of @type (SOCK_STREAM, SOCK_SEQPACKET). */
int sys_listen(const char *name, int type, int *fd);
/* Accept one connection, waiting up to @timeout_ms (-1: forever);
 * -ETIMEDOUT.  The new socket is blocking. */
int sys_accept(int lfd, int timeout_ms, int *fd);
/* Connect to @name (blocking socket of @type). */
int sys_connect(const char *name, int type, int *fd);
/* The pid of the process at the other end, as of its connect() or
 * listen() (SO_PEERCRED). */
int sys_peer_pid(int fd, pid_t *pid);

/* Most descriptors one sys_send_msg() carries. */
#define SYS_MAX_FDS 4

/*
 * One message of @len > 0 bytes with @nfds (<= SYS_MAX_FDS) descriptors
 * (copies: the caller keeps its own) on a SOCK_SEQPACKET socket, waiting up
 * to @timeout_ms for room.  MSG_NOSIGNAL.  Errors: -ETIMEDOUT, -EPIPE /
 * -ECONNRESET (the peer has gone), -EINVAL, -EMSGSIZE, others of sendmsg.
 */
int sys_send_msg(int sock, const void *buf, size_t len, const int *fds,
		 unsigned nfds, int timeout_ms);
/*
 * Receive one message into @buf (@cap bytes) and up to @max_fds
 * descriptors into @fds (close-on-exec); *nfds is the number received.
 * Returns the length.  All or nothing: a message larger than @cap
 * (-EMSGSIZE), more descriptors than @max_fds (-EOVERFLOW), truncated
 * control data or a control message that is not SCM_RIGHTS (-EPROTO)
 * consume the message and close every descriptor that came with it.
 * End of file (the peer closed) is -EPIPE.  -ETIMEDOUT after @timeout_ms.
 */
int sys_recv_msg(int sock, void *buf, size_t cap, int *fds, unsigned max_fds,
		 unsigned *nfds, int timeout_ms);

/* --- memfds and eventfds ------------------------------------------------ */

/* A memfd of @size bytes (zeroed), MFD_ALLOW_SEALING, not sealed yet. */
int sys_memfd(const char *name, size_t size, int *fd);
/* Seal @fd: no shrinking, growing, new writable mapping or write(2)
 * (F_SEAL_FUTURE_WRITE), no further seals.  Mappings made before stay
 * writable: map, then seal. */
int sys_memfd_seal(int fd);
/* The seals of @fd (F_GET_SEALS), or -errno (-EINVAL: not a memfd). */
int sys_memfd_seals(int fd);
/* A blocking eventfd, counter 0. */
int sys_eventfd(int *fd);

/* close(@fd) if @fd >= 0; returns -1, for `fd = sys_close(fd)`. */
int sys_close(int fd);

#endif
