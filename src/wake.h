/* SPDX-License-Identifier: MIT */
/*
 * wake.h: how a side waits.  First spin on shared memory (only with a CPU
 * to spare: spinning while the peer needs our CPU only delays it), then
 * sleep in poll() on our doorbell eventfd *and* the socket, so that a dead
 * peer wakes us as surely as a kick does.  ring.c decides when a kick is
 * needed; this file performs it.
 */
#ifndef EVSHM_WAKE_H
#define EVSHM_WAKE_H

#include <stdbool.h>
#include <stdint.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Spin until @ready(arg) is true or @spin_ns have passed.
 * Returns true if @ready became true. */
bool wake_spin(bool (*ready)(const void *arg), const void *arg,
	       int64_t spin_ns);

/*
 * A side's private sleeping place: an epoll set holding its bell
 * edge-triggered and the socket for hang-up.  Edge-triggered, every kick
 * is one event whatever the counter holds, so a waker need not reset the
 * bell (a system call) after each sleep.  -errno or 0.
 */
int wake_open(int *ep, int bell, int sock);

/*
 * Sleep on @ep until a kick, the socket's hang-up, or @deadline.
 * Returns 0 (woken: re-check, wakeups may be spurious), -ETIMEDOUT,
 * -EPIPE (the socket hung up) or another -errno.
 */
int wake_sleep(int ep, uint64_t deadline);

/* Has the socket hung up?  One poll() with timeout 0. */
bool wake_hung_up(int sock);

/* The default spin: 30 µs (about what a cross-CPU wakeup costs, so spinning
 * at most doubles the cost of a sleep) if this thread may use more than one
 * CPU, else 0. */
int64_t wake_default_spin_ns(void);

#endif
