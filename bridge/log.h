/* SPDX-License-Identifier: MIT */
/*
 * log.h: one line per event on stderr, with a wall-clock timestamp and the
 * role ("import" / "export"), so that the two ends of a bridge can be read
 * side by side.  Each line is written with a single write(2), so lines of
 * several processes sharing a terminal or file never interleave.
 */
#ifndef EVSHM_BRIDGE_LOG_H
#define EVSHM_BRIDGE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR,   /* the bridge (or a session) cannot go on */
	LOG_NOTICE,  /* connects, disconnects, refusals: always shown */
	LOG_INFO,    /* per-channel events (-v) */
	LOG_DEBUG,   /* protocol detail (-vv) */
};

/* Set the role shown on each line and the most detailed level shown. */
void log_init(const char *role, enum log_level max);

/* Is @level shown?  (Callers skip costly formatting otherwise.) */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Lines that peers can cause at will (refused keys, failed handshakes: a
 * connection each, no key needed): at most one a second per limit; the
 * lines held back are counted, and said with the next line, or by
 * log_limit_flush() once the second is over.
 */
struct log_limit {
	uint64_t next_ms; /* no line before this (loop_now_ms()) */
	uint64_t held;    /* lines held back since the last one */
};

void log_limited(struct log_limit *l, enum log_level level, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));
/* If lines were held back and their second is over (or @force, at
 * exit): "N more @what ...". */
void log_limit_flush(struct log_limit *l, const char *what, bool force);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
