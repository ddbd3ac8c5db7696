/* SPDX-License-Identifier: MIT */
/*
 * ps.h: `evshm ps` and `evshm top`, what their three parts share.
 *
 *  - ps_scan.c finds the regions: every side of every channel and topic
 *    keeps its region's read-only memfd open, so /proc/PID/fd/N of the
 *    owner reads "/memfd:evshm:chan (deleted)" (or pub, sub).  Each is
 *    opened read-only and read with evshm_region_read() (pread: nothing
 *    mapped, written or waited for).  No daemon, no registry, nothing a
 *    peer could take for traffic.
 *  - ps.c pairs them (the regions of one channel, or of one topic, carry
 *    the same 16-byte id), computes what depends on two regions (a ring's
 *    fill, a subscriber's lag), and runs the command.
 *  - ps_print.c shows a sample as text or JSON.
 *
 * Two kinds of facts: what the kernel says (the process a descriptor
 * belongs to, its uid and command, the file's size and seals) and what a
 * region says of itself (everything in evshm_region_info: untrusted, the
 * owner's own figures).  Both are shown; only the first is relied on.
 */
#ifndef EVSHM_TOOL_PS_H
#define EVSHM_TOOL_PS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <evshm.h>

/* Most regions one sample takes in (a host with more is shown in part,
 * and says so): what a hostile process opens cannot exhaust our memory. */
#define PS_MAX_REGIONS 65536u

/* One region, found as /proc/PID/fd/FD. */
struct ps_region {
	/* What the kernel says. */
	pid_t pid;              /* the process holding it (our namespace) */
	uid_t uid;              /* its effective uid */
	char comm[64];          /* its command, as /proc/PID/status shows it */
	int fd;
	char memfd[24];         /* the memfd's name, e.g. "evshm:chan" */
	uint64_t dev, ino;      /* the file: the same region in every sample */
	uint64_t size;          /* its size in bytes */
	int seals;              /* F_GET_SEALS, or -errno */
	uint64_t when_ns;       /* when it was last read (CLOCK_MONOTONIC) */

	/* What it says of itself. */
	int err;                /* 0, or why it is not a valid region */
	const char *why;        /* the check that failed, when known */
	struct evshm_region_info info;

	/* Worked out from two regions (ps.c).  Channel side: what of its
	 * outbound ring the peer has not released yet.  Subscriber: what
	 * the publisher committed that it has not released (its lag). */
	bool has_queued;
	uint64_t queued;
	bool dup;               /* the same file held by another process too */
	const struct ps_region *prev; /* the same file in the last sample */
};

/* The two sides of a channel; a side not found is NULL. */
struct ps_chan {
	struct ps_region *client, *server;
	bool ambiguous;         /* more regions claim its id: not paired */
};

/* A topic: its publisher (NULL if not found) and subscribers. */
struct ps_topic {
	struct ps_region *pub;
	struct ps_region **subs;
	size_t nsubs;
	bool ambiguous;
};

/* One look at the host. */
struct ps_snap {
	uint64_t when_ns;       /* CLOCK_MONOTONIC at the start */
	double wall;            /* CLOCK_REALTIME, seconds */
	struct ps_region *r;    /* every region found, valid or not */
	size_t n, cap;
	struct ps_region **valid; /* the valid ones, grouped by id */
	size_t nvalid;
	struct ps_chan *chans;
	size_t nchans;
	struct ps_topic *topics;
	size_t ntopics;
	unsigned hidden;        /* processes whose descriptors we may not read */
	bool truncated;         /* more than PS_MAX_REGIONS */
};

/* What to show (evshm ps --pid, --name). */
#define PS_MAX_PIDS 32
struct ps_filter {
	pid_t pids[PS_MAX_PIDS];
	unsigned npids;
	const char *name;
};

/* --- ps_scan.c ---------------------------------------------------------- */

/* Fill @s with every region of every process whose descriptors we may
 * read.  0, or -errno when /proc itself cannot be read; -ENOMEM. */
int ps_scan(struct ps_snap *s);
/* Read region @r again (the same file, found where it was); 0 or -errno,
 * and then @r keeps what it had. */
int ps_reread(struct ps_region *r);
void ps_snap_free(struct ps_snap *s);

/* --- ps_print.c ---------------------------------------------------------- */

struct ps_view {
	const struct ps_filter *filter;
	bool rates;             /* --watch: show rates, not totals */
	double interval;        /* seconds between samples; 0: one sample */
};

void ps_print_text(FILE *f, const struct ps_snap *s, const struct ps_view *v);
void ps_print_json(FILE *f, const struct ps_snap *s, const struct ps_view *v);

#endif
