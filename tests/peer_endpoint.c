/* SPDX-License-Identifier: MIT */
/*
 * peer_endpoint: the other process of test_endpoint.
 *
 *   peer_endpoint cred NAME
 *	Connect to NAME, report our pid, parent pid and what SO_PEERCRED
 *	says about the server, wait for the server's close.
 *
 *   peer_endpoint perms DIR
 *	Run as an unprivileged user (when started as root, become nobody
 *	first: root bypasses the permission checks under test) and check
 *	that the filesystem's permissions reach the caller as -EACCES:
 *	  DIR/open/      0777: listening works (the control case);
 *	  DIR/closed/    0000: listening or connecting inside is -EACCES;
 *	  DIR/open/ro    a listener with mode 0400: connect is -EACCES
 *	                 (connecting needs write permission);
 *	  DIR/open/rw    a listener with mode 0666: connect works.
 *	Exit 77 if the user cannot be changed.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

#define NOBODY 65534

static int cred(const char *name)
{
	struct sp_cred c = { 0 };
	pid_t pid;
	uid_t uid;
	gid_t gid;
	unsigned nfds;
	char buf[4];
	int sock;

	tu_check_res(ep_connect(name, 0, &sock), 0);
	tu_check_res(ep_peercred(sock, &pid, &uid, &gid), 0);
	c.pid = (int32_t)getpid();
	c.ppid = (int32_t)getppid();
	c.server_pid = (int32_t)pid;
	c.server_uid = (uint32_t)uid;
	c.server_gid = (uint32_t)gid;
	tu_check_res(fdp_send(sock, &c, sizeof(c), NULL, 0, SP_TIMEOUT_MS), 0);
	tu_check_res(fdp_recv(sock, buf, sizeof(buf), NULL, 0, &nfds,
			      SP_TIMEOUT_MS), -EPIPE);
	os_close(sock);
	return 0;
}

static int perms(const char *dir)
{
	struct ep_listener l;
	char path[108];
	struct stat st;
	int sock;

	if (geteuid() == 0) {
		/* Groups first: after setresuid() we may not change them. */
		if (setgroups(0, NULL) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0) {
			fprintf(stderr, "peer_endpoint: cannot become nobody: "
				"%s\n", strerror(errno));
			return TU_EXIT_SKIP;
		}
		tu_check(geteuid() == NOBODY && getegid() == NOBODY);
	}

	/* Control: the same calls work where permission is granted, so an
	 * -EACCES below is the directory's doing. */
	snprintf(path, sizeof(path), "%s/open/mine", dir);
	tu_check_res(ep_listen(&l, path, 0, 0), 0);
	ep_listener_close(&l);
	tu_check(lstat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/open/rw", dir);
	tu_check_res(ep_connect(path, 0, &sock), 0);
	os_close(sock);

	snprintf(path, sizeof(path), "%s/closed/sock", dir);
	tu_check_res(ep_listen(&l, path, 0, 0), -EACCES);
	tu_check(l.fd == -1);
	snprintf(path, sizeof(path), "%s/closed/live", dir);
	tu_check_res(ep_connect(path, 0, &sock), -EACCES);
	snprintf(path, sizeof(path), "%s/open/ro", dir);
	tu_check_res(ep_connect(path, 0, &sock), -EACCES);
	/* Someone else's live socket is never replaced. */
	tu_check_res(ep_listen(&l, path, 0, 0), -EADDRINUSE);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "cred") == 0)
		return cred(argv[2]);
	if (argc == 3 && strcmp(argv[1], "perms") == 0)
		return perms(argv[2]);
	fprintf(stderr, "usage: peer_endpoint cred NAME | perms DIR\n");
	return 2;
}
