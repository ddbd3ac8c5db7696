/* SPDX-License-Identifier: MIT */
/*
 * tool.h: what the subcommands of the evshm tool share.  Each subcommand
 * lives in its own file (demo.c, pipe.c, bench*.c) and is entered through
 * one function called by main() in evshm.c.  Helpers return 0 or a
 * negative errno, like the library.
 */
#ifndef EVSHM_TOOL_H
#define EVSHM_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses shared by the subcommands (docs/evshm.1.md, EXIT STATUS). */
enum {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_FAIL = 1,    /* the work failed (transfer cut, check failed) */
	TOOL_EXIT_USAGE = 2,   /* bad command line */
	TOOL_EXIT_MEET = 3,    /* could not meet the peer */
	TOOL_EXIT_IO = 4,      /* reading stdin or writing stdout failed */
};

/* Subcommands: argv[0] is the subcommand's name. */
int tool_demo(int argc, char **argv);
int tool_demo_peer(int argc, char **argv);
int tool_send(int argc, char **argv);
int tool_recv(int argc, char **argv);
int tool_bench(int argc, char **argv);
int tool_bench_peer(int argc, char **argv);

/* Start this same executable (/proc/self/exe) with @argv (argv[0]
 * included, NULL-terminated): a fresh program image that inherits only
 * stdin, stdout and stderr (every other descriptor of ours is
 * close-on-exec), never a fork of us. */
int tool_spawn_self(pid_t *pid, char *const argv[]);

/* Wait for @pid, retrying EINTR; the exit code, or 128 + signal. */
int tool_wait(pid_t pid);

/* "64", "4k", "4K", "4KiB", "1M", "1MiB", "2G": a byte count (powers of
 * 1024).  0 or -EINVAL. */
int tool_parse_size(const char *s, uint64_t *out);
/* "0.5", "2", "250ms", "3s": seconds as a double.  0 or -EINVAL. */
int tool_parse_seconds(const char *s, double *out);
/* A decimal unsigned integer (k/M suffixes of 1000 allowed). */
int tool_parse_count(const char *s, uint64_t *out);

/* write(2) all @n bytes, retrying short writes and EINTR.  0 or -errno. */
int tool_write_all(int fd, const void *buf, size_t n);
/* read(2) up to @n bytes, retrying EINTR.  The count (0 at end of file)
 * or -errno. */
ssize_t tool_read(int fd, void *buf, size_t n);

/* Pin the calling thread to @cpu (sched_setaffinity).  0 or -errno. */
int tool_pin_cpu(int cpu);

/* "1.50 GiB"-style rendering of @bytes into @buf. */
const char *tool_fmt_bytes(char *buf, size_t n, double bytes);

/* Print "evshm CMD: " + message + newline on stderr. */
void tool_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A simple option matcher: is argv[*i] "--name" or "--name=value" (or
 * @short_ "-x")?  If the option takes a value (@val != NULL) it is taken
 * from "=value" or from the next argument; a missing value is reported on
 * stderr and *bad is set.  Advances *i past a consumed next argument. */
bool tool_opt(int argc, char **argv, int *i, const char *name,
	      const char *short_, const char **val, bool *bad, const char *cmd);

#endif
