/* SPDX-License-Identifier: MIT */
/*
 * chan.c: evshm.Channel and evshm.connect().  The methods it shares with
 * publishers and subscribers are in io.c; here are the library calls
 * behind them and what only a channel has: descriptors, counters of both
 * directions, the peer's credentials.
 */
#include "evpy.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* --- the library, behind struct evpy_ep_ops ------------------------------------- */

static int c_peek(void *h, const void **ptr, size_t *len, int ms)
{
	return evshm_peek(h, ptr, len, ms);
}

static int c_release(void *h)
{
	return evshm_release(h);
}

static int c_peek_next(void *h, const void **ptr, size_t *len)
{
	return evshm_peek_next(h, ptr, len);
}

static int c_recv(void *h, void *buf, size_t cap, int ms)
{
	return evshm_recv(h, buf, cap, ms);
}

static int c_send(void *h, const void *buf, size_t len, int ms)
{
	return evshm_send(h, buf, len, ms);
}

static int c_send_fds(void *h, const void *buf, size_t len, const int *fds,
		      unsigned nfds, int ms)
{
	return evshm_send_fds(h, buf, len, fds, nfds, ms);
}

static int c_reserve(void *h, size_t len, void **ptr, int ms)
{
	return evshm_reserve(h, len, ptr, ms);
}

static int c_commit(void *h, size_t len)
{
	return evshm_commit(h, len);
}

static int c_cancel(void *h)
{
	return evshm_cancel(h);
}

static int c_fd(void *h)
{
	return evshm_fd(h);
}

static void c_stats(const void *h, struct evshm_stats *st)
{
	evshm_stats(h, st);
}

static const char *c_reason(const void *h)
{
	return evshm_error_reason(h);
}

static void c_close(void *h)
{
	evshm_close(h);
}

const struct evpy_ep_ops evpy_chan_ops = {
	.what = "channel",
	.side = -1,
	.peek = c_peek,
	.release = c_release,
	.peek_next = c_peek_next,
	.recv = c_recv,
	.send = c_send,
	.send_fds = c_send_fds,
	.reserve = c_reserve,
	.commit = c_commit,
	.cancel = c_cancel,
	.fd = c_fd,
	.stats = c_stats,
	.reason = c_reason,
	.close = c_close,
};

/* --- what only a channel has ----------------------------------------------------- */

/* The descriptors as a list of ints, which the caller owns; on failure
 * they are closed. */
static PyObject *fd_list(const int *fds, unsigned n)
{
	PyObject *l = PyList_New(n);

	for (unsigned i = 0; l && i < n; i++) {
		PyObject *v = PyLong_FromLong(fds[i]);
		if (!v)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, i, v);
	}
	if (!l)
		for (unsigned i = 0; i < n; i++)
			close(fds[i]);
	return l;
}

static PyObject *chan_recv_fds(struct evpy_ep *ch, PyObject *const *args,
			       Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "timeout", NULL };
	PyObject *timeout = Py_None, *data = NULL, *out = NULL;
	int fds[EVSHM_MAX_FDS];
	unsigned nfds = EVSHM_MAX_FDS;
	const void *ptr;
	size_t len;
	int res;

	if (evpy_args("recv_fds", args, nargs, kwnames, names, 0, &timeout) < 0)
		return NULL;
	if (evpy_ep_begin(ch, EVPY_RX) < 0)
		return NULL;
	/* Peek to learn the size, then take the same message with its
	 * descriptors. */
	res = evpy_io_peek_wait(ch, timeout, &ptr, &len);
	if (res >= 0) {
		data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
		if (!data)
			res = EVPY_PYERR;
	}
	if (res >= 0)
		res = evshm_recv_fds(ch->h, PyBytes_AS_STRING(data), len, fds,
				     &nfds, 0);
	if (res < 0) {
		Py_CLEAR(data);
		evpy_ep_raise(ch, res);
	}
	evpy_ep_end(ch, EVPY_RX);
	if (!data)
		return NULL;
	PyObject *l = fd_list(fds, nfds);
	if (l)
		out = PyTuple_Pack(2, data, l);
	Py_DECREF(data);
	Py_XDECREF(l);
	return out;
}

static PyObject *chan_peer_cred(struct evpy_ep *ch, PyObject *unused)
{
	pid_t pid;
	uid_t uid;
	gid_t gid;

	(void)unused;
	if (evpy_ep_quick(ch) < 0)
		return NULL;
	int res = evshm_peer_cred(ch->h, &pid, &uid, &gid);
	if (res < 0)
		return evpy_raise(res, NULL);
	return evpy_cred_new(pid, uid, gid);
}

static PyObject *chan_repr(struct evpy_ep *ch)
{
	pid_t pid = 0;

	if (ch->closed)
		return PyUnicode_FromString("<evshm.Channel closed>");
	evshm_peer_cred(ch->h, &pid, NULL, NULL);
	return PyUnicode_FromFormat("<evshm.Channel peer pid %d, max_msg %zu>",
				    (int)pid, ch->max_msg);
}

PyObject *evpy_chan_new(struct evshm_chan *c)
{
	struct evpy_ep *ch = (struct evpy_ep *)evpy_ep_new(&evpy_ChanType,
							   &evpy_chan_ops, c);
	if (ch)
		ch->max_msg = evshm_max_msg(c);
	return (PyObject *)ch;
}

/* --- connect(), and subscribe() (topic.c) ---------------------------------------------- */

/* Parse (name, timeout=None, **options): *@bname the name as bytes (new
 * reference), *@d the deadline, *@o the options.  0, or -1 with an
 * exception. */
static int parse_open(const struct evpy_client *k, PyObject *args, PyObject *kw,
		      PyObject **name, PyObject **bname, struct evpy_deadline *d,
		      struct evshm_opts *o, struct evpy_auth *auth)
{
	PyObject *timeout = Py_None, *opts;
	int res = -1;

	*bname = NULL;
	if (!PyArg_UnpackTuple(args, k->fname, 1, 2, name, &timeout))
		return -1;
	opts = kw ? PyDict_Copy(kw) : PyDict_New();
	if (!opts)
		return -1;
	PyObject *t = PyDict_GetItemString(opts, "timeout"); /* borrowed */
	if (t) {
		if (PyTuple_GET_SIZE(args) > 1) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values "
				     "for argument 'timeout'", k->fname);
			goto out;
		}
		timeout = t;
	}
	if (evpy_deadline_init(d, timeout) < 0)
		goto out;
	if (t && PyDict_DelItemString(opts, "timeout") < 0)
		goto out;
	if (evpy_opts(o, opts, k->where, auth) < 0 ||
	    !PyUnicode_FSConverter(*name, bname))
		goto out;
	res = 0;
out:
	Py_DECREF(opts);
	return res;
}

void *evpy_open_client(const struct evpy_client *k, PyObject *args,
		       PyObject *kw, PyObject **name)
{
	PyObject *bname;
	struct evpy_auth auth = { 0 };
	struct evpy_deadline d;
	struct evshm_opts o;
	void *h = NULL;
	int res;

	if (parse_open(k, args, kw, name, &bname, &d, &o, &auth) < 0)
		goto out;
	/* Not cut in slices: a new call would be a new connection.  It is
	 * bounded by the timeout and the handshake timeout. */
	int ms = evpy_deadline_ms(&d);
	const char *n = PyBytes_AS_STRING(bname);
	Py_BEGIN_ALLOW_THREADS
	res = k->open(&h, n, &o, ms);
	Py_END_ALLOW_THREADS
	if (evpy_auth_reraise(&auth)) {
		k->close(h);
		h = NULL;
	} else if (res < 0) {
		evpy_raise(res, *name);
		h = NULL;
	}
out:
	evpy_auth_clear(&auth);
	Py_XDECREF(auth.fn);
	Py_XDECREF(bname);
	return h;
}

static int connect_open(void **h, const char *name,
			const struct evshm_opts *o, int ms)
{
	struct evshm_chan *c = NULL;
	int res = evshm_connect(&c, name, o, ms);

	*h = c;
	return res;
}

PyObject *evpy_connect(PyObject *mod, PyObject *args, PyObject *kw)
{
	static const struct evpy_client k = { "connect", EVPY_CONNECT,
					      connect_open, c_close };
	PyObject *name;

	(void)mod;
	struct evshm_chan *c = evpy_open_client(&k, args, kw, &name);
	return c ? evpy_chan_new(c) : NULL;
}

/* --- the type ----------------------------------------------------------------------------- */

#define FAST (METH_FASTCALL | METH_KEYWORDS)
#define M(name, fn, flags, doc) { name, (PyCFunction)(void (*)(void))fn, flags, doc }

static PyMethodDef chan_methods[] = {
	M("send", evpy_io_send, FAST,
	  "send(data, timeout=None)\n--\n\nSend one message: any bytes-like "
	  "object of at most max_msg bytes."),
	M("recv", evpy_io_recv, FAST,
	  "recv(timeout=None)\n--\n\nReceive one message as bytes."),
	M("recv_many", evpy_io_recv_many, FAST, EVPY_RECV_MANY_DOC),
	M("recv_into", evpy_io_recv_into, FAST,
	  "recv_into(buffer, timeout=None)\n--\n\nReceive one message into a "
	  "writable buffer; returns its length.  OSError EMSGSIZE if it does "
	  "not fit (the message stays)."),
	M("send_fds", evpy_io_send_fds, FAST,
	  "send_fds(data, fds, timeout=None)\n--\n\nSend a message with 1 to "
	  "MAX_FDS descriptors (ints or objects with fileno()); this side keeps "
	  "its own.  The peer must accept descriptors (fds=True on its side), "
	  "else OSError EOPNOTSUPP."),
	M("recv_fds", chan_recv_fds, FAST,
	  "recv_fds(timeout=None)\n--\n\nReceive (bytes, [fd, ...]); the "
	  "descriptors are new, close-on-exec, and the caller's to close.  "
	  "Only this side's fds=True lets the peer send any."),
	M("reserve", evpy_io_reserve, FAST,
	  "reserve(size, timeout=None)\n--\n\nZero-copy send: `with "
	  "ch.reserve(n) as buf:` gives a writable memoryview into the ring; "
	  "the message is sent when the block ends (commit(k) inside the block "
	  "sends k bytes instead of n); an exception in the block sends "
	  "nothing."),
	M("commit", evpy_io_commit, FAST,
	  "commit(size=None)\n--\n\nSend the open reservation now, with size "
	  "bytes (default: all reserved).  Its memoryview is released."),
	M("peek", evpy_io_peek, FAST,
	  "peek(timeout=None)\n--\n\nZero-copy receive: `with ch.peek() as "
	  "buf:` gives a read-only memoryview of the message in shared memory, "
	  "released when the block ends."),
	M("peek_many", evpy_io_peek_many, FAST, EVPY_PEEK_MANY_DOC),
	M("fileno", evpy_io_fileno, METH_NOARGS,
	  "A descriptor that polls readable when the channel may have "
	  "something to do (see evshm_fd()).  Owned by the channel."),
	M("stats", evpy_io_stats, METH_NOARGS, "The channel's counters: evshm.Stats."),
	M("peer_cred", chan_peer_cred, METH_NOARGS,
	  "The peer's (pid, uid, gid) as the kernel saw them: evshm.PeerCred."),
	M("close", evpy_io_close, METH_NOARGS,
	  "Close the channel; the peer sees the hang-up after draining."),
	M("arecv", evpy_io_arecv, METH_NOARGS,
	  "await ch.arecv(): recv() on the running asyncio loop."),
	M("arecv_many", evpy_io_arecv_many, FAST,
	  "await ch.arecv_many(max=64): recv_many() on the running asyncio "
	  "loop."),
	M("asend", evpy_io_asend, METH_O,
	  "await ch.asend(data): send() on the running asyncio loop."),
	M("__enter__", evpy_io_enter, METH_NOARGS, NULL),
	M("__exit__", evpy_io_exit, METH_VARARGS, NULL),
	{ 0 }
};

static PyGetSetDef chan_getset[] = {
	{ "max_msg", (getter)evpy_io_get_max_msg, NULL,
	  "Largest message this side can send, in bytes.", NULL },
	{ "closed", (getter)evpy_io_get_closed, NULL, "True after close().", NULL },
	{ 0 }
};

PyTypeObject evpy_ChanType = {
	EVPY_EP_TYPE("evshm.Channel",
		"A connected channel: evshm.connect() or Listener.accept().\n\n"
		"for msg in ch: receives until the peer has gone.",
		chan_repr, chan_methods, chan_getset),
	EVPY_EP_RX_TYPE,
};
