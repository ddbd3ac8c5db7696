/* SPDX-License-Identifier: MIT */
/*
 * ps_print.c: one sample of `evshm ps` as text for people or as JSON for
 * scripts (the keys are documented in evshm(1), "evshm ps --json").
 *
 * Every figure a region gives is printed as it is, however absurd; what
 * is computed from figures (a fill, a lag, a rate) is computed only from
 * figures that agree, in unsigned or floating arithmetic that cannot
 * overflow, and is shown as unknown ("-", null) otherwise.  Strings from
 * other processes go through out.h's escaping.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "out.h"
#include "ps.h"

/* --- what to show -------------------------------------------------------- */

static bool pass_region(const struct ps_filter *f, const struct ps_region *r)
{
	bool pid_ok = f->npids == 0, name_ok = !f->name;

	for (unsigned i = 0; i < f->npids && !pid_ok; i++)
		pid_ok = f->pids[i] == r->pid;
	if (f->name && r->err == 0)
		name_ok = !strcmp(f->name, r->info.name);
	return pid_ok && name_ok;
}

static bool pass_chan(const struct ps_filter *f, const struct ps_chan *c)
{
	return (c->client && pass_region(f, c->client)) ||
	       (c->server && pass_region(f, c->server));
}

static bool pass_topic(const struct ps_filter *f, const struct ps_topic *t)
{
	if (t->pub && pass_region(f, t->pub))
		return true;
	for (size_t i = 0; i < t->nsubs; i++)
		if (pass_region(f, t->subs[i]))
			return true;
	return false;
}

/* An invalid region is shown by --pid, never by --name (its name would
 * be its own say, unchecked). */
static bool pass_invalid(const struct ps_filter *f, const struct ps_region *r)
{
	return r->err < 0 && !r->dup && !f->name && pass_region(f, r);
}

/* --- figures ------------------------------------------------------------- */

/* Per second, how much the counter at offset @field of @r's info grew
 * since its last sample; NAN when there is none or the counter went
 * back (a new file under an old number, or a lie). */
static double ps_rate(const struct ps_region *r, size_t field)
{
	const struct ps_region *p = r->prev;
	uint64_t now, then;

	if (!p || r->when_ns <= p->when_ns)
		return NAN;
	memcpy(&now, (const char *)&r->info + field, sizeof(now));
	memcpy(&then, (const char *)&p->info + field, sizeof(then));
	if (now < then)
		return NAN;
	return (double)(now - then) / ((double)(r->when_ns - p->when_ns) / 1e9);
}

/* The counters of an end, in the order of the columns and the JSON. */
static const struct counter {
	const char *key;        /* in JSON */
	size_t off;             /* in evshm_region_info */
	bool bytes;             /* shown as bytes */
} counters[] = {
#define C(key, field, bytes) \
	{ key, offsetof(struct evshm_region_info, field), bytes }
	C("msgs_sent", msgs_sent, false),
	C("bytes_sent", bytes_sent, true),
	C("msgs_recv", msgs_recv, false),
	C("bytes_recv", bytes_recv, true),
	C("lost", lost, false),
	C("kicks", kicks_sent, false),
	C("sleeps", sleeps, false),
	C("spins", spins, false),
#undef C
};

#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static uint64_t counter(const struct ps_region *r, const struct counter *c)
{
	uint64_t v;

	memcpy(&v, (const char *)&r->info + c->off, sizeof(v));
	return v;
}

static const char *errno_name(int err)
{
	switch (-err) {
	case EPROTO: return "EPROTO";
	case ECONNABORTED: return "ECONNABORTED";
	case EIO: return "EIO";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EBADF: return "EBADF";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	}
	return "E?";
}

static const char *role_name(const struct ps_region *r)
{
	switch (r->info.kind) {
	case EVSHM_REGION_PUB: return "publisher";
	case EVSHM_REGION_SUB: return "subscriber";
	}
	return r->info.role == 1 ? "client" : "server";
}

/* The first @nbytes bytes of @id in hex. */
static const char *hex_id(char *buf, const uint8_t *id, size_t nbytes)
{
	for (size_t i = 0; i < nbytes; i++)
		snprintf(buf + 2 * i, 3, "%02x", id[i]);
	return buf;
}

/* The name to show for a group: the server's (publisher's), where it
 * listens, else the other side's. */
static const char *chan_name(const struct ps_chan *c)
{
	return c->server ? c->server->info.name : c->client->info.name;
}

static const char *topic_name(const struct ps_topic *t)
{
	return t->pub ? t->pub->info.name : t->subs[0]->info.name;
}

/* --- text ----------------------------------------------------------------- */

#define CELL 16

/* 12345, 123.4k, 12.3M ... (powers of 1000). */
static const char *fmt_count(char *buf, double v)
{
	static const char units[] = " kMGTPE";
	unsigned u = 0;

	if (isnan(v))
		return "-";
	if (v < 100000) {
		snprintf(buf, CELL, "%.0f", v);
		return buf;
	}
	while (v >= 1000 && u < sizeof(units) - 2) {
		v /= 1000;
		u++;
	}
	snprintf(buf, CELL, "%.1f%c", v, units[u]);
	return buf;
}

/* 512B, 4.0KiB, 1.5MiB ... (powers of 1024). */
static const char *fmt_bytes(char *buf, double v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	unsigned u = 0;

	if (isnan(v))
		return "-";
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	snprintf(buf, CELL, u ? "%.1f%s" : "%.0f%s", v, units[u]);
	return buf;
}

/* What it waits for, if it sleeps. */
static const char *state_text(const struct evshm_region_info *i)
{
	bool data = i->rx_state & EVSHM_STATE_ASLEEP;
	bool room = i->tx_state & EVSHM_STATE_ASLEEP;

	if (data && room)
		return "asleep (data, room)";
	if (data)
		return "asleep (data)";
	if (room)
		return "asleep (room)";
	return "-";
}

static void text_header(FILE *f, const char *queued, bool rates)
{
	fprintf(f, "  %-10s %7s %5s %-15s %7s %12s %7s %8s %7s %8s %6s %6s "
		   "%6s %6s  %s\n",
		"END", "PID", "UID", "COMMAND", "RING", queued,
		rates ? "SENT/s" : "SENT", rates ? "BYTES/s" : "BYTES",
		rates ? "RECV/s" : "RECV", rates ? "BYTES/s" : "BYTES",
		rates ? "LOST/s" : "LOST", rates ? "KICK/s" : "KICKS",
		rates ? "SLEEP/s" : "SLEEPS", rates ? "SPIN/s" : "SPINS",
		"STATE");
}

static void text_command(FILE *f, const char *comm)
{
	size_t n = strlen(comm);

	out_text(f, comm);
	fprintf(f, "%*s", n < 15 ? (int)(15 - n) : 0, "");
}

static void text_uid(FILE *f, uid_t uid)
{
	if (uid == (uid_t)-1)
		fprintf(f, "%5s ", "?");
	else
		fprintf(f, "%5u ", (unsigned)uid);
}

/* One end: its row, then its error, and a pid it gives that is not the
 * one the kernel knows it by. */
static void text_end(FILE *f, const struct ps_region *r, bool rates)
{
	const struct evshm_region_info *i = &r->info;
	char b[CELL], q[2 * CELL + 4];

	if (!r->has_queued)
		snprintf(q, sizeof(q), "-");
	else if (i->kind == EVSHM_REGION_CHAN)
		snprintf(q, sizeof(q), "%s %3.0f%%",
			 fmt_bytes(b, (double)r->queued),
			 100.0 * (double)r->queued / i->ring_size);
	else
		snprintf(q, sizeof(q), "%s", fmt_bytes(b, (double)r->queued));
	fprintf(f, "  %-10s %7d ", role_name(r), (int)r->pid);
	text_uid(f, r->uid);
	text_command(f, r->comm);
	fprintf(f, " %7s %12s",
		i->ring_size ? fmt_bytes(b, i->ring_size) : "-", q);
	for (size_t k = 0; k < NCOUNTERS; k++) {
		const struct counter *c = &counters[k];
		double v = rates ? ps_rate(r, c->off) : (double)counter(r, c);

		fprintf(f, " %*s", k < 4 ? 7 + c->bytes : 6,
			c->bytes ? fmt_bytes(b, v) : fmt_count(b, v));
	}
	fprintf(f, "  %s\n", state_text(i));
	if (i->error) {
		fprintf(f, "  %10s error %s", "", evshm_strerror(i->error));
		if (i->reason) {
			fputs(": ", f);
			out_text(f, i->reason);
		}
		fputc('\n', f);
	}
	if (i->pid != (uint32_t)r->pid)
		fprintf(f, "  %10s (calls itself pid %u: another pid namespace?)\n",
			"", (unsigned)i->pid);
}

static void text_missing(FILE *f, const char *role)
{
	fprintf(f, "  %-10s not visible: gone, or a process you may not look at\n",
		role);
}

static void text_title(FILE *f, const char *what, const char *name,
		       const uint8_t *id, bool ambiguous)
{
	char hex[17];

	fprintf(f, "%s ", what);
	out_text(f, *name ? name : "(no name)");
	fprintf(f, "  id %s", hex_id(hex, id, 8));
	if (ambiguous)
		fputs("  (several regions claim this id: not paired)", f);
	fputc('\n', f);
}

/* The other side's name, when it is not the one in the title. */
static void text_other_name(FILE *f, const struct ps_region *r,
			    const char *title)
{
	if (!r || !strcmp(r->info.name, title))
		return;
	fprintf(f, "  (the %s met it at ", role_name(r));
	out_text(f, r->info.name);
	fputs(")\n", f);
}

static void text_chan(FILE *f, const struct ps_chan *c, bool rates)
{
	const struct ps_region *any = c->server ? c->server : c->client;
	const char *name = chan_name(c);

	text_title(f, "CHANNEL", name, any->info.id, c->ambiguous);
	text_other_name(f, c->client, name);
	text_header(f, "FILL", rates);
	if (c->client)
		text_end(f, c->client, rates);
	else if (!c->ambiguous)
		text_missing(f, "client");
	if (c->server)
		text_end(f, c->server, rates);
	else if (!c->ambiguous)
		text_missing(f, "server");
}

static void text_topic(FILE *f, const struct ps_topic *t, bool rates)
{
	const struct ps_region *any = t->pub ? t->pub : t->subs[0];
	const char *name = topic_name(t);

	text_title(f, "TOPIC", name, any->info.id, t->ambiguous);
	if (t->pub)
		fprintf(f, "  the publisher counts %llu subscribers, %llu dropped\n",
			(unsigned long long)t->pub->info.subscribers,
			(unsigned long long)t->pub->info.dropped);
	text_header(f, "LAG", rates);
	if (t->pub)
		text_end(f, t->pub, rates);
	else if (!t->ambiguous)
		text_missing(f, "publisher");
	for (size_t i = 0; i < t->nsubs; i++) {
		text_other_name(f, t->subs[i], name);
		text_end(f, t->subs[i], rates);
	}
}

static void text_invalid(FILE *f, const struct ps_snap *s,
			 const struct ps_filter *flt, bool *any)
{
	bool title = false;
	char b[CELL];

	for (size_t i = 0; i < s->n; i++) {
		const struct ps_region *r = &s->r[i];

		if (!pass_invalid(flt, r))
			continue;
		if (!title) {
			if (*any)
				fputc('\n', f);
			fprintf(f, "INVALID REGIONS\n  %7s %5s %-15s %4s  %-12s %s\n",
				"PID", "UID", "COMMAND", "FD", "MEMFD", "WHY");
			title = *any = true;
		}
		fprintf(f, "  %7d ", (int)r->pid);
		text_uid(f, r->uid);
		text_command(f, r->comm);
		fprintf(f, " %4d  ", r->fd);
		out_text(f, r->memfd);
		fprintf(f, "%*s ", strlen(r->memfd) < 12 ?
					   (int)(12 - strlen(r->memfd)) : 0, "");
		out_text(f, r->why ? r->why : strerror(-r->err));
		if (r->ino) {
			fprintf(f, " (%s", fmt_bytes(b, (double)r->size));
			if (r->seals < 0)
				fputs(", not a memfd", f);
			else if (!(r->seals & F_SEAL_FUTURE_WRITE))
				fputs(", unsealed", f);
			fputc(')', f);
		}
		fputc('\n', f);
	}
}

void ps_print_text(FILE *f, const struct ps_snap *s, const struct ps_view *v)
{
	bool any = false;

	if (v->interval > 0) {
		char when[16];
		time_t t = (time_t)s->wall;
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(f, "evshm top  %s  every %gs, figures per second\n\n",
			when, v->interval);
	}
	for (size_t i = 0; i < s->nchans; i++) {
		if (!pass_chan(v->filter, &s->chans[i]))
			continue;
		if (any)
			fputc('\n', f);
		text_chan(f, &s->chans[i], v->rates);
		any = true;
	}
	for (size_t i = 0; i < s->ntopics; i++) {
		if (!pass_topic(v->filter, &s->topics[i]))
			continue;
		if (any)
			fputc('\n', f);
		text_topic(f, &s->topics[i], v->rates);
		any = true;
	}
	text_invalid(f, s, v->filter, &any);
	if (!any)
		fprintf(f, "no evshm channel or topic to show\n");
	if (s->truncated)
		fprintf(f, "\n(more than %u regions: only the first are shown)\n",
			PS_MAX_REGIONS);
	if (s->hidden && geteuid() != 0)
		fprintf(f, "\n(%u processes of other users are not shown: "
			   "their descriptors are not yours to read)\n",
			s->hidden);
}

/* --- JSON ----------------------------------------------------------------- */

static void json_uid(struct json *j, const char *key, uid_t uid)
{
	if (uid == (uid_t)-1)
		json_null(j, key);
	else
		json_u64(j, key, uid);
}

/* An error: its errno name, its text, and which check said so. */
static void json_error(struct json *j, const char *key, int err,
		       const char *text, const char *reason)
{
	if (!err) {
		json_null(j, key);
		return;
	}
	json_open(j, key, '{');
	json_str(j, "name", errno_name(err));
	json_str(j, "text", text);
	json_str(j, "reason", reason);
	json_close(j, '}');
}

static void json_rates(struct json *j, const struct ps_region *r)
{
	if (!r->prev) {
		json_null(j, "rates");
		return;
	}
	json_open(j, "rates", '{');
	for (size_t k = 0; k < NCOUNTERS; k++)
		json_real(j, counters[k].key, ps_rate(r, counters[k].off));
	json_close(j, '}');
}

/* One end; every key always present, null where it does not apply. */
static void json_end(struct json *j, const char *key,
		     const struct ps_region *r)
{
	const struct evshm_region_info *i;
	bool chan, pub, sub;

	if (!r) {
		json_null(j, key);
		return;
	}
	i = &r->info;
	chan = i->kind == EVSHM_REGION_CHAN;
	pub = i->kind == EVSHM_REGION_PUB;
	sub = i->kind == EVSHM_REGION_SUB;
	json_open(j, key, '{');
	json_i64(j, "pid", r->pid);
	json_u64(j, "pid_claimed", i->pid);
	json_uid(j, "uid", r->uid);
	json_str(j, "command", r->comm);
	json_i64(j, "fd", r->fd);
	json_str(j, "role", role_name(r));
	json_str(j, "name", i->name);
	if (sub)
		json_null(j, "ring_size");
	else
		json_u64(j, "ring_size", i->ring_size);
	json_bool(j, "accepts_fds", i->features & 1u);
	if (chan && r->has_queued)
		json_u64(j, "fill", r->queued);
	else
		json_null(j, "fill");
	if (sub && r->has_queued)
		json_u64(j, "lag", r->queued);
	else
		json_null(j, "lag");
	for (size_t k = 0; k < NCOUNTERS; k++)
		json_u64(j, counters[k].key, counter(r, &counters[k]));
	json_u64(j, "tail", i->tail);
	json_u64(j, "head", i->head);
	json_bool(j, "asleep", (i->tx_state | i->rx_state) & EVSHM_STATE_ASLEEP);
	json_bool(j, "asleep_for_data", i->rx_state & EVSHM_STATE_ASLEEP);
	json_bool(j, "asleep_for_room", i->tx_state & EVSHM_STATE_ASLEEP);
	if (i->cpu)
		json_u64(j, "cpu", i->cpu - 1);
	else
		json_null(j, "cpu");
	json_error(j, "error", i->error, evshm_strerror(i->error), i->reason);
	if (pub) {
		json_u64(j, "subscribers", i->subscribers);
		json_u64(j, "dropped", i->dropped);
		json_u64(j, "horizon", i->horizon);
	} else {
		json_null(j, "subscribers");
		json_null(j, "dropped");
		json_null(j, "horizon");
	}
	json_rates(j, r);
	json_close(j, '}');
}

static void json_id(struct json *j, const uint8_t *id)
{
	char hex[33];

	json_str(j, "id", hex_id(hex, id, 16));
}

static void json_chan(struct json *j, const struct ps_chan *c)
{
	const struct ps_region *any = c->server ? c->server : c->client;

	json_open(j, NULL, '{');
	json_id(j, any->info.id);
	json_str(j, "name", chan_name(c));
	json_bool(j, "ambiguous", c->ambiguous);
	json_end(j, "client", c->client);
	json_end(j, "server", c->server);
	json_close(j, '}');
}

static void json_topic(struct json *j, const struct ps_topic *t)
{
	const struct ps_region *any = t->pub ? t->pub : t->subs[0];

	json_open(j, NULL, '{');
	json_id(j, any->info.id);
	json_str(j, "name", topic_name(t));
	json_bool(j, "ambiguous", t->ambiguous);
	if (t->pub)
		json_u64(j, "ring_size", t->pub->info.ring_size);
	else
		json_null(j, "ring_size");
	json_end(j, "publisher", t->pub);
	json_open(j, "subscribers", '[');
	for (size_t i = 0; i < t->nsubs; i++)
		json_end(j, NULL, t->subs[i]);
	json_close(j, ']');
	json_close(j, '}');
}

static void json_invalid(struct json *j, const struct ps_region *r)
{
	json_open(j, NULL, '{');
	json_i64(j, "pid", r->pid);
	json_uid(j, "uid", r->uid);
	json_str(j, "command", r->comm);
	json_i64(j, "fd", r->fd);
	json_str(j, "memfd", r->memfd);
	if (r->ino) {
		json_u64(j, "size", r->size);
		json_bool(j, "memfd_sealed", r->seals >= 0 &&
					     (r->seals & F_SEAL_FUTURE_WRITE));
	} else {
		json_null(j, "size");
		json_null(j, "memfd_sealed");
	}
	/* Not the peer's doing: the system's text for the errno. */
	json_error(j, "error", r->err, strerror(-r->err), r->why);
	json_close(j, '}');
}

void ps_print_json(FILE *f, const struct ps_snap *s, const struct ps_view *v)
{
	struct json j;

	json_init(&j, f);
	json_open(&j, NULL, '{');
	json_u64(&j, "format", 1);
	json_str(&j, "version", evshm_version());
	json_real(&j, "time", s->wall);
	if (v->interval > 0)
		json_real(&j, "interval", v->interval);
	else
		json_null(&j, "interval");
	json_u64(&j, "hidden", s->hidden);
	json_bool(&j, "truncated", s->truncated);
	json_open(&j, "channels", '[');
	for (size_t i = 0; i < s->nchans; i++)
		if (pass_chan(v->filter, &s->chans[i]))
			json_chan(&j, &s->chans[i]);
	json_close(&j, ']');
	json_open(&j, "topics", '[');
	for (size_t i = 0; i < s->ntopics; i++)
		if (pass_topic(v->filter, &s->topics[i]))
			json_topic(&j, &s->topics[i]);
	json_close(&j, ']');
	json_open(&j, "invalid", '[');
	for (size_t i = 0; i < s->n; i++)
		if (pass_invalid(v->filter, &s->r[i]))
			json_invalid(&j, &s->r[i]);
	json_close(&j, ']');
	json_close(&j, '}');
	fputc('\n', f);
}
