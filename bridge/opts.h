/* SPDX-License-Identifier: MIT */
/*
 * opts.h: the command line of `evshm-bridge export` and `import`: one
 * table (opts.c) is both the parser and the --help text, so the two never
 * disagree.  man/evshm-bridge.1.scd documents the same options.
 */
#ifndef EVSHM_BRIDGE_OPTS_H
#define EVSHM_BRIDGE_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum bridge_role {
	ROLE_EXPORT = 1,
	ROLE_IMPORT = 2,
};

struct bridge_cfg {
	enum bridge_role role;
	const char *local;        /* --local or --topic: the evshm name on
				   * this host */
	const char *topic_name;   /* --topic, as given */
	bool topic;               /* --topic: a topic, not a channel server */
	const char *endpoint;     /* --bind (export) / --connect (import) */
	const char *key;          /* --key: our key pair file */
	const char *server_key;   /* import --server-key: the pinned key */
	const char *allow;        /* export --allow: client public keys */
	const char *stats_file;   /* --stats-file */
	bool insecure;            /* --insecure: plain TCP */
	uint64_t ring;            /* --ring: largest local ring */
	uint64_t window;          /* --window: per channel and direction */
	double heartbeat;         /* --heartbeat, seconds */
	double timeout;           /* --timeout, seconds */
	uint64_t max_channels;    /* --max-channels, per session */
	uint64_t max_sessions;    /* export --max-sessions */
	uint64_t subscribers;     /* import --subscribers (topics) */
	double stall;             /* import --stall-timeout, seconds (topics) */
	uint64_t verbose;         /* -v, repeatable */
	bool quiet;               /* -q: errors only */
	/* derived */
	uint32_t heartbeat_ms, timeout_ms, stall_ms;
	uint64_t max_open;        /* export: streams open at once across its
				   * sessions, 0: no limit (bridge_fd_limits()) */
};

/* Exit statuses (man page, EXIT STATUS). */
enum {
	BRIDGE_EXIT_OK = 0,
	BRIDGE_EXIT_FAIL = 1,   /* could not start, or a fatal error */
	BRIDGE_EXIT_USAGE = 2,
};

/* Parse `evshm-bridge ROLE ...` (argv[0] is the role).  0: go on;
 * 1: --help was printed; -EINVAL: an error was printed. */
int opts_parse(struct bridge_cfg *cfg, enum bridge_role role, int argc,
	       char **argv);

/* The top-level usage. */
void opts_usage(FILE *f);

#endif
