/* SPDX-License-Identifier: MIT */
/*
 * log.h: one line per event on stderr, with a wall-clock timestamp and the
 * role ("import" / "export"), so that the two ends of a bridge can be read
 * side by side.  Each line is written with a single write(2), so lines of
 * several processes sharing a terminal or file never interleave.
 */
#ifndef EVSHM_BRIDGE_LOG_H
#define EVSHM_BRIDGE_LOG_H

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

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
