/* SPDX-License-Identifier: MIT */
/*
 * hostile_bridge.h: the real evshm-bridge under a hostile peer, for
 * test_bridge_hostile (a hostile import) and test_bridge_hostile_topic (a
 * hostile export): start it, stop it, read its log.
 */
#ifndef EVSHM_BRIDGE_TESTS_HOSTILE_BRIDGE_H
#define EVSHM_BRIDGE_TESTS_HOSTILE_BRIDGE_H

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/*
 * Start `evshm-bridge ARGS...` (the one built beside this program; @args
 * ends with NULL, at most 30) with its stderr in @log.  Under timeout(1):
 * if the test dies before it can stop the bridge (a sanitizer abort), the
 * bridge does not outlive it long; timeout passes SIGTERM on and exits
 * with the bridge's status.
 */
static inline pid_t hb_start(const char *const *args, const char *log)
{
	char dir[4096], exe[4200];
	char *argv[34] = { "timeout", "300", exe };
	posix_spawn_file_actions_t fa;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	pid_t pid;
	int k = 3;

	assert_true(n > 0);
	dir[n] = '\0';
	*strrchr(dir, '/') = '\0';
	snprintf(exe, sizeof(exe), "%s/../evshm-bridge", dir);
	for (; *args && k < 33; args++)
		argv[k++] = (char *)*args;
	argv[k] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
					 O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	tu_assert_res(-posix_spawnp(&pid, "timeout", &fa, NULL, argv,
				    environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* SIGTERM: the bridge exits 0 within 10 s, and its log names the
 * protocol violations it saw. */
static inline void hb_stop(pid_t pid, const char *log)
{
	char cmd[4300];
	int status;

	kill(pid, SIGTERM);
	tu_assert_res(tu_wait(pid, 10000, &status), 0);
	assert_int_equal(tu_exit_code(status), 0);
	snprintf(cmd, sizeof(cmd), "grep -q 'protocol violation' %s", log);
	assert_int_equal(system(cmd), 0);
}

#endif
