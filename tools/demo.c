/* SPDX-License-Identifier: MIT */
/*
 * demo.c: `evshm demo`, two unrelated processes meet through the public
 * API and hand each other an eventfd and sealed memfds, saying what they
 * do.
 *
 * The demo spawns this same executable (/proc/self/exe) as
 * "evshm demo-peer NAME": a fresh program image that inherits no memory or
 * descriptor from us, only the name to connect to.  The two open an evshm
 * channel there (evshm_listen / evshm_connect: the library itself passes
 * its rings as sealed memfds and its bells as eventfds during that
 * handshake), then do by hand, with evshm_send_fds(), what the library
 * does inside: pass an eventfd and a sealed memfd, read each other's
 * memory, and wake each other through the eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <evshm.h>

#include "sys.h"
#include "tool.h"

#define DEMO_SIZE 4096u
#define DEMO_TIMEOUT_MS 5000

/* Seals a memfd must carry before we trust its size and contents. */
#define DEMO_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

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
	tool_err(who, "%s: %s", what, evshm_strerror(res));
	return TOOL_EXIT_FAIL;
}

/* Channel options of both sides: defaults, with descriptor passing.
 * (0.2 makes it opt-in per channel; 0.1 always allows it.) */
static struct evshm_opts demo_opts(void)
{
	struct evshm_opts o = { 0 };
#ifdef EVSHM_OPT_FDS
	o.flags = EVSHM_OPT_FDS;
#endif
	return o;
}

/* A sealed memfd of DEMO_SIZE bytes holding @text, mapped at *map
 * (writable: mapped before sealing). */
static int sealed_text(const char *name, const char *text, int *fd,
		       char **map)
{
	int res = sys_memfd(name, DEMO_SIZE, fd);

	if (res < 0)
		return res;
	*map = mmap(NULL, DEMO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*map == MAP_FAILED) {
		res = -errno;
		*fd = sys_close(*fd);
		return res;
	}
	snprintf(*map, DEMO_SIZE, "%s", text);
	/* Map first, then seal: our mapping stays writable, no new one can
	 * be (F_SEAL_FUTURE_WRITE), and the size is fixed for good. */
	return sys_memfd_seal(*fd);
}

/* What the library does with any memfd a peer hands over: trust its size
 * only if the seals forbid changing it. */
static int check_memfd(int fd, size_t size)
{
	struct stat sb;
	int seals = sys_memfd_seals(fd);

	if (seals < 0 || (seals & DEMO_SEALS) != DEMO_SEALS ||
	    fstat(fd, &sb) < 0 || sb.st_size != (off_t)size)
		return -EPROTO;
	return 0;
}

/*
 * The peer: connect, take the eventfd and the server's memfd, read the
 * server's text through a read-only mapping (the seals forbid anything
 * else), kick the eventfd, and answer with a sealed memfd of its own.
 */
static int demo_peer(const char *name)
{
	struct evshm_opts o = demo_opts();
	struct evshm_chan *c = NULL;
	struct demo_hello hello;
	char *theirs = MAP_FAILED, *mine = MAP_FAILED, text[256];
	int fds[2] = { -1, -1 }, reply = -1, res;
	unsigned nfds = 2;
	uint64_t one = 1;
	pid_t spid;

	res = evshm_connect(&c, name, &o, DEMO_TIMEOUT_MS);
	if (res < 0)
		return fail("demo-peer", "evshm_connect", res);
	evshm_peer_cred(c, &spid, NULL, NULL);
	say("peer", "evshm_connect(%s): a channel to pid %d (SO_PEERCRED)",
	    name, (int)spid);

	res = evshm_recv_fds(c, &hello, sizeof(hello), fds, &nfds,
			     DEMO_TIMEOUT_MS);
	if (res >= 0 && (res != (int)sizeof(hello) || nfds != 2 ||
			 hello.size != DEMO_SIZE))
		res = -EPROTO;
	if (res < 0)
		goto out;
	if ((res = check_memfd(fds[1], DEMO_SIZE)) < 0)
		goto out;
	say("peer", "evshm_recv_fds: the eventfd arrived as fd %d and the "
	    "memfd as fd %d; the server knows them as fds %d and %d: "
	    "descriptor numbers are per process, the open files are shared",
	    fds[0], fds[1], hello.server_fds[0], hello.server_fds[1]);

	void *w = mmap(NULL, DEMO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fds[1], 0);
	if (w != MAP_FAILED) {
		munmap(w, DEMO_SIZE);
		res = -EPROTO;
		goto out;
	}
	say("peer", "writable mapping refused (%s): the memfd is sealed",
	    strerror(errno));
	theirs = mmap(NULL, DEMO_SIZE, PROT_READ, MAP_SHARED, fds[1], 0);
	if (theirs == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	say("peer", "read in the server's memory: \"%.*s\"",
	    (int)strnlen(theirs, DEMO_SIZE), theirs);

	snprintf(text, sizeof(text), "reply from pid %d (read: %.*s)",
		 (int)getpid(), 100, theirs);
	if ((res = sealed_text("evshm-demo-reply", text, &reply, &mine)) < 0)
		goto out;
	say("peer", "wrote \"%s\" into memfd fd %d and sealed it", mine, reply);
	/* The kick: add 1 to the eventfd's counter, which wakes whoever
	 * sleeps in poll() on it, in any process that holds it. */
	if (write(fds[0], &one, sizeof(one)) != (ssize_t)sizeof(one)) {
		res = -errno;
		goto out;
	}
	say("peer", "kicked the eventfd (fd %d); sending the memfd", fds[0]);
	res = evshm_send_fds(c, "reply", 5, &reply, 1, DEMO_TIMEOUT_MS);
	if (res < 0)
		goto out;
	/* Stay until the server is done: its close is our end of file. */
	res = evshm_recv(c, text, sizeof(text), DEMO_TIMEOUT_MS);
	if (res == -EPIPE)
		res = 0;
	else if (res >= 0)
		res = -EPROTO;
out:
	if (mine != MAP_FAILED)
		munmap(mine, DEMO_SIZE);
	if (theirs != MAP_FAILED)
		munmap(theirs, DEMO_SIZE);
	sys_close(reply);
	sys_close(fds[0]);
	sys_close(fds[1]);
	evshm_close(c);
	return res < 0 ? fail("demo-peer", "failed", res) : 0;
}

/*
 * Sleep on the eventfd until the peer kicks it; the channel's own
 * descriptor watches for the peer's death meanwhile (evshm_fd() is armed
 * by a receive that found nothing).
 */
static int wait_kick(struct evshm_chan *c, int efd)
{
	uint64_t deadline = sys_deadline(DEMO_TIMEOUT_MS), v;
	char buf[8];

	for (;;) {
		int res = evshm_recv(c, buf, sizeof(buf), 0);
		if (res != -EAGAIN)
			return res < 0 ? res : -EPROTO; /* a reply before the kick */
		struct pollfd pfd[2] = {
			{ .fd = efd, .events = POLLIN },
			{ .fd = evshm_fd(c), .events = POLLIN },
		};
		res = sys_poll(pfd, 2, deadline);
		if (res < 0)
			return res;
		if (res == 0)
			return -ETIMEDOUT;
		if (pfd[0].revents & POLLIN)
			return read(efd, &v, sizeof(v)) == (ssize_t)sizeof(v)
				       ? 0 : -errno;
		/* The channel woke us: a message, the peer's death or
		 * nothing (wakeups may be spurious); look again. */
	}
}

/*
 * The server: listen on a fresh abstract name, spawn the peer, give it an
 * eventfd and a sealed memfd holding a greeting, sleep on the eventfd until
 * the peer kicks it, then read the peer's reply from the memfd it sent.
 */
static int demo(void)
{
	struct evshm_opts o = demo_opts();
	struct evshm_listener *l = NULL;
	struct evshm_chan *c = NULL;
	struct demo_hello hello = { .size = DEMO_SIZE };
	struct evshm_stats st;
	char name[64], text[64], buf[8];
	char *mine = MAP_FAILED, *theirs = MAP_FAILED;
	int efd = -1, mfd = -1, rfd = -1, res, status;
	unsigned nfds = 1;
	pid_t pid = -1, cpid;

	snprintf(text, sizeof(text), "hello from pid %d", (int)getpid());
	if ((res = sys_eventfd(&efd)) < 0 ||
	    (res = sealed_text("evshm-demo", text, &mfd, &mine)) < 0)
		goto out;
	say("server", "eventfd is fd %d; memfd is fd %d, holds \"%s\", sealed",
	    efd, mfd, mine);

	snprintf(name, sizeof(name), "@evshm-demo-%d-%llx", (int)getpid(),
		 (unsigned long long)sys_now_ns());
	if ((res = evshm_listen(&l, name, &o)) < 0)
		goto out;
	say("server", "evshm_listen(%s) (abstract: no file, gone with us)",
	    name);

	char *argv[] = { "evshm", "demo-peer", name, NULL };
	if ((res = tool_spawn_self(&pid, argv)) < 0)
		goto out;
	say("server", "spawned pid %d: /proc/self/exe demo-peer %s", (int)pid,
	    name);
	if ((res = evshm_accept(l, &c, DEMO_TIMEOUT_MS)) < 0)
		goto out;
	evshm_peer_cred(c, &cpid, NULL, NULL);
	if (cpid != pid) {
		res = -EACCES; /* someone else came first */
		goto out;
	}
	say("server", "evshm_accept: a channel to pid %d; its rings are "
	    "sealed memfds and its bells eventfds the library passed in the "
	    "handshake", (int)cpid);

	hello.server_fds[0] = efd;
	hello.server_fds[1] = mfd;
	int fds[2] = { efd, mfd };
	if ((res = evshm_send_fds(c, &hello, sizeof(hello), fds, 2,
				  DEMO_TIMEOUT_MS)) < 0)
		goto out;
	say("server", "evshm_send_fds: fds %d and %d went with a message "
	    "(SCM_RIGHTS); sleeping in poll() on the eventfd", efd, mfd);

	if ((res = wait_kick(c, efd)) < 0)
		goto out;
	say("server", "woken by the peer's kick");

	res = evshm_recv_fds(c, buf, sizeof(buf), &rfd, &nfds, DEMO_TIMEOUT_MS);
	if (res >= 0 && nfds != 1)
		res = -EPROTO;
	if (res < 0 || (res = check_memfd(rfd, DEMO_SIZE)) < 0)
		goto out;
	theirs = mmap(NULL, DEMO_SIZE, PROT_READ, MAP_SHARED, rfd, 0);
	if (theirs == MAP_FAILED) {
		res = -errno;
		goto out;
	}
	say("server", "peer's memfd arrived as fd %d; it says \"%.*s\"", rfd,
	    (int)strnlen(theirs, DEMO_SIZE), theirs);
	evshm_stats(c, &st);
	say("server", "channel counters: %llu message(s) sent, %llu received, "
	    "%llu kick(s) of the library's own bells",
	    (unsigned long long)st.msgs_sent, (unsigned long long)st.msgs_recv,
	    (unsigned long long)st.kicks_sent);
	res = 0;
out:
	/* Our close is the peer's signal to finish. */
	evshm_close(c);
	evshm_listener_close(l);
	if (pid > 0) {
		status = tool_wait(pid);
		if (res == 0 && status != 0)
			res = -EPROTO;
		if (res == 0)
			say("server", "peer exited with status 0; done");
	}
	if (theirs != MAP_FAILED)
		munmap(theirs, DEMO_SIZE);
	if (mine != MAP_FAILED)
		munmap(mine, DEMO_SIZE);
	sys_close(rfd);
	sys_close(mfd);
	sys_close(efd);
	return res < 0 ? fail("demo", "failed", res) : 0;
}

static const struct tool_cmd demo_cmd = {
	.name = "demo",
	.synopsis = "",
	.about = "Spawn a second, unrelated process (this program again, by\n"
		 "/proc/self/exe).  The two open an evshm channel at a fresh\n"
		 "abstract name, pass an eventfd and sealed memfds with\n"
		 "evshm_send_fds (SCM_RIGHTS), read each other's sealed memory,\n"
		 "wake each other through the eventfd, and say what they did:\n"
		 "by hand, what the library does inside every channel.\n",
	.footer = "Exit status: 0 if all of it worked, 1 if not, 2 usage.\n",
};

int tool_demo(int argc, char **argv)
{
	int first, res = tool_getopt(&demo_cmd, argc, argv, NULL, &first);

	if (res >= 0)
		return res;
	if (first != argc)
		return tool_usage_error(&demo_cmd, "no operands expected");
	return demo();
}

/* Internal: the second process of the demo. */
int tool_demo_peer(int argc, char **argv)
{
	if (argc != 2)
		return TOOL_EXIT_USAGE;
	return demo_peer(argv[1]);
}
