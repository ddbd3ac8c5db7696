/* SPDX-License-Identifier: MIT */
/*
 * chan.c: evshm.Channel and evshm.connect().
 *
 * One C call per message: recv() builds its bytes object straight from the
 * ring, send() copies straight from the caller's buffer into it.  Calls
 * that may wait run without the GIL (call.c, evpy_wait).
 *
 * Threads: the library allows one thread on each side (send / receive) of
 * a channel.  A second thread on a side that is in use gets RuntimeError
 * rather than undefined behaviour.  All the bookkeeping below is done with
 * the GIL held.
 */
#include "evpy.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Copies at least this large are made without the GIL. */
#define BIG_COPY (64u << 10)

/* --- lifetime ----------------------------------------------------------------- */

void evpy_chan_pin(struct evpy_chan *ch)
{
	ch->pins++;
}

void evpy_chan_unpin(struct evpy_chan *ch)
{
	if (--ch->pins == 0 && ch->closed && ch->c) {
		evshm_close(ch->c);
		ch->c = NULL;
	}
}

PyObject *evpy_chan_new(struct evshm_chan *c)
{
	struct evpy_chan *ch = PyObject_New(struct evpy_chan, &evpy_ChanType);

	if (!ch) {
		evshm_close(c);
		return NULL;
	}
	ch->c = c;
	ch->closed = ch->rx_busy = ch->tx_busy = ch->peeked = false;
	ch->pins = 0;
	ch->msg = NULL;
	ch->resv_state = EVPY_RESV_NONE;
	ch->resv_ptr = NULL;
	ch->resv_len = 0;
	ch->resv = NULL;
	ch->weakrefs = NULL;
	return (PyObject *)ch;
}

static void chan_dealloc(struct evpy_chan *ch)
{
	/* Whatever pins the mapping holds a reference to us: pins == 0. */
	if (ch->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)ch);
	evshm_close(ch->c);
	PyObject_Free(ch);
}

static PyObject *chan_close(struct evpy_chan *ch, PyObject *unused)
{
	(void)unused;
	if (!ch->closed) {
		ch->closed = true;
		ch->pins++; /* unpin closes now, or the last pin later */
		evpy_chan_unpin(ch);
	}
	Py_RETURN_NONE;
}

/* --- sides --------------------------------------------------------------------- */

static int side_begin(struct evpy_chan *ch, bool *busy, const char *what)
{
	if (ch->closed) {
		evpy_closed("channel");
		return -1;
	}
	if (*busy) {
		PyErr_Format(PyExc_RuntimeError, "another thread is %s on this "
			     "channel", what);
		return -1;
	}
	*busy = true;
	evpy_chan_pin(ch);
	return 0;
}

static void side_end(struct evpy_chan *ch, bool *busy)
{
	*busy = false;
	evpy_chan_unpin(ch);
}

static int rx_begin(struct evpy_chan *ch)
{
	if (!ch->closed && !ch->rx_busy && evpy_rx_settle(ch) < 0)
		return -1;
	return side_begin(ch, &ch->rx_busy, "receiving");
}

static int tx_begin(struct evpy_chan *ch)
{
	return side_begin(ch, &ch->tx_busy, "sending");
}

int evpy_rx_settle(struct evpy_chan *ch)
{
	if (!ch->peeked)
		return 0;
	if (ch->msg && evpy_msg_exports(ch->msg)) {
		PyErr_SetString(PyExc_BufferError, "views of the message peeked "
				"before are still alive (a numpy array or a slice "
				"of it?): delete them, or copy what you keep");
		return -1;
	}
	if (ch->msg)
		evpy_msg_detach(ch->msg);
	ch->msg = NULL;
	ch->peeked = false;
	if (ch->closed || !ch->c)
		return 0;
	int res = evshm_release(ch->c);
	if (res < 0) {
		evpy_raise(res, NULL);
		return -1;
	}
	return 0;
}

/* --- the calls that may wait ------------------------------------------------------ */

struct peek_arg {
	struct evshm_chan *c;
	const void *ptr;
	size_t len;
};

static int peek_fn(void *arg, int ms)
{
	struct peek_arg *a = arg;
	return evshm_peek(a->c, &a->ptr, &a->len, ms);
}

struct xfer_arg {
	struct evshm_chan *c;
	void *buf;
	size_t len;
	const int *fds;
	unsigned nfds;
};

static int send_fn(void *arg, int ms)
{
	struct xfer_arg *a = arg;
	if (a->nfds)
		return evshm_send_fds(a->c, a->buf, a->len, a->fds, a->nfds, ms);
	return evshm_send(a->c, a->buf, a->len, ms);
}

static int recv_fn(void *arg, int ms)
{
	struct xfer_arg *a = arg;
	return evshm_recv(a->c, a->buf, a->len, ms);
}

static int reserve_fn(void *arg, int ms)
{
	struct xfer_arg *a = arg;
	return evshm_reserve(a->c, a->len, &a->buf, ms);
}

/* --- receiving ------------------------------------------------------------------------ */

static const char *const kw_timeout[] = { "timeout", NULL };

/* Wait for the next message; 0, or a negative errno / EVPY_PYERR. */
static int chan_peek_wait(struct evpy_chan *ch, PyObject *timeout,
			  struct peek_arg *a)
{
	struct evpy_deadline d;

	if (evpy_deadline_init(&d, timeout) < 0)
		return EVPY_PYERR;
	a->c = ch->c;
	return evpy_wait(&d, peek_fn, a, &ch->closed);
}

/* A bytes object of the peeked message; NULL with an exception set. */
static PyObject *bytes_of(const struct peek_arg *a)
{
	if (a->len < BIG_COPY)
		return PyBytes_FromStringAndSize(a->ptr, (Py_ssize_t)a->len);
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)a->len);
	if (b) {
		Py_BEGIN_ALLOW_THREADS
		memcpy(PyBytes_AS_STRING(b), a->ptr, a->len);
		Py_END_ALLOW_THREADS
	}
	return b;
}

/* recv() and iteration: @eof_ok turns -EPIPE into "no more" (NULL, no
 * exception). */
static PyObject *chan_recv_impl(struct evpy_chan *ch, PyObject *timeout,
				bool eof_ok)
{
	struct peek_arg a;
	PyObject *out = NULL;
	int res;

	if (rx_begin(ch) < 0)
		return NULL;
	res = chan_peek_wait(ch, timeout, &a);
	if (res >= 0) {
		/* A failed allocation leaves the message where it is. */
		out = bytes_of(&a);
		if (out && (res = evshm_release(ch->c)) < 0)
			Py_CLEAR(out);
	}
	side_end(ch, &ch->rx_busy);
	if (!out && res < 0 && !(eof_ok && res == -EPIPE))
		evpy_raise(res, NULL);
	return out;
}

static PyObject *chan_recv(struct evpy_chan *ch, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;

	if (evpy_args("recv", args, nargs, kwnames, kw_timeout, 0, &timeout) < 0)
		return NULL;
	return chan_recv_impl(ch, timeout, false);
}

static PyObject *chan_iternext(struct evpy_chan *ch)
{
	return chan_recv_impl(ch, Py_None, true);
}

static PyObject *chan_recv_into(struct evpy_chan *ch, PyObject *const *args,
				Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "buffer", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };
	struct evpy_deadline d;
	Py_buffer view;
	int res;

	if (evpy_args("recv_into", args, nargs, kwnames, names, 1, argv) < 0 ||
	    evpy_deadline_init(&d, argv[1]) < 0)
		return NULL;
	if (PyObject_GetBuffer(argv[0], &view, PyBUF_WRITABLE) < 0)
		return NULL;
	if (rx_begin(ch) < 0) {
		PyBuffer_Release(&view);
		return NULL;
	}
	struct xfer_arg a = { .c = ch->c, .buf = view.buf, .len = (size_t)view.len };
	res = evpy_wait(&d, recv_fn, &a, &ch->closed);
	side_end(ch, &ch->rx_busy);
	PyBuffer_Release(&view);
	return res < 0 ? evpy_raise(res, NULL) : PyLong_FromLong(res);
}

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

static PyObject *chan_recv_fds(struct evpy_chan *ch, PyObject *const *args,
			       Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None, *data = NULL, *out = NULL;
	int fds[EVSHM_MAX_FDS];
	unsigned nfds = EVSHM_MAX_FDS;
	struct peek_arg a;
	int res;

	if (evpy_args("recv_fds", args, nargs, kwnames, kw_timeout, 0, &timeout) < 0)
		return NULL;
	if (rx_begin(ch) < 0)
		return NULL;
	/* Peek to learn the size, then take the same message with its
	 * descriptors. */
	res = chan_peek_wait(ch, timeout, &a);
	if (res >= 0) {
		data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)a.len);
		if (!data)
			res = EVPY_PYERR;
	}
	if (res >= 0)
		res = evshm_recv_fds(ch->c, PyBytes_AS_STRING(data), a.len, fds,
				     &nfds, 0);
	side_end(ch, &ch->rx_busy);
	if (res < 0) {
		Py_XDECREF(data);
		return evpy_raise(res, NULL);
	}
	PyObject *l = fd_list(fds, nfds);
	if (l)
		out = PyTuple_Pack(2, data, l);
	Py_DECREF(data);
	Py_XDECREF(l);
	return out;
}

static PyObject *chan_peek(struct evpy_chan *ch, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None, *msg = NULL;
	struct peek_arg a;
	int res;

	if (evpy_args("peek", args, nargs, kwnames, kw_timeout, 0, &timeout) < 0)
		return NULL;
	if (rx_begin(ch) < 0)
		return NULL;
	res = chan_peek_wait(ch, timeout, &a);
	if (res >= 0) {
		ch->peeked = true; /* released by the Message, or settled */
		msg = evpy_msg_new(ch, a.ptr, a.len);
	}
	side_end(ch, &ch->rx_busy);
	return res < 0 ? evpy_raise(res, NULL) : msg;
}

/* --- sending ---------------------------------------------------------------------------- */

/* Descriptors from a sequence of ints or objects with fileno(). */
static int fds_from(PyObject *seq, int *fds, unsigned *n)
{
	PyObject *fast = PySequence_Fast(seq, "fds must be a sequence of "
					 "descriptors");
	if (!fast)
		return -1;
	Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
	if (len < 1 || len > EVSHM_MAX_FDS) {
		PyErr_Format(PyExc_ValueError, "a message carries 1 to %d "
			     "descriptors, not %zd", EVSHM_MAX_FDS, len);
		Py_DECREF(fast);
		return -1;
	}
	for (Py_ssize_t i = 0; i < len; i++) {
		fds[i] = PyObject_AsFileDescriptor(PySequence_Fast_GET_ITEM(fast, i));
		if (fds[i] < 0) {
			Py_DECREF(fast);
			return -1;
		}
	}
	*n = (unsigned)len;
	Py_DECREF(fast);
	return 0;
}

static PyObject *send_impl(struct evpy_chan *ch, PyObject *data,
			   PyObject *fdseq, PyObject *timeout)
{
	struct evpy_deadline d;
	int fds[EVSHM_MAX_FDS];
	struct xfer_arg a = { .c = NULL };
	Py_buffer view;
	int res;

	if (evpy_deadline_init(&d, timeout) < 0)
		return NULL;
	if (fdseq && fds_from(fdseq, fds, &a.nfds) < 0)
		return NULL;
	/* bytes, the common case, without the buffer protocol's cost. */
	if (PyBytes_CheckExact(data)) {
		view.obj = NULL;
		a.buf = PyBytes_AS_STRING(data);
		a.len = (size_t)PyBytes_GET_SIZE(data);
	} else {
		if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
			return NULL;
		a.buf = view.buf;
		a.len = (size_t)view.len;
	}
	a.fds = fds;
	if (tx_begin(ch) < 0) {
		res = EVPY_PYERR;
		goto out;
	}
	a.c = ch->c;
	void *p;
	res = a.nfds ? 0 : evpy_resv_reuse(ch, a.len, &p);
	if (res == 0) {
		res = evpy_wait(&d, send_fn, &a, &ch->closed);
	} else if (res > 0) {
		memcpy(p, a.buf, a.len);
		res = evshm_commit(ch->c, a.len);
	} else {
		res = EVPY_PYERR;
	}
	side_end(ch, &ch->tx_busy);
out:
	if (view.obj)
		PyBuffer_Release(&view);
	if (res < 0)
		return evpy_raise(res, NULL);
	Py_RETURN_NONE;
}

static PyObject *chan_send(struct evpy_chan *ch, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "data", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };

	if (evpy_args("send", args, nargs, kwnames, names, 1, argv) < 0)
		return NULL;
	return send_impl(ch, argv[0], NULL, argv[1]);
}

static PyObject *chan_send_fds(struct evpy_chan *ch, PyObject *const *args,
			       Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "data", "fds", "timeout", NULL };
	PyObject *argv[3] = { NULL, NULL, Py_None };

	if (evpy_args("send_fds", args, nargs, kwnames, names, 2, argv) < 0)
		return NULL;
	return send_impl(ch, argv[0], argv[1], argv[2]);
}

static PyObject *chan_reserve(struct evpy_chan *ch, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "size", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };
	struct evpy_deadline d;
	int res;

	if (evpy_args("reserve", args, nargs, kwnames, names, 1, argv) < 0 ||
	    evpy_deadline_init(&d, argv[1]) < 0)
		return NULL;
	Py_ssize_t n = PyNumber_AsSsize_t(argv[0], PyExc_OverflowError);
	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "size must be >= 0");
		return NULL;
	}
	if (tx_begin(ch) < 0)
		return NULL;
	struct xfer_arg a = { .c = ch->c, .len = (size_t)n };
	res = evpy_resv_reuse(ch, a.len, &a.buf);
	if (res == 0) {
		res = evpy_wait(&d, reserve_fn, &a, &ch->closed);
		if (res >= 0) {
			ch->resv_ptr = a.buf;
			ch->resv_len = a.len;
		}
	} else if (res < 0) {
		res = EVPY_PYERR;
	}
	PyObject *r = NULL;
	if (res >= 0)
		r = evpy_resv_new(ch, a.len);
	side_end(ch, &ch->tx_busy);
	return res < 0 ? evpy_raise(res, NULL) : r;
}

static PyObject *chan_commit(struct evpy_chan *ch, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "size", NULL };
	PyObject *size = Py_None;
	Py_ssize_t n = -1;

	if (evpy_args("commit", args, nargs, kwnames, names, 0, &size) < 0)
		return NULL;
	if (size != Py_None) {
		n = PyNumber_AsSsize_t(size, PyExc_OverflowError);
		if (n == -1 && PyErr_Occurred())
			return NULL;
		if (n < 0) {
			PyErr_SetString(PyExc_ValueError, "size must be >= 0");
			return NULL;
		}
	}
	if (ch->closed)
		return evpy_closed("channel");
	if (evpy_resv_commit(ch, n) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* --- the rest ---------------------------------------------------------------------------- */

static PyObject *chan_fileno(struct evpy_chan *ch, PyObject *unused)
{
	(void)unused;
	if (ch->closed)
		return evpy_closed("channel");
	int fd = evshm_fd(ch->c);
	return fd < 0 ? evpy_raise(fd, NULL) : PyLong_FromLong(fd);
}

static PyObject *chan_stats(struct evpy_chan *ch, PyObject *unused)
{
	struct evshm_stats st;
	(void)unused;
	if (ch->closed)
		return evpy_closed("channel");
	evshm_stats(ch->c, &st);
	const uint64_t v[] = { st.msgs_sent, st.bytes_sent, st.msgs_recv,
			       st.bytes_recv, st.kicks_sent, st.sleeps, st.spins };
	PyObject *s = PyStructSequence_New(evpy_StatsType);
	for (Py_ssize_t i = 0; s && i < (Py_ssize_t)(sizeof(v) / sizeof(v[0])); i++) {
		PyObject *x = PyLong_FromUnsignedLongLong(v[i]);
		if (!x)
			Py_CLEAR(s);
		else
			PyStructSequence_SET_ITEM(s, i, x);
	}
	return s;
}

static PyObject *chan_peer_cred(struct evpy_chan *ch, PyObject *unused)
{
	pid_t pid;
	uid_t uid;
	gid_t gid;
	(void)unused;
	if (ch->closed)
		return evpy_closed("channel");
	int res = evshm_peer_cred(ch->c, &pid, &uid, &gid);
	if (res < 0)
		return evpy_raise(res, NULL);
	PyObject *s = PyStructSequence_New(evpy_PeerCredType);
	if (!s)
		return NULL;
	PyObject *v[3] = { PyLong_FromLong(pid), PyLong_FromUnsignedLong(uid),
			   PyLong_FromUnsignedLong(gid) };
	for (int i = 0; i < 3; i++) {
		if (!v[i]) {
			for (int j = i + 1; j < 3; j++)
				Py_XDECREF(v[j]);
			Py_DECREF(s);
			return NULL;
		}
		PyStructSequence_SET_ITEM(s, i, v[i]);
	}
	return s;
}

static PyObject *chan_get_max_msg(struct evpy_chan *ch, void *unused)
{
	(void)unused;
	if (ch->closed)
		return evpy_closed("channel");
	return PyLong_FromSize_t(evshm_max_msg(ch->c));
}

static PyObject *chan_get_closed(struct evpy_chan *ch, void *unused)
{
	(void)unused;
	return PyBool_FromLong(ch->closed);
}

static PyObject *chan_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	if (((struct evpy_chan *)self)->closed)
		return evpy_closed("channel");
	Py_INCREF(self);
	return self;
}

static PyObject *chan_exit(struct evpy_chan *ch, PyObject *args)
{
	(void)args;
	return chan_close(ch, NULL);
}

static PyObject *chan_arecv(PyObject *self, PyObject *unused)
{
	(void)unused;
	return evpy_aio("arecv", self, NULL);
}

static PyObject *chan_asend(PyObject *self, PyObject *data)
{
	return evpy_aio("asend", self, data);
}

static PyObject *chan_anext(PyObject *self)
{
	return evpy_aio("anext", self, NULL);
}

static PyObject *chan_aiter(PyObject *self)
{
	Py_INCREF(self);
	return self;
}

static PyObject *chan_repr(struct evpy_chan *ch)
{
	pid_t pid = 0;

	if (ch->closed)
		return PyUnicode_FromString("<evshm.Channel closed>");
	evshm_peer_cred(ch->c, &pid, NULL, NULL);
	return PyUnicode_FromFormat("<evshm.Channel peer pid %d, max_msg %zu>",
				    (int)pid, evshm_max_msg(ch->c));
}

/* --- connect() ------------------------------------------------------------------------- */

PyObject *evpy_connect(PyObject *mod, PyObject *args, PyObject *kw)
{
	PyObject *name, *timeout = Py_None, *bname = NULL, *opts = NULL, *out = NULL;
	struct evpy_auth auth = { 0 };
	struct evpy_deadline d;
	struct evshm_opts o;
	struct evshm_chan *c = NULL;
	int res;

	(void)mod;
	if (!PyArg_ParseTuple(args, "O|O:connect", &name, &timeout))
		return NULL;
	opts = kw ? PyDict_Copy(kw) : PyDict_New();
	if (!opts)
		return NULL;
	PyObject *t = PyDict_GetItemString(opts, "timeout"); /* borrowed */
	if (t) {
		if (PyTuple_GET_SIZE(args) > 1) {
			PyErr_SetString(PyExc_TypeError, "connect() got multiple "
					"values for argument 'timeout'");
			goto out;
		}
		timeout = t;
	}
	if (evpy_deadline_init(&d, timeout) < 0)
		goto out;
	if (t && PyDict_DelItemString(opts, "timeout") < 0)
		goto out;
	if (evpy_opts(&o, opts, EVPY_CONNECT, &auth) < 0 ||
	    !PyUnicode_FSConverter(name, &bname))
		goto out;
	/* Not cut in slices: a new call would be a new connection.  It is
	 * bounded by the timeout and the handshake timeout. */
	int ms = evpy_deadline_ms(&d);
	const char *n = PyBytes_AS_STRING(bname);
	Py_BEGIN_ALLOW_THREADS
	res = evshm_connect(&c, n, &o, ms);
	Py_END_ALLOW_THREADS
	if (evpy_auth_reraise(&auth))
		goto out;
	if (res < 0) {
		evpy_raise(res, name);
		goto out;
	}
	out = evpy_chan_new(c);
out:
	if (!out)
		evpy_auth_clear(&auth);
	Py_XDECREF(auth.fn);
	Py_XDECREF(bname);
	Py_DECREF(opts);
	return out;
}

/* --- the type ----------------------------------------------------------------------------- */

#define FAST (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef chan_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))chan_send, FAST,
	  "send(data, timeout=None)\n--\n\nSend one message: any bytes-like "
	  "object of at most max_msg bytes." },
	{ "recv", (PyCFunction)(void (*)(void))chan_recv, FAST,
	  "recv(timeout=None)\n--\n\nReceive one message as bytes." },
	{ "recv_into", (PyCFunction)(void (*)(void))chan_recv_into, FAST,
	  "recv_into(buffer, timeout=None)\n--\n\nReceive one message into a "
	  "writable buffer; returns its length.  OSError EMSGSIZE if it does "
	  "not fit (the message stays)." },
	{ "send_fds", (PyCFunction)(void (*)(void))chan_send_fds, FAST,
	  "send_fds(data, fds, timeout=None)\n--\n\nSend a message with 1 to "
	  "MAX_FDS descriptors (ints or objects with fileno()); this side keeps "
	  "its own." },
	{ "recv_fds", (PyCFunction)(void (*)(void))chan_recv_fds, FAST,
	  "recv_fds(timeout=None)\n--\n\nReceive (bytes, [fd, ...]); the "
	  "descriptors are new, close-on-exec, and the caller's to close." },
	{ "reserve", (PyCFunction)(void (*)(void))chan_reserve, FAST,
	  "reserve(size, timeout=None)\n--\n\nZero-copy send: `with "
	  "ch.reserve(n) as buf:` gives a writable memoryview into the ring; "
	  "the message is sent when the block ends (commit(k) inside the block "
	  "sends k bytes instead of n); an exception in the block sends "
	  "nothing." },
	{ "commit", (PyCFunction)(void (*)(void))chan_commit, FAST,
	  "commit(size=None)\n--\n\nSend the open reservation now, with size "
	  "bytes (default: all reserved).  Its memoryview is released." },
	{ "peek", (PyCFunction)(void (*)(void))chan_peek, FAST,
	  "peek(timeout=None)\n--\n\nZero-copy receive: `with ch.peek() as "
	  "buf:` gives a read-only memoryview of the message in shared memory, "
	  "released when the block ends." },
	{ "fileno", (PyCFunction)chan_fileno, METH_NOARGS,
	  "A descriptor that polls readable when the channel may have "
	  "something to do (see evshm_fd()).  Owned by the channel." },
	{ "stats", (PyCFunction)chan_stats, METH_NOARGS,
	  "The channel's counters: evshm.Stats." },
	{ "peer_cred", (PyCFunction)chan_peer_cred, METH_NOARGS,
	  "The peer's (pid, uid, gid) as the kernel saw them: evshm.PeerCred." },
	{ "close", (PyCFunction)chan_close, METH_NOARGS,
	  "Close the channel; the peer sees the hang-up after draining." },
	{ "arecv", (PyCFunction)chan_arecv, METH_NOARGS,
	  "await ch.arecv(): recv() on the running asyncio loop." },
	{ "asend", (PyCFunction)chan_asend, METH_O,
	  "await ch.asend(data): send() on the running asyncio loop." },
	{ "__enter__", (PyCFunction)chan_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)chan_exit, METH_VARARGS, NULL },
	{ 0 }
};

static PyGetSetDef chan_getset[] = {
	{ "max_msg", (getter)chan_get_max_msg, NULL,
	  "Largest message this side can send, in bytes.", NULL },
	{ "closed", (getter)chan_get_closed, NULL, "True after close().", NULL },
	{ 0 }
};

static PyAsyncMethods chan_async = {
	.am_aiter = chan_aiter,
	.am_anext = chan_anext,
};

PyTypeObject evpy_ChanType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "evshm.Channel",
	.tp_doc = "A connected channel: evshm.connect() or Listener.accept().\n\n"
		  "for msg in ch: receives until the peer has gone.",
	.tp_basicsize = sizeof(struct evpy_chan),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_dealloc = (destructor)chan_dealloc,
	.tp_repr = (reprfunc)chan_repr,
	.tp_methods = chan_methods,
	.tp_getset = chan_getset,
	.tp_as_async = &chan_async,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)chan_iternext,
	.tp_weaklistoffset = offsetof(struct evpy_chan, weakrefs),
};
