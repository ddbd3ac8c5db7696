/* SPDX-License-Identifier: MIT */
/*
 * topic.c: evshm.Publisher, evshm.Subscriber, evshm.publish() and
 * evshm.subscribe().  They have the shape of a channel's two sides: the
 * methods they share with it are in io.c; here are the library calls
 * behind them and what only a topic has (admitting subscribers, the list
 * of them, losses, the policy).
 *
 * The library allows one thread at a time on a publisher or a subscriber:
 * every call on a publisher takes its send side, every call on a
 * subscriber its receive side (struct evpy_ep_ops.side), so a second
 * thread gets RuntimeError, as on a busy side of a channel.
 */
#include "evpy.h"

#include <errno.h>
#include <structmember.h>

/* --- the library, behind struct evpy_ep_ops ------------------------------------- */

static int p_send(void *h, const void *buf, size_t len, int ms)
{
	return evshm_pub_send(h, buf, len, ms);
}

static int p_reserve(void *h, size_t len, void **ptr, int ms)
{
	return evshm_pub_reserve(h, len, ptr, ms);
}

static int p_commit(void *h, size_t len)
{
	return evshm_pub_commit(h, len);
}

static int p_cancel(void *h)
{
	return evshm_pub_cancel(h);
}

static int p_fd(void *h)
{
	return evshm_pub_fd(h);
}

static void p_close(void *h)
{
	evshm_pub_close(h);
}

static const struct evpy_ep_ops pub_ops = {
	.what = "publisher",
	.side = EVPY_TX,
	.send = p_send,
	.reserve = p_reserve,
	.commit = p_commit,
	.cancel = p_cancel,
	.fd = p_fd,
	.close = p_close,
};

static int s_peek(void *h, const void **ptr, size_t *len, int ms)
{
	return evshm_sub_peek(h, ptr, len, ms);
}

static int s_release(void *h)
{
	return evshm_sub_release(h);
}

static int s_peek_next(void *h, const void **ptr, size_t *len)
{
	return evshm_sub_peek_next(h, ptr, len);
}

static int s_recv(void *h, void *buf, size_t cap, int ms)
{
	return evshm_sub_recv(h, buf, cap, ms);
}

static int s_fd(void *h)
{
	return evshm_sub_fd(h);
}

static void s_stats(const void *h, struct evshm_stats *st)
{
	evshm_sub_stats(h, st);
}

static const char *s_reason(const void *h)
{
	return evshm_sub_error_reason(h);
}

static void s_close(void *h)
{
	evshm_sub_close(h);
}

static const struct evpy_ep_ops sub_ops = {
	.what = "subscriber",
	.side = EVPY_RX,
	.peek = s_peek,
	.release = s_release,
	.peek_next = s_peek_next,
	.recv = s_recv,
	.fd = s_fd,
	.stats = s_stats,
	.reason = s_reason,
	.close = s_close,
};

/* --- shared getters ------------------------------------------------------------------- */

static PyObject *get_name(struct evpy_ep *ep, void *unused)
{
	(void)unused;
	return Py_NewRef(ep->name);
}

static PyObject *get_policy(struct evpy_ep *ep, void *unused)
{
	(void)unused;
	return PyUnicode_FromString(evpy_policy_name(ep->policy));
}

/* --- Publisher --------------------------------------------------------------------- */

/*
 * A subscriber's authorize callback that raised was refused (it got
 * PermissionError).  serve() and wait_subscribers() raise that exception;
 * calls that admit subscribers on the side (send, reserve) cannot, and
 * report it through sys.unraisablehook, as Python does with exceptions in
 * __del__.
 */
static void pub_auth_report(struct evpy_ep *pub)
{
	PyObject *type, *value, *tb;

	if (!pub->auth.type)
		return;
	PyErr_Fetch(&type, &value, &tb);
	evpy_auth_reraise(&pub->auth);
	PyErr_WriteUnraisable((PyObject *)pub);
	PyErr_Restore(type, value, tb);
}

static PyObject *pub_send(struct evpy_ep *pub, PyObject *const *args,
			  Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *r = evpy_io_send(pub, args, nargs, kwnames);
	pub_auth_report(pub);
	return r;
}

static PyObject *pub_reserve(struct evpy_ep *pub, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *r = evpy_io_reserve(pub, args, nargs, kwnames);
	pub_auth_report(pub);
	return r;
}

static uint64_t pub_changes(struct evshm_pub *p)
{
	struct evshm_pub_stats st;

	evshm_pub_stats(p, &st);
	return st.joined + st.left + st.dropped;
}

struct serve_arg {
	struct evshm_pub *p;
	unsigned want; /* wait_subscribers(): this many; 0: serve() */
};

/*
 * One slice of serve() / wait_subscribers().  evshm_pub_serve() returns
 * the count whether or not anything happened: so serve() compares the
 * joined / left / dropped counters (a slice that changed none goes on
 * waiting), and wait_subscribers() the count with what it waits for.
 */
static int serve_fn(void *arg, int ms)
{
	struct serve_arg *a = arg;
	uint64_t before = a->want ? 0 : pub_changes(a->p);
	int n = evshm_pub_serve(a->p, ms);

	if (n < 0)
		return n;
	if (a->want)
		return (unsigned)n >= a->want ? n : ms ? -ETIMEDOUT : -EAGAIN;
	return ms == 0 || pub_changes(a->p) != before ? n : -ETIMEDOUT;
}

static PyObject *pub_serve_impl(struct evpy_ep *pub, PyObject *timeout,
				unsigned want)
{
	struct serve_arg a = { .want = want };
	struct evpy_deadline d;
	int res;

	/* An open reservation is no obstacle: the library serves beside it. */
	if (evpy_deadline_init(&d, timeout) < 0 || evpy_ep_enter(pub, EVPY_TX) < 0)
		return NULL;
	a.p = pub->h;
	res = evpy_wait(&d, serve_fn, &a, &pub->closed);
	/* serve(): a timeout is no error, the count is the answer. */
	if (!want && res == -ETIMEDOUT)
		res = evshm_pub_serve(a.p, 0);
	if (evpy_auth_reraise(&pub->auth))
		res = EVPY_PYERR;
	else if (res < 0)
		evpy_ep_raise(pub, res);
	evpy_ep_end(pub, EVPY_TX);
	return res < 0 ? NULL : PyLong_FromLong(res);
}

static PyObject *pub_serve(struct evpy_ep *pub, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "timeout", NULL };
	PyObject *timeout = NULL;

	if (evpy_args("serve", args, nargs, kwnames, names, 0, &timeout) < 0)
		return NULL;
	if (!timeout) {
		PyObject *zero = PyLong_FromLong(0);
		PyObject *r = zero ? pub_serve_impl(pub, zero, 0) : NULL;
		Py_XDECREF(zero);
		return r;
	}
	return pub_serve_impl(pub, timeout, 0);
}

static PyObject *pub_wait_subscribers(struct evpy_ep *pub, PyObject *const *args,
				      Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "n", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };
	size_t n = 1;

	if (evpy_args("wait_subscribers", args, nargs, kwnames, names, 0, argv) < 0 ||
	    (argv[0] && evpy_size(argv[0], &n) < 0))
		return NULL;
	if (n > UINT32_MAX) {
		PyErr_SetString(PyExc_OverflowError, "n is too large");
		return NULL;
	}
	if (n == 0) {
		PyObject *zero = PyLong_FromLong(0);
		PyObject *r = zero ? pub_serve_impl(pub, zero, 0) : NULL;
		Py_XDECREF(zero);
		return r;
	}
	return pub_serve_impl(pub, argv[1], (unsigned)n);
}

static PyObject *sub_info_new(const struct evshm_sub_info *i)
{
	const uint64_t v[] = { (uint64_t)i->pid, i->uid, i->gid, 0, i->msgs_recv,
			       i->bytes_recv, i->lost, i->lag, i->kicks };
	PyObject *s = evpy_structseq(evpy_SubInfoType, v, sizeof(v) / sizeof(v[0]));

	if (s) {
		PyObject *old = PyStructSequence_GetItem(s, 3);
		PyStructSequence_SetItem(s, 3, PyBool_FromLong(i->asleep));
		Py_DECREF(old);
	}
	return s;
}

static PyObject *pub_subscribers(struct evpy_ep *pub, PyObject *unused)
{
	(void)unused;
	if (evpy_ep_quick(pub) < 0)
		return NULL;
	int n = evshm_pub_subscribers(pub->h, NULL, 0);
	if (n < 0)
		return evpy_raise(n, NULL);
	struct evshm_sub_info *info = PyMem_Calloc((size_t)n + 1, sizeof(*info));
	if (!info)
		return PyErr_NoMemory();
	/* The GIL is held and nobody else is on the publisher: no change. */
	n = evshm_pub_subscribers(pub->h, info, (unsigned)n);
	PyObject *l = n < 0 ? evpy_raise(n, NULL) : PyList_New(n);
	for (int i = 0; l && i < n; i++) {
		PyObject *x = sub_info_new(&info[i]);
		if (!x)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, i, x);
	}
	PyMem_Free(info);
	return l;
}

static PyObject *pub_stats(struct evpy_ep *pub, PyObject *unused)
{
	struct evshm_pub_stats st;

	(void)unused;
	if (evpy_ep_quick(pub) < 0)
		return NULL;
	evshm_pub_stats(pub->h, &st);
	const uint64_t v[] = { st.msgs_sent, st.bytes_sent, st.kicks_sent,
			       st.sleeps, st.joined, st.left, st.dropped,
			       st.subscribers };
	return evpy_structseq(evpy_PubStatsType, v, sizeof(v) / sizeof(v[0]));
}

static PyObject *pub_await_subscribers(PyObject *self, PyObject *const *args,
				       Py_ssize_t nargs)
{
	if (nargs > 1) {
		PyErr_SetString(PyExc_TypeError, "await_subscribers(n=1)");
		return NULL;
	}
	return evpy_aio("await_subscribers", self, nargs ? args[0] : NULL);
}

static PyObject *pub_repr(struct evpy_ep *pub)
{
	if (pub->closed)
		return PyUnicode_FromFormat("<evshm.Publisher %R closed>", pub->name);
	return PyUnicode_FromFormat("<evshm.Publisher %R %s, max_msg %zu>",
				    pub->name, evpy_policy_name(pub->policy),
				    pub->max_msg);
}

PyObject *evpy_publish(PyObject *mod, PyObject *args, PyObject *kw)
{
	PyObject *name, *bname = NULL;
	struct evshm_opts o;
	struct evshm_pub *p;
	int res;

	(void)mod;
	if (!PyArg_ParseTuple(args, "O:publish", &name))
		return NULL;
	/* The object first: its auth is the library's authorize_arg. */
	struct evpy_ep *pub = (struct evpy_ep *)evpy_ep_new(&evpy_PubType,
							    &pub_ops, NULL);
	if (!pub)
		return NULL;
	pub->name = Py_NewRef(name);
	if (evpy_opts(&o, kw, EVPY_PUBLISH, &pub->auth) < 0 ||
	    !PyUnicode_FSConverter(name, &bname))
		goto fail;
	res = evshm_pub_open(&p, PyBytes_AS_STRING(bname), &o);
	Py_DECREF(bname);
	if (res < 0) {
		evpy_raise(res, name);
		goto fail;
	}
	pub->h = p;
	pub->max_msg = evshm_pub_max_msg(p);
	pub->policy = o.policy ? o.policy : EVSHM_RELIABLE;
	return (PyObject *)pub;
fail:
	Py_DECREF(pub);
	return NULL;
}

#define FAST (METH_FASTCALL | METH_KEYWORDS)
#define M(name, fn, flags, doc) { name, (PyCFunction)(void (*)(void))fn, flags, doc }

static PyMethodDef pub_methods[] = {
	M("send", pub_send, FAST,
	  "send(data, timeout=None)\n--\n\nPublish one message (any bytes-like "
	  "object of at most max_msg bytes) to every subscriber.  Reliable: "
	  "waits for the slowest subscriber to make room (one that stalls "
	  "longer than stall_timeout_ms is dropped); latest: never waits."),
	M("reserve", pub_reserve, FAST,
	  "reserve(size, timeout=None)\n--\n\nZero-copy publish: `with "
	  "pub.reserve(n) as buf:` gives a writable memoryview of room in the "
	  "ring every subscriber reads; published when the block ends "
	  "(commit(k) in the block publishes k bytes); an exception in the "
	  "block publishes nothing."),
	M("commit", evpy_io_commit, FAST,
	  "commit(size=None)\n--\n\nPublish the open reservation now, with size "
	  "bytes (default: all reserved).  Its memoryview is released."),
	M("serve", pub_serve, FAST,
	  "serve(timeout=0)\n--\n\nAdmit the subscribers that are joining and "
	  "notice those that left; wait up to timeout (None: forever) for one "
	  "to join or leave if none is pending.  Returns how many are "
	  "attached.  Publishing also admits joiners, but only when it waits "
	  "or once every 4096 messages: serve() admits them at once."),
	M("wait_subscribers", pub_wait_subscribers, FAST,
	  "wait_subscribers(n=1, timeout=None)\n--\n\nServe until at least n "
	  "subscribers are attached; returns how many are.  TimeoutError "
	  "(BlockingIOError for timeout 0) if they do not come."),
	M("subscribers", pub_subscribers, METH_NOARGS,
	  "The subscribers attached: a list of evshm.SubscriberInfo "
	  "(credentials from the kernel; counters from each subscriber's own "
	  "memory, which it could lie about)."),
	M("stats", pub_stats, METH_NOARGS,
	  "The publisher's counters: evshm.PublisherStats."),
	M("fileno", evpy_io_fileno, METH_NOARGS,
	  "A descriptor that polls readable when a subscriber is joining or "
	  "leaving (call serve()), or when room may have appeared after a "
	  "send failed with BlockingIOError.  Owned by the publisher."),
	M("close", evpy_io_close, METH_NOARGS,
	  "Close the topic: subscribers read what was published, then "
	  "BrokenPipeError; the socket file is removed."),
	M("asend", evpy_io_asend, METH_O,
	  "await pub.asend(data): send() on the running asyncio loop."),
	M("await_subscribers", pub_await_subscribers, METH_FASTCALL,
	  "await pub.await_subscribers(n=1): wait_subscribers() on the running "
	  "asyncio loop."),
	M("__enter__", evpy_io_enter, METH_NOARGS, NULL),
	M("__exit__", evpy_io_exit, METH_VARARGS, NULL),
	{ 0 }
};

static PyGetSetDef pub_getset[] = {
	{ "max_msg", (getter)evpy_io_get_max_msg, NULL,
	  "Largest message the topic carries, in bytes.", NULL },
	{ "closed", (getter)evpy_io_get_closed, NULL, "True after close().", NULL },
	{ "name", (getter)get_name, NULL, "Where the topic is published.", NULL },
	{ "policy", (getter)get_policy, NULL, "'reliable' or 'latest'.", NULL },
	{ 0 }
};

PyTypeObject evpy_PubType = {
	EVPY_EP_TYPE("evshm.Publisher",
		"A topic's publisher: evshm.publish(name, **options).",
		pub_repr, pub_methods, pub_getset),
};

/* --- Subscriber ------------------------------------------------------------------- */

static PyObject *sub_peer_cred(struct evpy_ep *sub, PyObject *unused)
{
	(void)unused;
	if (sub->closed)
		return evpy_closed("subscriber");
	return evpy_cred_new(sub->pid, sub->uid, sub->gid);
}

static PyObject *sub_get_lost(struct evpy_ep *sub, void *unused)
{
	(void)unused;
	if (evpy_ep_quick(sub) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(evshm_sub_lost(sub->h));
}

static PyObject *sub_repr(struct evpy_ep *sub)
{
	if (sub->closed)
		return PyUnicode_FromFormat("<evshm.Subscriber %R closed>", sub->name);
	return PyUnicode_FromFormat("<evshm.Subscriber %R %s, publisher pid %d>",
				    sub->name, evpy_policy_name(sub->policy),
				    (int)sub->pid);
}

static int subscribe_open(void **h, const char *name,
			  const struct evshm_opts *o, int ms)
{
	struct evshm_sub *s = NULL;
	int res = evshm_sub_open(&s, name, o, ms);

	*h = s;
	return res;
}

PyObject *evpy_subscribe(PyObject *mod, PyObject *args, PyObject *kw)
{
	static const struct evpy_client k = { "subscribe", EVPY_SUBSCRIBE,
					      subscribe_open, s_close };
	PyObject *name;

	(void)mod;
	struct evshm_sub *s = evpy_open_client(&k, args, kw, &name);
	if (!s)
		return NULL;
	struct evpy_ep *sub = (struct evpy_ep *)evpy_ep_new(&evpy_SubType,
							    &sub_ops, s);
	if (!sub)
		return NULL;
	sub->name = Py_NewRef(name);
	sub->max_msg = evshm_sub_max_msg(s);
	sub->policy = evshm_sub_policy(s);
	evshm_sub_peer_cred(s, &sub->pid, &sub->uid, &sub->gid);
	return (PyObject *)sub;
}

static PyMethodDef sub_methods[] = {
	M("recv", evpy_io_recv, FAST,
	  "recv(timeout=None)\n--\n\nReceive the next message as bytes (latest: "
	  "never a torn one; what was overwritten is skipped and counted in "
	  "lost)."),
	M("recv_many", evpy_io_recv_many, FAST, EVPY_RECV_MANY_DOC),
	M("recv_into", evpy_io_recv_into, FAST,
	  "recv_into(buffer, timeout=None)\n--\n\nReceive the next message into "
	  "a writable buffer; returns its length.  OSError EMSGSIZE if it does "
	  "not fit (the message stays)."),
	M("peek", evpy_io_peek, FAST,
	  "peek(timeout=None)\n--\n\nZero-copy receive: `with sub.peek() as "
	  "buf:` gives a read-only memoryview of the message in the "
	  "publisher's ring, released when the block ends.  Latest: the "
	  "publisher may overwrite it meanwhile; the end of the block then "
	  "raises OSError ESTALE: discard what you read."),
	M("peek_many", evpy_io_peek_many, FAST, EVPY_PEEK_MANY_DOC),
	M("fileno", evpy_io_fileno, METH_NOARGS,
	  "A descriptor that polls readable when a message may be pending or "
	  "the publisher has gone.  Owned by the subscriber."),
	M("stats", evpy_io_stats, METH_NOARGS,
	  "The subscriber's counters: evshm.Stats (msgs_recv, bytes_recv, "
	  "kicks_sent, sleeps, spins, lost)."),
	M("peer_cred", sub_peer_cred, METH_NOARGS,
	  "The publisher's (pid, uid, gid) as the kernel saw them: "
	  "evshm.PeerCred."),
	M("close", evpy_io_close, METH_NOARGS,
	  "End the subscription; the publisher sees it leave."),
	M("arecv", evpy_io_arecv, METH_NOARGS,
	  "await sub.arecv(): recv() on the running asyncio loop."),
	M("arecv_many", evpy_io_arecv_many, FAST,
	  "await sub.arecv_many(max=64): recv_many() on the running asyncio "
	  "loop."),
	M("__enter__", evpy_io_enter, METH_NOARGS, NULL),
	M("__exit__", evpy_io_exit, METH_VARARGS, NULL),
	{ 0 }
};

static PyGetSetDef sub_getset[] = {
	{ "max_msg", (getter)evpy_io_get_max_msg, NULL,
	  "Largest message of the topic, in bytes.", NULL },
	{ "closed", (getter)evpy_io_get_closed, NULL, "True after close().", NULL },
	{ "name", (getter)get_name, NULL, "The topic subscribed to.", NULL },
	{ "policy", (getter)get_policy, NULL,
	  "The topic's policy, as its publisher announced it: 'reliable' or "
	  "'latest'.", NULL },
	{ "lost", (getter)sub_get_lost, NULL,
	  "Messages missed since the subscription began (latest: the "
	  "publisher overwrote them before they were read).", NULL },
	{ 0 }
};

PyTypeObject evpy_SubType = {
	EVPY_EP_TYPE("evshm.Subscriber",
		"A topic's subscriber: evshm.subscribe(name, timeout=None, "
		"**options).\n\nfor msg in sub: receives until the publisher "
		"has gone.",
		sub_repr, sub_methods, sub_getset),
	EVPY_EP_RX_TYPE,
};
