/* SPDX-License-Identifier: MIT */
/*
 * os.h: every system call that creates a descriptor goes through here, so
 * that each one is close-on-exec; plus deadlines and EINTR-safe poll.
 * All functions return 0 (or a count) or a negative errno.
 */
#ifndef EVSHM_OS_H
#define EVSHM_OS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A memfd of @size bytes: MFD_CLOEXEC | MFD_ALLOW_SEALING, not yet sealed. */
int os_memfd(const char *name, size_t size, int *out_fd);
/* Seal @fd against shrink, grow, further writes through new mappings or
 * write(2) (F_SEAL_FUTURE_WRITE), and further sealing.  Existing writable
 * mappings keep working: map first, then seal. */
int os_memfd_seal(int fd);
/* A new read-only open of the same file (reopened through /proc/self/fd). */
int os_reopen_ro(int fd, int *out_fd);
/* An eventfd: EFD_CLOEXEC | EFD_NONBLOCK, counter 0. */
int os_eventfd(int *out_fd);

/* Checks on descriptors received from a peer.  0 if @fd is a memfd of
 * exactly @size bytes carrying at least F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_SEAL; -EPROTO otherwise. */
int os_check_memfd(int fd, size_t size);
/* 0 if @fd is an eventfd open for writing with O_NONBLOCK; -EPROTO otherwise. */
int os_check_eventfd(int fd);

/* Kick an eventfd (add 1).  Never blocks while the file is O_NONBLOCK;
 * -EPROTO if the counter is saturated (no honest peer lets that happen). */
int os_eventfd_kick(int fd);
/* Reset an eventfd's counter to 0 without ever blocking (preadv2 with
 * RWF_NOWAIT, immune to a peer clearing O_NONBLOCK on the shared file).
 * Returns 1 if it was non-zero, 0 if it was already 0. */
int os_eventfd_drain(int fd);

/* Close @fd if >= 0, preserving errno; returns -1 for `fd = os_close(fd)`. */
int os_close(int fd);

/* Monotonic time in nanoseconds. */
uint64_t os_now_ns(void);
/* Deadlines: timeout_ms -1 -> UINT64_MAX (never), else now + timeout. */
uint64_t os_deadline(int timeout_ms);
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

#endif
