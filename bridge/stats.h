/* SPDX-License-Identifier: MIT */
/*
 * stats.h: the bridge's counters, one process-wide set (the bridge is one
 * thread).  --stats-file PATH writes them as "name value" lines, replaced
 * atomically once a second and at exit; the man page lists them.
 */
#ifndef EVSHM_BRIDGE_STATS_H
#define EVSHM_BRIDGE_STATS_H

#include <stdint.h>

/* X(name, meaning): one row per counter; "now" rows are gauges. */
#define STATS_COUNTERS(X)                                                   \
	X(sessions_up, "sessions up now")                                   \
	X(sessions_total, "sessions that came up")                          \
	X(sessions_lost, "sessions ended by silence, disconnect or error")  \
	X(sessions_refused, "peers refused: key, version or limit")         \
	X(streams_open, "bridged channels open now")                        \
	X(streams_total, "bridged channels opened")                         \
	X(streams_failed, "channels that could not open or ended in error") \
	X(msgs_out, "messages sent to the far bridge")                      \
	X(bytes_out, "payload bytes sent to the far bridge")                \
	X(msgs_in, "messages from the far bridge put in local rings")       \
	X(bytes_in, "payload bytes from the far bridge put in local rings") \
	X(fds_refused, "messages refused because they carried descriptors") \
	X(oversize_refused, "messages refused: larger than the far end takes") \
	X(msgs_lost, "messages held here when their channel failed")        \
	X(credit_stalls, "times a channel waited for credit")               \
	X(queued_bytes, "cost held in queues now")                          \
	X(queued_bytes_peak, "largest cost ever held in queues")            \
	X(protocol_errors, "sessions ended by a protocol violation")        \
	X(topic_subscribers, "import: local subscribers of the topic now")  \
	X(topic_lost, "latest topic: messages that never crossed (lapped)") \
	X(topic_dropped, "subscriptions dropped for stalling a reliable topic")

struct bridge_stats {
#define STATS_FIELD(name, text) uint64_t name;
	STATS_COUNTERS(STATS_FIELD)
#undef STATS_FIELD
};

extern struct bridge_stats stats;

/* Account for @cost more (or, negative, less) bytes held in queues. */
void stats_queued(int64_t cost);

/* Write the counters, with the process's resident memory, to @path
 * (through a temporary file and rename).  0 or -errno. */
int stats_write(const char *path);

#endif
