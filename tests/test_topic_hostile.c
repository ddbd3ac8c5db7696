/* SPDX-License-Identifier: MIT */
/*
 * Hostile topic peers (peer_topic_hostile, built from the internals):
 * hostile subscribers harm nobody else (the publisher and the honest
 * subscribers go on, timeouts hold); a hostile publisher gives its
 * subscribers -EPROTO with the reason, never a crash, a hang or garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

	/* 30 s, by the clock (a serve that returns early must not shorten
	 * the bound). */
	for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < 30000;) {
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

/* A head where a record started a lap ago, inside one now: a head must
 * end a record of what the ring holds. */
static void test_sub_head_stale(void **state)
{
	(void)state;
	hostile_sub("head-stale", 1);
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

/* A latest topic at a fresh name (into @name) and messages of 1000 bytes,
 * records of 1024, for the hostile subscribers below. */
static uint8_t kb_msg[1000];

static struct evshm_pub *latest_pub(char name[108], const char *tag)
{
	struct evshm_opts o = { .ring_size = RING, .policy = EVSHM_LATEST };
	struct evshm_pub *p;

	tu_unique_name(name, 108, tag, true);
	tu_assert_res(evshm_pub_open(&p, name, &o), 0);
	return p;
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
	struct proc bad;
	char name[108], line[128];
	struct evshm_pub *p = latest_pub(name, "tlapped");

	(void)state;
	for (int i = 0; i < 3; i++)
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
	char *bv[] = { "peer_topic_hostile", "sub", name, "sleep-lapped", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	for (int i = 0; i < 2; i++)
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
	assert_true(tu_read_line(bad.report, line, sizeof(line), 20000) > 0);
	assert_string_equal(line, "asleep");
	/* Two laps: the horizon passes its head in the second. */
	for (unsigned i = 0; i < 2 * RING / 1024; i++)
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
	int rc = finish(&bad, line, sizeof(line));
	assert_string_equal(line, "kicked");
	tu_assert_res(rc, 0);
	evshm_pub_close(p);
}

/*
 * A latest subscriber that armed below the horizon is kicked once per
 * value of its data_event (8.7).  The value carries a tag of four bits:
 * sixteen armings at one head that no commit saw between them bring the
 * last kicked value back.  The publisher must kick it again within 1024
 * commits; it used to never kick it again, and a subscriber waiting in an
 * event loop slept through everything published.
 */
static void test_sub_rearm_same(void **state)
{
	struct proc bad;
	char name[108], line[128];
	struct evshm_pub *p = latest_pub(name, "trearm");

	(void)state;
	char *bv[] = { "peer_topic_hostile", "sub", name, "rearm-same", NULL };
	spawn(&bad, HOSTILE, bv);
	admit(p, &bad);
	/* Lap it: the horizon passes its head (0). */
	for (unsigned i = 0; i < 2 * RING / 1024; i++)
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
	assert_true(tu_read_line(bad.report, line, sizeof(line), 20000) > 0);
	assert_string_equal(line, "armed");
	/* The next commit kicks that arming.  Then nothing is published
	 * while it arms sixteen times more. */
	line[0] = '\0';
	for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < 20000;) {
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
		if (tu_read_line(bad.report, line, sizeof(line), 5) > 0)
			break;
	}
	assert_string_equal(line, "kicked");
	assert_int_equal(kill(bad.pid, SIGUSR1), 0);
	assert_true(tu_read_line(bad.report, line, sizeof(line), 20000) > 0);
	assert_string_equal(line, "rearmed");
	for (unsigned i = 0; i < 3 * 1024; i++)
		tu_assert_res(evshm_pub_send(p, kb_msg, sizeof(kb_msg), 0), 0);
	int rc = finish(&bad, line, sizeof(line));
	assert_string_equal(line, "kicked again");
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

/* Start a stale-cue publisher and subscribe; *fd: evshm_sub_fd(). */
static struct evshm_sub *join_cued(struct proc *pr, const char *prefix,
				   int *fd)
{
	struct evshm_sub *s = NULL;
	char name[108], line[64];

	tu_unique_name(name, sizeof(name), prefix, true);
	char *argv[] = { "peer_topic_hostile", "pub", name, "stale-cue", NULL };
	spawn(pr, HOSTILE, argv);
	tu_assert_res(tu_read_line(pr->report, line, sizeof(line), 30000) > 0, 1);
	tu_assert_res(evshm_sub_open(&s, name, NULL, 10000), 0);
	*fd = evshm_sub_fd(s);
	assert_true(*fd >= 0);
	return s;
}

/* Tell the stale-cue publisher to overwrite what we peeked. */
static void cue(struct proc *pr, int sig, const char *says)
{
	char line[64];

	assert_int_equal(kill(pr->pid, sig), 0);
	tu_assert_res(tu_read_line(pr->report, line, sizeof(line), 30000) > 0, 1);
	assert_string_equal(line, says);
}

/*
 * Latest, zero copy: every message we peek is overwritten before we
 * release it (the publisher publishes on our cue, in between: no race).
 * A peek with timeout 0 must give up (-EAGAIN) after a bounded number of
 * such messages in a row (17: 16, then one more after it armed), though
 * there always is a message to peek, and the descriptor must then become
 * readable (the publisher's kick for the arming, protocol.md 8.7),
 * round after round.  Then the last message comes, and every message is
 * received or counted lost.  Deterministic; 5 s per wait is a hang
 * bound.
 */
static void test_pub_stale_cue(void **state)
{
	enum { LEN = RING / 2 - 16 };
	static uint8_t buf[RING];
	struct evshm_sub *s = NULL;
	struct proc pr;
	char line[64];
	const void *ptr;
	size_t len;
	uint64_t got = 0, seq = 0;
	int r, n;

	(void)state;
	struct pollfd pfd = { .events = POLLIN };
	s = join_cued(&pr, "tcue", &pfd.fd);
	for (int round = 0, i = 0; round < 3; i++) {
		/* At the start, until the first message is there. */
		assert_true(i < 100);
		for (n = 0; n < 200; n++) {
			r = evshm_sub_peek(s, &ptr, &len, 0);
			if (r == -EAGAIN)
				break;
			tu_assert_res(r, 0);
			assert_int_equal(len, LEN);
			cue(&pr, SIGUSR1, "moved");
			tu_assert_res(evshm_sub_release(s), -ESTALE);
		}
		print_message("round %d: -EAGAIN after %d overwritten\n",
			      round, n);
		round += n > 0;
		if (n > 32)
			fail_msg("evshm_sub_peek(0) went on after %d messages "
				 "overwritten in a row", n);
		if (poll(&pfd, 1, 5000) != 1)
			fail_msg("no wakeup in 5 s after -EAGAIN (round %d)",
				 round);
	}
	cue(&pr, SIGUSR2, "last");
	for (;;) {
		r = evshm_sub_recv(s, buf, sizeof(buf), 0);
		if (r == -EAGAIN) {
			if (poll(&pfd, 1, 5000) != 1)
				fail_msg("no wakeup in 5 s for the last message");
			continue;
		}
		assert_int_equal(r, LEN);
		memcpy(&seq, buf, 8);
		assert_memory_equal(buf + LEN - 8, &seq, 8);
		got++;
		if (!memcmp(buf + 8, "last", 4))
			break;
	}
	assert_int_equal(got + evshm_sub_lost(s), seq);
	evshm_sub_close(s);
	tu_assert_res(finish(&pr, line, sizeof(line)), 0);
}

/*
 * The same for evshm_sub_recv(), whose tries are inside the library: its
 * copy into our buffer faults (a userfaultfd), and we cue the publisher
 * before we let the copy go on, so that every copy is overwritten while
 * it is made.  After each fault we also unmap the message's other end
 * (its first or last page), so that the next copy faults again (no
 * longer once we stopped cueing: the copies then must come whole).
 */
struct forcer {
	int uffd;
	size_t pg;
	uint8_t *first, *last; /* the pages a message's copy starts and ends on */
	void *src;             /* what a faulting page is filled with */
	struct proc *pr;
	pthread_mutex_t lock;  /* the cues, and the publisher's lines */
	_Atomic bool stop;     /* no more cues: let every copy go on */
	_Atomic bool quit;
	_Atomic uint64_t cues;
	uint64_t stop_at;      /* a hang bound: stop cueing by then */
	int err;               /* what went wrong, as a line number */
};

static void *force_main(void *arg)
{
	struct forcer *f = arg;
	struct pollfd pfd = { .fd = f->uffd, .events = POLLIN };
	struct uffd_msg m;
	char line[64];

	while (!atomic_load(&f->quit)) {
		if (poll(&pfd, 1, 50) != 1 ||
		    read(f->uffd, &m, sizeof(m)) != (ssize_t)sizeof(m) ||
		    m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint8_t *at = (uint8_t *)(uintptr_t)(m.arg.pagefault.address &
						     ~(uint64_t)(f->pg - 1));
		bool cue;
		pthread_mutex_lock(&f->lock);
		if (os_now_ns() > f->stop_at)
			atomic_store(&f->stop, true);
		if ((cue = !atomic_load(&f->stop))) {
			if (kill(f->pr->pid, SIGUSR1) < 0 ||
			    tu_read_line(f->pr->report, line, sizeof(line),
					 30000) <= 0 ||
			    strcmp(line, "moved") != 0) {
				f->err = __LINE__;
				atomic_store(&f->stop, true);
			}
			atomic_fetch_add(&f->cues, 1);
		}
		pthread_mutex_unlock(&f->lock);
		/* The copy waits meanwhile: nothing else writes the buffer.
		 * What it wrote there goes too: it is overwritten anyway. */
		if (cue && madvise(at == f->first ? f->last : f->first, f->pg,
				   MADV_DONTNEED) < 0)
			f->err = __LINE__;
		struct uffdio_copy c = { .dst = (uintptr_t)at,
					 .src = (uintptr_t)f->src, .len = f->pg };
		if (ioctl(f->uffd, UFFDIO_COPY, &c) < 0) {
			struct uffdio_range r = { (uintptr_t)at, f->pg };
			ioctl(f->uffd, UFFDIO_WAKE, &r);
		}
	}
	return NULL;
}

/* A userfaultfd for faults of user code (what this test needs), or -1. */
static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
#ifdef UFFD_USER_MODE_ONLY
	int fd = (int)syscall(SYS_userfaultfd,
			      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
#else
	int fd;
#endif
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) < 0)
		fd = os_close(fd);
	return fd;
}

/*
 * Latest: every copy evshm_sub_recv() makes is overwritten as it is made.
 * A call with timeout 0 must end (-EAGAIN) having skipped a bounded number
 * of messages (it used to copy again for as long as the publisher went
 * on), and the descriptor must then become readable, as in
 * test_pub_stale_cue.  Deterministic: the cues, not a race.  2 s per call
 * (the cues stop after 3 s: before the change the first call took that
 * long) and 5 s per wait are hang bounds; 64 skipped per call is a count
 * (17 tries, each skipping one message).
 */
static void test_pub_stale_copy(void **state)
{
	enum { LEN = RING / 2 - 16, ROUNDS = 3 };
	static struct forcer f;
	struct evshm_sub *s = NULL;
	struct proc pr;
	char line[64];
	uint64_t got = 0, ends = 0, worst_lost = 0, worst_ns = 0, seq = 0;
	uint64_t prev = 0, cued = 0;
	pthread_t t;
	int r;

	(void)state;
	f = (struct forcer){ .pr = &pr, .pg = (size_t)sysconf(_SC_PAGESIZE) };
	if ((f.uffd = uffd_open()) < 0)
		skip();
	uint8_t *buf = mmap(NULL, RING, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(buf != MAP_FAILED);
	struct uffdio_register reg = { .range = { (uintptr_t)buf, RING },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	assert_int_equal(ioctl(f.uffd, UFFDIO_REGISTER, &reg), 0);
	f.first = buf;
	f.last = buf + ((LEN - 1) & ~(f.pg - 1));
	f.src = calloc(1, f.pg);
	assert_non_null(f.src);
	f.stop_at = os_now_ns() + 3000000000u;
	pthread_mutex_init(&f.lock, NULL);

	struct pollfd pfd = { .events = POLLIN };
	s = join_cued(&pr, "tcopy", &pfd.fd);
	assert_int_equal(pthread_create(&t, NULL, force_main, &f), 0);
	for (int i = 0; i < 1000; i++) {
		uint64_t lost = evshm_sub_lost(s), t0 = os_now_ns();

		r = evshm_sub_recv(s, buf, RING, 0);
		uint64_t ns = os_now_ns() - t0;
		lost = evshm_sub_lost(s) - lost;
		worst_ns = ns > worst_ns ? ns : worst_ns;
		worst_lost = lost > worst_lost ? lost : worst_lost;
		if (ns > 2000000000u || lost > 64 || f.err)
			break;
		if (r >= 0) {
			if (r != LEN)
				break;
			memcpy(&seq, buf, 8);
			/* Never torn: it starts and ends with its number. */
			if (memcmp(buf + LEN - 8, &seq, 8) || seq <= prev)
				break;
			prev = seq;
			got++;
			if (!memcmp(buf + 8, "last", 4))
				break;
			continue;
		}
		if (r != -EAGAIN)
			break;
		/* An end after copies (not the first call's, perhaps). */
		uint64_t c = atomic_load(&f.cues);
		bool after = c != cued;
		cued = c;
		if (after && ++ends == ROUNDS) {
			pthread_mutex_lock(&f.lock);
			atomic_store(&f.stop, true);
			if (kill(pr.pid, SIGUSR2) < 0 ||
			    tu_read_line(pr.report, line, sizeof(line),
					 30000) <= 0)
				line[0] = '\0';
			pthread_mutex_unlock(&f.lock);
			if (strcmp(line, "last"))
				break;
		}
		if (poll(&pfd, 1, 5000) != 1) {
			r = -ETIMEDOUT; /* no wakeup */
			break;
		}
	}
	atomic_store(&f.quit, true);
	pthread_join(t, NULL);
	f.uffd = os_close(f.uffd); /* faults on buf are the kernel's again */
	print_message("%" PRIu64 " copies overwritten on cue; %" PRIu64
		      " calls ended by -EAGAIN; the longest call %" PRIu64
		      " us, skipping %" PRIu64 " at most; %" PRIu64
		      " of %" PRIu64 " received (%d)\n", atomic_load(&f.cues),
		      ends, worst_ns / 1000u, worst_lost, got, seq, r);
	assert_int_equal(f.err, 0);
	if (worst_ns > 2000000000u || worst_lost > 64)
		fail_msg("evshm_sub_recv(0) went on");
	tu_assert_res(r, LEN);
	assert_memory_equal(buf + 8, "last", 4);
	assert_int_equal(ends, ROUNDS);
	assert_int_equal(got + evshm_sub_lost(s), seq);
	evshm_sub_close(s);
	tu_assert_res(finish(&pr, line, sizeof(line)), 0);
	munmap(buf, RING);
	free(f.src);
	pthread_mutex_destroy(&f.lock);
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

/* Reliable, dropped, and the next record already overwritten and
 * published when the subscriber looks (its receive in one go, not its
 * wait): the drop count tells it, never the record's "BAD". */
static void test_pub_drop_then_whole(void **state)
{
	struct evshm_sub *s = NULL;
	struct proc pr;
	char name[108], line[64], buf[64];

	(void)state;
	tu_unique_name(name, sizeof(name), "tpub", true);
	char *argv[] = { "peer_topic_hostile", "pub", name, "drop-bad", NULL };
	spawn(&pr, HOSTILE, argv);
	tu_assert_res(tu_read_line(pr.report, line, sizeof(line), 30000) > 0, 1);
	tu_assert_res(evshm_sub_open(&s, name, NULL, 10000), 0);
	tu_assert_res(evshm_sub_recv(s, buf, sizeof(buf), 10000), 4);
	assert_memory_equal(buf, "good", 4);
	tu_assert_res(tu_read_line(pr.report, line, sizeof(line), 30000) > 0, 1);
	assert_string_equal(line, "ready");
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
		cmocka_unit_test(test_sub_head_stale),
		cmocka_unit_test(test_sub_write_memory),
		cmocka_unit_test(test_sub_bell_flood),
		cmocka_unit_test(test_sub_bell_hangup),
		cmocka_unit_test(test_sub_bell_watch),
		cmocka_unit_test(test_sub_limit_at_hello),
		cmocka_unit_test(test_sub_asleep_lapped),
		cmocka_unit_test(test_sub_rearm_same),
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
		cmocka_unit_test(test_pub_stale_copy),
		cmocka_unit_test(test_pub_stale_cue),
		cmocka_unit_test(test_pub_drop_early),
		cmocka_unit_test(test_pub_drop_then_whole),
	};
	return TU_RUN(tests, argc, argv);
}
