/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c: one test of `evshm bench`, both sides (see bench_run.h):
 * setting the transport up through its table of operations
 * (bench_xport.h), the loops (round trips, streaming) written once for
 * every transport, the timing, and the checks of every message.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_xport.h"
#include "payload.h"
#include "tool.h"

/* Longest a test may take on either side before the process gives up. */
#define WATCHDOG_S 180
/* Streaming: look at the clock every this many messages (small ones). */
#define CLOCK_EVERY 16

static const struct xport *const xports[BX_COUNT] = {
	[BX_STREAM] = &xport_unix_stream,
	[BX_SEQPACKET] = &xport_unix_seqpacket,
	[BX_PIPE] = &xport_pipe,
	[BX_EVSHM] = &xport_evshm_copy,
	[BX_EVSHM_ZC] = &xport_evshm_zc,
	[BX_EVSHM_BATCH] = &xport_evshm_batch,
	[BX_LINE] = &xport_line,
	[BX_EVENTFD] = &xport_eventfd,
	[BX_SLOT] = &xport_slot_ring,
	[BX_FRAMED] = &xport_framed_ring,
	[BX_FAN_STREAM] = &xport_fan_stream,
	[BX_TOPIC] = &xport_topic_copy,
	[BX_TOPIC_ZC] = &xport_topic_zc,
	[BX_TOPIC_BATCH] = &xport_topic_batch,
	[BX_ZMQ] = &xport_zmq,
};

static int fail(char *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, BENCH_ERR_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

void *bench_alloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, n ? n : 64))
		return NULL;
	memset(p, 0, n); /* fault the pages in before the clock runs */
	return p;
}

/* --- the watchdog ------------------------------------------------------- */

static void watchdog(int sig)
{
	static const char m[] = "evshm bench: a test hung; giving up\n";

	(void)sig;
	if (write(STDERR_FILENO, m, sizeof(m) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(TOOL_EXIT_FAIL);
}

/* Bound the test that starts now (@on) or stop the bound. */
static void watch(bool on)
{
	static bool installed;

	if (!installed) {
		signal(SIGALRM, watchdog);
		installed = true;
	}
	alarm(on ? WATCHDOG_S : 0);
}

/* --- one message each way ----------------------------------------------- */

/* Send message @seq: generate its payload where the transport wants it,
 * or for a bare floor the value seq + 1.  @stamped: the message carries
 * the time it leaves instead (pl_stamp; a bare floor sends the time). */
static int send_one(struct link *l, uint64_t seq, bool stamped, char *err)
{
	const struct xport *x = l->x;
	void *p;
	int res;

	if (x->hop_send)
		res = x->hop_send(l, stamped ? sys_now_ns() : seq + 1);
	else if ((res = x->tx_get(l, &p)) == 0) {
		pl_fill(p, l->size / 8, seq);
		if (stamped)
			pl_stamp(p, l->size / 8, sys_now_ns());
		res = x->tx_put(l);
	}
	return res < 0 ? fail(err, "sending message %llu: %s",
			      (unsigned long long)seq, evshm_strerror(res))
		       : 0;
}

/* Check a received message: its length, its checksum, and that it is
 * message @want.  *seq gets its word 0. */
static int check_msg(const void *p, size_t len, size_t size, uint64_t want,
		     uint64_t *seq, char *err)
{
	switch (pl_check(p, len, size, seq)) {
	case PL_BAD_LEN:
		return fail(err, "message %llu: %zu bytes, expected %zu",
			    (unsigned long long)want, len, size);
	case PL_BAD_SUM:
		return fail(err, "message %llu is corrupt (checksum over "
			    "the payload does not match)",
			    (unsigned long long)want);
	case PL_OK:
		break;
	}
	if ((*seq & ~PL_END) != want)
		return fail(err, "message %llu lost: got sequence number "
			    "%llu instead", (unsigned long long)want,
			    (unsigned long long)(*seq & ~PL_END));
	return 0;
}

/* Receive and check message @want; *seq gets its word 0 (PL_END marks a
 * stream's last).  @stamp (NULL: none expected) gets the time it left. */
static int recv_one(struct link *l, uint64_t want, uint64_t *seq,
		    uint64_t *stamp, char *err)
{
	const struct xport *x = l->x;
	const void *p;
	size_t len;
	uint64_t v;
	int res;

	if (x->hop_recv) {
		res = x->hop_recv(l, &v);
		if (res == 0 && stamp)
			*stamp = v;
		else if (res == 0 && v != want + 1)
			return fail(err, "hop %llu: got %llu",
				    (unsigned long long)want,
				    (unsigned long long)v);
		*seq = want;
	} else if ((res = x->rx_get(l, &p, &len)) == 0) {
		if (check_msg(p, len, l->size, want, seq, err) < 0)
			return -1;
		if (stamp)
			*stamp = ((const uint64_t *)p)[2];
		res = x->rx_put(l);
	}
	if (res == -EPIPE)
		return fail(err, "the other side went away before message "
			    "%llu", (unsigned long long)want);
	return res < 0 ? fail(err, "receiving message %llu: %s",
			      (unsigned long long)want, evshm_strerror(res))
		       : 0;
}

/* --- round trips -------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The @q quantile of @n sorted samples (nearest rank). */
static double quantile(const uint64_t *sorted, uint64_t n, double q)
{
	uint64_t i = (uint64_t)ceil(q * (double)n);
	return (double)sorted[i ? i - 1 : 0];
}

static int rtt_ping(struct link *l, const struct bench_spec *s,
		    uint64_t *samples, struct bench_result *r, char *err)
{
	uint64_t total = s->warmup + s->count, seq;

	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = sys_now_ns();
		if (send_one(l, i, false, err) < 0 ||
		    recv_one(l, i, &seq, NULL, err) < 0)
			return -1;
		if (i >= s->warmup)
			samples[i - s->warmup] = sys_now_ns() - t0;
	}
	qsort(samples, s->count, sizeof(*samples), cmp_u64);
	r->fig[FIG_P50] = quantile(samples, s->count, 0.5);
	r->fig[FIG_P99] = quantile(samples, s->count, 0.99);
	r->fig[FIG_P999] = quantile(samples, s->count, 0.999);
	return 0;
}

static int rtt_echo(struct link *l, const struct bench_spec *s, char *err)
{
	uint64_t total = s->warmup + s->count, seq;

	for (uint64_t i = 0; i < total; i++)
		if (recv_one(l, i, &seq, NULL, err) < 0 ||
		    send_one(l, i, false, err) < 0)
			return -1;
	return 0;
}

/* --- idle waiting ------------------------------------------------------- */

/*
 * Round trips with a pause: each side sleeps s->gap_ns, then sends a
 * message stamped with the time it leaves, so that the other side waits
 * about that long for every message it receives, and measures how late
 * it got it.  Each side measures its own CPU time over the wall time of
 * the round trips after the warm-up.
 */
struct idle_side {
	uint64_t *lat;          /* one-way latencies of the messages we got */
	uint32_t nlat;
	double cpu_s, wall_s;
};

static int idle_run(struct link *l, const struct bench_spec *s,
		    struct idle_side *is, char *err)
{
	uint64_t total = s->warmup + s->count, seq, stamp, t0 = 0;
	double c0 = 0;

	for (uint64_t i = 0; i < total; i++) {
		if (i == s->warmup) {
			c0 = sys_cpu_seconds();
			t0 = sys_now_ns();
		}
		if (!l->a && recv_one(l, i, &seq, &stamp, err) < 0)
			return -1;
		if (!l->a && i >= s->warmup)
			is->lat[is->nlat++] = sys_now_ns() - stamp;
		sys_sleep_ns(s->gap_ns);
		if (send_one(l, i, true, err) < 0)
			return -1;
		if (l->a && recv_one(l, i, &seq, &stamp, err) < 0)
			return -1;
		if (l->a && i >= s->warmup)
			is->lat[is->nlat++] = sys_now_ns() - stamp;
	}
	is->wall_s = (double)(sys_now_ns() - t0) / 1e9;
	is->cpu_s = sys_cpu_seconds() - c0;
	return 0;
}

/* --- streaming ---------------------------------------------------------- */

/* Side B: messages for s->seconds (or s->count of them) after the
 * warm-up, then one marked PL_END.  *sent: the count, the end excluded. */
static int stream_send(struct link *l, const struct bench_spec *s,
		       uint64_t *sent, char *err)
{
	const struct xport *x = l->x;
	uint64_t n = s->count ? s->warmup + s->count : UINT64_MAX;
	uint64_t deadline = UINT64_MAX, seq = 0;
	uint64_t fault_at = s->fault ? s->warmup + 3 : UINT64_MAX;
	size_t words = l->size / 8;
	unsigned every = l->size <= 4096 ? CLOCK_EVERY : 1;
	void *p;
	int res;

	for (uint64_t i = 0; i < n; i++, seq++) {
		if (i == s->warmup && !s->count)
			deadline = sys_now_ns() + (uint64_t)(s->seconds * 1e9);
		if (i == fault_at && s->fault == BF_DROP)
			seq++; /* a message that never leaves */
		if ((res = x->tx_get(l, &p)) < 0)
			goto out_fail;
		pl_fill(p, words, seq);
		if (i == fault_at && s->fault == BF_CORRUPT)
			((uint8_t *)p)[l->size - 1] ^= 0x40;
		if ((res = x->tx_put(l)) < 0)
			goto out_fail;
		if (i % every == 0 && sys_now_ns() >= deadline) {
			i++, seq++;
			n = i;
			break;
		}
	}
	if ((res = x->tx_get(l, &p)) < 0)
		goto out_fail;
	pl_fill(p, words, seq | PL_END);
	if ((res = x->tx_put(l)) < 0)
		goto out_fail;
	*sent = n;
	return 0;

out_fail:
	return fail(err, "sending message %llu: %s", (unsigned long long)seq,
		    evshm_strerror(res));
}

/* The receiving side of a stream: until the PL_END message.  *received:
 * the count, the end excluded; *t0 when the last warm-up message came (the
 * clock starts), *t1 when the end came. */
static int stream_take(struct link *l, const struct bench_spec *s,
		       uint64_t *received, uint64_t *t0, uint64_t *t1,
		       char *err)
{
	uint64_t seq = 0;

	*t0 = sys_now_ns();
	for (uint64_t want = 0;; want++) {
		if (recv_one(l, want, &seq, NULL, err) < 0)
			return -1;
		if (want + 1 == s->warmup)
			*t0 = sys_now_ns();
		if (seq & PL_END) {
			*t1 = sys_now_ns();
			*received = want;
			return 0;
		}
	}
}

/* Messages after the clock started, the end one included: it is a message
 * like the others. */
static uint64_t timed_msgs(const struct bench_spec *s, uint64_t received)
{
	return received + 1 - s->warmup;
}

/* Side A of a stream: the rate it received at. */
static int stream_recv(struct link *l, const struct bench_spec *s,
		       struct bench_result *r, uint64_t *received, char *err)
{
	uint64_t t0, t1;

	if (stream_take(l, s, received, &t0, &t1, err) < 0)
		return -1;
	double n = (double)timed_msgs(s, *received);
	double dt = (double)(t1 - t0) / 1e9;
	r->fig[FIG_MSGS_S] = n / dt;
	r->fig[FIG_GB_S] = n / dt * (double)l->size / 1e9;
	return 0;
}

/* --- side A ------------------------------------------------------------- */

static void kicks_per_msg(const struct evshm_stats *st, uint64_t msgs,
			  double *out)
{
	*out = (double)st->kicks_sent / (double)(msgs ? msgs : 1);
}

/* Idle: A's latencies in @lat[0, n), B's appended; the figures of both. */
static void idle_figures(const struct bench_report *rep, uint64_t *lat,
			 uint32_t n, const struct idle_side *a,
			 struct bench_result *r)
{
	for (uint32_t i = 0; i < rep->nlat; i++)
		lat[n++] = rep->lat_ns[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r->fig[FIG_LAT_P50] = quantile(lat, n, 0.5);
	r->fig[FIG_LAT_MAX] = (double)lat[n - 1];
	r->fig[FIG_CPU_A] = a->cpu_s / a->wall_s;
	r->fig[FIG_CPU_B] = rep->cpu_s / rep->wall_s;
}

/* B's report, checked against what A saw. */
static int take_report(const struct bench_spec *s, int ctl, bool a_ok,
		       uint64_t a_msgs, struct bench_result *r, char *err,
		       uint64_t *samples, const struct idle_side *idle)
{
	struct bench_report rep;
	unsigned nfds;
	int res = sys_recv_msg(ctl, &rep, sizeof(rep), NULL, 0, &nfds,
			       BENCH_CTL_TIMEOUT_MS);

	if (res != (int)sizeof(rep)) {
		if (a_ok)
			fail(err, "the peer process died (%s)",
			     evshm_strerror(res < 0 ? res : -EPROTO));
		return -1;
	}
	rep.err[BENCH_ERR_MAX - 1] = '\0';
	if (!a_ok) {
		if (rep.status < 0)
			snprintf(err + strlen(err), BENCH_ERR_MAX - strlen(err),
				 " (the other side: %.100s)", rep.err);
		return -1;
	}
	if (rep.status < 0)
		return fail(err, "%s", rep.err);
	if (s->test == BT_STREAM && rep.msgs != a_msgs)
		return fail(err, "the sender sent %llu messages, the receiver "
			    "got %llu", (unsigned long long)rep.msgs,
			    (unsigned long long)a_msgs);
	if (s->test == BT_IDLE) {
		if (rep.nlat != s->count || !(rep.wall_s > 0) ||
		    !(idle->wall_s > 0) || !(rep.cpu_s >= 0))
			return fail(err, "the other side's report does not add "
				    "up");
		idle_figures(&rep, samples, idle->nlat, idle, r);
	}
	if (xports[s->xport]->stats)
		kicks_per_msg(&rep.st, rep.msgs, &r->fig[FIG_KICKS_B]);
	return 0;
}

/*
 * Fan-out: every subscriber's report, each checked against what the
 * publisher sent.  Deliveries per second: the messages every subscriber
 * got after its own clock started, over the time from the first of them
 * starting to the last of them having the end (a conservative window: it
 * also holds some warm-up deliveries, which are not counted).
 */
static int take_fan_reports(const struct bench_spec *s, const int *ctl,
			    bool a_ok, uint64_t sent, struct bench_result *r,
			    char *err)
{
	uint64_t t0 = UINT64_MAX, t1 = 0, n = 0;
	double kicks = 0;
	bool ok = a_ok, told = false;

	for (unsigned i = 0; i < s->subs; i++) {
		struct bench_report rep;
		unsigned nfds;
		int res = sys_recv_msg(ctl[i], &rep, sizeof(rep), NULL, 0,
				       &nfds, BENCH_CTL_TIMEOUT_MS);

		/* Read every report, so that no stale one is left behind
		 * for the next test; keep the first failure, and after our
		 * own the first subscriber's (its reason is often ours). */
		if (!ok) {
			if (res == (int)sizeof(rep) && rep.status < 0 &&
			    !told && strlen(err) < BENCH_ERR_MAX / 2) {
				rep.err[BENCH_ERR_MAX - 1] = '\0';
				snprintf(err + strlen(err),
					 BENCH_ERR_MAX - strlen(err),
					 " (subscriber %u: %.100s)", i + 1,
					 rep.err);
				told = true;
			}
			continue;
		}
		if (res != (int)sizeof(rep)) {
			ok = false;
			fail(err, "subscriber %u: its process died (%s)", i + 1,
			     evshm_strerror(res < 0 ? res : -EPROTO));
			continue;
		}
		rep.err[BENCH_ERR_MAX - 1] = '\0';
		if (rep.status < 0) {
			ok = false;
			fail(err, "subscriber %u: %s", i + 1, rep.err);
		} else if (rep.msgs != sent) {
			ok = false;
			fail(err, "the publisher sent %llu messages, subscriber "
			     "%u got %llu", (unsigned long long)sent, i + 1,
			     (unsigned long long)rep.msgs);
		} else if (rep.t_first > rep.t_end) {
			ok = false;
			fail(err, "subscriber %u: its report does not add up",
			     i + 1);
		}
		if (!ok)
			continue;
		n += timed_msgs(s, rep.msgs);
		t0 = rep.t_first < t0 ? rep.t_first : t0;
		t1 = rep.t_end > t1 ? rep.t_end : t1;
		kicks += (double)rep.st.kicks_sent / (double)(sent ? sent : 1);
	}
	if (!ok)
		return -1;
	double dt = (double)(t1 - t0) / 1e9;
	r->fig[FIG_MSGS_S] = (double)n / dt;
	r->fig[FIG_GB_S] = (double)n / dt * (double)s->size / 1e9;
	if (xports[s->xport]->stats)
		r->fig[FIG_KICKS_B] = kicks / s->subs;
	return 0;
}

/* Side A of a fan-out: publish, then close (subscribers read on). */
static int fan_publish(struct link *l, const struct bench_spec *s,
		       uint64_t *sent, char *err)
{
	return stream_send(l, s, sent, err);
}

int bench_run_a(const struct bench_spec *s, const int *ctl, uint64_t *samples,
		struct bench_result *r, char err[BENCH_ERR_MAX])
{
	const struct xport *x = xports[s->xport];
	struct link l = { .x = x, .a = true, .size = s->size };
	struct idle_side idle = { .lat = samples };
	bool fan = s->test == BT_FANOUT;
	unsigned npeers = fan ? s->subs : 1, sent_to = 0;
	int fds[SYS_MAX_FDS];
	unsigned nfds = 0;
	uint64_t msgs = 0;
	int res;

	for (unsigned f = 0; f < FIG_COUNT; f++)
		r->fig[f] = NAN;
	err[0] = '\0';
	watch(true);
	res = x->open_a(&l, s, fds, &nfds);
	if (res < 0) {
		fail(err, "setting up %s: %s", x->name, evshm_strerror(res));
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		x->close(&l);
		watch(false);
		return -1;
	}
	for (res = 0; sent_to < npeers && res == 0; sent_to++)
		res = sys_send_msg(ctl[sent_to], s, sizeof(*s), fds, nfds,
				   BENCH_CTL_TIMEOUT_MS);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	if (res < 0) {
		fail(err, "the peer process: %s", evshm_strerror(res));
		x->close(&l);
		/* Those that got the spec fail to meet us, and report: read
		 * their reports, or the next test would get them. */
		struct bench_spec got = *s;
		got.subs = sent_to - 1;
		if (fan)
			take_fan_reports(&got, ctl, false, 0, r, err);
		watch(false);
		return -1;
	}
	if (x->meet_a && (res = x->meet_a(&l, s)) < 0)
		res = fail(err, "meeting the peer (%s): %s", x->name,
			   evshm_strerror(res));
	else if (s->test == BT_RTT)
		res = rtt_ping(&l, s, samples, r, err);
	else if (s->test == BT_IDLE)
		res = idle_run(&l, s, &idle, err);
	else if (fan)
		res = fan_publish(&l, s, &msgs, err);
	else
		res = stream_recv(&l, s, r, &msgs, err);
	if (s->test != BT_STREAM && !fan)
		msgs = s->warmup + s->count;
	if (res == 0 && x->stats) {
		struct evshm_stats st;
		x->stats(&l, &st);
		kicks_per_msg(&st, msgs, &r->fig[FIG_KICKS_A]);
	}
	/* Our close is what a side B still waiting on us sees. */
	x->close(&l);
	if (fan)
		res = take_fan_reports(s, ctl, res == 0, msgs, r, err);
	else
		res = take_report(s, ctl[0], res == 0, msgs, r, err, samples,
				  &idle);
	watch(false);
	return res;
}

/* --- side B ------------------------------------------------------------- */

/* Everything read from the other process is checked, even our own
 * driver's spec. */
static bool spec_ok(const struct bench_spec *s)
{
	bool fan_x = s->xport >= BX_FAN_STREAM && s->xport < BX_COUNT;

	return s->test <= BT_FANOUT && s->xport < BX_COUNT &&
	       fan_x == (s->test == BT_FANOUT) &&
	       (!fan_x || (s->subs >= 1 && s->subs <= BENCH_MAX_SUBS)) &&
	       (s->test != BT_IDLE ||
		(s->size >= 24 && s->count <= BENCH_IDLE_MAX &&
		 s->gap_ns <= 1000000000u)) &&
	       s->size >= 16 && s->size % 8 == 0 &&
	       s->size <= EVSHM_MAX_MSG(EVSHM_RING_MAX) &&
	       s->fault <= BF_DROP && s->count <= UINT32_MAX &&
	       s->warmup <= UINT32_MAX && isfinite(s->seconds) &&
	       s->seconds >= 0 && s->seconds <= 3600 &&
	       memchr(s->name, '\0', sizeof(s->name)) &&
	       (s->test >= BT_STREAM || s->count > 0) &&
	       (xports[s->xport]->tx_get || s->test < BT_STREAM) &&
	       (xports[s->xport]->open_b != NULL);
}

static int run_b(const struct bench_spec *s, const int *fds, unsigned nfds,
		 struct bench_report *rep)
{
	const struct xport *x = xports[s->xport];
	struct link l = { .x = x, .a = false, .size = s->size };
	int res = x->open_b(&l, s, fds, nfds);

	if (res < 0)
		res = fail(rep->err, "meeting the other side (%s): %s",
			   x->name, evshm_strerror(res));
	else if (s->test == BT_RTT) {
		res = rtt_echo(&l, s, rep->err);
		rep->msgs = s->warmup + s->count;
	} else if (s->test == BT_IDLE) {
		uint64_t lat[BENCH_IDLE_MAX];
		struct idle_side is = { .lat = lat };
		res = idle_run(&l, s, &is, rep->err);
		for (uint32_t i = 0; i < is.nlat; i++)
			rep->lat_ns[i] = lat[i] > UINT32_MAX ? UINT32_MAX
							      : (uint32_t)lat[i];
		rep->nlat = is.nlat;
		rep->cpu_s = is.cpu_s;
		rep->wall_s = is.wall_s;
		rep->msgs = s->warmup + s->count;
	} else if (s->test == BT_FANOUT) {
		res = stream_take(&l, s, &rep->msgs, &rep->t_first,
				  &rep->t_end, rep->err);
	} else {
		res = stream_send(&l, s, &rep->msgs, rep->err);
	}
	if (res == 0 && x->stats)
		x->stats(&l, &rep->st);
	x->close(&l);
	return res;
}

int bench_serve_b(int ctl)
{
	for (;;) {
		struct bench_spec s;
		struct bench_report rep;
		int fds[SYS_MAX_FDS];
		unsigned nfds = 0;
		int res = sys_recv_msg(ctl, &s, sizeof(s), fds, SYS_MAX_FDS,
				       &nfds, -1);

		if (res == (int)sizeof(s) && s.quit)
			res = 0;
		else if (res != (int)sizeof(s) || !spec_ok(&s))
			res = -1;
		if (res <= 0) {
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			return res;
		}
		memset(&rep, 0, sizeof(rep));
		watch(true);
		if ((res = sys_cpu_pin(s.cpu_b)) < 0)
			rep.status = fail(rep.err, "placing the peer on CPU %d: "
					  "%s", s.cpu_b, strerror(-res));
		else
			rep.status = run_b(&s, fds, nfds, &rep);
		watch(false);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (sys_send_msg(ctl, &rep, sizeof(rep), NULL, 0,
				 BENCH_CTL_TIMEOUT_MS) < 0)
			return -1;
	}
}

/* --- floors in one process ---------------------------------------------- */

/* Where the verify floor puts its sums so the compiler cannot drop them
 * (a local volatile is "set but not used" to clang). */
static volatile uint64_t floor_sink;

double bench_local_floor(enum bench_local what, uint32_t size, double seconds)
{
	uint64_t *a = bench_alloc(size), *b = bench_alloc(size);
	uint64_t budget = (uint64_t)(seconds * 1e9), n = 0, t0, t = 0;
	unsigned batch = size >= (64u << 10) ? 1 : (64u << 10) / size;

	if (!a || !b)
		goto out;
	pl_fill(a, size / 8, 1);
	for (t0 = sys_now_ns(); (t = sys_now_ns() - t0) < budget;) {
		for (unsigned i = 0; i < batch; i++, n++) {
			switch (what) {
			case BL_MEMCPY:
				memcpy(b, a, size);
				break;
			case BL_GENERATE:
				pl_fill(b, size / 8, n);
				break;
			case BL_VERIFY:
				floor_sink += pl_sum(a, size / 8);
				break;
			}
			/* Each round's stores must really happen. */
			__asm__ __volatile__("" ::: "memory");
		}
	}
out:
	free(a);
	free(b);
	return t ? (double)(n * size) / ((double)t / 1e9) : 0;
}
