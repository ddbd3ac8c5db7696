/* SPDX-License-Identifier: MIT */
/*
 * test_topic: one publisher (this process) and subscribers in separate,
 * exec'd processes (peer_topic): fan-out with every message checked,
 * subscribers that die, stall or stop, history for late joiners, and the
 * publisher's view of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evshm.h"
#include "msgpat.h"
#include "os.h"
#include "util.h"

#define PEER TU_PEER("peer_topic")
#define MAX_SUBS 8

struct sub {
	pid_t pid;
	int report; /* its stdout */
};

/* Start a subscriber with @args (NULL-terminated extra arguments) and
 * wait until it says it subscribed. */
static void sub_start(struct sub *s, struct evshm_pub *p, const char *name,
		      const char *const *args)
{
	char *argv[16] = { "peer_topic", (char *)name };
	struct tu_spawn_opts so = { .report_fd = &s->report };
	char line[128];
	int n = 2;

	for (; args && *args && n < 15; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	tu_assert_res(tu_spawn_ex(&s->pid, PEER, argv, &so), 0);
	/* Admit it (it waits in the listener until we serve); 30 s, by the
	 * clock (a serve that returns early must not shorten the bound). */
	for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < 30000;) {
		int r = tu_read_line(s->report, line, sizeof(line), 0);
		if (r > 0) {
			assert_string_equal(line, "subscribed");
			return;
		}
		assert_true(evshm_pub_serve(p, 10) >= 0);
	}
	fail_msg("subscriber %d never subscribed", (int)s->pid);
}

/* Wait for a subscriber's exit and its report line; returns its exit code. */
static int sub_finish(struct sub *s, char *line, size_t n)
{
	int status;

	line[0] = '\0';
	tu_read_line(s->report, line, n, 120000);
	tu_assert_res(tu_wait(s->pid, 120000, &status), 0);
	os_close(s->report);
	return tu_exit_code(status);
}

/* Wait for latest subscriber @i (started with --first=0) to succeed:
 * every message from 0 to the last it got was either delivered or
 * counted lost (peer_topic checked each jump).  Returns that last. */
static uint64_t latest_finish(struct sub *s, int i, uint64_t *lost)
{
	uint64_t got, first, last;
	char line[128];

	tu_assert_res(sub_finish(s, line, sizeof(line)), 0);
	assert_int_equal(sscanf(line, "got %" SCNu64 " first %" SCNu64
				" last %" SCNu64 " lost %" SCNu64, &got,
				&first, &last, lost), 4);
	assert_int_equal(first, 0);
	assert_int_equal(last + 1, got + *lost);
	print_message("latest subscriber %d: %s\n", i, line);
	return last;
}

/* Messages from..from+n-1 of the stream @max (msgpat.h; a PAT_RING one
 * must be all the topic ever carries, from message 0). */
static void publish(struct evshm_pub *p, uint64_t from, uint64_t n, size_t max,
		    int timeout_ms)
{
	uint8_t *buf = malloc(pat_max(max) ? pat_max(max) : 1);
	struct pat_gen g;

	assert_non_null(buf);
	assert_true(pat_gen_init(&g, max));
	for (uint64_t seq = from; seq < from + n; seq++) {
		size_t len = pat_len(seq, max);
		void *dst;

		if (seq & 1) { /* both APIs */
			tu_assert_res(evshm_pub_reserve(p, len, &dst, timeout_ms), 0);
			pat_gen_fill(&g, dst, len, seq);
			tu_assert_res(evshm_pub_commit(p, len), 0);
		} else {
			pat_gen_fill(&g, buf, len, seq);
			tu_assert_res(evshm_pub_send(p, buf, len, timeout_ms), 0);
		}
	}
	pat_gen_free(&g);
	free(buf);
}

/* A test that does not set a stall bound means no subscriber to be
 * dropped: the default (1 s) dropped an honest one of eight, not given a
 * CPU for that long under TSan at load 12.  Those that test the bound set
 * their own. */
static void open_pub(struct evshm_pub **p, char *name, size_t n,
		     const struct evshm_opts *o)
{
	struct evshm_opts mine = o ? *o : (struct evshm_opts){ 0 };

	if (!mine.stall_timeout_ms)
		mine.stall_timeout_ms = 30000;
	tu_unique_name(name, n, "topic", true);
	tu_assert_res(evshm_pub_open(p, name, &mine), 0);
}

/* How subscriber @i of a fan-out receives: by copy, in place, by copy,
 * in runs (evshm_sub_peek_next), and round again. */
static const char *sub_mode(int i)
{
	static const char *const modes[] = { NULL, "--zerocopy", NULL,
					     "--runs" };
	return modes[i % 4];
}

/* 1 publisher, 8 subscribers, every message of random size (0 to the
 * maximum) checked by each, in order, exactly once.  The stream is ghost
 * bait (msgpat.h): a subscriber waiting at the tail over the last lap's
 * payload, if nobody cleared it, reads the number it expects. */
static void test_fanout_reliable(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 20 };
	uint64_t n = tu_scaled(1000000);
	struct sub subs[MAX_SUBS];
	struct evshm_pub *p;
	char name[108], narg[32], marg[48], line[128];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	size_t max = evshm_pub_max_msg(p);
	assert_int_equal(max, EVSHM_MAX_MSG(1u << 20));
	max |= PAT_RING(1u << 20);
	snprintf(narg, sizeof(narg), "--n=%" PRIu64, n);
	snprintf(marg, sizeof(marg), "--max=%zu", max);
	for (int i = 0; i < MAX_SUBS; i++) {
		const char *args[] = { narg, marg, sub_mode(i), NULL };
		sub_start(&subs[i], p, name, args);
	}
	tu_assert_res(evshm_pub_serve(p, 0), MAX_SUBS);
	publish(p, 0, n, max, 60000);
	for (int i = 0; i < MAX_SUBS; i++) {
		tu_assert_res(sub_finish(&subs[i], line, sizeof(line)), 0);
		char want[128];
		snprintf(want, sizeof(want), "got %" PRIu64 " first 0 last %"
			 PRIu64 " lost 0", n, n - 1);
		assert_string_equal(line, want);
	}
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	assert_int_equal(st.msgs_sent, n);
	assert_int_equal(st.joined, MAX_SUBS);
	print_message("%" PRIu64 " messages to %d subscribers; kicks %" PRIu64
		      ", publisher sleeps %" PRIu64 "\n", n, MAX_SUBS,
		      st.kicks_sent, st.sleeps);
	evshm_pub_close(p);
}

/* Latest: 1 publisher that never waits, 4 subscribers lapped again and
 * again on a small ring, sizes at random up to the maximum.  Each checks
 * every message it gets and that every one it missed is counted lost;
 * all get the last.  Ghost bait, as above: after each jump to the
 * oldest record a subscriber catches up with the tail, over stale
 * payload. */
static void test_fanout_latest(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16,
				.policy = EVSHM_LATEST };
	uint64_t n = tu_scaled(400000);
	enum { NSUB = 4 };
	struct sub subs[NSUB];
	struct evshm_pub *p;
	char name[108], larg[32], marg[48];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	size_t max = evshm_pub_max_msg(p) | PAT_RING(1u << 16);
	snprintf(larg, sizeof(larg), "--last=%" PRIu64, n - 1);
	snprintf(marg, sizeof(marg), "--max=%zu", max);
	for (int i = 0; i < NSUB; i++) {
		const char *args[] = { "--n=-1", "--first=0", larg, marg,
				       sub_mode(i), NULL };
		sub_start(&subs[i], p, name, args);
	}
	publish(p, 0, n, max, 0);
	for (int i = 0; i < NSUB; i++) {
		uint64_t lost;
		assert_int_equal(latest_finish(&subs[i], i, &lost), n - 1);
	}
	evshm_pub_close(p);
}

/* Resident shared memory of this process, in kB. */
static long rss_shmem_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A subscriber killed mid-stream: the others go on, the publisher sees it
 * leave, and it leaves nothing behind here. */
static void test_kill9_subscriber(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16 };
	struct sub subs[3];
	struct evshm_pub *p;
	char name[108], line[128];
	const char *args[] = { "--n=20000", "--max=1000", "--first=1000", NULL };

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	publish(p, 0, 1000, 1000, 0); /* our ring's pages, all touched */
	int fds0 = tu_count_fds();
	long shm0 = rss_shmem_kb();
	sub_start(&subs[0], p, name, args);
	sub_start(&subs[1], p, name, args);
	const char *forever[] = { "--n=100000000", "--max=1000", "--first=1000",
				  NULL };
	sub_start(&subs[2], p, name, forever);
	publish(p, 1000, 5000, 1000, 10000);
	assert_true(tu_count_fds() > fds0);
	kill(subs[2].pid, SIGKILL);
	publish(p, 6000, 15000, 1000, 10000);
	tu_assert_res(sub_finish(&subs[0], line, sizeof(line)), 0);
	tu_assert_res(sub_finish(&subs[1], line, sizeof(line)), 0);
	assert_string_equal(line, "got 20000 first 1000 last 20999 lost 0");
	sub_finish(&subs[2], line, sizeof(line));
	/* Its leaving was noticed (the publisher never waited on it). */
	evshm_pub_serve(p, 0);
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	assert_int_equal(st.left, 3);
	assert_int_equal(st.subscribers, 0);
	assert_int_equal(tu_count_fds(), fds0);
	assert_true(rss_shmem_kb() <= shm0);
	evshm_pub_close(p);
}

/* Reliable: a stopped subscriber holds everyone up for stall_timeout_ms,
 * then it is dropped and the others go on; it learns it was dropped. */
static void test_stall_reliable(void **state)
{
	/* A bound no honest subscriber misses on a loaded machine (300 ms
	 * is the descheduling that dropped honest ones in other tests). */
	struct evshm_opts o = { .ring_size = 1u << 16, .stall_timeout_ms = 2000 };
	struct sub subs[3];
	struct evshm_pub *p;
	char name[108], line[128];
	const char *args[] = { "--n=20000", "--max=1000", NULL };

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	for (int i = 0; i < 3; i++)
		sub_start(&subs[i], p, name, args);
	kill(subs[2].pid, SIGSTOP);
	publish(p, 0, 20000, 1000, 10000);
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.subscribers, 2);
	for (int i = 0; i < 2; i++) {
		tu_assert_res(sub_finish(&subs[i], line, sizeof(line)), 0);
		assert_string_equal(line, "got 20000 first 0 last 19999 lost 0");
	}
	kill(subs[2].pid, SIGCONT);
	/* Its next copy learns it was dropped (exit 5: -ECONNABORTED). */
	assert_int_equal(sub_finish(&subs[2], line, sizeof(line)), 5);
	print_message("the stopped subscriber: %s\n", line);
	evshm_pub_close(p);
}

static uint64_t dropped(struct evshm_pub *p)
{
	struct evshm_pub_stats st;

	evshm_pub_stats(p, &st);
	return st.dropped;
}

/* Publish with timeout 0 until the ring is full; returns the number of the
 * message that did not fit.  Fails if it never fills (nobody holds it:
 * the subscriber was dropped). */
static uint64_t fill(struct evshm_pub *p, uint64_t seq, size_t max)
{
	uint8_t buf[1000];
	uint64_t end = seq + 2 * (1u << 16) / 16;

	assert_true(max <= sizeof(buf));
	for (;; seq++) {
		if (seq == end)
			fail_msg("the ring never filled (%" PRIu64 ")", dropped(p));
		size_t len = pat_len(seq, max);
		int res;

		pat_fill(buf, len, seq);
		res = evshm_pub_send(p, buf, len, 0);
		if (res == -EAGAIN)
			return seq;
		tu_assert_res(res, 0);
	}
}

/*
 * The stall bound times the subscriber, not us.  When our look comes long
 * after its bound ran out (the machine paused, or the application did not
 * call), a subscriber held up just as long gets a grace to move instead of
 * being dropped at once; but only once: a second late look drops it.
 *
 * Nothing here needs either side to run within the grace (a bound of 2 s,
 * a grace of 0.5 s): the first late look is a publish that does not wait,
 * and we look again only once the subscriber said it moved; each pause is
 * a lower bound (a longer one changes nothing).  Only our own publish, its
 * two looks a few microseconds apart, must not be held up for the grace.
 */
static void test_stall_late_look(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16, .stall_timeout_ms = 2000 };
	struct sub s;
	struct evshm_pub *p;
	char name[108], line[128];
	const char *args[] = { "--n=1000000", "--max=1000", "--say-first", NULL };
	uint64_t seq;

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	sub_start(&s, p, name, args);
	/* Both stand still for more than the bound and its grace, as in a
	 * pause of the whole machine; then we look first: no drop. */
	kill(s.pid, SIGSTOP);
	seq = fill(p, 0, 1000);
	usleep(3000000);
	assert_int_equal(fill(p, seq, 1000), seq);
	assert_int_equal(dropped(p), 0);
	/* It runs, and moves (however long that takes here); our next look
	 * sees it moved: it is kept, and its grace is its own again. */
	kill(s.pid, SIGCONT);
	tu_assert_res(tu_read_line(s.report, line, sizeof(line), 60000) > 0, 1);
	assert_string_equal(line, "moving");
	publish(p, seq, 1, 1000, 10000);
	seq += 1;
	assert_int_equal(dropped(p), 0);
	/* A subscriber that stays stopped is dropped at our second late look
	 * (an application that looks rarely is not held up for ever). */
	kill(s.pid, SIGSTOP);
	seq = fill(p, seq, 1000);
	usleep(3000000);
	assert_int_equal(fill(p, seq, 1000), seq);
	assert_int_equal(dropped(p), 0);
	usleep(1000000);
	publish(p, seq, 1, 1000, 0);
	assert_int_equal(dropped(p), 1);
	kill(s.pid, SIGCONT);
	assert_int_equal(sub_finish(&s, line, sizeof(line)), 5);
	evshm_pub_close(p);
}

/*
 * A publisher driven by an event loop on evshm_pub_fd(), every publish
 * with timeout 0: a subscriber's room kick must make the descriptor
 * readable (a publish that said -EAGAIN stays armed), and a stopped
 * subscriber's stall clock must run across those calls and wake the
 * descriptor when it runs out, so that it is dropped and the others go on.
 * The bound is 2 s, not less: a loaded machine can deschedule the honest
 * subscriber that long, and it too would be dropped.
 */
static void test_event_loop_publisher(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16, .stall_timeout_ms = 2000 };
	struct sub subs[2];
	struct evshm_pub *p;
	char name[108], line[128];
	const char *args[] = { "--n=20000", "--max=1000", NULL };
	struct epoll_event ev = { .events = EPOLLIN };
	uint8_t buf[1000];
	uint64_t seq = 0, waits = 0, t0;

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	for (int i = 0; i < 2; i++)
		sub_start(&subs[i], p, name, args);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, evshm_pub_fd(p), &ev), 0);
	kill(subs[1].pid, SIGSTOP);
	t0 = os_now_ns();
	while (seq < 20000) {
		size_t len = pat_len(seq, 1000);
		int res;

		pat_fill(buf, len, seq);
		res = evshm_pub_send(p, buf, len, 0);
		if (res == 0) {
			seq++;
			continue;
		}
		tu_assert_res(res, -EAGAIN);
		waits++;
		if (epoll_wait(ep, &ev, 1, 5000) != 1)
			fail_msg("evshm_pub_fd() quiet for 5 s at message %" PRIu64,
				 seq);
		assert_true(evshm_pub_serve(p, 0) >= 0);
		if (os_now_ns() - t0 > 60000000000ull)
			fail_msg("no progress: the stall bound never fired");
	}
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	print_message("%" PRIu64 " waits; dropped %" PRIu64 "\n", waits,
		      st.dropped);
	assert_int_equal(st.dropped, 1);
	tu_assert_res(sub_finish(&subs[0], line, sizeof(line)), 0);
	assert_string_equal(line, "got 20000 first 0 last 19999 lost 0");
	kill(subs[1].pid, SIGCONT);
	assert_int_equal(sub_finish(&subs[1], line, sizeof(line)), 5);
	close(ep);
	evshm_pub_close(p);
}

/* Latest: a stopped subscriber is never waited for; resumed, it counts
 * exactly the messages it missed, and none it gets is torn. */
static void test_stall_latest(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16, .policy = EVSHM_LATEST };
	struct sub subs[2];
	struct evshm_pub *p;
	char name[108];
	/* Fixed-size messages: every one carries its number. */
	char marg[32];
	snprintf(marg, sizeof(marg), "--max=%zu", (size_t)(256 | PAT_FIXED));
	const char *args[] = { "--n=3000", marg, "--first=0", NULL };
	const char *zargs[] = { "--n=3000", marg, "--first=0", "--zerocopy",
				NULL };

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	sub_start(&subs[0], p, name, args);
	sub_start(&subs[1], p, name, zargs);
	kill(subs[0].pid, SIGSTOP);
	kill(subs[1].pid, SIGSTOP);
	/* Far more than the ring holds; never waits (timeout 0). */
	publish(p, 0, 2000, 256 | PAT_FIXED, 0);
	kill(subs[0].pid, SIGCONT);
	kill(subs[1].pid, SIGCONT);
	/* They resume at the oldest message still in the ring; then they
	 * get the live stream (paced, so they keep up). */
	for (uint64_t seq = 2000; seq < 2000 + 3000; seq += 10) {
		publish(p, seq, 10, 256 | PAT_FIXED, 0);
		usleep(200);
	}
	for (int i = 0; i < 2; i++) {
		uint64_t lost;
		latest_finish(&subs[i], i, &lost);
		assert_true(lost > 0);
	}
	evshm_pub_close(p);
}

/* A late joiner asking for K gets exactly the last K still in the ring,
 * then the stream. */
static void test_history(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16 };
	struct evshm_pub *p;
	struct sub s;
	char name[108], line[128];
	/* Fixed 100-byte messages: each carries its number. */
	const size_t max = 100 | PAT_FIXED;
	char marg[32];
	snprintf(marg, sizeof(marg), "--max=%zu", max);
	const char *k10[] = { "--n=110", marg, "--history=10", "--first=90",
			      NULL };
	const char *k1k[] = { "--n=100", marg, "--history=1000000", NULL };

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	publish(p, 0, 100, max, 0); /* to nobody */
	sub_start(&s, p, name, k10);
	publish(p, 100, 100, max, 10000);
	tu_assert_res(sub_finish(&s, line, sizeof(line)), 0);
	assert_string_equal(line, "got 110 first 90 last 199 lost 0");
	/* Gone but not reaped yet (nothing waited): its lag counts from its
	 * start, not from the topic's first message. */
	struct evshm_sub_info info;
	tu_assert_res(evshm_pub_subscribers(p, &info, 1), 1);
	assert_int_equal(info.msgs_recv, 110);
	assert_int_equal(info.lag, 0);

	/* More than the ring still holds: what it holds, from the oldest. */
	publish(p, 200, 2000, max, 10000);
	sub_start(&s, p, name, k1k);
	tu_assert_res(sub_finish(&s, line, sizeof(line)), 0);
	uint64_t got, first, last, lost;
	assert_int_equal(sscanf(line, "got %" SCNu64 " first %" SCNu64
				" last %" SCNu64 " lost %" SCNu64, &got, &first,
				&last, &lost), 4);
	assert_true(first > 200 && first < 2200);
	print_message("history of 1000000 asked after 2200 messages through a "
		      "64 KiB ring: from message %" PRIu64 "\n", first);
	evshm_pub_close(p);
}

struct third {
	const char *name;
	int res;
	atomic_bool done;
};

static void *third_main(void *arg)
{
	struct third *th = arg;
	struct evshm_sub *s = NULL;

	th->res = evshm_sub_open(&s, th->name, NULL, 5000);
	evshm_sub_close(s);
	atomic_store(&th->done, true);
	return NULL;
}

struct held_sub {
	const char *name;
	uint32_t history;
	struct evshm_sub *s;
	int res;
	_Atomic bool done;
};

static void *held_sub_main(void *arg)
{
	struct held_sub *h = arg;

	struct evshm_opts o = { .history = h->history };

	h->res = evshm_sub_open(&h->s, h->name, &o, 5000);
	atomic_store(&h->done, true);
	return NULL;
}

/* A subscriber in this process, to @p at @name (it joins from a thread
 * while we serve), asking for @history past messages. */
static struct evshm_sub *sub_here_k(struct evshm_pub *p, const char *name,
				    uint32_t history)
{
	struct held_sub h = { .name = name, .history = history };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, held_sub_main, &h), 0);
	while (!atomic_load(&h.done))
		evshm_pub_serve(p, 10);
	pthread_join(t, NULL);
	tu_assert_res(h.res, 0);
	return h.s;
}

static struct evshm_sub *sub_here(struct evshm_pub *p, const char *name)
{
	return sub_here_k(p, name, 0);
}

/* The descriptors the header says a topic's ends hold: a publisher 8 plus
 * 3 per subscriber, a subscriber 7 (both ends in this process). */
static void test_descriptors_held(void **state)
{
	struct evshm_pub *p;
	struct evshm_sub *s;
	char name[108];

	(void)state;
	int fds0 = tu_count_fds();
	open_pub(&p, name, sizeof(name), NULL);
	assert_int_equal(tu_count_fds(), fds0 + 8);
	s = sub_here(p, name);
	assert_int_equal(tu_count_fds(), fds0 + 8 + 3 + 7);
	/* Timed waits (they sleep: nothing is published) add none. */
	uint8_t b[8];
	tu_assert_res(evshm_sub_recv(s, b, sizeof(b), 20), -ETIMEDOUT);
	tu_assert_res(evshm_sub_recv(s, b, sizeof(b), 5), -ETIMEDOUT);
	assert_int_equal(tu_count_fds(), fds0 + 8 + 3 + 7);
	evshm_sub_close(s);
	evshm_pub_close(p);
	assert_int_equal(tu_count_fds(), fds0);
}

/*
 * What the last lap left is not a header (tests/test_ring.c has the ring
 * alone): a subscriber waits 32 bytes into the ring, inside an old record
 * whose payload words all read as the number it expects there.  In a
 * latest topic that record is broken (its start was overwritten) but its
 * bytes are still there; the publisher must clear the next header all
 * the same, under either policy.
 */
static void stale_payload(unsigned policy)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = policy };
	static uint64_t words[2000 / 8];
	struct evshm_pub *p;
	struct evshm_sub *s;
	uint8_t buf[2048];
	char name[108];

	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	/* seq 1 at [0, 2016), 2 and 3 fill the lap, 4 at [0, 32). */
	for (size_t i = 0; i < sizeof(words) / 8; i++)
		words[i] = 5;
	const size_t lens[] = { 2000, 1024, 1024, 16 };
	for (int i = 0; i < 4; i++) {
		tu_assert_res(evshm_pub_send(p, words, lens[i], 1000), 0);
		tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 1000),
			      lens[i]);
	}
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EAGAIN);
	words[0] = 6;
	tu_assert_res(evshm_pub_send(p, words, 48, 1000), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 1000), 48);
	assert_memory_equal(buf, words, 48);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EAGAIN);
	struct evshm_stats st;
	evshm_sub_stats(s, &st);
	assert_int_equal(st.lost, 0);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

static void test_stale_payload_reliable(void **state)
{
	(void)state;
	stale_payload(EVSHM_RELIABLE);
}

static void test_stale_payload_latest(void **state)
{
	(void)state;
	stale_payload(EVSHM_LATEST);
}

/* Messages @from to @to - 1, 240 bytes each (a 256-byte record), the
 * payload made from the number; -EAGAIN-free within @timeout_ms. */
static void send_240(struct evshm_pub *p, uint32_t from, uint32_t to,
		     int timeout_ms)
{
	uint8_t buf[240];

	for (uint32_t i = from; i < to; i++) {
		tu_fill(buf, sizeof(buf), i);
		tu_assert_res(evshm_pub_send(p, buf, sizeof(buf), timeout_ms), 0);
	}
}

/* Receive messages @from to @to - 1 by copy, as send_240() sent them. */
static void recv_240(struct evshm_sub *s, uint32_t from, uint32_t to)
{
	uint8_t buf[256];

	for (uint32_t i = from; i < to; i++) {
		tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), 240);
		assert_true(tu_check_fill(buf, 240, i));
	}
}

/* Several messages peeked at once and released with one call: reliable,
 * the room comes back only then, all of it (the publisher sees the head
 * jump over many records); the copying call refuses meanwhile. */
static void test_peek_batch_reliable(void **state)
{
	struct evshm_opts o = { .ring_size = 4096 };
	struct evshm_pub *p;
	struct evshm_sub *s;
	uint8_t buf[256] = { 0 };
	const void *ptr;
	size_t len;
	char name[108];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	/* 16 records of 240 + 16 fill the ring. */
	send_240(p, 0, 16, 1000);
	tu_assert_res(evshm_pub_send(p, buf, 240, 0), -EAGAIN);
	tu_assert_res(evshm_sub_peek_next(s, &ptr, &len), -EINVAL);
	tu_assert_res(evshm_sub_peek(s, &ptr, &len, 1000), 0);
	assert_true(tu_check_fill(ptr, len, 0));
	for (uint32_t i = 1; i < 16; i++) {
		tu_assert_res(evshm_sub_peek_next(s, &ptr, &len), 0);
		assert_int_equal(len, 240);
		assert_true(tu_check_fill(ptr, len, i));
	}
	tu_assert_res(evshm_sub_peek_next(s, &ptr, &len), -EAGAIN);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EBUSY);
	tu_assert_res(evshm_sub_peek_next(NULL, &ptr, &len), -EINVAL);
	tu_assert_res(evshm_pub_send(p, buf, 240, 0), -EAGAIN);
	tu_assert_res(evshm_sub_release(s), 0);
	tu_assert_res(evshm_sub_release(s), -EINVAL);
	send_240(p, 16, 32, 0);
	recv_240(s, 16, 32);
	struct evshm_pub_stats ps;
	evshm_pub_stats(p, &ps);
	assert_int_equal(ps.dropped, 0);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/* Latest: a batch of which the publisher overwrote the first two while
 * it was peeked is stale as a whole; the next call counts those two lost
 * and delivers again the six that were still whole. */
static void test_peek_batch_latest(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = EVSHM_LATEST };
	struct evshm_pub *p;
	struct evshm_sub *s;
	uint8_t buf[256] = { 0 };
	const void *ptr;
	size_t len;
	char name[108];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	send_240(p, 0, 8, 1000);
	tu_assert_res(evshm_sub_peek(s, &ptr, &len, 1000), 0);
	for (uint32_t i = 1; i < 8; i++)
		tu_assert_res(evshm_sub_peek_next(s, &ptr, &len), 0);
	/* 18 records of 256 bytes: the first two of ours are written over. */
	send_240(p, 8, 18, 0);
	tu_assert_res(evshm_sub_release(s), -ESTALE);
	recv_240(s, 2, 18);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EAGAIN);
	assert_int_equal(evshm_sub_lost(s), 2);
	/* A batch nobody overwrote is released whole. */
	send_240(p, 18, 22, 0);
	tu_assert_res(evshm_sub_peek(s, &ptr, &len, 0), 0);
	for (uint32_t i = 19; i < 22; i++) {
		tu_assert_res(evshm_sub_peek_next(s, &ptr, &len), 0);
		assert_true(tu_check_fill(ptr, len, i));
	}
	tu_assert_res(evshm_sub_release(s), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EAGAIN);
	assert_int_equal(evshm_sub_lost(s), 2);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/*
 * Latest: -EMSGSIZE speaks of a message only while it is still whole.  A
 * length read from a record being overwritten is nobody's (the copy of a
 * whole record is checked after it; a length judged before the copy must
 * be checked too); and a too-large message that stays (-EMSGSIZE) and is
 * lapped meanwhile is gone: the next call skips it, counted, and delivers
 * the oldest message still whole.
 */
static void test_latest_msgsize_lapped(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = EVSHM_LATEST };
	struct evshm_pub *p;
	struct evshm_sub *s;
	uint8_t big[100] = { 0 }, small[40], buf[64];
	char name[108];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	tu_assert_res(evshm_pub_send(p, big, sizeof(big), 0), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 1000), -EMSGSIZE);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EMSGSIZE);
	/* Seq 2 to 101 (64 bytes each): the first message's place is
	 * overwritten by seq 2 + 4096 / 64 - 2 = 64 at the latest. */
	for (uint32_t i = 2; i <= 101; i++) {
		memset(small, (int)i, sizeof(small));
		tu_assert_res(evshm_pub_send(p, small, sizeof(small), 0), 0);
	}
	int n = evshm_sub_recv(s, buf, sizeof(buf), 0);
	tu_assert_res(n, (int)sizeof(small));
	uint64_t lost = evshm_sub_lost(s);
	assert_true(lost >= 1);
	/* What it delivered is the oldest still whole, and the count says
	 * exactly how many came before it. */
	assert_int_equal(buf[0], (uint8_t)(1 + lost));
	for (uint32_t i = (uint32_t)lost + 2; i <= 101; i++) {
		tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0),
			      (int)sizeof(small));
		assert_int_equal(buf[0], (uint8_t)i);
	}
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -EAGAIN);
	assert_int_equal(evshm_sub_lost(s), lost);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/* An empty message into no buffer at all: (NULL, 0) is a valid buffer of
 * no bytes, and copying nothing into it is no copy to NULL. */
static void test_empty_into_null(void **state)
{
	struct evshm_pub *p;
	struct evshm_sub *s;
	char name[108];

	(void)state;
	open_pub(&p, name, sizeof(name), NULL);
	s = sub_here(p, name);
	tu_assert_res(evshm_pub_send(p, NULL, 0, 1000), 0);
	tu_assert_res(evshm_sub_recv(s, NULL, 0, 1000), 0);
	tu_assert_res(evshm_sub_recv(s, NULL, 0, 0), -EAGAIN);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/*
 * Latest history: a joiner asking for K gets exactly the last K; one whose
 * history is lapped before it reads any of it resumes at the oldest
 * message still whole, and counts every message from its start before
 * that one as lost.
 */
static void test_history_latest_lapped(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = EVSHM_LATEST };
	struct evshm_pub *p;
	struct evshm_sub *a, *b;
	uint8_t m[100], buf[128];
	char name[108];

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	for (int i = 1; i <= 10; i++) { /* 128 bytes each */
		memset(m, i, sizeof(m));
		tu_assert_res(evshm_pub_send(p, m, sizeof(m), 0), 0);
	}
	a = sub_here_k(p, name, 5);
	b = sub_here_k(p, name, 5);
	for (int i = 6; i <= 10; i++) {
		tu_assert_res(evshm_sub_recv(a, buf, sizeof(buf), 0),
			      (int)sizeof(m));
		assert_int_equal(buf[0], i);
	}
	tu_assert_res(evshm_sub_recv(a, buf, sizeof(buf), 0), -EAGAIN);
	assert_int_equal(evshm_sub_lost(a), 0);
	/* 40 more: 4096 / 128 = 32 records in the ring, b's start (6) is
	 * long gone. */
	for (int i = 11; i <= 50; i++) {
		memset(m, i, sizeof(m));
		tu_assert_res(evshm_pub_send(p, m, sizeof(m), 0), 0);
	}
	tu_assert_res(evshm_sub_recv(b, buf, sizeof(buf), 0), (int)sizeof(m));
	uint64_t first = buf[0];
	assert_true(first > 6 && first <= 50 - 31 + 1);
	assert_int_equal(evshm_sub_lost(b), first - 6);
	for (uint64_t i = first + 1; i <= 50; i++) {
		tu_assert_res(evshm_sub_recv(b, buf, sizeof(buf), 0),
			      (int)sizeof(m));
		assert_int_equal(buf[0], i);
	}
	tu_assert_res(evshm_sub_recv(b, buf, sizeof(buf), 0), -EAGAIN);
	evshm_sub_close(a);
	evshm_sub_close(b);
	evshm_pub_close(p);
}

/* A publishing thread: @n messages, the first error in @res. */
struct lapper {
	struct evshm_pub *p;
	uint64_t n;
	int res;
};

/* Tiny messages, as fast as we can: in a latest ring of 4 KiB, every one
 * moves the horizon past the oldest record it just published. */
static void *lapper_main(void *arg)
{
	struct lapper *l = arg;

	for (uint64_t i = 1; i <= l->n && l->res == 0; i++)
		l->res = evshm_pub_send(l->p, &i, sizeof(i), 0);
	return NULL;
}

/*
 * An event loop's latest subscriber (timeout 0, then a wait on
 * evshm_sub_fd()) behind a publisher that laps it as fast as it jumps: a
 * call that gives up its jumps says -EAGAIN, and the descriptor must then
 * become readable when there is something to read; here, at the latest
 * when the publisher has stopped and its last message waits.  A wait of
 * 5 s on it that ends with nothing while a message is there is a lost
 * wakeup.
 */
static void test_latest_fd_lapped(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = EVSHM_LATEST };
	struct lapper l = { .n = tu_scaled(2000000) };
	struct evshm_pub *p;
	struct evshm_sub *s;
	pthread_t t;
	char name[108];
	uint64_t got = 0, last = 0, eagain = 0, v;

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	l.p = p;
	struct pollfd pfd = { .fd = evshm_sub_fd(s), .events = POLLIN };
	assert_true(pfd.fd >= 0);
	assert_int_equal(pthread_create(&t, NULL, lapper_main, &l), 0);
	while (last < l.n) {
		int r = evshm_sub_recv(s, &v, sizeof(v), 0);
		if (r == (int)sizeof(v)) {
			assert_true(v > last);
			last = v;
			got++;
			continue;
		}
		tu_assert_res(r, -EAGAIN);
		eagain++;
		if (poll(&pfd, 1, 5000) == 0) {
			r = evshm_sub_recv(s, &v, sizeof(v), 0);
			fail_msg("no wakeup in 5 s after -EAGAIN #%" PRIu64
				 " (a receive now: %d, message %" PRIu64
				 "; lost %" PRIu64 ")", eagain, r,
				 r > 0 ? v : 0, evshm_sub_lost(s));
		}
	}
	pthread_join(t, NULL);
	tu_assert_res(l.res, 0);
	assert_int_equal(got + evshm_sub_lost(s), l.n);
	print_message("%" PRIu64 " messages, %" PRIu64 " received, %" PRIu64
		      " waits\n", l.n, got, eagain);
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/* Messages of 4 to 300 bytes whose every 32-bit word reads 2: a record
 * header this payload overwrites says "length 2, flag FDS". */
static void *twos_main(void *arg)
{
	struct lapper *w = arg;
	uint32_t m[75];

	for (size_t i = 0; i < sizeof(m) / 4; i++)
		m[i] = 2;
	for (uint64_t i = 0; i < w->n && w->res == 0; i++)
		w->res = evshm_pub_send(w->p, m, 4 + 4 * (i * 37 % 75), 0);
	return NULL;
}

/*
 * Latest: a header that changes under our reading is a record being
 * overwritten, whichever check it fails.  The flag FDS (valid in a ring,
 * never on a topic) is one of those checks: read from the payload of the
 * lap that overwrites the record, it must make the subscriber jump, not
 * call the publisher a liar.
 */
static void test_latest_torn_flags(void **state)
{
	struct evshm_opts o = { .ring_size = 4096, .policy = EVSHM_LATEST };
	struct lapper w = { .n = tu_scaled(3000000) };
	uint8_t buf[4096];
	struct evshm_pub *p;
	struct evshm_sub *s;
	pthread_t t;
	char name[108];
	uint64_t got = 0;

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	s = sub_here(p, name);
	w.p = p;
	assert_int_equal(pthread_create(&t, NULL, twos_main, &w), 0);
	/* Every message delivered or counted lost, exactly. */
	while (got + evshm_sub_lost(s) < w.n) {
		int r = evshm_sub_recv(s, buf, sizeof(buf), 10000);
		if (r < 0)
			fail_msg("receive: %d (%s) after %" PRIu64 " messages",
				 r, evshm_sub_error_reason(s), got);
		got++;
	}
	assert_int_equal(got + evshm_sub_lost(s), w.n);
	pthread_join(t, NULL);
	tu_assert_res(w.res, 0);
	print_message("%" PRIu64 " of %" PRIu64 " received, %" PRIu64
		      " lost\n", got, w.n, evshm_sub_lost(s));
	evshm_sub_close(s);
	evshm_pub_close(p);
}

/* Joining without history: from the next message on; the publisher lists
 * its subscribers with their credentials. */
static void test_join_and_list(void **state)
{
	struct evshm_opts o = { .ring_size = 1u << 16, .max_clients = 2 };
	struct evshm_sub_info info[4];
	struct evshm_pub *p;
	struct sub s[2];
	char name[108], line[128];
	const char *args[] = { "--n=50", "--max=100", "--first=50", NULL };

	(void)state;
	open_pub(&p, name, sizeof(name), &o);
	publish(p, 0, 50, 100, 0);
	sub_start(&s[0], p, name, args);
	sub_start(&s[1], p, name, args);
	tu_assert_res(evshm_pub_subscribers(p, info, 4), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(info[i].uid, geteuid());
		assert_true(info[i].pid == s[0].pid || info[i].pid == s[1].pid);
	}
	/* A third is one too many: refused (it gets -EUSERS). */
	pthread_t t;
	struct third th = { .name = name };
	assert_int_equal(pthread_create(&t, NULL, third_main, &th), 0);
	while (!atomic_load(&th.done))
		evshm_pub_serve(p, 10);
	pthread_join(t, NULL);
	tu_assert_res(th.res, -EUSERS);
	publish(p, 50, 50, 100, 10000);
	for (int i = 0; i < 2; i++) {
		tu_assert_res(sub_finish(&s[i], line, sizeof(line)), 0);
		assert_string_equal(line, "got 50 first 50 last 99 lost 0");
	}
	evshm_pub_close(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fanout_reliable),
		cmocka_unit_test(test_fanout_latest),
		cmocka_unit_test(test_kill9_subscriber),
		cmocka_unit_test(test_stall_reliable),
		cmocka_unit_test(test_stall_late_look),
		cmocka_unit_test(test_stall_latest),
		cmocka_unit_test(test_event_loop_publisher),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_join_and_list),
		cmocka_unit_test(test_stale_payload_reliable),
		cmocka_unit_test(test_stale_payload_latest),
		cmocka_unit_test(test_peek_batch_reliable),
		cmocka_unit_test(test_peek_batch_latest),
		cmocka_unit_test(test_descriptors_held),
		cmocka_unit_test(test_latest_msgsize_lapped),
		cmocka_unit_test(test_latest_fd_lapped),
		cmocka_unit_test(test_empty_into_null),
		cmocka_unit_test(test_history_latest_lapped),
		cmocka_unit_test(test_latest_torn_flags),
	};
	return TU_RUN(tests, argc, argv);
}
