/* SPDX-License-Identifier: MIT */
/*
 * Many clients, one server thread.  This process is the server: it runs
 * the echo-server example's loop (examples/echo-loop.c: one epoll set, the
 * listener plus every evshm_fd(), nothing ever waits on one client).  Each
 * client is its own process: the echo-client example, built here as
 * peer_echo_client, sends numbered messages and verifies every echo; the
 * loop's check hook verifies every message on the way in.
 *
 * While the clients run, some are killed with SIGKILL at random points of
 * their stream.  The others must finish with every message verified, and
 * afterwards the server must be back where it started: same number of
 * descriptors, no memory kept (heap bytes in use, resident and shared
 * memory, compared after a warm-up round and after the full run).
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "echo-loop.h"
#include "echo-msg.h"
#include "evshm.h"
#include "util.h"

#define PEER TU_PEER("peer_echo_client")

/* Under ASan/TSan the allocator keeps freed memory in quarantine and
 * mallinfo2() does not see it: memory is reported, not judged. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define RING (64u << 10) /* both directions: 256 clients stay modest */
#define MSG_MAX 256u     /* bytes; sizes are 8..MSG_MAX */

/* Sanitizer runs set EVSHM_TEST_SCALE to divide the counts. */
static uint64_t scale(void)
{
	const char *s = getenv("EVSHM_TEST_SCALE");
	long d = s ? atol(s) : 1;
	return d > 1 ? (uint64_t)d : 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- per-client bookkeeping, reached from the check hook by pid --------- */

struct client {
	pid_t pid;
	uint64_t seen;     /* messages the server has checked */
	uint64_t kill_at;  /* kill it once seen reaches this; 0: never */
	bool killed, exited;
	int status;
};

struct round {
	struct client *cl; /* sorted by pid */
	unsigned n;        /* spawned so far */
	uint64_t msgs;     /* per client */
	uint64_t unknown;  /* messages from a pid not in the table */
};

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct client *)a)->pid;
	pid_t y = ((const struct client *)b)->pid;
	return (x > y) - (x < y);
}

static struct client *find(struct round *r, pid_t pid)
{
	struct client key = { .pid = pid };
	return bsearch(&key, r->cl, r->n, sizeof(key), by_pid);
}

/* Start a client and file it in pid order. */
static void spawn(struct round *r, char *const argv[], uint64_t kill_at)
{
	struct client c = { .kill_at = kill_at };
	unsigned i;
	tu_assert_res(tu_spawn(&c.pid, PEER, argv), 0);
	for (i = r->n; i > 0 && r->cl[i - 1].pid > c.pid; i--)
		r->cl[i] = r->cl[i - 1];
	r->cl[i] = c;
	r->n++;
}

/* The loop calls this for every inbound message before echoing it. */
static bool check(void *arg, pid_t pid, uint64_t seq, const void *msg,
		  size_t len)
{
	struct round *r = arg;
	struct client *c = find(r, pid);
	if (!echo_msg_check(msg, len, seq, MSG_MAX)) {
		fprintf(stderr, "client %d: message %" PRIu64 " is wrong (%zu "
			"bytes)\n", (int)pid, seq, len);
		return false;
	}
	if (!c) {
		r->unknown++;
		return true;
	}
	c->seen = seq + 1;
	/* A victim dies here, between two of its messages: it cannot have
	 * finished, its last echoes are still to come. */
	if (c->kill_at && !c->killed && c->seen >= c->kill_at) {
		kill(c->pid, SIGKILL);
		c->killed = true;
	}
	return true;
}

/* --- the server's footprint ---------------------------------------------- */

struct footprint {
	int fds;
	long rss_kb, shmem_kb; /* VmRSS, RssShmem */
	size_t heap;           /* malloc'd bytes in use (arena + mmapped) */
};

static long status_kb(const char *field)
{
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void footprint(struct footprint *fp)
{
	struct mallinfo2 mi = mallinfo2();
	fp->fds = tu_count_fds();
	fp->rss_kb = status_kb("VmRSS");
	fp->shmem_kb = status_kb("RssShmem");
	fp->heap = mi.uordblks + mi.hblkhd;
}

/* --- one round ----------------------------------------------------------- */

struct result {
	unsigned survivors, killed;
	uint64_t ms;
	struct footprint peak;
};

/* Spawn @n clients of @msgs messages each, kill @nkill of them at random
 * points of their streams, serve everybody until all are gone. */
static void round_run(struct echo_server *s, struct round *r, const char *name,
		      unsigned n, unsigned nkill, uint64_t msgs, unsigned *seed,
		      int limit_ms, struct result *res)
{
	char narg[32], ringarg[32], maxarg[32];
	struct echo_stats st0, st;
	uint64_t t0 = now_ms();

	memset(res, 0, sizeof(*res));
	r->cl = calloc(n, sizeof(*r->cl));
	assert_non_null(r->cl);
	r->n = 0;
	r->msgs = msgs;
	echo_server_stats(s, &st0);

	snprintf(narg, sizeof(narg), "--n=%" PRIu64, msgs);
	snprintf(ringarg, sizeof(ringarg), "--ring=%u", RING);
	snprintf(maxarg, sizeof(maxarg), "--max=%u", MSG_MAX);
	char *argv[] = { "peer_echo_client", (char *)name, narg, ringarg,
			 maxarg, "--window=32", "--quiet", NULL };
	/* Victims: @nkill distinct clients, each killed (by check()) once
	 * the server has seen between 10% and 50% of its messages. */
	uint64_t *kill_at = calloc(n, sizeof(*kill_at));
	assert_non_null(kill_at);
	for (unsigned k = 0; k < nkill;) {
		unsigned i = (unsigned)rand_r(seed) % n;
		if (kill_at[i])
			continue;
		kill_at[i] = msgs / 10 + 1 +
			     (uint64_t)rand_r(seed) % (msgs / 2 - msgs / 10);
		k++;
	}
	/* All of them first, then serve: they wait in the listener's
	 * backlog, and then all run at once (serving while spawning, a
	 * sanitized client finishes before the next one has started). */
	for (unsigned i = 0; i < n; i++)
		spawn(r, argv, kill_at[i]);
	free(kill_at);

	unsigned left = n;
	uint64_t next_sample = 0;
	while (left) {
		assert_true(echo_server_run(s, 20) >= 0);
		/* Reap whoever has exited; a failed client ends the test. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			struct client *c = find(r, pid);
			assert_non_null(c);
			c->exited = true;
			c->status = status;
			left--;
			if (!c->killed && tu_exit_code(status) != 0) {
				for (unsigned i = 0; i < n; i++)
					if (!r->cl[i].exited)
						kill(r->cl[i].pid, SIGKILL);
				fail_msg("client %d (not killed) exited with %d "
					 "after %" PRIu64 " messages", (int)pid,
					 tu_exit_code(status), c->seen);
			}
		}
		if (now_ms() >= next_sample) { /* now and then: the peak */
			struct footprint fp;
			footprint(&fp);
			if (fp.fds > res->peak.fds)
				res->peak.fds = fp.fds;
			if (fp.rss_kb > res->peak.rss_kb)
				res->peak.rss_kb = fp.rss_kb;
			if (fp.shmem_kb > res->peak.shmem_kb)
				res->peak.shmem_kb = fp.shmem_kb;
			if (fp.heap > res->peak.heap)
				res->peak.heap = fp.heap;
			next_sample = now_ms() + 100;
		}
		if (now_ms() - t0 > (uint64_t)limit_ms) {
			for (unsigned i = 0; i < n; i++)
				if (!r->cl[i].exited)
					kill(r->cl[i].pid, SIGKILL);
			fail_msg("round not finished after %d ms: %u clients left",
				 limit_ms, left);
		}
	}
	/* Every client has exited; the server notices each hang-up. */
	for (;;) {
		echo_server_stats(s, &st);
		if (st.clients == 0 || now_ms() - t0 > (uint64_t)limit_ms)
			break;
		assert_true(echo_server_run(s, 20) >= 0);
	}
	res->ms = now_ms() - t0;

	assert_int_equal(st.clients, 0);
	assert_int_equal(st.bad - st0.bad, 0);
	assert_int_equal(st.refused - st0.refused, 0);
	assert_int_equal(r->unknown, 0);
	assert_int_equal(st.disconnects - st0.disconnects,
			 st.connects - st0.connects);
	for (unsigned i = 0; i < n; i++) {
		struct client *c = &r->cl[i];
		int code = tu_exit_code(c->status);
		if (!c->killed) {
			/* It verified all its echoes, and the server checked
			 * all its messages. */
			assert_int_equal(code, 0);
			assert_int_equal(c->seen, msgs);
			res->survivors++;
		} else {
			assert_int_equal(code, 128 + SIGKILL);
			res->killed++;
		}
	}
	assert_int_equal(st.connects - st0.connects, n);
	free(r->cl);
	r->cl = NULL;
	r->n = 0;
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= want)
		return;
	/* Each channel holds 8 descriptors on the server side (socket,
	 * region, two epoll sets and evshm_fd()'s, the peer's bell, ours and
	 * its reader). */
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
			      want : rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < want)
		skip();
}

static void test_many_clients_one_thread(void **state)
{
	(void)state;
	/* Under sanitizers (scale > 1) every client is several times slower
	 * to start and to run: 64 of them still overlap, and the whole round
	 * stays well inside the clients' patience on a loaded machine. */
	unsigned n = scale() > 1 ? 64 : 256, nkill = n / 8;
	uint64_t msgs = 10000 / scale();
	unsigned seed = (unsigned)getpid();
	const char *s_seed = getenv("EVSHM_TEST_SEED");
	if (s_seed)
		seed = (unsigned)strtoul(s_seed, NULL, 0);
	/* Not fewer than 1000: the clients must overlap in time (a
	 * sanitized client takes a while to start). */
	if (msgs < 1000)
		msgs = 1000;
	raise_nofile(4096);
	print_message("seed %u; %u clients, %" PRIu64 " messages each way per "
		      "client, %u killed\n", seed, n, msgs, nkill);

	struct round r = { 0 };
	struct echo_config cfg = { .check = check, .check_arg = &r };
	struct evshm_opts o = { .ring_size = RING };
	struct echo_server *s;
	struct result res;
	char name[108];
	tu_unique_name(name, sizeof(name), "many", true);
	int fds0 = tu_count_fds();
	tu_assert_res(echo_server_open(&s, name, &o, &cfg), 0);

	/* Warm-up: the same clients, a few messages, a few kills.  The heap,
	 * stack and page tables reach their working size here. */
	round_run(s, &r, name, n, nkill, 200, &seed, 120000, &res);
	print_message("warm-up: %u clients x 200 messages in %.2f s\n", n,
		      (double)res.ms / 1e3);
	struct footprint warm, full;
	footprint(&warm);

	round_run(s, &r, name, n, nkill, msgs, &seed, 150000, &res);
	footprint(&full);
	print_message("full run: %.2f s; %u survivors verified all %" PRIu64
		      " messages each way, %u killed mid-stream\n",
		      (double)res.ms / 1e3, res.survivors, msgs, res.killed);
	print_message("server at its peak (%u clients): %d fds, VmRSS %ld kB, "
		      "RssShmem %ld kB, heap %zu B\n", n, res.peak.fds,
		      res.peak.rss_kb, res.peak.shmem_kb, res.peak.heap);
	print_message("after warm-up: %d fds, VmRSS %ld kB, RssShmem %ld kB, "
		      "heap %zu B\n", warm.fds, warm.rss_kb, warm.shmem_kb,
		      warm.heap);
	print_message("after the run: %d fds, VmRSS %ld kB, RssShmem %ld kB, "
		      "heap %zu B\n", full.fds, full.rss_kb, full.shmem_kb,
		      full.heap);
	assert_int_equal(res.killed, nkill);
	assert_int_equal(res.survivors, n - nkill);

	/* Descriptors: exactly back (the listener and our epoll set are the
	 * only ones the server keeps).  Shared memory: every ring unmapped. */
	assert_int_equal(full.fds, warm.fds);
	assert_int_equal(full.shmem_kb, warm.shmem_kb);
	/* The heap holds what it held after the warm-up: nothing is kept per
	 * client or per message.  mallinfo2() counts the chunks that glibc's
	 * per-thread cache (tcache) keeps after free() as in use, and which
	 * ones it keeps varies; CTest runs this test with the tcache off
	 * (GLIBC_TUNABLES, see server.cmake), where the match must be exact,
	 * else allow 4 KiB.  VmRSS: 512 KiB for pages of code, data, stack
	 * and page tables first touched by rarer paths, and free heap pages
	 * glibc has not trimmed (measured: 0 to 100 KiB). */
	if (!SANITIZED) {
		const char *t = getenv("GLIBC_TUNABLES");
		size_t slack = t && strstr(t, "tcache_count=0") ? 0 : 4096;
		assert_true(full.heap <= warm.heap + slack);
		assert_true(full.rss_kb <= warm.rss_kb + 512);
	}
	echo_server_close(s);
	assert_int_equal(tu_count_fds(), fds0);
}

/*
 * A client that sends and never reads: the server's ring to it fills up,
 * its next message stays peeked, its own ring fills up.  Meanwhile other
 * clients are served in full by the same thread, and the stalled one is
 * still connected, still holding what it sent.
 */
static void test_stalled_client_holds_up_nobody(void **state)
{
	(void)state;
	struct evshm_opts o = { .ring_size = RING };
	struct echo_server *s;
	struct echo_stats st;
	char name[108], ringarg[32], maxarg[32];
	pid_t staller, cl[8];
	char line[64];
	int status, report;
	tu_unique_name(name, sizeof(name), "stall", true);
	int fds0 = tu_count_fds();
	tu_assert_res(echo_server_open(&s, name, &o, NULL), 0);
	snprintf(ringarg, sizeof(ringarg), "--ring=%u", RING);
	snprintf(maxarg, sizeof(maxarg), "--max=%u", MSG_MAX);

	char *sargv[] = { "peer_server", "stall", name, ringarg, NULL };
	struct tu_spawn_opts so = { .report_fd = &report };
	tu_assert_res(tu_spawn_ex(&staller, TU_PEER("peer_server"), sargv, &so), 0);
	/* Serve it until it says it sends no more (its ring stayed full),
	 * then until we have echoed all we can (nothing moves but us: a
	 * turn that echoes nothing is the end). */
	uint64_t t0 = now_ms(), last = 0;
	bool full = false;
	for (;;) {
		assert_true(echo_server_run(s, 10) >= 0);
		echo_server_stats(s, &st);
		if (full && st.msgs == last)
			break;
		last = st.msgs;
		if (!full && tu_read_line(report, line, sizeof(line), 0) > 0) {
			assert_true(strncmp(line, "full ", 5) == 0);
			full = true;
		}
		assert_true(now_ms() - t0 < 60000);
	}
	close(report);
	uint64_t held = st.msgs;
	assert_true(held > RING / (MSG_MAX + 8) / 2); /* it did fill up */

	char *argv[] = { "peer_echo_client", name, "--n=10000", ringarg, maxarg,
			 "--quiet", NULL };
	for (int i = 0; i < 8; i++)
		tu_assert_res(tu_spawn(&cl[i], PEER, argv), 0);
	for (int left = 8; left;) {
		assert_true(echo_server_run(s, 20) >= 0);
		for (int i = 0; i < 8; i++) {
			if (!cl[i] || waitpid(cl[i], &status, WNOHANG) != cl[i])
				continue;
			assert_int_equal(tu_exit_code(status), 0);
			cl[i] = 0;
			left--;
		}
		assert_true(now_ms() - t0 < 60000);
	}
	/* The eight have exited; their hang-ups reach us when we serve. */
	for (echo_server_stats(s, &st); st.clients > 1; echo_server_stats(s, &st)) {
		assert_true(echo_server_run(s, 20) >= 0);
		assert_true(now_ms() - t0 < 60000);
	}
	/* Everything echoed went to the eight; the staller is still there. */
	assert_int_equal(st.msgs, held + 8 * 10000);
	assert_int_equal(st.clients, 1);
	assert_int_equal(waitpid(staller, &status, WNOHANG), 0);
	print_message("a client that never reads: %" PRIu64 " messages echoed "
		      "until its rings filled; 8 others served 10000 each "
		      "meanwhile\n", held);

	assert_int_equal(kill(staller, SIGKILL), 0);
	tu_assert_res(tu_wait(staller, 10000, &status), 0);
	while (st.clients) {
		assert_true(echo_server_run(s, 20) >= 0);
		echo_server_stats(s, &st);
		assert_true(now_ms() - t0 < 60000);
	}
	echo_server_close(s);
	assert_int_equal(tu_count_fds(), fds0);
}

static int count_lines(const char *text, const char *what)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/*
 * Out of descriptors: evshm_accept() fails with -EMFILE and the client
 * stays in the backlog, so the listener stays readable.  The loop must
 * stop watching it (one "paused" line, no spinning) until a client
 * leaves, then take the waiting one.
 */
static void test_out_of_fds_pauses_accept(void **state)
{
	(void)state;
	struct evshm_opts o = { .ring_size = RING };
	struct echo_server *s;
	struct echo_stats st;
	struct rlimit rl0, rl;
	char *log = NULL, name[108];
	size_t log_len = 0;
	pid_t stay[2], late;
	int status;
	FILE *f = open_memstream(&log, &log_len); /* no descriptor */
	assert_non_null(f);
	struct echo_config cfg = { .log = f };
	tu_unique_name(name, sizeof(name), "emfile", true);
	int fds0 = tu_count_fds();
	tu_assert_res(echo_server_open(&s, name, &o, &cfg), 0);

	char *long_argv[] = { "peer_echo_client", name, "--n=1000000000",
			      "--window=1", "--quiet", NULL };
	char *argv[] = { "peer_echo_client", name, "--n=1000", "--quiet", NULL };
	uint64_t t0 = now_ms();
	for (int i = 0; i < 2; i++)
		tu_assert_res(tu_spawn(&stay[i], PEER, long_argv), 0);
	do {
		assert_true(echo_server_run(s, 20) >= 0);
		echo_server_stats(s, &st);
		assert_true(now_ms() - t0 < 30000);
	} while (st.clients < 2);
	/* The late one connects while we are not looking: in the backlog
	 * (however long it takes to start here). */
	tu_assert_res(tu_spawn(&late, PEER, argv), 0);
	tu_assert_res(tu_wait_backlog(name, 1, 30000), 0);

	/* No descriptor left: the lowest free number is the limit. */
	int lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl0), 0);
	rl = rl0;
	rl.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	uint64_t t1 = now_ms();
	unsigned turns = 0;
	while (now_ms() - t1 < 300) {
		assert_true(echo_server_run(s, 50) >= 0);
		turns++;
	}
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl0), 0);
	fflush(f);
	echo_server_stats(s, &st);
	assert_int_equal(count_lines(log, "paused"), 1);
	assert_int_equal(st.clients, 2);
	print_message("out of descriptors: accept paused once; %u loop turns in "
		      "300 ms (the two clients' traffic)\n", turns);

	/* One leaves: accepting resumes, the late one is served in full. */
	assert_int_equal(kill(stay[0], SIGKILL), 0);
	for (;;) {
		assert_true(echo_server_run(s, 20) >= 0);
		assert_true(now_ms() - t0 < 60000);
		pid_t pid = waitpid(late, &status, WNOHANG);
		if (pid == late)
			break;
	}
	assert_int_equal(tu_exit_code(status), 0);
	echo_server_stats(s, &st);
	assert_int_equal(st.connects, 3);
	assert_int_equal(kill(stay[1], SIGKILL), 0);
	while (st.clients) {
		assert_true(echo_server_run(s, 20) >= 0);
		echo_server_stats(s, &st);
		assert_true(now_ms() - t0 < 60000);
	}
	for (int i = 0; i < 2; i++)
		tu_assert_res(tu_wait(stay[i], 10000, &status), 0);
	echo_server_close(s);
	fclose(f);
	free(log);
	assert_int_equal(tu_count_fds(), fds0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stalled_client_holds_up_nobody),
		cmocka_unit_test(test_out_of_fds_pauses_accept),
		cmocka_unit_test(test_many_clients_one_thread),
	};
	/* "test_server_many NAME" runs only the tests whose name has NAME. */
	return TU_RUN(tests, argc, argv);
}
