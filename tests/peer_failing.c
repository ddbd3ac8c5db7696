/* SPDX-License-Identifier: MIT */
/*
 * peer_failing MODE: a cmocka test program that fails on purpose, for
 * test_peers_cleanup.  Each test (MODE selects one by name) starts peers
 * that would sleep for two minutes (some from threads that end first),
 * waits until they have noted their pids in $PEERS_PIDFILE, and then ends
 * badly: a failed assertion, exit(), abort(), or SIGKILL.  Whatever the
 * way, its peers must not outlive it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static const char *pidfile(void)
{
	const char *p = getenv("PEERS_PIDFILE");

	assert_non_null(p);
	return p;
}

static int lines(void)
{
	FILE *f = fopen(pidfile(), "re");
	int n = 0, ch;

	if (!f)
		return 0;
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* Until @n pids are noted (10 s at most): the peers run. */
static void wait_noted(int n)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 2000000 };
	uint64_t t0 = tu_now_ms();

	while (lines() < n) {
		assert_true(tu_now_ms() - t0 < 10000);
		nanosleep(&tick, NULL);
	}
}

/* A peer_sleeper (linked with tests/util.c), and its own with @nested. */
static void *sleeper(void *nested)
{
	char *argv[] = { "peer_sleeper", (char *)pidfile(),
			 nested ? "nested" : NULL, NULL };
	pid_t pid;

	tu_assert_res(tu_spawn(&pid, TU_PEER("peer_sleeper"), argv), 0);
	return NULL;
}

/* sleep(1): a peer that knows nothing of tests/util.c.  Its pid is noted
 * here. */
static void *plain_sleep(void *unused)
{
	char *argv[] = { "sleep", "120", NULL };
	pid_t pid;
	int fd;

	(void)unused;
	tu_assert_res(tu_spawn(&pid, "/bin/sleep", argv), 0);
	fd = open(pidfile(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_true(dprintf(fd, "%d\n", (int)pid) > 0);
	close(fd);
	return NULL;
}

static void two_peers(void)
{
	sleeper(NULL);
	plain_sleep(NULL);
	wait_noted(2);
}

static void mode_fail(void **state)
{
	(void)state;
	two_peers();
	fail_msg("failing on purpose, two peers running");
}

static void mode_exit(void **state)
{
	(void)state;
	two_peers();
	fprintf(stderr, "exiting on purpose, two peers running\n");
	exit(3);
}

static void mode_abort(void **state)
{
	(void)state;
	two_peers();
	fprintf(stderr, "aborting on purpose, two peers running\n");
	abort();
}

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

/* Under ASan, its report ends the process, its own way (abort() with
 * abort_on_error=1, else _exit()); without it, a plain failure. */
static void mode_sanitizer(void **state)
{
	(void)state;
	two_peers();
#ifdef HAVE_ASAN
	fprintf(stderr, "overflowing on purpose, two peers running\n");
	char *volatile p = malloc(8);
	assert_non_null(p);
	p[8] = 1;
	free(p);
#endif
	fail_msg("failing on purpose, two peers running");
}

/* A peer's peer: we kill the first, the first's end kills the second. */
static void mode_nested(void **state)
{
	(void)state;
	sleeper("nested");
	wait_noted(2);
	fail_msg("failing on purpose, a peer and its peer running");
}

/* Peers started by threads that have ended before the failure: they
 * outlive their thread (100 ms later they still run), not the process. */
static void mode_thread(void **state)
{
	const struct timespec later = { .tv_sec = 0, .tv_nsec = 100000000 };
	pthread_t a, b;
	FILE *f;
	int pid, n = 0;

	(void)state;
	assert_int_equal(pthread_create(&a, NULL, sleeper, NULL), 0);
	assert_int_equal(pthread_create(&b, NULL, plain_sleep, NULL), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	wait_noted(2);
	nanosleep(&later, NULL);
	f = fopen(pidfile(), "re");
	assert_non_null(f);
	while (fscanf(f, "%d", &pid) == 1) {
		if (!tu_pid_running(pid))
			fail_msg("peer %d died with the thread that started it",
				 pid);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2);
	fail_msg("failing on purpose, two peers of ended threads running");
}

/* No code of ours runs at the end (a sanitizer's _exit, a timeout's
 * SIGKILL): only what the kernel does for the peers is left. */
static void mode_sigkill(void **state)
{
	(void)state;
	sleeper("nested");
	wait_noted(2);
	fprintf(stderr, "killing myself on purpose, a peer and its peer "
		"running\n");
	raise(SIGKILL);
}

/* The same, with the peer started by a thread that ended before: its
 * death signal is not that thread's end, and is the process's. */
static void mode_orphan_sigkill(void **state)
{
	const struct timespec later = { .tv_sec = 0, .tv_nsec = 100000000 };
	pthread_t a;

	(void)state;
	assert_int_equal(pthread_create(&a, NULL, sleeper, "nested"), 0);
	pthread_join(a, NULL);
	wait_noted(2);
	nanosleep(&later, NULL);
	fprintf(stderr, "killing myself on purpose, a peer of an ended "
		"thread and its peer running\n");
	raise(SIGKILL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mode_fail),   cmocka_unit_test(mode_exit),
		cmocka_unit_test(mode_abort),  cmocka_unit_test(mode_nested),
		cmocka_unit_test(mode_thread), cmocka_unit_test(mode_sigkill),
		cmocka_unit_test(mode_orphan_sigkill),
		cmocka_unit_test(mode_sanitizer),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: peer_failing MODE (runs test MODE)\n");
		return 2;
	}
	return TU_RUN(tests, argc, argv);
}
