/* SPDX-License-Identifier: MIT */
/*
 * evshm: the command-line tool.  main() only dispatches; each subcommand
 * lives in its own file:
 *
 *   evshm send NAME      stdin -> shared memory -> `evshm recv`   (pipe.c)
 *   evshm recv NAME      shared memory -> stdout                  (pipe.c)
 *   evshm pub NAME       stdin -> a topic -> every `evshm sub`    (topic.c)
 *   evshm sub NAME       a topic -> stdout                        (topic.c)
 *   evshm bench          evshm against Unix sockets and pipes     (bench*.c)
 *   evshm demo           the mechanism, narrated                  (demo.c)
 *   evshm ps / top       every channel and topic on the host      (ps*.c)
 *
 * Subcommands that need a second process spawn this same executable
 * (/proc/self/exe) with a hidden subcommand; nothing is inherited through
 * fork.  The manual is evshm(1) (man/evshm.1.scd).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <evshm.h>

#include "tool.h"

struct command {
	const char *name;
	const char *operands;   /* after the name in `evshm --help` */
	const char *summary;    /* lines; NULL: a hidden command */
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "send", "NAME", "copy stdin into a shared-memory channel to\n"
			  "`evshm recv NAME` (connects; --listen to listen)",
	  tool_send },
	{ "recv", "NAME", "write what `evshm send NAME` sends to stdout\n"
			  "(listens; --connect to connect)",
	  tool_recv },
	{ "pub", "NAME", "publish stdin as a topic: every `evshm sub NAME`\n"
			 "gets it (--subscribers N: wait for N first)",
	  tool_pub },
	{ "sub", "NAME", "write what `evshm pub NAME` publishes to stdout",
	  tool_sub },
	{ "bench", "", "measure evshm against Unix sockets, pipes and the\n"
		       "machine's floors, both sides in separate processes",
	  tool_bench },
	{ "demo", "", "spawn a second, unrelated process; the two open a\n"
		      "channel, pass an eventfd and sealed memfds, share\n"
		      "memory and wake each other, and say what they did",
	  tool_demo },
	{ "ps", "", "every evshm channel and topic on this host that\n"
		    "you may see: sides, rings, counters, errors",
	  tool_ps },
	{ "top", "", "`evshm ps`, refreshed every second, with rates",
	  tool_ps },
	/* Hidden: the second process of bench and demo. */
	{ "bench-peer", "", NULL, tool_bench_peer },
	{ "demo-peer", "", NULL, tool_demo_peer },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
#define SUMMARY_COL 14

static void usage(FILE *f)
{
	fprintf(f, "usage: evshm COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		const char *s = c->summary;
		if (!s)
			continue;
		int w = fprintf(f, "  %s%s%s", c->name, *c->operands ? " " : "",
				c->operands);
		for (bool first = true; *s; first = false) {
			size_t len = strcspn(s, "\n");
			fprintf(f, "%*s%.*s\n", first ? SUMMARY_COL - w
						      : SUMMARY_COL, "",
				(int)len, s);
			s += len + (s[len] == '\n');
		}
	}
	fprintf(f, "  --help      this text; `evshm COMMAND --help` for a command\n"
		   "  --version   the version\n"
		   "\n"
		   "NAME is a Unix socket path, or @name for a Linux abstract name.\n"
		   "evshm %s.  See evshm(1).\n",
		evshm_version());
}

/*
 * Started with stdin, stdout or stderr closed (`<&-`, `>&-`, some
 * daemons): the next descriptor opened, a socket or a memfd of the
 * library, would take that number, and send would read its own socket as
 * stdin, recv and sub write the stream into theirs.  Hold each closed one
 * with /dev/null opened the wrong way round: reading stdin or writing
 * stdout then fails with EBADF, as on the closed descriptor (exit 4).
 * 0, or -1 if /dev/null cannot be opened.
 */
static int hold_closed_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lower ones are open: this takes fd. */
		int got = open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) |
					    O_CLOEXEC);
		if (got < 0)
			return -1;
		if (got != fd) {
			close(got);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (hold_closed_std_fds() < 0)
		return TOOL_EXIT_IO; /* stderr may be what is closed */
	if (argc < 2) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("evshm %s\n", evshm_version());
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "evshm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return TOOL_EXIT_USAGE;
}
