/* SPDX-License-Identifier: MIT */
/*
 * The examples, run as a user would run them: separate executables built
 * in <build>/examples against the shared library (EXAMPLES_BINDIR).
 *  - echo-server with several echo-clients at once (different ring sizes
 *    and message sizes), each verifying every echo; the server's log names
 *    every client by pid and uid; SIGTERM stops it cleanly.
 *  - frame-pass server and client: 100 MiB frames passed as sealed memfds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define EX(name) EXAMPLES_BINDIR "/" name

/* Spawn with stdout going to the file @out (truncated). */
static pid_t spawn_to(const char *exe, char *const argv[], const char *out)
{
	pid_t pid;
	fflush(stdout);
	int saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_true(dup2(fd, 1) == 1); /* not close-on-exec: the child's stdout */
	int res = tu_spawn(&pid, exe, argv);
	dup2(saved, 1);
	close(saved);
	close(fd);
	tu_assert_res(res, 0);
	return pid;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[1 << 16];
	size_t n;
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void expect_exit(pid_t pid, int code, int timeout_ms)
{
	int status;
	tu_assert_res(tu_wait(pid, timeout_ms, &status), 0);
	assert_int_equal(tu_exit_code(status), code);
}

static void test_echo_server_and_clients(void **state)
{
	(void)state;
	char name[108], log[256], line[128];
	tu_unique_name(name, sizeof(name), "echo-ex", true);
	snprintf(log, sizeof(log), "%s/echo-server.log", tu_tmpdir());

	char *sargv[] = { "echo-server", name, "--max-clients=16",
			  "--ring=65536", NULL };
	pid_t server = spawn_to(EX("echo-server"), sargv, log);

	/* Different shapes: default ring and sizes; a client ring of 4 KiB
	 * with messages up to 2000 bytes (its ring holds two, so it keeps
	 * running into a full ring); one message in flight at a time. */
	char *cargv[][8] = {
		{ "echo-client", name, "--n=20000", NULL },
		{ "echo-client", name, "--n=20000", "--max=64", NULL },
		{ "echo-client", name, "--n=5000", "--ring=4096", "--max=2000",
		  "--window=100", NULL },
		{ "echo-client", name, "--n=5000", "--window=1", NULL },
		{ "echo-client", name, "--n=20000", "--max=4096", NULL },
		{ "echo-client", name, "--n=1", NULL },
	};
	enum { N = sizeof(cargv) / sizeof(cargv[0]) };
	pid_t cl[N];
	for (int i = 0; i < N; i++)
		tu_assert_res(tu_spawn(&cl[i], EX("echo-client"), cargv[i]), 0);
	for (int i = 0; i < N; i++)
		expect_exit(cl[i], 0, 60000);

	assert_int_equal(kill(server, SIGTERM), 0);
	expect_exit(server, 0, 10000);
	const char *out = slurp(log);
	/* A connect and a disconnect line for each client, by pid and uid. */
	for (int i = 0; i < N; i++) {
		snprintf(line, sizeof(line), "connect: pid %d uid %u ",
			 (int)cl[i], (unsigned)getuid());
		if (!strstr(out, line))
			fail_msg("no \"%s\" in the server's log:\n%s", line, out);
		snprintf(line, sizeof(line), "disconnect: pid %d uid %u: peer "
			 "has gone", (int)cl[i], (unsigned)getuid());
		if (!strstr(out, line))
			fail_msg("no \"%s\" in the server's log:\n%s", line, out);
	}
	snprintf(line, sizeof(line), "stopped: %d clients served, 0 refused", N);
	if (!strstr(out, line))
		fail_msg("no \"%s\" in the server's log:\n%s", line, out);
}

/* --max-clients: a client over the limit is refused with -EUSERS (it
 * exits 1 and says so), the server logs the refusal and goes on. */
static void test_echo_server_max_clients(void **state)
{
	(void)state;
	char name[108], log[256], gone[64];
	tu_unique_name(name, sizeof(name), "echo-max", true);
	snprintf(log, sizeof(log), "%s/echo-max.log", tu_tmpdir());

	char *sargv[] = { "echo-server", name, "--max-clients=1", NULL };
	pid_t server = spawn_to(EX("echo-server"), sargv, log);
	/* A client that stays: --window=1 and many messages. */
	char *long_argv[] = { "echo-client", name, "--n=100000000",
			      "--window=1", NULL };
	pid_t stay;
	tu_assert_res(tu_spawn(&stay, EX("echo-client"), long_argv), 0);
	/* Wait until the server has admitted it. */
	for (int i = 0; !strstr(slurp(log), "connect: pid"); i++) {
		assert_true(i < 1000);
		usleep(10000);
	}
	char *argv[] = { "echo-client", name, "--n=10", NULL };
	pid_t refused;
	tu_assert_res(tu_spawn(&refused, EX("echo-client"), argv), 0);
	expect_exit(refused, 1, 30000);
	assert_int_equal(kill(stay, SIGKILL), 0);
	expect_exit(stay, 128 + SIGKILL, 10000);
	/* Its slot is free again once the server has seen it go. */
	snprintf(gone, sizeof(gone), "disconnect: pid %d ", (int)stay);
	for (int i = 0; !strstr(slurp(log), gone); i++) {
		assert_true(i < 1000);
		usleep(10000);
	}
	pid_t again;
	tu_assert_res(tu_spawn(&again, EX("echo-client"), argv), 0);
	expect_exit(again, 0, 30000);
	assert_int_equal(kill(server, SIGTERM), 0);
	expect_exit(server, 0, 10000);
	const char *out = slurp(log);
	if (!strstr(out, "refused: server has all the clients it takes"))
		fail_msg("no refusal in the server's log:\n%s", out);
}

static void test_frame_pass(void **state)
{
	(void)state;
	char name[108], slog[256], clog[256];
	tu_unique_name(name, sizeof(name), "frames", false);
	snprintf(slog, sizeof(slog), "%s/frame-server.log", tu_tmpdir());
	snprintf(clog, sizeof(clog), "%s/frame-client.log", tu_tmpdir());

	char *sargv[] = { "frame-pass", "server", name, NULL };
	char *cargv[] = { "frame-pass", "client", name, "--frames=3", NULL };
	pid_t server = spawn_to(EX("frame-pass"), sargv, slog);
	pid_t client = spawn_to(EX("frame-pass"), cargv, clog);
	expect_exit(client, 0, 120000);
	expect_exit(server, 0, 10000);
	const char *out = slurp(slog);
	for (int f = 1; f <= 3; f++) {
		char line[64];
		snprintf(line, sizeof(line), "server: frame %d (100 MiB): "
			 "checksum ok", f);
		if (!strstr(out, line))
			fail_msg("no \"%s\" in the server's output:\n%s", line, out);
	}
	print_message("%s", slurp(clog));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_server_and_clients),
		cmocka_unit_test(test_echo_server_max_clients),
		cmocka_unit_test(test_frame_pass),
	};
	return TU_RUN(tests, argc, argv);
}
