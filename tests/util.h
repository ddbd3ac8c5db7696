/* SPDX-License-Identifier: MIT */
/*
 * util.h: what the evshm tests share.  Two-process tests spawn a separate
 * peer executable (posix_spawn, never fork: a forked child would inherit
 * the test's descriptors, locks and cmocka state, and would not prove that
 * *unrelated* processes can talk).
 *
 * Functions return 0 or a negative errno, like the library.
 */
#ifndef EVSHM_TESTS_UTIL_H
#define EVSHM_TESTS_UTIL_H

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <sys/types.h>

/* Full path of a peer executable built next to the test.  TEST_BINDIR is a
 * compile definition of each test target (see evshm_test()). */
#ifdef TEST_BINDIR
#define TU_PEER(name) TEST_BINDIR "/" name
#endif

/* Exit status a peer uses to say "cannot run this check here" (CTest's and
 * automake's skip code). */
#define TU_EXIT_SKIP 77

/* Start @exe with @argv (argv[0] included, NULL-terminated) and the
 * current environment.  A relative @exe is taken relative to the directory
 * of the running executable (where the peers are built), so a peer can
 * spawn another peer too.  Only stdin/stdout/stderr are inherited: every
 * other descriptor of ours is close-on-exec. */
int tu_spawn(pid_t *pid, const char *exe, char *const argv[]);

/*
 * Peers never outlive their test.  A peer left running keeps the test's
 * stdout and stderr (CTest's pipe) open, and CTest, which reads them to
 * their end, would report a failure as its own timeout much later.  So
 * every peer tu_spawn()/tu_spawn_ex() starts is recorded (a table of 1024;
 * thread-safe), tu_wait() forgets it when it reaps it, and a peer still
 * running is killed (SIGKILL) and reaped:
 *  - at the end of each test that TU_RUN() runs (a teardown that cmocka
 *    runs after a failed assertion or a caught signal too; a test with a
 *    teardown of its own calls tu_kill_peers() there);
 *  - when the process exits (atexit), e.g. exit() in the middle of a test;
 *  - on abort() (a SIGABRT handler, unless SIGABRT is handled already),
 *    and when a sanitizer's report ends the process (its death callback).
 * When no code of ours runs at all (SIGKILL, a crash), the
 * kernel does it: a peer linked with this file has PR_SET_PDEATHSIG =
 * SIGKILL (set before its main(), told by an environment variable).  It
 * is tied to the thread that started the peer, not to the process: so
 * only the main thread starts peers itself, and any other thread hands
 * the start to a thread that never ends (a peer started by a thread that
 * ends lives on, and dies with the process).  As every peer is killed in
 * turn when its starter ends, a peer's own peers end too.
 * Not a process group per test: nobody would be left to kill the group
 * when the test process itself is killed, and signals from the terminal
 * (^C) would no longer reach peers in a group of their own.
 * A pid that the test reaped itself (waitpid()) is no child of ours any
 * more: it is dropped unsignalled, so a reused pid is never hit.
 */

/* What tu_spawn_ex() adds to a plain tu_spawn(). */
struct tu_spawn_opts {
	/* "NAME=value" strings added to (or replacing in) the environment,
	 * NULL-terminated; NULL: none. */
	const char *const *env;
	/* If not NULL: the peer's stdout becomes a pipe whose read end
	 * (close-on-exec) is stored here, for the peer's report lines. */
	int *report_fd;
	/* With @report_fd: the peer's stderr goes to the same pipe. */
	bool report_stderr;
};

/* tu_spawn() with extra environment and/or a report pipe.  On failure
 * nothing is left open. */
int tu_spawn_ex(pid_t *pid, const char *exe, char *const argv[],
		const struct tu_spawn_opts *o);

/* Read one line ('\n' stripped) from a report pipe into @buf (@n bytes),
 * waiting at most @timeout_ms for it to be complete.  Reads byte by byte,
 * so that nothing after the line is consumed.  Returns its length,
 * -ETIMEDOUT, -EPIPE (the writer closed first), -EMSGSIZE, or -errno. */
int tu_read_line(int fd, char *buf, size_t n, int timeout_ms);

/* Wait until some socket listens at @name ("@x" abstract, else a path), as
 * /proc/net/unix shows it, at most @timeout_ms.  Connects to nothing, so a
 * listener counts no connection from it.  0 or -ETIMEDOUT / -errno. */
int tu_wait_listening(const char *name, int timeout_ms);
/* Wait until at least @n connections to the listener at @name wait in its
 * backlog (connected, not yet accepted), as /proc/net/unix shows them, at
 * most @timeout_ms.  0 or -ETIMEDOUT / -errno. */
int tu_wait_backlog(const char *name, int n, int timeout_ms);

/* For peers started as root: become @user (its uid and group, no
 * supplementary groups), for good.  0 or -errno (-ENOENT: no such user). */
int tu_become(const char *user);
/* For peers that wait to be killed: die (SIGKILL) with the process that
 * started us, so that a test killed without its cleanup leaves nothing
 * behind.  0 or -errno. */
int tu_die_with_parent(void);
/* From now on, system call @nr fails with @err in this thread and in every
 * thread and process it starts (a seccomp filter; no_new_privs is set).
 * 0, or -errno (-ENOSYS on an architecture this does not know). */
int tu_refuse_syscall(long nr, int err);
struct evshm_chan;
struct evshm_opts;
/* Drive @c through evshm_fd() in an epoll set, against a peer that echoes:
 * @rounds times receive until -EAGAIN (that arms the descriptor), send
 * "ping", wait until it is readable, receive the echo.  Then, armed with
 * nothing sent, the descriptor must stay quiet for 20 ms.  Fails the test
 * otherwise. */
void tu_fd_echo_rounds(struct evshm_chan *c, int rounds);
/* evshm_connect() to a server that may not listen yet: retried (every
 * 2 ms, for 5 s at most) while it says -ENOENT or -ECONNREFUSED.  *@ms (may
 * be NULL): how long the last, deciding attempt took. */
int tu_connect_retry(struct evshm_chan **c, const char *name,
		     const struct evshm_opts *o, int timeout_ms, uint64_t *ms);

/* CLOCK_MONOTONIC in milliseconds, and this thread's CPU time in
 * nanoseconds (which does not grow while the thread is preempted). */
uint64_t tu_now_ms(void);
uint64_t tu_thread_cpu_ns(void);

/* Wait for @pid to exit, at most @timeout_ms (-1: forever).  On timeout
 * the process is killed with SIGKILL and reaped, a line goes to stderr,
 * and the result is -ETIMEDOUT (*status is then its killed status). */
int tu_wait(pid_t pid, int timeout_ms, int *status);

/* Whether process @pid exists and has not ended (a zombie has ended). */
bool tu_pid_running(pid_t pid);

/* Kill (SIGKILL) and reap every peer still running that tu_spawn() or
 * tu_spawn_ex() started, each named on stderr; reap those that have
 * ended.  Returns how many it killed.  See "Peers never outlive their
 * test" above; a test's own teardown calls this. */
int tu_kill_peers(void);
/* The teardown TU_RUN() gives every test that has none: tu_kill_peers(). */
int tu_test_teardown(void **state);

/* Exit code of a wait status, or 128 + signal number if it was killed. */
int tu_exit_code(int status);

/* Number of open descriptors of this process (the /proc/self/fd entries
 * less the one used to read the directory), or -errno. */
int tu_count_fds(void);

/* A name no other process or earlier call uses: "@<prefix>-<pid>-<n>" for
 * an abstract name, else "<tmpdir>/<prefix>-<n>", where tmpdir is the
 * process's private directory (tu_tmpdir()). */
void tu_unique_name(char *buf, size_t n, const char *prefix, bool abstract);

/* This process's scratch directory, made with mkdtemp() on first use (mode
 * 0700, under $TMPDIR if short enough for socket paths, else /tmp).  It and
 * everything in it (files and directories) is removed by tu_cleanup(),
 * which also runs at exit. */
const char *tu_tmpdir(void);
void tu_cleanup(void);

/* @n divided by $EVSHM_TEST_SCALE (sanitizer, TSan and valgrind runs set
 * it), at least 1; @n itself when it is unset or < 2. */
uint64_t tu_scaled(uint64_t n);

/* Run a cmocka group with SIGPIPE ignored; "prog NAME" runs only the tests
 * whose name contains NAME.  Fails (1) if the run as a whole leaves a
 * descriptor open; removes tu_tmpdir(). */
int tu_run_tests(const struct CMUnitTest *tests, size_t n, int argc,
		 char **argv);
#define TU_RUN(tests, argc, argv) \
	tu_run_tests(tests, sizeof(tests) / sizeof((tests)[0]), argc, argv)

/* Fill @n bytes with a pseudo-random pattern derived from @seed, and check
 * it (true if every byte matches).  For data written by one process and
 * read by another. */
void tu_fill(void *p, size_t n, uint32_t seed);
bool tu_check_fill(const void *p, size_t n, uint32_t seed);

/* Eventfds as plain descriptors to pass around in the socket-layer tests
 * (the library's bells are pipes): create one (CLOEXEC, NONBLOCK), check
 * that @fd is one, add 1, read and reset (1 if it was non-zero, 0 if
 * not).  0 or -errno (-EPROTO: not an eventfd). */
int tu_eventfd(int *fd);
int tu_check_eventfd(int fd);
int tu_eventfd_kick(int fd);
int tu_eventfd_drain(int fd);

/* "EAGAIN" for -EAGAIN, "not an error" for 0 and counts, "?" if unknown.
 * Static strings: thread-safe. */
const char *tu_errname(long err);

/* For a peer's arguments: the negative errno named @s ("EPROTO" ->
 * -EPROTO), 0 for "0"; exits 2 if @s names no errno.  The inverse of
 * tu_errname(). */
int tu_errno_arg(const char *s);

/* assert that @expr == @expected, printing both as errno names: cmocka's
 * assert_int_equal() shows -11 as 0xfffffffffffffff5. */
#define tu_assert_res(expr, expected)                                      \
	do {                                                               \
		long tu_r_ = (long)(expr);                                 \
		long tu_e_ = (long)(expected);                             \
		if (tu_r_ != tu_e_)                                        \
			fail_msg("%s = %ld (%s), expected %ld (%s)", #expr, \
				 tu_r_, tu_errname(tu_r_), tu_e_,          \
				 tu_errname(tu_e_));                       \
	} while (0)

/* For peers (plain programs, no cmocka): on failure print where and why
 * to stderr and exit(1). */
#define tu_check(cond)                                                     \
	do {                                                               \
		if (!(cond))                                               \
			tu_die(__FILE__, __LINE__, #cond, false, 0);              \
	} while (0)
#define tu_check_res(expr, expected)                                       \
	do {                                                               \
		long tu_r_ = (long)(expr);                                 \
		if (tu_r_ != (long)(expected))                             \
			tu_die(__FILE__, __LINE__, #expr, true, tu_r_);          \
	} while (0)
/*
 * A TCP socket whose last close blocks for @linger_s seconds: connected over
 * loopback to a listener of ours that never accepts nor reads, its send
 * queue full, SO_LINGER on.  Its last close waits until the queue drains
 * or the linger time is up (docs/protocol.md 10.5); closing *@keep (the
 * listener, which must stay open meanwhile) or our exit ends it sooner.
 */
int tu_lingering_socket(int *keep, int linger_s);
/*
 * Put @fd in @sets epoll sets, @dups times in each (dup(2): each copy is an
 * entry of its own): every wakeup of @fd then walks @sets * @dups entries
 * in the waker's thread.  The @dups + @sets descriptors it opens go to
 * @opened (for the caller to close), or stay open for the life of the
 * process (NULL).  0 or -errno.
 */
int tu_watch_widely(int fd, int dups, int sets, int *opened);

__attribute__((noreturn)) void tu_die(const char *file, int line,
				      const char *what, bool has_res,
				      long res);

#endif
