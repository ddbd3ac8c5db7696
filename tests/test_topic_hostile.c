/* SPDX-License-Identifier: MIT */
/*
 * Hostile topic peers (peer_topic_hostile, built from the internals):
 * hostile subscribers harm nobody else (the publisher and the honest
 * subscribers go on, timeouts hold); a hostile publisher gives its
 * subscribers -EPROTO with the reason, never a crash, a hang or garbage.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evshm.h"
#include "msgpat.h"
#include "os.h"
#include "util.h"

#define HOSTILE TU_PEER("peer_topic_hostile")
#define HONEST TU_PEER("peer_topic")
#define RING 65536u

struct proc {
	pid_t pid;
	int report;
};

static void spawn(struct proc *pr, const char *exe, char *const argv[])
{
	struct tu_spawn_opts so = { .report_fd = &pr->report };

	tu_assert_res(tu_spawn_ex(&pr->pid, exe, argv, &so), 0);
}

static int finish(struct proc *pr, char *line, size_t n)
{
	int status;

	line[0] = '\0';
	tu_read_line(pr->report, line, n, 60000);
	tu_assert_res(tu_wait(pr->pid, 60000, &status), 0);
	os_close(pr->report);
	return tu_exit_code(status);
}

/* Serve until @pr says its first line (joined / subscribed). */
static void admit(struct evshm_pub *p, struct proc *pr)
{
	char line[64];

	for (int i = 0; i < 2000; i++) {
		if (tu_read_line(pr->report, line, sizeof(line), 0) > 0)
			return;
		assert_true(evshm_pub_serve(p, 5) >= 0);
	}
	fail_msg("pid %d never joined", (int)pr->pid);
}

/* Publish @n messages; every call bounded by @timeout_ms, and must not
 * take longer than that plus a generous scheduling slack. */
static void publish(struct evshm_pub *p, uint64_t n, int timeout_ms)
{
	uint8_t buf[256];

	for (uint64_t seq = 0; seq < n; seq++) {
		size_t len = pat_len(seq, sizeof(buf));
		uint64_t t0 = os_now_ns();
		int res;

		pat_fill(buf, len, seq);
		res = evshm_pub_send(p, buf, len, timeout_ms);
		if ((os_now_ns() - t0) / 1000000u > (uint64_t)timeout_ms + 500u)
			fail_msg("evshm_pub_send(%d ms) took %" PRIu64 " ms",
				 timeout_ms, (os_now_ns() - t0) / 1000000u);
		tu_assert_res(res, 0);
	}
}

/* A hostile subscriber next to two honest ones.  The stall bound only
 * catches a hang here (an honest subscriber that never wakes, which the
 * publish timeout would catch too, a moment later): no process may be
 * dropped for not getting a CPU on a loaded machine (a bound of 300 ms
 * dropped an honest one, or the flooder, at load 20). */
static void hostile_sub(const char *mode, uint64_t dropped)
{
	struct evshm_opts o = { .ring_size = RING, .stall_timeout_ms = 3000 };
	struct proc honest[2], bad;
	struct evshm_pub *p;
	char name[108], line[128];

	tu_unique_name(name, sizeof(name), "thost", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *hv[] = { "peer_topic", name, "--n=20000", "--max=256", NULL };
	char *bv[] = { "peer_topic_hostile", "sub", name, (char *)mode, NULL };
	for (int i = 0; i < 2; i++) {
		spawn(&honest[i], HONEST, hv);
		admit(p, &honest[i]);
	}
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	publish(p, 20000, 5000);
	for (int i = 0; i < 2; i++) {
		tu_assert_res(finish(&honest[i], line, sizeof(line)), 0);
		assert_string_equal(line, "got 20000 first 0 last 19999 lost 0");
	}
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
	struct evshm_pub_stats st;
	evshm_pub_stats(p, &st);
	assert_int_equal(st.dropped, dropped);
	evshm_pub_close(p);
}

static void test_sub_head_ahead(void **state)
{
	(void)state;
	hostile_sub("head-ahead", 1);
}

static void test_sub_head_unaligned(void **state)
{
	(void)state;
	hostile_sub("head-unaligned", 1);
}

static void test_sub_write_memory(void **state)
{
	(void)state;
	/* Every attempt fails; it leaves, and nobody noticed. */
	hostile_sub("write-memory", 0);
}

static void test_sub_bell_flood(void **state)
{
	(void)state;
	hostile_sub("bell-flood", 0);
}

/*
 * A subscriber tries to make the publisher's kicks block: it clears
 * O_NONBLOCK on the kicking end of its bell (the publisher shares that
 * description), fills the bell and never reads it, and splices from it
 * into a full blocking pipe, for 10 s.  With pipe bells the splice held
 * the pipe's mutex and the publisher's next kick waited for it in
 * uninterruptible sleep (docs/protocol.md 6.1); a kick is now a send with
 * MSG_DONTWAIT, which takes no lock the subscriber can hold.  Every publish
 * goes on at once: the 3 s of publishing take well under the attack's 10 s
 * (the bound is a hang bound with slack, not a timing).
 */
static void test_sub_splice_lock(void **state)
{
	struct evshm_opts o = { .ring_size = RING, .policy = EVSHM_LATEST };
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];

	(void)state;
	tu_unique_name(name, sizeof(name), "tsplice", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "splice-lock", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	tu_assert_res(tu_read_line(bad.report, line, sizeof(line), 30000) > 0, 1);
	assert_string_equal(line, "locked");
	/* For 3 s or so, every publish kicking it. */
	uint64_t t0 = os_now_ns();
	for (int i = 0; i < 300; i++) {
		publish(p, 1, 100);
		usleep(10000);
	}
	assert_true(os_now_ns() - t0 < 8000000000u);
	evshm_pub_close(p);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
}

/*
 * The kicking end of a subscriber's bell is a description the subscriber
 * shares with us (it made the pair).  It queues a byte into it before the
 * HELLO and then holds the socket's read lock: a recv from its own copy
 * whose copy to user memory faults on a page that a userfaultfd never
 * fills.  Our close of that end must not read it (a drain, or even a peek,
 * waits for that lock uninterruptibly, for as long as the subscriber
 * likes): evshm_pub_close() returns at once, while the subscriber holds
 * the lock for 6 s (a hang bound with slack, not a timing).  Publishing,
 * which kicks it meanwhile, goes on too: a kick takes no read lock.
 */
static void close_bound(const char *mode, const char *says)
{
	struct evshm_opts o = { .ring_size = RING, .policy = EVSHM_LATEST };
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];

	tu_unique_name(name, sizeof(name), "tclose", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, (char *)mode, NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	tu_assert_res(tu_read_line(bad.report, line, sizeof(line), 30000) > 0, 1);
	if (!strcmp(line, "skip")) {
		evshm_pub_close(p);
		tu_assert_res(finish(&bad, line, sizeof(line)), 0);
		skip();
	}
	assert_string_equal(line, says);
	publish(p, 100, 1000);
	uint64_t t0 = os_now_ns();
	evshm_pub_close(p);
	uint64_t ms = (os_now_ns() - t0) / 1000000u;
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
	if (ms > 3000)
		fail_msg("%s: evshm_pub_close() took %" PRIu64 " ms", mode, ms);
}

static void test_sub_kick_lock(void **state)
{
	(void)state;
	close_bound("kick-lock", "locked");
}

/*
 * The kicking end of a subscriber's bell holds a message of no length with
 * a lingering TCP socket (a byte sent MSG_OOB with it, then taken back out
 * of band: its skb stays queued, with the socket), and the subscriber
 * closed its copy: ours is the last, and its release runs that of every
 * descriptor queued in it, in our thread (the lingering socket's waits
 * for its linger time, here until the subscriber exits 6 s later).
 * MSG_PEEK and SIOCINQ call that queue empty; the kernel's count of
 * queued descriptors does not.  evshm_pub_close() returns at once.
 */
static void test_sub_kick_oob(void **state)
{
	(void)state;
	close_bound("kick-oob", "queued");
}

/*
 * A joiner whose HELLO brings a pipe's write end as its bell, while one of
 * its threads holds that pipe's mutex (a splice from the pipe into a full
 * blocking socket) and it closed its own copy.  We refuse the bell and
 * close what the HELLO brought: the last close of a pipe end takes the
 * pipe's mutex, uninterruptibly, for as long as the joiner holds it (until
 * we are done here).  Serving must stay within its bounds all the same.
 *
 * Each step waits for the joiner's word, not for a time: it says "ready"
 * once its splice holds the mutex; we stop serving and let it send (its
 * copy must be closed before ours, or its own close would be the last and
 * wait for its own splice); it says "sent" once its copy is closed, and
 * "answered" once we refused it.  A serve that waited for the mutex would
 * last until the joiner lets go, which it does only when we say so (or
 * after 30 s): far beyond the bound of 5 s, which only hangs exceed.
 */
static void test_sub_pipe_lock(void **state)
{
	struct evshm_opts o = { .ring_size = RING, .handshake_timeout_ms = 60000 };
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];

	(void)state;
	tu_unique_name(name, sizeof(name), "tplock", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "pipe-lock", NULL };
	spawn(&bad, HOSTILE, bv);
	/* Admit it, until it is ready (however long that takes here). */
	uint64_t t0 = os_now_ns(), answered = 0, worst = 0;
	while (tu_read_line(bad.report, line, sizeof(line), 0) <= 0) {
		assert_true(os_now_ns() - t0 < 60000000000u);
		assert_true(evshm_pub_serve(p, 5) >= 0);
	}
	assert_string_equal(line, "ready");
	assert_int_equal(kill(bad.pid, SIGUSR1), 0);
	tu_assert_res(tu_read_line(bad.report, line, sizeof(line), 60000) > 0, 1);
	assert_string_equal(line, "sent");
	/* Serve until it was refused, then 1.5 s more while it holds the
	 * mutex (our close of its end is queued meanwhile). */
	t0 = os_now_ns();
	while (os_now_ns() - t0 < 60000000000u) {
		struct pollfd pfd = { .fd = bad.report, .events = POLLIN };
		uint64_t t = os_now_ns();

		assert_true(evshm_pub_serve(p, 5) >= 0);
		t = (os_now_ns() - t) / 1000000u;
		worst = t > worst ? t : worst;
		if (!answered && poll(&pfd, 1, 0) == 1) {
			tu_assert_res(tu_read_line(bad.report, line,
						   sizeof(line), 5000) > 0, 1);
			assert_string_equal(line, "answered");
			answered = os_now_ns();
		}
		if (answered && os_now_ns() - answered > 1500000000u)
			break;
	}
	if (worst > 5000)
		fail_msg("evshm_pub_serve(5 ms) took %" PRIu64 " ms", worst);
	assert_true(answered != 0);
	assert_int_equal(kill(bad.pid, SIGUSR1), 0);
	evshm_pub_close(p);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
}

/*
 * A reliable subscriber that never reads a message but moves its head on
 * by 16 bytes, into the middle of a record, more often than the stall
 * bound: each move looked like progress and restarted its clock, so it
 * held every publish for (record size / 16) bounds instead of one.  A
 * head must land on the end of a record (docs/protocol.md 8.2): a blocked
 * publish goes on within its timeout, and the creeper is dropped.
 */
static void test_sub_head_creep(void **state)
{
	struct evshm_opts o = { .ring_size = RING, .stall_timeout_ms = 1000 };
	struct evshm_pub_stats st;
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];
	static uint8_t buf[4000];

	(void)state;
	tu_unique_name(name, sizeof(name), "tcreep", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "head-creep", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	/* The ring holds 16 of them; a stall bound of 1 s, each send may
	 * wait 4 s (a creep through one record takes 250 moves). */
	for (int i = 0; i < 40; i++) {
		uint64_t t0 = os_now_ns();
		int res = evshm_pub_send(p, buf, sizeof(buf), 4000);

		if (res < 0)
			fail_msg("send %d: %s after %" PRIu64 " ms", i,
				 tu_errname(res), (os_now_ns() - t0) / 1000000u);
	}
	evshm_pub_stats(p, &st);
	assert_int_equal(st.dropped, 1);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
	assert_string_equal(line, "dropped 2");
	evshm_pub_close(p);
}

/*
 * A latest subscriber asleep below the tail is woken when the horizon
 * passes its head.  An honest one gets there by a jump to an oldest torn
 * from two updates (oldest_seq stored, oldest and the horizon not yet: a
 * publisher preempted between those stores, 8.5): the record at that
 * oldest carries an older number than the one it then expects, so it
 * sleeps there, and no later move of the tail passes its event.  The
 * hostile subscriber plays that state; the publisher used to let it sleep
 * through every lap.
 */
static void test_sub_asleep_lapped(void **state)
{
	struct evshm_opts o = { .ring_size = RING, .policy = EVSHM_LATEST };
	static uint8_t buf[1000]; /* a record of 1024 bytes */
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];

	(void)state;
	tu_unique_name(name, sizeof(name), "tlapped", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	for (int i = 0; i < 3; i++)
		tu_assert_res(evshm_pub_send(p, buf, sizeof(buf), 0), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "sleep-lapped", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	for (int i = 0; i < 2; i++)
		tu_assert_res(evshm_pub_send(p, buf, sizeof(buf), 0), 0);
	assert_true(tu_read_line(bad.report, line, sizeof(line), 20000) > 0);
	assert_string_equal(line, "asleep");
	/* Two laps: the horizon passes its head in the second. */
	for (unsigned i = 0; i < 2 * RING / 1024; i++)
		tu_assert_res(evshm_pub_send(p, buf, sizeof(buf), 0), 0);
	int rc = finish(&bad, line, sizeof(line));
	assert_string_equal(line, "kicked");
	tu_assert_res(rc, 0);
	evshm_pub_close(p);
}

/*
 * max_clients counts at admission, before the HELLO: four connections
 * admitted while there was room for one, then four HELLOs.  The limit
 * holds (the others get -EUSERS), and no subscriber is stored past the
 * array it sized (ASan).
 */
static void test_sub_limit_at_hello(void **state)
{
	struct evshm_opts o = { .ring_size = RING, .max_clients = 1 };
	struct evshm_pub_stats st;
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[128];
	int i;

	(void)state;
	tu_unique_name(name, sizeof(name), "tlimit", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "join-four", NULL };
	spawn(&bad, HOSTILE, bv);
	for (i = 0; i < 2000; i++) {
		if (tu_read_line(bad.report, line, sizeof(line), 0) > 0)
			break;
		assert_true(evshm_pub_serve(p, 5) >= 0);
	}
	assert_true(i < 2000);
	assert_string_equal(line, "joined 1 full 3");
	evshm_pub_stats(p, &st);
	assert_int_equal(st.subscribers, 1);
	evshm_pub_close(p);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
}

/*
 * A subscriber that closes its bell to us (it hangs up) but keeps its
 * socket: the bell's hang-up is level-triggered in evshm_pub_fd(), which an
 * event loop would find readable for ever (a busy loop, at no cost to the
 * subscriber).  The publisher takes the hang-up for the subscriber's
 * leaving, as it takes the socket's.
 */
static void test_sub_bell_hangup(void **state)
{
	struct evshm_opts o = { .ring_size = RING };
	struct evshm_pub *p;
	struct evshm_pub_stats st;
	struct proc bad;
	char name[108], line[128];
	struct pollfd pfd = { .events = POLLIN };
	int i;

	(void)state;
	tu_unique_name(name, sizeof(name), "thup", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	pfd.fd = evshm_pub_fd(p);
	char *bv[] = { "peer_topic_hostile", "sub", name, "bell-hup", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	tu_assert_res(tu_read_line(bad.report, line, sizeof(line), 30000) > 0, 1);
	assert_string_equal(line, "closed");
	/* What an event loop does: serve while the descriptor is readable. */
	for (i = 0; i < 100 && poll(&pfd, 1, 0) == 1; i++)
		assert_true(evshm_pub_serve(p, 0) >= 0);
	if (i == 100)
		fail_msg("evshm_pub_fd() stays readable: %d subscriber(s)",
			 evshm_pub_serve(p, 0));
	evshm_pub_stats(p, &st);
	assert_int_equal(st.subscribers, 0);
	assert_int_equal(st.left, 1);
	publish(p, 100, 1000);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
	evshm_pub_close(p);
}

/* A hostile publisher: our subscriber gets -EPROTO with the reason
 * (after @good honest messages). */
static void hostile_pub_n(const char *mode, int at_open, int good,
			  const char *reason)
{
	struct evshm_sub *s = NULL;
	struct proc pr;
	char name[108], line[64], buf[RING];
	int res;

	tu_unique_name(name, sizeof(name), "tpub", true);
	char *argv[] = { "peer_topic_hostile", "pub", name, (char *)mode, NULL };
	spawn(&pr, HOSTILE, argv);
	tu_assert_res(tu_read_line(pr.report, line, sizeof(line), 30000) > 0, 1);
	res = evshm_sub_open(&s, name, NULL, 10000);
	if (at_open) {
		tu_assert_res(res, at_open);
	} else {
		tu_assert_res(res, 0);
		for (int i = 0; i < good; i++)
			tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 10000), 5);
		uint64_t t0 = os_now_ns();
		bool storm = !strcmp(mode, "horizon-storm");
		do {
			res = evshm_sub_recv(s, buf, sizeof(buf), 3000);
			/* A whole record with the seq it wants: not garbage,
			 * whenever it comes (the last one too). */
			if (storm && res >= 0)
				res = -EAGAIN;
		} while (storm && res == -EAGAIN &&
			 os_now_ns() - t0 < 2500000000u);
		if (!strcmp(mode, "horizon-storm")) {
			/* Never garbage: an error or nothing. */
			assert_true(res == -EPROTO || res == -ETIMEDOUT ||
				    res == -EAGAIN || res == -EPIPE);
		} else {
			tu_assert_res(res, -EPROTO);
			assert_non_null(evshm_sub_error_reason(s));
			if (reason)
				assert_string_equal(evshm_sub_error_reason(s),
						    reason);
			/* Sticky. */
			tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0),
				      -EPROTO);
		}
	}
	evshm_sub_close(s);
	tu_assert_res(finish(&pr, line, sizeof(line)), 0);
}

static void hostile_pub(const char *mode, int at_open, const char *reason)
{
	hostile_pub_n(mode, at_open, 0, reason);
}

static void test_pub_ring_lie(void **state)
{
	(void)state;
	hostile_pub("ring-lie", -EPROTO, NULL);
}

static void test_pub_start_unaligned(void **state)
{
	(void)state;
	hostile_pub("start-unaligned", -EPROTO, NULL);
}

static void test_pub_records(void **state)
{
	(void)state;
	hostile_pub("rec-len", 0, "ring: record longer than the largest message");
	hostile_pub("rec-flags", 0, "ring: reserved record flags set");
	hostile_pub("rec-fds", 0,
		    "descriptors sent on a channel that refuses them");
	hostile_pub("rec-fit", 0, "ring: record runs past the end of the ring");
}

static void test_pub_latest_games(void **state)
{
	(void)state;
	hostile_pub_n("oldest-back", 0, 1, "topic: oldest record index invalid");
	hostile_pub_n("oldest-seq-back", 0, 1,
		      "topic: oldest record index invalid");
	hostile_pub("horizon-storm", 0, NULL);
}

/*
 * Latest: a publisher whose horizon always lies above the oldest record it
 * names makes every jump "overwritten meanwhile": not a violation (an
 * honest one may lap us as fast as we jump), but no call may outlast its
 * timeout, and nothing is delivered or counted.
 */
static void test_pub_lap_forever(void **state)
{
	struct evshm_sub *s = NULL;
	struct proc pr;
	char name[108], line[64], buf[64];

	(void)state;
	tu_unique_name(name, sizeof(name), "tpub", true);
	char *argv[] = { "peer_topic_hostile", "pub", name, "lap-forever",
			 NULL };
	spawn(&pr, HOSTILE, argv);
	tu_assert_res(tu_read_line(pr.report, line, sizeof(line), 30000) > 0, 1);
	tu_assert_res(evshm_sub_open(&s, name, NULL, 10000), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 10000), 5);
	/* For 0.2 s, while the publisher goes lapped: nothing, at once. */
	uint64_t t0 = os_now_ns();
	int res;
	do
		res = evshm_sub_recv(s, buf, sizeof(buf), 0);
	while (res == -EAGAIN && os_now_ns() - t0 < 200000000u);
	tu_assert_res(res, -EAGAIN);
	t0 = os_now_ns();
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 300), -ETIMEDOUT);
	/* Its timeout, plus a generous slack for a loaded machine. */
	assert_true(os_now_ns() - t0 < 10000000000u);
	const void *ptr;
	size_t len;
	tu_assert_res(evshm_sub_peek(s, &ptr, &len, 50), -ETIMEDOUT);
	tu_assert_res(evshm_sub_release(s), -EINVAL);
	assert_int_equal(evshm_sub_lost(s), 0);
	evshm_sub_close(s);
	tu_assert_res(finish(&pr, line, sizeof(line)), 0);
}

/* Reliable, dropped before anything was overwritten: the subscriber must
 * learn it at its next copy, not go on reading records the publisher no
 * longer keeps for it (the last one written over). */
static void test_pub_drop_early(void **state)
{
	struct evshm_sub *s = NULL;
	struct proc pr;
	char name[108], line[64], buf[64];
	int res;

	(void)state;
	tu_unique_name(name, sizeof(name), "tpub", true);
	char *argv[] = { "peer_topic_hostile", "pub", name, "drop-early", NULL };
	spawn(&pr, HOSTILE, argv);
	tu_assert_res(tu_read_line(pr.report, line, sizeof(line), 30000) > 0, 1);
	tu_assert_res(evshm_sub_open(&s, name, NULL, 10000), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 10000), 4);
	assert_memory_equal(buf, "good", 4);
	/* Whatever comes next is the end or a good copy, never "BAD"; and
	 * the end says it was us. */
	for (int i = 0; i < 3; i++) {
		res = evshm_sub_recv(s, buf, sizeof(buf), 3000);
		if (res < 0)
			break;
		assert_int_equal(res, 4);
		assert_memory_equal(buf, "good", 4);
	}
	tu_assert_res(res, -ECONNABORTED);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 0), -ECONNABORTED);
	evshm_sub_close(s);
	tu_assert_res(finish(&pr, line, sizeof(line)), 0);
}

/*
 * A subscriber that puts its bell in 100,000 epoll entries makes each kick
 * of the publisher walk them all (tens of ms in our thread, for every
 * subscriber's message).  Four slow kicks in a row and it is dropped;
 * the publishes go on.  Bounded in count (200 publishes), not timed.
 */
static void test_sub_bell_watch(void **state)
{
	struct evshm_opts o = { .ring_size = RING };
	struct evshm_pub_stats st;
	struct evshm_pub *p;
	struct proc bad;
	char name[108], line[64];
	uint64_t t0;

	(void)state;
	tu_unique_name(name, sizeof(name), "twatch", true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "bell-watch", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	tu_assert_res(tu_read_line(bad.report, line, sizeof(line), 60000) > 0, 1);
	assert_string_equal(line, "watching");
	t0 = os_now_ns();
	for (int i = 0; i < 200; i++) {
		evshm_pub_stats(p, &st);
		if (st.dropped)
			break;
		tu_assert_res(evshm_pub_send(p, "x", 1, 1000), 0);
		/* Let it catch up and arm again. */
		usleep(2000);
	}
	evshm_pub_stats(p, &st);
	print_message("dropped %" PRIu64 " after %" PRIu64 " ms, %" PRIu64
		      " kicks\n", st.dropped, (os_now_ns() - t0) / 1000000u,
		      st.kicks_sent);
	assert_int_equal(st.dropped, 1);
	tu_assert_res(finish(&bad, line, sizeof(line)), 0);
	evshm_pub_close(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sub_head_ahead),
		cmocka_unit_test(test_sub_head_unaligned),
		cmocka_unit_test(test_sub_write_memory),
		cmocka_unit_test(test_sub_bell_flood),
		cmocka_unit_test(test_sub_bell_hangup),
		cmocka_unit_test(test_sub_bell_watch),
		cmocka_unit_test(test_sub_limit_at_hello),
		cmocka_unit_test(test_sub_asleep_lapped),
		cmocka_unit_test(test_sub_head_creep),
		cmocka_unit_test(test_sub_splice_lock),
		cmocka_unit_test(test_sub_kick_lock),
		cmocka_unit_test(test_sub_kick_oob),
		cmocka_unit_test(test_sub_pipe_lock),
		cmocka_unit_test(test_pub_ring_lie),
		cmocka_unit_test(test_pub_start_unaligned),
		cmocka_unit_test(test_pub_records),
		cmocka_unit_test(test_pub_latest_games),
		cmocka_unit_test(test_pub_lap_forever),
		cmocka_unit_test(test_pub_drop_early),
	};
	return TU_RUN(tests, argc, argv);
}
