/* SPDX-License-Identifier: MIT */
/*
 * peer_topic: a subscriber process for test_topic.
 *
 *   peer_topic NAME [--n=N] [--max=BYTES] [--history=K] [--zerocopy]
 *              [--runs] [--timeout=MS] [--first=F] [--last=L] [--say-first]
 *
 * Subscribes to NAME and receives N messages of the msgpat stream (sizes
 * up to --max, which may carry PAT_FIXED and PAT_RING), checking each
 * one: its number, length and contents; --last: stop after message L
 * too (on a latest topic, where N is not known in advance).  On a
 * reliable topic the numbers must follow each other; on a latest one they
 * may jump, and every jump must be matched, message for message, by the
 * loss count evshm_sub_lost() reports.  --first=F: the number expected
 * first (a message under 8 bytes carries none; a first message above it
 * is a jump too).  --say-first: print "moving" once the first message was
 * received (its release moved our head).  --runs: zero copy, taking runs of
 * up to RUN_MAX messages (evshm_sub_peek_next) and releasing each with
 * one call; each message is copied out while peeked, and checked (in
 * order, as the stream checker needs) only if the release says the run
 * was not overwritten meanwhile (latest: -ESTALE).  Prints one line to
 * stdout at
 * the end:
 *   got N first F last L lost X
 * and exits 0; 1 on a bad message or a loss count that does not match; 3
 * if the subscription fails; 4 if receiving fails (the error's name is
 * printed on stderr), 5 if it fails because the publisher dropped us
 * (-ECONNABORTED).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evshm.h"
#include "msgpat.h"
#include "util.h"

static uint64_t opt(const char *arg, const char *name, uint64_t dflt)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return strtoull(arg + n + 1, NULL, 0);
	return dflt;
}

#define RUN_MAX 32
#define RUN_BYTES (1u << 20) /* a run stops once it copied this much */

/* A message of a run, copied out before the release. */
struct look {
	size_t len, off;    /* where in the run's copy */
};

int main(int argc, char **argv)
{
	uint64_t n = 1000, max = 4096, timeout = 30000, first = 0;
	uint64_t last = UINT64_MAX;
	struct evshm_opts o = { 0 };
	bool zerocopy = false, first_known = false, say_first = false;
	bool runs = false;
	struct look run[RUN_MAX];
	unsigned nrun = 0, irun = 0;
	uint8_t *stage = NULL;
	struct evshm_sub *s;
	uint8_t *buf;
	int res;

	if (argc < 2) {
		fprintf(stderr, "usage: peer_topic NAME [options]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		n = opt(argv[i], "--n", n);
		first = opt(argv[i], "--first", first);
		if (!strncmp(argv[i], "--first=", 8))
			first_known = true;
		max = opt(argv[i], "--max", max);
		last = opt(argv[i], "--last", last);
		o.history = (uint32_t)opt(argv[i], "--history", o.history);
		timeout = opt(argv[i], "--timeout", timeout);
		if (!strcmp(argv[i], "--zerocopy"))
			zerocopy = true;
		if (!strcmp(argv[i], "--runs"))
			runs = true;
		if (!strcmp(argv[i], "--say-first"))
			say_first = true;
	}
	for (int i = 0;; i++) {
		res = evshm_sub_open(&s, argv[1], &o, 10000);
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		if (i == 1000)
			break;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	if (res < 0) {
		fprintf(stderr, "peer_topic: subscribe: %s\n", tu_errname(res));
		return 3;
	}
	/* Ready: the test may start publishing. */
	printf("subscribed\n");
	fflush(stdout);
	buf = malloc(pat_max(max) ? pat_max(max) : 1);
	tu_check(buf != NULL);
	if (runs) {
		stage = malloc(pat_max(max) + RUN_BYTES);
		tu_check(stage != NULL);
	}
	struct pat_gen g;
	tu_check(pat_gen_init(&g, max));

	int rc = 1;
	uint64_t next = first, got = 0, lost0 = evshm_sub_lost(s);
	uint64_t lost_seen = lost0;
	uint64_t jumps = 0;
	while (got < n && (got == 0 || next <= last)) {
		const void *p;
		size_t len;

		if (runs && irun < nrun) {
			/* The next message of a run that was released whole. */
			struct look *k = &run[irun++];

			len = k->len;
			memcpy(buf, stage + k->off, len);
			res = 0;
		} else if (runs) {
			size_t off = 0;

			res = evshm_sub_peek(s, &p, &len, (int)timeout);
			nrun = irun = 0;
			while (res == 0) {
				run[nrun++] = (struct look){ len, off };
				memcpy(stage + off, p, len);
				off += len;
				if (nrun == RUN_MAX || off > RUN_BYTES ||
				    evshm_sub_peek_next(s, &p, &len) < 0)
					break;
			}
			if (res == 0) {
				res = evshm_sub_release(s);
				if (res == -ESTALE) {
					nrun = 0;
					continue; /* the jump counts it */
				}
				if (res == 0)
					continue; /* take them, above */
			}
		} else if (zerocopy) {
			res = evshm_sub_peek(s, &p, &len, (int)timeout);
			if (res == 0) {
				memcpy(buf, p, len); /* validate a copy */
				res = evshm_sub_release(s);
				if (res == -ESTALE)
					continue; /* overwritten: the jump counts it */
			}
		} else {
			res = evshm_sub_recv(s, buf, pat_max(max), (int)timeout);
			len = (size_t)res;
			if (res >= 0)
				res = 0;
		}
		if (res < 0) {
			fprintf(stderr, "%s\n", tu_errname(res));
			printf("got %" PRIu64 " first %" PRIu64 " last %" PRIu64
			       " lost %" PRIu64 "\n", got, first, next - 1,
			       evshm_sub_lost(s) - lost0);
			rc = res == -ECONNABORTED ? 5 : 4;
			goto out;
		}
		/* Shorter than 8 bytes: no number inside; the one expected,
		 * past any the library just counted lost (a latest topic
		 * may jump to a short one). */
		uint64_t lost_now = evshm_sub_lost(s);
		uint64_t seq = len >= 8 ? pat_seq(buf, len)
			       : got || first_known ? next + lost_now - lost_seen
						    : next;
		lost_seen = lost_now;
		if (got == 0 && !first_known)
			first = next = seq;
		if (seq != next) {
			if (seq < next) {
				fprintf(stderr, "peer_topic: message %" PRIu64
					" after %" PRIu64 "\n", seq, next - 1);
				goto out;
			}
			jumps += seq - next;
		}
		if (!pat_gen_check(&g, buf, len, seq)) {
			fprintf(stderr, "peer_topic: message %" PRIu64
				" (%zu bytes) is corrupt\n", seq, len);
			goto out;
		}
		next = seq + 1;
		if (got++ == 0 && say_first) {
			printf("moving\n");
			fflush(stdout);
		}
	}
	uint64_t lost = evshm_sub_lost(s) - lost0;
	printf("got %" PRIu64 " first %" PRIu64 " last %" PRIu64 " lost %" PRIu64
	       "\n", got, first, next - 1, lost);
	if (lost != jumps)
		fprintf(stderr, "peer_topic: %" PRIu64 " messages skipped, the "
			"library counted %" PRIu64 "\n", jumps, lost);
	else
		rc = 0;
out:
	/* Every way out frees what it made (LeakSanitizer runs at exit). */
	pat_gen_free(&g);
	free(stage);
	free(buf);
	evshm_sub_close(s);
	return rc;
}
