/* SPDX-License-Identifier: MIT */
/*
 * io.c: the methods a Channel, a Publisher and a Subscriber share, on the
 * library calls of their struct evpy_ep_ops.
 *
 * One C call per message: recv() builds its bytes object straight from the
 * ring, send() copies straight from the caller's buffer into it.  Calls
 * that may wait run without the GIL (call.c, evpy_wait).
 */
#include "evpy.h"

#include <errno.h>
#include <string.h>

/* Copies at least this large are made without the GIL. */
#define BIG_COPY (64u << 10)

static const char *const kw_timeout[] = { "timeout", NULL };

/* --- the calls that may wait ------------------------------------------------------ */

struct io_arg {
	struct evpy_ep *ep;
	const void *cptr; /* peek: the message */
	void *buf;        /* send: the data; recv: the room; reserve: out */
	size_t len;
	const int *fds;
	unsigned nfds;
};

static int peek_fn(void *arg, int ms)
{
	struct io_arg *a = arg;
	return a->ep->ops->peek(a->ep->h, &a->cptr, &a->len, ms);
}

static int send_fn(void *arg, int ms)
{
	struct io_arg *a = arg;
	if (a->nfds)
		return a->ep->ops->send_fds(a->ep->h, a->buf, a->len, a->fds,
					    a->nfds, ms);
	return a->ep->ops->send(a->ep->h, a->buf, a->len, ms);
}

static int recv_fn(void *arg, int ms)
{
	struct io_arg *a = arg;
	return a->ep->ops->recv(a->ep->h, a->buf, a->len, ms);
}

static int reserve_fn(void *arg, int ms)
{
	struct io_arg *a = arg;
	return a->ep->ops->reserve(a->ep->h, a->len, &a->buf, ms);
}

static int peek_until(struct evpy_ep *ep, const struct evpy_deadline *d,
		      const void **ptr, size_t *len)
{
	struct io_arg a = { .ep = ep };
	int res = evpy_wait(d, peek_fn, &a, &ep->closed);

	*ptr = a.cptr;
	*len = a.len;
	return res;
}

int evpy_io_peek_wait(struct evpy_ep *ep, PyObject *timeout,
		      const void **ptr, size_t *len)
{
	struct evpy_deadline d;

	if (evpy_deadline_init(&d, timeout) < 0)
		return EVPY_PYERR;
	return peek_until(ep, &d, ptr, len);
}

/* --- receiving ------------------------------------------------------------------------ */

/* A bytes object of @len bytes at @ptr; NULL with an exception set. */
static PyObject *bytes_of(const void *ptr, size_t len)
{
	if (len < BIG_COPY)
		return PyBytes_FromStringAndSize(ptr, (Py_ssize_t)len);
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
	if (b) {
		Py_BEGIN_ALLOW_THREADS
		memcpy(PyBytes_AS_STRING(b), ptr, len);
		Py_END_ALLOW_THREADS
	}
	return b;
}

/* A run stops growing once it holds this many bytes: its messages stay
 * peeked, and their room unavailable to the producer, until the whole
 * list is copied (recv_many) or its with-block ends (peek_many); large
 * messages gain nothing from a run (the copy, or the work on them,
 * dwarfs the per-message cost), and on a latest topic a longer run is
 * likelier to be overwritten. */
#define RUN_BYTES (64u << 10)

/* The run a receive takes, from the message peeked at @ptr: it and those
 * already behind it (the library's peek_next, which never adds one with
 * descriptors), at most @max and while they hold less than RUN_BYTES,
 * each handed to @take in order.  0, or -1 with @take's exception; then
 * *@more says whether more than the first was peeked. */
static int take_run(struct evpy_ep *ep, const void *ptr, size_t len,
		    Py_ssize_t max, int (*take)(PyObject *to, const void *ptr,
						size_t len),
		    PyObject *to, bool *more)
{
	size_t bytes = 0;

	*more = false;
	for (Py_ssize_t n = 0;;) {
		if (take(to, ptr, len) < 0)
			return -1;
		bytes += len;
		if (++n == max || bytes >= RUN_BYTES ||
		    ep->ops->peek_next(ep->h, &ptr, &len) < 0)
			return 0;
		*more = true;
	}
}

static int append_bytes(PyObject *list, const void *ptr, size_t len)
{
	PyObject *item = bytes_of(ptr, len);
	int res = item ? PyList_Append(list, item) : -1;

	Py_XDECREF(item);
	return res;
}

/* The messages a receive takes, from the one peeked at @ptr: with
 * @max 0, that one as bytes; else take_run()'s as a list of bytes.
 * NULL with an exception set; then *@more says whether more than the
 * first was peeked. */
static PyObject *copy_run(struct evpy_ep *ep, const void *ptr, size_t len,
			  Py_ssize_t max, bool *more)
{
	PyObject *list;

	*more = false;
	if (max == 0)
		return bytes_of(ptr, len);
	if ((list = PyList_New(0)) &&
	    take_run(ep, ptr, len, max, append_bytes, list, more) < 0)
		Py_CLEAR(list);
	return list;
}

/* recv(), recv_many() and iteration: @max as copy_run()'s; @eof_ok turns
 * -EPIPE into "no more" (NULL, no exception).  A message a latest
 * publisher overwrote while it was copied (-ESTALE: for a list, any of
 * them) is dropped (the library counts it lost; the next peek delivers
 * again those of a list still whole) and the next one taken, within the
 * deadline and as long as no signal handler raised; with timeout 0 the
 * library's peek ends the tries (-EAGAIN, after 17 in a row), as
 * evshm_sub_recv()'s.  A failed copy of the first message leaves it
 * where it is; of a later one in a list, the list is released and lost
 * (the library cannot give back part of what it peeked). */
static PyObject *recv_impl(struct evpy_ep *ep, PyObject *timeout,
			   Py_ssize_t max, bool eof_ok)
{
	struct evpy_deadline d;
	PyObject *out = NULL;
	const void *ptr;
	size_t len;
	bool more;
	int res;

	if (evpy_deadline_init(&d, timeout) < 0 || evpy_ep_begin(ep, EVPY_RX) < 0)
		return NULL;
	for (;;) {
		res = peek_until(ep, &d, &ptr, &len);
		if (res < 0)
			break;
		out = copy_run(ep, ptr, len, max, &more);
		if (!out && !more) {
			res = EVPY_PYERR;
			break;
		}
		res = ep->ops->release(ep->h);
		if (!out) {
			res = EVPY_PYERR;
			break;
		}
		if (res == 0)
			break;
		Py_CLEAR(out);
		if (res != -ESTALE)
			break;
		/* A publisher that laps every copy must not hold Ctrl-C off
		 * (the wait checks it only when a slice ends). */
		if (PyErr_CheckSignals() < 0) {
			res = EVPY_PYERR;
			break;
		}
	}
	if (!out && !(eof_ok && res == -EPIPE))
		evpy_ep_raise(ep, res);
	evpy_ep_end(ep, EVPY_RX);
	return out;
}

PyObject *evpy_io_recv(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;

	if (evpy_args("recv", args, nargs, kwnames, kw_timeout, 0, &timeout) < 0)
		return NULL;
	return recv_impl(ep, timeout, 0, false);
}

/* The arguments (max=64, timeout=None) of @fname (recv_many,
 * peek_many): *@max, and *@timeout (borrowed).  0, or -1 with an
 * exception. */
static int many_args(const char *fname, PyObject *const *args,
		     Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t *max,
		     PyObject **timeout)
{
	static const char *const names[] = { "max", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };

	if (evpy_args(fname, args, nargs, kwnames, names, 0, argv) < 0)
		return -1;
	*timeout = argv[1];
	*max = 64;
	if (argv[0] && argv[0] != Py_None) {
		*max = PyNumber_AsSsize_t(argv[0], PyExc_OverflowError);
		if (*max == -1 && PyErr_Occurred())
			return -1;
		if (*max < 1) {
			PyErr_Format(PyExc_ValueError,
				     "%s(): max must be at least 1", fname);
			return -1;
		}
	}
	return 0;
}

PyObject *evpy_io_recv_many(struct evpy_ep *ep, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout;
	Py_ssize_t max;

	if (many_args("recv_many", args, nargs, kwnames, &max, &timeout) < 0)
		return NULL;
	return recv_impl(ep, timeout, max, false);
}

PyObject *evpy_io_iternext(struct evpy_ep *ep)
{
	return recv_impl(ep, Py_None, 0, true);
}

PyObject *evpy_io_recv_into(struct evpy_ep *ep, PyObject *const *args,
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
	if (evpy_ep_begin(ep, EVPY_RX) < 0) {
		PyBuffer_Release(&view);
		return NULL;
	}
	struct io_arg a = { .ep = ep, .buf = view.buf, .len = (size_t)view.len };
	res = evpy_wait(&d, recv_fn, &a, &ep->closed);
	if (res < 0)
		evpy_ep_raise(ep, res);
	evpy_ep_end(ep, EVPY_RX);
	PyBuffer_Release(&view);
	return res < 0 ? NULL : PyLong_FromLong(res);
}

/* peek() (@max 0: a Message) and peek_many() (a MessageRun of
 * take_run()'s messages).  Whatever was peeked stays peeked until the
 * object releases it, or the next receive settles it (also if making
 * the object failed: then what was peeked is lost). */
static PyObject *peek_impl(struct evpy_ep *ep, PyObject *timeout,
			   Py_ssize_t max)
{
	PyObject *msg = NULL;
	const void *ptr;
	size_t len;
	bool more;
	int res;

	if (evpy_ep_begin(ep, EVPY_RX) < 0)
		return NULL;
	res = evpy_io_peek_wait(ep, timeout, &ptr, &len);
	if (res >= 0) {
		ep->peeked = true; /* released by the object, or settled */
		if (max == 0)
			msg = evpy_msg_new(ep, ptr, len);
		else if ((msg = evpy_run_new(ep)) &&
			 take_run(ep, ptr, len, max, evpy_run_add, msg, &more) < 0)
			Py_CLEAR(msg);
	} else {
		evpy_ep_raise(ep, res);
	}
	evpy_ep_end(ep, EVPY_RX);
	return msg;
}

PyObject *evpy_io_peek(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout = Py_None;

	if (evpy_args("peek", args, nargs, kwnames, kw_timeout, 0, &timeout) < 0)
		return NULL;
	return peek_impl(ep, timeout, 0);
}

PyObject *evpy_io_peek_many(struct evpy_ep *ep, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *timeout;
	Py_ssize_t max;

	if (many_args("peek_many", args, nargs, kwnames, &max, &timeout) < 0)
		return NULL;
	return peek_impl(ep, timeout, max);
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

static PyObject *send_impl(struct evpy_ep *ep, PyObject *data,
			   PyObject *fdseq, PyObject *timeout)
{
	struct evpy_deadline d;
	int fds[EVSHM_MAX_FDS];
	struct io_arg a = { .ep = ep, .fds = fds };
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
	res = EVPY_PYERR;
	if (evpy_ep_begin(ep, EVPY_TX) == 0) {
		res = evpy_wait(&d, send_fn, &a, &ep->closed);
		if (res < 0)
			evpy_ep_raise(ep, res);
		evpy_ep_end(ep, EVPY_TX);
	}
	if (view.obj)
		PyBuffer_Release(&view);
	if (res < 0)
		return NULL;
	Py_RETURN_NONE;
}

PyObject *evpy_io_send(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "data", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None };

	if (evpy_args("send", args, nargs, kwnames, names, 1, argv) < 0)
		return NULL;
	return send_impl(ep, argv[0], NULL, argv[1]);
}

PyObject *evpy_io_send_fds(struct evpy_ep *ep, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "data", "fds", "timeout", NULL };
	PyObject *argv[3] = { NULL, NULL, Py_None };

	if (evpy_args("send_fds", args, nargs, kwnames, names, 2, argv) < 0)
		return NULL;
	return send_impl(ep, argv[0], argv[1], argv[2]);
}

PyObject *evpy_io_reserve(struct evpy_ep *ep, PyObject *const *args,
			  Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "size", "timeout", NULL };
	PyObject *argv[2] = { NULL, Py_None }, *r = NULL;
	struct evpy_deadline d;
	struct io_arg a = { .ep = ep };
	int res;

	if (evpy_args("reserve", args, nargs, kwnames, names, 1, argv) < 0 ||
	    evpy_deadline_init(&d, argv[1]) < 0 || evpy_size(argv[0], &a.len) < 0)
		return NULL;
	if (evpy_ep_begin(ep, EVPY_TX) < 0)
		return NULL;
	res = evpy_wait(&d, reserve_fn, &a, &ep->closed);
	if (res >= 0) {
		ep->resv_ptr = a.buf;
		ep->resv_len = a.len;
		r = evpy_resv_new(ep, a.len);
	} else {
		evpy_ep_raise(ep, res);
	}
	evpy_ep_end(ep, EVPY_TX);
	return r;
}

PyObject *evpy_io_commit(struct evpy_ep *ep, PyObject *const *args,
			 Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "size", NULL };
	PyObject *size = Py_None;
	size_t n = 0;

	if (evpy_args("commit", args, nargs, kwnames, names, 0, &size) < 0 ||
	    (size != Py_None && evpy_size(size, &n) < 0))
		return NULL;
	if (ep->closed)
		return evpy_closed(ep->ops->what);
	if (evpy_resv_commit(ep, size == Py_None ? -1 : (Py_ssize_t)n) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* --- the rest ---------------------------------------------------------------------------- */

PyObject *evpy_io_fileno(struct evpy_ep *ep, PyObject *unused)
{
	(void)unused;
	if (evpy_ep_quick(ep) < 0)
		return NULL;
	int fd = ep->ops->fd(ep->h);
	if (fd < 0)
		return evpy_ep_raise(ep, fd);
	ep->fd = fd;
	return PyLong_FromLong(fd);
}

PyObject *evpy_io_close(struct evpy_ep *ep, PyObject *unused)
{
	(void)unused;
	if (!ep->closed) {
		/* Closed first: a coroutine woken here that retries while
		 * _closing() has let go of the GIL must get ValueError, not
		 * BlockingIOError and a new wait on the descriptor. */
		ep->closed = true;
		evpy_aio_closing(ep->fd);
		ep->pins++; /* unpin closes now, or the last pin later */
		evpy_ep_unpin(ep);
	}
	Py_RETURN_NONE;
}

PyObject *evpy_io_enter(struct evpy_ep *ep, PyObject *unused)
{
	(void)unused;
	if (ep->closed)
		return evpy_closed(ep->ops->what);
	Py_INCREF(ep);
	return (PyObject *)ep;
}

PyObject *evpy_io_exit(struct evpy_ep *ep, PyObject *args)
{
	(void)args;
	return evpy_io_close(ep, NULL);
}

PyObject *evpy_io_get_closed(struct evpy_ep *ep, void *unused)
{
	(void)unused;
	return PyBool_FromLong(ep->closed);
}

PyObject *evpy_io_get_max_msg(struct evpy_ep *ep, void *unused)
{
	(void)unused;
	if (ep->closed)
		return evpy_closed(ep->ops->what);
	return PyLong_FromSize_t(ep->max_msg);
}

PyObject *evpy_io_arecv(PyObject *self, PyObject *unused)
{
	(void)unused;
	return evpy_aio("arecv", self, NULL);
}

PyObject *evpy_io_arecv_many(PyObject *self, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "max", NULL };
	PyObject *max = NULL;

	if (evpy_args("arecv_many", args, nargs, kwnames, names, 0, &max) < 0)
		return NULL;
	return evpy_aio("arecv_many", self, max);
}

PyObject *evpy_io_asend(PyObject *self, PyObject *data)
{
	return evpy_aio("asend", self, data);
}

static PyObject *io_anext(PyObject *self)
{
	return evpy_aio("anext", self, NULL);
}

static PyObject *io_aiter(PyObject *self)
{
	Py_INCREF(self);
	return self;
}

PyAsyncMethods evpy_io_async = {
	.am_aiter = io_aiter,
	.am_anext = io_anext,
};

/* --- counters ----------------------------------------------------------------------------- */

PyObject *evpy_structseq(PyTypeObject *type, const uint64_t *v, Py_ssize_t n)
{
	PyObject *s = PyStructSequence_New(type);

	for (Py_ssize_t i = 0; s && i < n; i++) {
		PyObject *x = PyLong_FromUnsignedLongLong(v[i]);
		if (!x)
			Py_CLEAR(s);
		else
			PyStructSequence_SET_ITEM(s, i, x);
	}
	return s;
}

PyObject *evpy_io_stats(struct evpy_ep *ep, PyObject *unused)
{
	struct evshm_stats st;

	(void)unused;
	if (evpy_ep_quick(ep) < 0)
		return NULL;
	ep->ops->stats(ep->h, &st);
	const uint64_t v[] = { st.msgs_sent, st.bytes_sent, st.msgs_recv,
			       st.bytes_recv, st.kicks_sent, st.sleeps,
			       st.spins, st.lost };
	return evpy_structseq(evpy_StatsType, v, sizeof(v) / sizeof(v[0]));
}

PyObject *evpy_cred_new(pid_t pid, uid_t uid, gid_t gid)
{
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
