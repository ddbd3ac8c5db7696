/* SPDX-License-Identifier: MIT */
/*
 * evshm: the command-line tool.  main() only dispatches; each subcommand
 * lives in its own file:
 *
 *   evshm send NAME      stdin -> shared memory -> `evshm recv`   (pipe.c)
 *   evshm recv NAME      shared memory -> stdout                  (pipe.c)
 *   evshm bench          evshm against Unix sockets and pipes     (bench*.c)
 *   evshm demo           the mechanism, narrated                  (demo.c)
 *
 * Subcommands that need a second process spawn this same executable
 * (/proc/self/exe) with a hidden subcommand; nothing is inherited through
 * fork.  docs/evshm.1.md is the manual.
 */
#include <stdio.h>
#include <string.h>

#include <evshm.h>

#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: evshm COMMAND [OPTIONS]\n"
		"\n"
		"commands:\n"
		"  send NAME   copy stdin into a shared-memory channel to\n"
		"              `evshm recv NAME` (connects; --listen to listen)\n"
		"  recv NAME   write what `evshm send NAME` sends to stdout\n"
		"              (listens; --connect to connect)\n"
		"  bench       measure evshm against a Unix stream socket, a Unix\n"
		"              seqpacket socket and a pipe, both sides in separate\n"
		"              processes: round trips and streaming\n"
		"  demo        spawn a second, unrelated process; the two meet at\n"
		"              a Unix socket name, pass an eventfd and sealed\n"
		"              memfds (SCM_RIGHTS), share memory and wake each\n"
		"              other, and say what they did\n"
		"  --help      this text; `evshm COMMAND --help` for a command\n"
		"  --version   the version\n"
		"\n"
		"NAME is a Unix socket path, or @name for a Linux abstract name.\n"
		"evshm %s; see docs/evshm.1.md\n",
		EVSHM_VERSION_STRING);
}

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "send", tool_send },
	{ "recv", tool_recv },
	{ "bench", tool_bench },
	{ "demo", tool_demo },
	/* Hidden: the second process of bench and demo. */
	{ "bench-peer", tool_bench_peer },
	{ "demo-peer", tool_demo_peer },
};

int main(int argc, char **argv)
{
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
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "evshm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return TOOL_EXIT_USAGE;
}
