/* SPDX-License-Identifier: MIT */
/*
 * tool.h: what the subcommands of the evshm tool share: the command-line
 * machinery (an option table read by getopt_long, usage generated from
 * it), spawning this program again, number parsing, messages.  Each
 * subcommand lives in its own file (demo.c, pipe.c, bench*.c) and is
 * entered through one function called by main() in evshm.c.  Helpers
 * return 0 or a negative errno, like the library.
 *
 * The tool uses only the public API (<evshm.h>); what it needs of the
 * system besides lives in sys.h.
 */
#ifndef EVSHM_TOOL_H
#define EVSHM_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses shared by the subcommands (evshm(1), EXIT STATUS). */
enum {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_FAIL = 1,    /* the work failed (transfer cut, check failed) */
	TOOL_EXIT_USAGE = 2,   /* bad command line */
	TOOL_EXIT_MEET = 3,    /* could not meet the peer */
	TOOL_EXIT_IO = 4,      /* reading stdin or writing stdout failed */
	TOOL_EXIT_DROPPED = 5, /* sub: the publisher dropped us for stalling */
	TOOL_EXIT_SIGPIPE = 141, /* 128 + SIGPIPE: stdout's reader left */
};

/* Subcommands: argv[0] is the subcommand's name. */
int tool_demo(int argc, char **argv);
int tool_demo_peer(int argc, char **argv);
int tool_send(int argc, char **argv);
int tool_recv(int argc, char **argv);
int tool_pub(int argc, char **argv);
int tool_sub(int argc, char **argv);
int tool_bench(int argc, char **argv);
int tool_bench_peer(int argc, char **argv);
int tool_ps(int argc, char **argv);   /* "ps" and "top" */

/* --- options ------------------------------------------------------------ */

/* How an option's value is stored (at .off in the subcommand's options). */
enum tool_opt_type {
	TOOL_OPT_FLAG,     /* no value; sets a bool to true */
	TOOL_OPT_SIZE,     /* tool_parse_size into a uint64_t, in [min, max] */
	TOOL_OPT_COUNT,    /* tool_parse_count into a uint64_t, in [min, max] */
	TOOL_OPT_SECONDS,  /* tool_parse_seconds into a double, in [min, max] */
	TOOL_OPT_CUSTOM,   /* .set decides */
};

/* One option of a subcommand: the table is read by getopt_long and
 * printed by --help, so the two never disagree. */
struct tool_option {
	const char *name;         /* long name, without "--" */
	char short_name;          /* 0: none */
	const char *arg;          /* the value's name in --help; NULL: a flag
				     (TOOL_OPT_FLAG, or CUSTOM without value) */
	enum tool_opt_type type;
	size_t off;               /* where the value goes (TOOL_OPT_*) */
	double min, max;          /* accepted range (SIZE, COUNT, SECONDS) */
	/* CUSTOM: store @val (NULL for a flag); 0, or -EINVAL with a message
	 * already printed, or -EINVAL silently ("bad value" is printed). */
	int (*set)(void *opts, const char *val);
	const char *help;         /* lines separated by '\n' */
};

/* The offset of @field in @type, checked to be of C type @ctype: a table
 * entry that points at a field of another type does not compile. */
#define TOOL_FIELD(type, field, ctype)                                        \
	(offsetof(type, field) +                                              \
	 0 * sizeof(_Generic(((type *)0)->field, ctype: 1)))

/* A subcommand's command line: its table and the text around it. */
struct tool_cmd {
	const char *name;         /* "bench" */
	const char *synopsis;     /* after "usage: evshm NAME " */
	const char *about;        /* paragraph(s) before the options */
	const struct tool_option *opts;
	size_t nopts;
	const char *footer;       /* exit statuses etc., after the options */
};

/* Print the usage of @c, generated from its table; it ends with
 * "See evshm(1)." */
void tool_usage(const struct tool_cmd *c, FILE *f);

/*
 * Parse @argv (argv[0] is the subcommand) against @c's table with
 * getopt_long, storing into @opts.  Returns -1 when the subcommand should
 * go on, with *first at the first operand (getopt_long moves operands
 * after the options); otherwise the exit status to end with at once:
 * TOOL_EXIT_OK after --help / -h printed the usage on stdout,
 * TOOL_EXIT_USAGE after a bad option (what is wrong and the synopsis are
 * printed on stderr).  Callers: `if ((res = tool_getopt(...)) >= 0)
 * return res;`.
 */
int tool_getopt(const struct tool_cmd *c, int argc, char **argv, void *opts,
		int *first);

/* Print what is wrong with the command line of @c, then its synopsis, on
 * stderr; returns TOOL_EXIT_USAGE. */
int tool_usage_error(const struct tool_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Split a comma-separated list and call @each on every item; -EINVAL on
 * an empty list, an item over 63 characters or an item @each refuses. */
int tool_each_item(const char *list, int (*each)(const char *item, void *arg),
		   void *arg);

/* --- processes ---------------------------------------------------------- */

/* Start this same executable (/proc/self/exe) with @argv (argv[0]
 * included, NULL-terminated): a fresh program image that inherits only
 * stdin, stdout and stderr (every other descriptor of ours is
 * close-on-exec), never a fork of us. */
int tool_spawn_self(pid_t *pid, char *const argv[]);

/* Wait for @pid, retrying EINTR; the exit code, or 128 + signal. */
int tool_wait(pid_t pid);

/* --- values ------------------------------------------------------------- */

/* "64", "4k", "4K", "4KiB", "1M", "1MiB", "2G": a byte count (powers of
 * 1024).  0 or -EINVAL. */
int tool_parse_size(const char *s, uint64_t *out);
/* "0.5", "2", "250ms", "3s": seconds as a double.  0 or -EINVAL. */
int tool_parse_seconds(const char *s, double *out);
/* A decimal unsigned integer (k/M suffixes of 1000 allowed). */
int tool_parse_count(const char *s, uint64_t *out);

/* "1.50 GiB"-style rendering of @bytes into @buf. */
const char *tool_fmt_bytes(char *buf, size_t n, double bytes);

/* --- I/O and messages --------------------------------------------------- */

/* write(2) all @n bytes, retrying short writes and EINTR.  0 or -errno. */
int tool_write_all(int fd, const void *buf, size_t n);
/* read(2) up to @n bytes, retrying EINTR.  The count (0 at end of file)
 * or -errno. */
ssize_t tool_read(int fd, void *buf, size_t n);

/* Print "evshm CMD: " + message + newline on stderr. */
void tool_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
