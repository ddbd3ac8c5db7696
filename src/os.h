/* SPDX-License-Identifier: MIT */
/*
 * os.h: descriptors, and the rules for the ones a peer hands us.
 *
 * Every memfd and pipe evshm creates is made here, close-on-exec from
 * birth (sockets are made in endpoint.c, epoll sets in bell.c, received
 * descriptors in fdpass.c, all with the same rule).  The checks a receiver
 * runs on a peer's descriptors live here too, and so does the one way evshm
 * closes a descriptor the peer chose: such a close can block (a TCP socket
 * with SO_LINGER, a FUSE file, a tty draining), so it never happens in a
 * call that has a deadline.
 *
 * All functions return 0 (or a count) or a negative errno.
 */
#ifndef EVSHM_OS_H
#define EVSHM_OS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A memfd of @size bytes: MFD_CLOEXEC | MFD_ALLOW_SEALING, not yet sealed. */
int os_memfd(const char *name, size_t size, int *out_fd);
/* Seal @fd against shrink, grow, further writes through new mappings or
 * write(2) (F_SEAL_FUTURE_WRITE), and further sealing.  Existing writable
 * mappings keep working: map first, then seal. */
int os_memfd_seal(int fd);
/* A new read-only open of the same file (reopened through /proc/self/fd). */
int os_reopen_ro(int fd, int *out_fd);
/*
 * A bell: a connected pair of Unix stream sockets, O_CLOEXEC | O_NONBLOCK.
 * *@rd is the sleeper's and never leaves it (nobody else can hold its
 * locks), *@wr goes to the kicker.  A pipe would not do: every read and
 * write of a pipe takes its mutex, which any holder of either end can keep
 * for as long as it likes (splice into a full blocking socket), and a
 * kicker waiting for it sleeps uninterruptibly.  @rd refuses descriptors
 * where the kernel can (SO_PASSRIGHTS, Linux 6.16); @wr has room for far
 * more kicks than a sleeper lets wait (BELL_DRAIN_EVERY).
 */
int os_bell_pair(int *rd, int *wr);

/*
 * Checks on descriptors received from a peer, in an order a racing peer
 * cannot exploit, and without a call that a hostile file could block
 * (fstat and fstatfs reach a FUSE server; they run only once the seals
 * prove the file is shmem).
 *
 * os_check_memfd: 0 if @fd is a tmpfs memfd (not hugetlbfs) of exactly
 * @size bytes whose seals include F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL
 * and a write seal (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE); else -EPROTO.
 * os_check_bell: 0 if @fd is a connected Unix stream socket (not a
 * listening one) whose other end was made by the process with credentials
 * @pid, @uid, @gid (the peer: so our kicks go nowhere else); it is then
 * shut down for reading (the peer can queue nothing more into it).  Else
 * -EPROTO.
 */
int os_check_memfd(int fd, size_t size);
int os_check_bell(int fd, pid_t pid, uid_t uid, gid_t gid);

/* Kick a bell: send one byte with MSG_DONTWAIT | MSG_NOSIGNAL, per call, so
 * that no flag the peer sets on the shared description can make it block
 * or raise SIGPIPE.  -EAGAIN (the sleeper has a send buffer of kicks it has
 * not read: it is readable already) is success.  0 or -errno (-EPIPE: the
 * sleeper has gone). */
int os_bell_kick(int wr);
/* SO_PASSRIGHTS (Linux 6.16): whether @sock accepts SCM_RIGHTS; with it
 * off, a peer's sendmsg() carrying descriptors fails with EPERM.  A
 * listening socket passes the setting to the sockets it accepts.
 * 0, or -ENOPROTOOPT on older kernels. */
int os_passrights(int sock, bool on);
/* Close a bell's end.  Our own (!@shut): drained first (the kicks, and any
 * descriptors the peer sent along, closed as its choice).  One we kick
 * (@shut: shut for reading at its check): never read, not even peeked
 * (the peer shares that socket and can hold its read lock for ever).
 * Then closed at once if nothing with descriptors can still be queued and
 * none is (the kernel's count), else by a thread (os_close_sock). */
void os_close_bell(int fd, bool shut);
/* Empty our bell without blocking (a bounded number of reads, so a peer
 * refilling it cannot keep us here); descriptors that rode along with the
 * kicks are closed as any other the peer chose.  Returns the number of
 * bytes drained (0: empty), or -EPIPE if the kicker has shut its end. */
int os_bell_drain(int rd);

/* Add @fd to epoll set @ep for @events, with @tag as its event data
 * (data.u32; a caller keyed on descriptors passes the descriptor and
 * reads data.fd).  0 or -errno. */
int os_epoll_add(int ep, int fd, uint32_t events, uint32_t tag);

/* A private wakeup (an eventfd only this process holds, O_CLOEXEC |
 * O_NONBLOCK): os_event_signal makes it readable, os_event_clear not (it
 * also takes the expiry count of a timerfd that fired).  Neither fails
 * on a descriptor from os_event. */
int os_event(void);
void os_event_signal(int efd);
void os_event_clear(int efd);

/* A CLOCK_MONOTONIC timerfd (O_CLOEXEC | O_NONBLOCK), or -errno; and
 * arming it to fire at @when (os_now_ns() time; UINT64_MAX disarms).
 * Arming again also clears an expiry nobody read. */
int os_timer(void);
void os_timer_at(int tfd, uint64_t when);

/* Close @fd if >= 0, preserving errno; returns -1 for `fd = os_close(fd)`.
 * Only for descriptors whose close cannot block: ours, or a peer's that
 * passed os_check_memfd / os_check_bell. */
int os_close(int fd);

/*
 * Close descriptors a peer chose.  Those whose kind is known to close
 * promptly (a sealed memfd, an eventfd) are closed at once; any other is
 * queued for one of at most four detached threads with every signal
 * blocked (an asynchronous close, as systemd does), so that no evshm call
 * waits for it and no peer chooses how many threads we make.  Each slot
 * of @fds is set to -1.
 */
void os_close_untrusted(int *fds, unsigned n);
/*
 * Close a connected socket whose receive queue may hold descriptors the
 * peer sent (they are released, possibly blocking, by the close).
 * @fds_possible false: the socket never accepted descriptors (SO_PASSRIGHTS
 * was 0 since it was created), so close it at once.  Otherwise turn
 * SO_PASSRIGHTS off and look: a queue that holds no descriptor (the
 * kernel's count: messages of no length count too) is closed at once,
 * anything else asynchronously.
 */
void os_close_sock(int sock, bool fds_possible);
/* Asynchronous closes not yet finished (for tests that count
 * descriptors); os_close_wait() waits for them up to @timeout_ms and
 * returns how many are left. */
unsigned os_close_pending(void);
unsigned os_close_wait(int timeout_ms);

/* Monotonic time in nanoseconds. */
uint64_t os_now_ns(void);
/* CPU time of the calling thread in nanoseconds, user and system (a
 * system call, not the vDSO: for rare looks). */
uint64_t os_thread_cpu_ns(void);
/* Deadlines: timeout_ms -1 -> UINT64_MAX (never), else now + timeout. */
uint64_t os_deadline(int timeout_ms);
/* The earlier of two deadlines. */
static inline uint64_t os_min_deadline(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}
/* Milliseconds left until @deadline for poll(): -1 for never, 0 if past
 * (rounded up so that a wait never ends early). */
int os_remaining_ms(uint64_t deadline);

/* poll() until an event or @deadline, retrying EINTR with the time left.
 * Returns the number of ready descriptors (0 on timeout) or -errno. */
int os_poll(struct pollfd *fds, unsigned n, uint64_t deadline);

/* Wait for @events on @fd until @deadline, for a call that just said
 * EAGAIN: 0 when it is worth retrying the call (POLLHUP / POLLERR
 * included: the retry reports the real error), -EAGAIN (@timeout_ms was
 * 0) or -ETIMEDOUT when the time is up, -EBADF, or -errno. */
int os_wait_fd(int fd, short events, uint64_t deadline, int timeout_ms);

/* Number of CPUs this thread may run on (sched_getaffinity). */
int os_ncpus(void);
/* The CPU this thread runs on now, or -1 (vDSO getcpu: no system call). */
int os_cpu(void);

/* @n random bytes (getrandom, never blocking; a clock-and-pid mix if the
 * kernel has no entropy yet: identities, not secrets). */
void os_random(void *buf, size_t n);

/*
 * A full memory barrier on every CPU that runs a thread of a process that
 * registered with os_membarrier_register() (membarrier(2),
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED), so that a peer can skip its own fence
 * on the hot path.  0 or -errno (-ENOSYS, -EPERM under seccomp).
 */
int os_membarrier(void);
/* Register this process for the barrier above (once; later calls return
 * the first result).  0 or -errno. */
int os_membarrier_register(void);

#endif
