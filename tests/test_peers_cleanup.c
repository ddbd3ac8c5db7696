/* SPDX-License-Identifier: MIT */
/*
 * test_peers_cleanup: a test that fails must not leave its peers running.
 * A leftover peer keeps the test's stdout and stderr open, so CTest, which
 * reads them to their end, would wait for its own timeout instead of
 * reporting the failure.  peer_failing fails on purpose in each of the
 * ways a test can (a failed assertion, exit(), abort(), SIGKILL, a
 * sanitizer's report; with a peer's own peer, with peers started by
 * threads that ended, SIGKILL after such a start); with its stdout and
 * stderr as our pipe, the end of that pipe must come soon after it ends,
 * and every peer it started must be gone.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Hang detection only: an honest run takes well under a second. */
#define LIMIT_MS 20000

/* Everything on @fd until its end or @deadline (tu_now_ms()), into @out
 * (NUL-terminated, the excess dropped).  True at the end of the pipe. */
static bool drain(int fd, char *out, size_t n, uint64_t deadline)
{
	size_t len = 0;

	out[0] = '\0';
	for (;;) {
		uint64_t now = tu_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char buf[4096];

		if (now >= deadline)
			return false;
		int r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got == 0;
		size_t k = (size_t)got < n - 1 - len ? (size_t)got : n - 1 - len;
		memcpy(out + len, buf, k);
		len += k;
		out[len] = '\0';
	}
}

static void run_mode(const char *mode)
{
	static char out[1 << 16];
	char pidfile[PATH_MAX], env0[PATH_MAX + 16];
	const char *env[] = { env0, NULL };
	char *argv[] = { "peer_failing", (char *)mode, NULL };
	int rep = -1, status, pids[8], npids = 0, left = 0;
	struct tu_spawn_opts so = { .env = env, .report_fd = &rep,
				    .report_stderr = true };
	pid_t pid;
	FILE *f;

	snprintf(pidfile, sizeof(pidfile), "%s/pids-%s", tu_tmpdir(), mode);
	snprintf(env0, sizeof(env0), "PEERS_PIDFILE=%s", pidfile);
	tu_assert_res(tu_spawn_ex(&pid, TU_PEER("peer_failing"), argv, &so), 0);
	bool eof = drain(rep, out, sizeof(out), tu_now_ms() + LIMIT_MS);
	close(rep);
	tu_assert_res(tu_wait(pid, LIMIT_MS, &status), 0);

	f = fopen(pidfile, "re");
	assert_non_null(f);
	while (npids < 8 && fscanf(f, "%d", &pids[npids]) == 1)
		npids++;
	fclose(f);
	/* The kernel may take a moment to finish a killed peer. */
	uint64_t t0 = tu_now_ms();
	for (int i = 0; i < npids; i++) {
		while (tu_pid_running(pids[i]) && tu_now_ms() - t0 < 5000)
			usleep(2000);
		if (tu_pid_running(pids[i])) {
			fprintf(stderr, "%s: peer %d still runs: killed\n",
				mode, pids[i]);
			kill(pids[i], SIGKILL);
			left++;
		}
	}
	if (!eof || left || tu_exit_code(status) == 0 ||
	    !strstr(out, "on purpose") || npids != 2)
		fail_msg("peer_failing %s: exit code %d, end of its output %s, "
			 "%d of %d peers left running; its output:\n%s",
			 mode, tu_exit_code(status),
			 eof ? "seen" : "not seen within 20 s", left, npids,
			 out);
}

/* *state: the name of a test of peer_failing. */
static void test_mode(void **state)
{
	run_mode(*state);
}

#define MODE(m) { "test_" #m, test_mode, NULL, NULL, (void *)"mode_" #m }

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		MODE(fail),   MODE(exit),   MODE(abort),
		MODE(nested), MODE(thread), MODE(sigkill), MODE(orphan_sigkill),
		MODE(sanitizer),
	};

	return TU_RUN(tests, argc, argv);
}
