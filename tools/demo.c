/* SPDX-License-Identifier: MIT */
/*
 * demo.c: `evshm demo`, two unrelated processes meet at an abstract socket
 * name and share an eventfd and sealed memfds, saying what they do.
 *
 * The demo spawns this same executable (/proc/self/exe) as
 * "evshm demo-peer NAME": a fresh program image that inherits no memory or
 * descriptor from us, only the name to connect to.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <evshm.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "tool.h"

#include <sys/eventfd.h>

/* Stand-ins until the demo moves to the public API. */
static int os_check_eventfd(int fd)
{
	return fcntl(fd, F_GETFL) < 0 ? -errno : 0;
}

static int os_eventfd_kick(int fd)
{
	const uint64_t one = 1;
	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static int os_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

static int os_eventfd_drain(int fd)
{
	uint64_t v;
	return read(fd, &v, sizeof(v)) == sizeof(v) ? 1 : 0;
}

#define DEMO_SIZE 4096u
#define DEMO_TIMEOUT_MS 5000

/* The first message, server -> peer, with [eventfd, memfd]. */
struct demo_hello {
	uint32_t size;
	int32_t server_fds[2];
};

static void say(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const char *who, const char *fmt, ...)
{
	va_list ap;

	/* One write per line, so the two processes' lines do not mix. */
	char line[512];
	int n = snprintf(line, sizeof(line), "[%-6s pid %d] ", who,
			 (int)getpid());

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

static int fail(const char *who, const char *what, int res)
{
	fprintf(stderr, "evshm %s: %s: %s\n", who, what, strerror(-res));
	return 1;
}

/*
 * The peer: connect, take the eventfd and the server's memfd, read the
 * server's text through a read-only mapping (the seals forbid anything
 * else), answer in a memfd of its own, and kick the eventfd.
 */
static int demo_peer(const char *name)
{
	struct demo_hello hello;
	char *theirs = MAP_FAILED, *mine = MAP_FAILED;
	int sock = -1, fds[2] = { -1, -1 }, reply = -1, res;
	unsigned nfds;
	pid_t spid;
	void *w;

	res = ep_connect(name, 0, &sock);
	if (res < 0)
		return fail("demo-peer", "connect", res);
	res = ep_peercred(sock, &spid, NULL, NULL);
	if (res < 0)
		goto out;
	say("peer", "connected to %s (server pid %d, by SO_PEERCRED)", name,
	    (int)spid);

	res = fdp_recv(sock, &hello, sizeof(hello), fds, 2, &nfds,
		       DEMO_TIMEOUT_MS);
	if (res >= 0 && (res != (int)sizeof(hello) || nfds != 2))
		res = -EPROTO;
	if (res < 0)
		goto out;
	/* What evshm does with anything a peer hands over: check it. */
	if ((res = os_check_eventfd(fds[0])) < 0 ||
	    (res = os_check_memfd(fds[1], hello.size)) < 0)
		goto out;
	say("peer", "received the eventfd as fd %d and the memfd as fd %d; "
	    "the server knows them as fds %d and %d: descriptor numbers "
	    "are per process, the open files are shared",
	    fds[0], fds[1], hello.server_fds[0], hello.server_fds[1]);

	w = mmap(NULL, hello.size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1],
		 0);
	if (w != MAP_FAILED) {
		munmap(w, hello.size);
		res = -EPROTO;
		goto out;
	}
	say("peer", "writable mapping refused (%s): the memfd is sealed",
	    strerror(errno));
	theirs = mmap(NULL, hello.size, PROT_READ, MAP_SHARED, fds[1], 0);
	if (theirs == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	say("peer", "read in the server's memory: \"%.*s\"",
	    (int)strnlen(theirs, hello.size), theirs);

	/* Answer the evshm way: our own memfd, written, then sealed. */
	if ((res = os_memfd("evshm-demo-reply", DEMO_SIZE, &reply)) < 0)
		goto out;
	mine = mmap(NULL, DEMO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, reply,
		    0);
	if (mine == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	snprintf(mine, DEMO_SIZE, "reply from pid %d (read: %.*s)",
		 (int)getpid(), (int)strnlen(theirs, hello.size), theirs);
	if ((res = os_memfd_seal(reply)) < 0 ||
	    (res = fdp_send(sock, "reply", 5, &reply, 1, DEMO_TIMEOUT_MS)) < 0)
		goto out;
	say("peer", "wrote \"%s\" into memfd fd %d, sealed it, sent it", mine,
	    reply);
	say("peer", "kicking the eventfd (fd %d)", fds[0]);
	if ((res = os_eventfd_kick(fds[0])) < 0)
		goto out;

	/* Stay until the server is done: its close is our end-of-file. */
	res = fdp_recv(sock, &hello, sizeof(hello), NULL, 0, &nfds,
		       DEMO_TIMEOUT_MS);
	if (res == -EPIPE)
		res = 0;
out:
	if (mine != MAP_FAILED)
		munmap(mine, DEMO_SIZE);
	if (theirs != MAP_FAILED)
		munmap(theirs, hello.size);
	os_close(reply);
	os_close(fds[0]);
	os_close(fds[1]);
	os_close(sock);
	return res < 0 ? fail("demo-peer", "failed", res) : 0;
}

/*
 * The server: listen on a fresh abstract name, spawn the peer, give it an
 * eventfd and a sealed memfd holding a greeting, sleep on the eventfd until
 * the peer kicks it, then read the peer's reply from the memfd it sent.
 */
static int demo(void)
{
	struct ep_listener l = { .fd = -1 };
	struct demo_hello hello = { .size = DEMO_SIZE };
	struct pollfd pfd[2];
	char name[64], buf[8];
	char *mine = MAP_FAILED, *theirs = MAP_FAILED;
	int sock = -1, efd = -1, mfd = -1, rfd = -1, fds[2], res, status;
	unsigned nfds;
	pid_t pid = -1, cpid;
	struct timespec ts;

	if ((res = os_eventfd(&efd)) < 0 ||
	    (res = os_memfd("evshm-demo", DEMO_SIZE, &mfd)) < 0)
		goto out;
	mine = mmap(NULL, DEMO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd,
		    0);
	if (mine == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	snprintf(mine, DEMO_SIZE, "hello from pid %d", (int)getpid());
	/* Map first, then seal: our mapping stays writable, no new one can
	 * be (F_SEAL_FUTURE_WRITE), and the size is fixed for good. */
	if ((res = os_memfd_seal(mfd)) < 0)
		goto out;
	say("server", "eventfd is fd %d; memfd is fd %d, holds \"%s\", sealed",
	    efd, mfd, mine);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(name, sizeof(name), "@evshm-demo-%d-%ld", (int)getpid(),
		 (long)ts.tv_nsec);
	if ((res = ep_listen(&l, name, 0, 0)) < 0)
		goto out;
	say("server", "listening on %s (abstract: no file, gone with us)",
	    name);

	char *argv[] = { "evshm", "demo-peer", name, NULL };
	if ((res = tool_spawn_self(&pid, argv)) < 0)
		goto out;
	say("server", "spawned pid %d: /proc/self/exe demo-peer %s", (int)pid,
	    name);
	if ((res = ep_accept(&l, DEMO_TIMEOUT_MS, &sock)) < 0 ||
	    (res = ep_peercred(sock, &cpid, NULL, NULL)) < 0)
		goto out;
	say("server", "accepted a connection from pid %d (SO_PEERCRED)",
	    (int)cpid);

	hello.server_fds[0] = efd;
	hello.server_fds[1] = mfd;
	fds[0] = efd;
	fds[1] = mfd;
	if ((res = fdp_send(sock, &hello, sizeof(hello), fds, 2,
			    DEMO_TIMEOUT_MS)) < 0)
		goto out;
	say("server", "sent fds %d and %d with SCM_RIGHTS; sleeping in poll() "
	    "on the eventfd", efd, mfd);

	/* events 0 on the socket: only a hang-up (the peer died) wakes us
	 * there, not the reply message that may already be waiting. */
	pfd[0] = (struct pollfd){ .fd = efd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sock, .events = 0 };
	res = os_poll(pfd, 2, os_deadline(DEMO_TIMEOUT_MS));
	if (res == 0)
		res = -ETIMEDOUT;
	else if (res > 0 && !(pfd[0].revents & POLLIN))
		res = -ECONNRESET;
	if (res < 0 || (res = os_eventfd_drain(efd)) < 0)
		goto out;
	say("server", "woken by the peer's kick");

	res = fdp_recv(sock, buf, sizeof(buf), &rfd, 1, &nfds, DEMO_TIMEOUT_MS);
	if (res >= 0 && nfds != 1)
		res = -EPROTO;
	if (res < 0 || (res = os_check_memfd(rfd, DEMO_SIZE)) < 0)
		goto out;
	theirs = mmap(NULL, DEMO_SIZE, PROT_READ, MAP_SHARED, rfd, 0);
	if (theirs == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	say("server", "peer's memfd arrived as fd %d; it says \"%.*s\"", rfd,
	    (int)strnlen(theirs, DEMO_SIZE), theirs);
	res = 0;
out:
	/* Our close is the peer's signal to finish. */
	os_close(sock);
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (res == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			res = -EPROTO;
		if (res == 0)
			say("server", "peer exited with status 0; done");
	}
	if (theirs != MAP_FAILED)
		munmap(theirs, DEMO_SIZE);
	if (mine != MAP_FAILED)
		munmap(mine, DEMO_SIZE);
	os_close(rfd);
	os_close(mfd);
	os_close(efd);
	ep_listener_close(&l);
	return res < 0 ? fail("demo", "failed", res) : 0;
}

int tool_demo(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: evshm demo\n\n"
		       "Spawn a second, unrelated process (this program again, by\n"
		       "/proc/self/exe); the two meet at a Unix socket name, pass an\n"
		       "eventfd and sealed memfds (SCM_RIGHTS), share memory, wake\n"
		       "each other, and say what they did.  Exit status 0 if all of\n"
		       "it worked, 1 if not.\n");
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: evshm demo\n");
		return TOOL_EXIT_USAGE;
	}
	return demo();
}

/* Internal: the second process of the demo. */
int tool_demo_peer(int argc, char **argv)
{
	if (argc != 2)
		return TOOL_EXIT_USAGE;
	return demo_peer(argv[1]);
}
