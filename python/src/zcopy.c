/* SPDX-License-Identifier: MIT */
/*
 * zcopy.c: evshm.Message (from peek() of a Channel or a Subscriber) and
 * evshm.Reservation (from reserve() of a Channel or a Publisher), the
 * buffer exporters of zero copy.  Both are context managers whose
 * __enter__ returns a memoryview of ring memory.  evshm.MessageRun (from
 * peek_many()) is a Message of several messages: its __enter__ returns a
 * list of memoryviews, one per message, and it is released with one
 * release, under the same rules.  And how every call on a side begins: by
 * settling what the last zero-copy call left there.
 *
 * The rules, and how they are kept:
 *  - Ring memory is never unmapped under a view: every exported buffer
 *    pins the endpoint (evpy_ep_pin), and close() unmaps only when the
 *    last pin goes.  numpy.frombuffer(buf) makes its own memoryview of the
 *    same export, so an array keeps the pin as long as it lives.
 *  - A message is never released (its room handed back to the peer, who
 *    overwrites it) while a view of it is alive: the end of the with-block
 *    releases the memoryview(s) it gave out; if views derived from them remain
 *    (a numpy array, a slice), it raises BufferError and the message stays
 *    peeked, to be released by the next receive call once they are gone.
 *    After the block the memoryview is released: using it raises.
 *  - A reservation is committed only when its block ends normally and no
 *    view of it remains: a view alive after the commit could write into a
 *    message the peer is reading.  Otherwise nothing is sent
 *    (BufferError if the block ended normally) and the reservation is
 *    cancelled, at once if no view of it is alive, else by the next send
 *    or reserve once they are gone (evpy_resv_settle()).
 *  - When the block exits by an exception, that exception propagates
 *    unchanged: the message stays peeked if views of it are alive (else
 *    it is released), the reservation is cancelled as above.
 *  - A subscriber's message under the latest policy may be overwritten by
 *    the publisher while it is peeked: the end of the block then raises
 *    OSError(ESTALE) (the library's -ESTALE), so that what was read from
 *    it is not taken for good.
 */
#include "evpy.h"

#include <errno.h>
#include <string.h>

/* A piece of ring memory a zbuf exports: a message, or reserved room. */
struct zspan {
	void *ptr;
	Py_ssize_t len;
	PyObject *view;     /* the memoryview __enter__ gave out of it */
};

struct zbuf {
	PyObject_HEAD
	struct evpy_ep *ep; /* strong reference */
	struct zspan *span; /* n of them: &one, or a run's own array */
	Py_ssize_t n, cap;
	Py_ssize_t cur;     /* the span a buffer request exports: 0; a run:
			       the one its __enter__ is viewing, else -1 */
	Py_ssize_t exports; /* buffers handed out (of any span) and not yet
			       released */
	struct zspan one;
	bool live;          /* still the endpoint's peeked message(s) / open
			       reservation */
	bool writable;
};

struct evpy_msg {
	struct zbuf z;
};

struct evpy_resv {
	struct zbuf z;
};

/* --- common: buffer protocol, views, life ------------------------------------- */

static bool zbuf_is_run(const struct zbuf *z)
{
	return Py_IS_TYPE(z, &evpy_RunType);
}

static const char *zbuf_what(const struct zbuf *z)
{
	return z->writable ? "reservation" : zbuf_is_run(z) ? "run of messages" :
								"message";
}

static int zbuf_getbuffer(struct zbuf *z, Py_buffer *view, int flags)
{
	if (!z->live) {
		PyErr_Format(PyExc_BufferError, "the %s is over (%s)", zbuf_what(z),
			     z->writable ? "committed or abandoned" : "released");
		return -1;
	}
	if (z->ep->closed) {
		evpy_closed(z->ep->ops->what);
		return -1;
	}
	if (z->cur < 0) {
		PyErr_SetString(PyExc_BufferError, "a run of messages is viewed "
				"through the list of memoryviews its with-block "
				"gives");
		return -1;
	}
	struct zspan *s = &z->span[z->cur];
	if (PyBuffer_FillInfo(view, (PyObject *)z, s->ptr, s->len, !z->writable,
			      flags) < 0)
		return -1;
	z->exports++;
	evpy_ep_pin(z->ep);
	return 0;
}

static void zbuf_releasebuffer(struct zbuf *z, Py_buffer *view)
{
	(void)view;
	z->exports--;
	evpy_ep_unpin(z->ep);
}

/* __enter__ may give views: -1 with ValueError if not. */
static int zbuf_enterable(struct zbuf *z)
{
	if (!z->live) {
		PyErr_Format(PyExc_ValueError, "the %s is over", zbuf_what(z));
		return -1;
	}
	if (z->ep->closed) {
		evpy_closed(z->ep->ops->what);
		return -1;
	}
	return 0;
}

/* The memoryview of span @i, made on first use (borrowed); NULL with an
 * exception. */
static PyObject *zbuf_view(struct zbuf *z, Py_ssize_t i)
{
	struct zspan *s = &z->span[i];

	if (!s->view) {
		Py_ssize_t cur = z->cur;
		z->cur = i;
		s->view = PyMemoryView_FromObject((PyObject *)z);
		z->cur = cur;
	}
	return s->view;
}

static PyObject *zbuf_enter(struct zbuf *z, PyObject *unused)
{
	(void)unused;
	if (zbuf_enterable(z) < 0)
		return NULL;
	return Py_XNewRef(zbuf_view(z, 0));
}

/* Release the memoryviews __enter__ gave out, each if nothing holds a
 * buffer of that very memoryview (pickle.PickleBuffer(buf), a Cython
 * memoryview...: unlike numpy and slices, which make memoryviews of their
 * own, these hold the one we gave).  If something does, that view stays,
 * and so does its export of us (z->exports), which the callers report as
 * views still alive; every settle tries again, so that the message(s) or
 * the reservation go as soon as that holder does.  The caller holds a
 * reference to @z (a release may drop the views' last ones). */
static void zbuf_drop_views(struct zbuf *z)
{
	static PyObject *release; /* "release", interned once */

	for (Py_ssize_t i = 0; i < z->n; i++) {
		struct zspan *s = &z->span[i];
		if (!s->view)
			continue;
		if (!release && !(release = PyUnicode_InternFromString("release"))) {
			PyErr_Clear();
			return; /* no memory: the views stay, as if held */
		}
		PyObject *r = PyObject_CallMethodNoArgs(s->view, release);
		if (!r) {
			PyErr_Clear();
			continue;
		}
		Py_DECREF(r);
		Py_CLEAR(s->view);
	}
}

/* zbuf_drop_views() for a Message, MessageRun or Reservation the endpoint
 * only borrows (ep->msg, ep->resv): the views may hold its last
 * reference, so that releasing them deallocates @z, which clears that
 * borrowed pointer (msg_detach_from, resv_detach_from). */
static void zbuf_drop_borrowed_views(struct zbuf *z)
{
	Py_INCREF(z);
	zbuf_drop_views(z);
	Py_DECREF(z);
}

/* One span (@ptr, @len); a run sets n to 0 and adds its own. */
static struct zbuf *zbuf_new(PyTypeObject *type, struct evpy_ep *ep,
			     const void *ptr, size_t len, bool writable)
{
	struct zbuf *z = PyObject_GC_New(struct zbuf, type);

	if (!z)
		return NULL;
	Py_INCREF(ep);
	z->ep = ep;
	/* read-only for a Message: see getbuffer */
	z->one = (struct zspan){ (void *)ptr, (Py_ssize_t)len, NULL };
	z->span = &z->one;
	z->n = z->cap = 1;
	z->cur = 0;
	z->exports = 0;
	z->live = true;
	z->writable = writable;
	PyObject_GC_Track(z);
	return z;
}

/* The memoryviews refer back to us: cycles the collector may break. */
static int zbuf_traverse(struct zbuf *z, visitproc visit, void *arg)
{
	for (Py_ssize_t i = 0; i < z->n; i++)
		Py_VISIT(z->span[i].view);
	return 0;
}

static int zbuf_clear(struct zbuf *z)
{
	for (Py_ssize_t i = 0; i < z->n; i++)
		Py_CLEAR(z->span[i].view);
	return 0;
}

static PyObject *zbuf_get_nbytes(struct zbuf *z, void *unused)
{
	Py_ssize_t len = 0;

	(void)unused;
	for (Py_ssize_t i = 0; i < z->n; i++)
		len += z->span[i].len;
	return PyLong_FromSsize_t(len);
}

static PyGetSetDef zbuf_getset[] = {
	{ "nbytes", (getter)zbuf_get_nbytes, NULL, "Size in bytes.", NULL },
	{ 0 }
};

static PyBufferProcs zbuf_buffer = {
	.bf_getbuffer = (getbufferproc)zbuf_getbuffer,
	.bf_releasebuffer = (releasebufferproc)zbuf_releasebuffer,
};

/* The exception type __exit__ was called with (Py_None: none). */
static PyObject *exit_type(PyObject *const *args, Py_ssize_t nargs)
{
	return nargs > 0 ? args[0] : Py_None;
}

static void msg_detach_from(struct evpy_ep *ep, struct zbuf *z);
static void resv_detach_from(struct evpy_ep *ep, struct zbuf *z);

static void zbuf_dealloc(struct zbuf *z)
{
	PyObject_GC_UnTrack(z);
	zbuf_clear(z);
	if (z->span != &z->one)
		PyMem_Free(z->span);
	if (z->writable)
		resv_detach_from(z->ep, z);
	else
		msg_detach_from(z->ep, z);
	Py_DECREF(z->ep);
	PyObject_GC_Del(z);
}

#define ZBUF_TYPE_FIELDS(pyname, doc, methods)				\
	PyVarObject_HEAD_INIT(NULL, 0)					\
	.tp_name = pyname,						\
	.tp_doc = doc,							\
	.tp_basicsize = sizeof(struct zbuf),				\
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,		\
	.tp_dealloc = (destructor)zbuf_dealloc,				\
	.tp_traverse = (traverseproc)zbuf_traverse,			\
	.tp_clear = (inquiry)zbuf_clear,				\
	.tp_as_buffer = &zbuf_buffer,					\
	.tp_methods = methods,						\
	.tp_getset = zbuf_getset
#define ZBUF_TYPE(pyname, doc, methods) { ZBUF_TYPE_FIELDS(pyname, doc, methods) }

/* --- Message ---------------------------------------------------------------------- */

PyObject *evpy_msg_new(struct evpy_ep *ep, const void *ptr, size_t len)
{
	struct zbuf *z = zbuf_new(&evpy_MsgType, ep, ptr, len, false);

	/* Without an object the message stays peeked: the next receive
	 * settles it. */
	ep->msg = (struct evpy_msg *)z;
	return (PyObject *)z;
}

static Py_ssize_t msg_exports(const struct evpy_msg *m)
{
	return m->z.exports;
}

static void msg_detach(struct evpy_msg *m)
{
	m->z.live = false;
}

/* The Message (MessageRun) goes away.  Still peeked: the next receive
 * releases it. */
static void msg_detach_from(struct evpy_ep *ep, struct zbuf *z)
{
	if (ep->msg == (struct evpy_msg *)z)
		ep->msg = NULL;
}

/* Release the message(s), unless views of them remain (BufferError, or
 * nothing with @quiet: an exception leaves the block, which must
 * propagate unchanged, so the release's own error is dropped too). */
static int msg_finish(struct zbuf *z, bool quiet)
{
	if (!z->live)
		return 0;
	zbuf_drop_views(z);
	if (z->exports) {
		if (quiet)
			return 0;
		PyErr_Format(PyExc_BufferError, "%zd view(s) of the peeked %s "
			     "outlive its with-block (a numpy array or a slice "
			     "of it?): %s unreleased until they are gone; copy "
			     "what you keep", z->exports, zbuf_is_run(z) ?
			     "messages" : "message", zbuf_is_run(z) ? "they stay"
			     : "it stays");
		return -1;
	}
	/* ep->msg is z: this releases it. */
	if (evpy_rx_settle(z->ep, true) < 0) {
		if (!quiet)
			return -1;
		PyErr_Clear();
	}
	return 0;
}

static PyObject *msg_release(struct zbuf *z, PyObject *unused)
{
	(void)unused;
	if (msg_finish(z, false) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *msg_exit(struct zbuf *z, PyObject *const *args, Py_ssize_t nargs)
{
	if (msg_finish(z, exit_type(args, nargs) != Py_None) < 0)
		return NULL;
	Py_RETURN_FALSE;
}

static PyMethodDef msg_methods[] = {
	{ "__enter__", (PyCFunction)zbuf_enter, METH_NOARGS,
	  "A read-only memoryview of the message, in shared memory." },
	{ "__exit__", (PyCFunction)(void (*)(void))msg_exit, METH_FASTCALL, NULL },
	{ "release", (PyCFunction)msg_release, METH_NOARGS,
	  "Hand the message's room back to the peer (what the end of the "
	  "with-block does).  BufferError while views of it are alive; "
	  "OSError ESTALE if a latest publisher overwrote it meanwhile." },
	{ 0 }
};

PyTypeObject evpy_MsgType = ZBUF_TYPE("evshm.Message",
	"A message peeked in shared memory (peek() of a Channel or a "
	"Subscriber).  `with ch.peek() as buf:`: buf is a read-only memoryview "
	"of it; views derived from buf (numpy arrays, slices) must be gone "
	"when the block ends.", msg_methods);

/* --- MessageRun: a Message of several messages ------------------------------------- */

PyObject *evpy_run_new(struct evpy_ep *ep)
{
	struct zbuf *z = zbuf_new(&evpy_RunType, ep, NULL, 0, false);

	if (z) {
		z->n = 0;
		z->cur = -1; /* buffers only through run_enter */
	}
	ep->msg = (struct evpy_msg *)z; /* as evpy_msg_new() */
	return (PyObject *)z;
}

int evpy_run_add(PyObject *run, const void *ptr, size_t len)
{
	struct zbuf *z = (struct zbuf *)run;

	if (z->n == z->cap) {
		size_t cap = (size_t)z->cap * 4;
		struct zspan *s = PyMem_Realloc(z->span == &z->one ? NULL : z->span,
						cap * sizeof(*s));
		if (!s) {
			PyErr_NoMemory();
			return -1;
		}
		if (z->span == &z->one)
			s[0] = z->one;
		z->span = s;
		z->cap = (Py_ssize_t)cap;
	}
	z->span[z->n++] = (struct zspan){ (void *)ptr, (Py_ssize_t)len, NULL };
	return 0;
}

static PyObject *run_enter(struct zbuf *z, PyObject *unused)
{
	(void)unused;
	if (zbuf_enterable(z) < 0)
		return NULL;
	PyObject *list = PyList_New(z->n);
	for (Py_ssize_t i = 0; list && i < z->n; i++) {
		PyObject *v = zbuf_view(z, i);
		if (!v)
			Py_CLEAR(list); /* the views made stay, for the settle */
		else
			PyList_SET_ITEM(list, i, Py_NewRef(v));
	}
	return list;
}

static Py_ssize_t run_length(struct zbuf *z)
{
	return z->n;
}

static PySequenceMethods run_sequence = {
	.sq_length = (lenfunc)run_length,
};

static PyMethodDef run_methods[] = {
	{ "__enter__", (PyCFunction)run_enter, METH_NOARGS,
	  "A list of read-only memoryviews, one per message, in shared "
	  "memory." },
	{ "__exit__", (PyCFunction)(void (*)(void))msg_exit, METH_FASTCALL, NULL },
	{ "release", (PyCFunction)msg_release, METH_NOARGS,
	  "Hand the room of every message of the run back to the peer, with "
	  "one release (what the end of the with-block does).  BufferError "
	  "while views of any of them are alive; OSError ESTALE if a latest "
	  "publisher overwrote any of them meanwhile." },
	{ 0 }
};

PyTypeObject evpy_RunType = {
	ZBUF_TYPE_FIELDS("evshm.MessageRun",
	"A run of messages peeked in shared memory (peek_many() of a Channel "
	"or a Subscriber).  `with ch.peek_many() as views:`: views is a list "
	"of read-only memoryviews, one per message, in order; views derived "
	"from them (numpy arrays, slices) must be gone when the block ends, "
	"which releases them all at once.  len(): how many messages.",
	run_methods),
	.tp_as_sequence = &run_sequence,
};

/* --- Reservation ------------------------------------------------------------------- */

PyObject *evpy_resv_new(struct evpy_ep *ep, size_t len)
{
	struct zbuf *z = zbuf_new(&evpy_ResvType, ep, ep->resv_ptr, len, true);

	ep->resv = (struct evpy_resv *)z;
	ep->resv_state = z ? EVPY_RESV_OPEN : EVPY_RESV_ABANDONED;
	return (PyObject *)z;
}

/* Give the abandoned reservation back to the library, if no view of it
 * is alive.  0, or -1 with an exception. */
static int resv_cancel(struct evpy_ep *ep)
{
	if (ep->resv)
		zbuf_drop_borrowed_views(&ep->resv->z);
	if (ep->resv && ep->resv->z.exports) {
		PyErr_SetString(PyExc_BufferError, "views of a reservation that "
				"was not sent are still alive (a numpy array or a "
				"slice of it?): delete them first");
		return -1;
	}
	ep->resv = NULL;
	ep->resv_state = EVPY_RESV_NONE;
	if (ep->closed || !ep->h)
		return 0;
	int res = ep->ops->cancel(ep->h);
	if (res < 0) {
		evpy_ep_raise(ep, res);
		return -1;
	}
	return 0;
}

int evpy_resv_settle(struct evpy_ep *ep)
{
	switch (ep->resv_state) {
	case EVPY_RESV_NONE:
		return 0;
	case EVPY_RESV_OPEN:
		evpy_oserror(EBUSY, "a reservation is open on this %s",
			     ep->ops->what);
		return -1;
	case EVPY_RESV_ABANDONED:
		break;
	}
	return resv_cancel(ep);
}

/* --- a call begins: what the last one left behind -------------------------- */

int evpy_rx_settle(struct evpy_ep *ep, bool stale_error)
{
	if (!ep->peeked)
		return 0;
	if (ep->msg)
		zbuf_drop_borrowed_views(&ep->msg->z);
	if (ep->msg && msg_exports(ep->msg)) {
		PyErr_SetString(PyExc_BufferError, "views of the message(s) "
				"peeked before are still alive (a numpy array or a slice "
				"of it?): delete them, or copy what you keep");
		return -1;
	}
	if (ep->msg)
		msg_detach(ep->msg);
	ep->msg = NULL;
	ep->peeked = false;
	if (ep->closed || !ep->h)
		return 0;
	/* Released either way, -ESTALE (latest: overwritten meanwhile)
	 * included. */
	int res = ep->ops->release(ep->h);
	if (res < 0 && (res != -ESTALE || stale_error)) {
		evpy_ep_raise(ep, res);
		return -1;
	}
	return 0;
}

int evpy_ep_begin(struct evpy_ep *ep, enum evpy_side side)
{
	if (evpy_ep_check(ep, side) < 0)
		return -1;
	if (side == EVPY_RX ? evpy_rx_settle(ep, false) < 0 :
			      evpy_resv_settle(ep) < 0)
		return -1;
	return evpy_ep_enter(ep, side);
}

/* The Reservation goes away: still open, it is abandoned, and cancelled
 * by the next send or reserve (another thread may be in the library on
 * this side now). */
static void resv_detach_from(struct evpy_ep *ep, struct zbuf *z)
{
	if (ep->resv == (struct evpy_resv *)z) {
		ep->resv = NULL;
		if (ep->resv_state == EVPY_RESV_OPEN)
			ep->resv_state = EVPY_RESV_ABANDONED;
	}
}

/* Commit @len bytes (-1: all), or cancel the reservation (!@commit). */
static int resv_finish(struct zbuf *z, bool commit, Py_ssize_t len)
{
	struct evpy_ep *ep = z->ep;

	if (!z->live)
		return 0;
	if (len > z->one.len) {
		PyErr_Format(PyExc_ValueError, "cannot commit %zd bytes of a "
			     "%zd-byte reservation", len, z->one.len);
		return -1;
	}
	/* Commit and cancel are calls on the send side. */
	if (commit && evpy_ep_check(ep, EVPY_TX) < 0)
		return -1;
	zbuf_drop_views(z);
	z->live = false;
	if (!commit || z->exports) {
		ep->resv_state = EVPY_RESV_ABANDONED; /* ep->resv stays z */
		if (!z->exports && !ep->busy[EVPY_TX] && resv_cancel(ep) < 0) {
			if (commit)
				return -1;
			PyErr_Clear(); /* the block's exception goes on */
		}
		if (!commit)
			return 0;
		PyErr_Format(PyExc_BufferError, "%zd view(s) of the reservation "
			     "outlive its with-block (a numpy array or a slice "
			     "of it?): nothing was sent", z->exports);
		return -1;
	}
	ep->resv = NULL;
	ep->resv_state = EVPY_RESV_NONE;
	int res = ep->ops->commit(ep->h, len < 0 ? (size_t)z->one.len : (size_t)len);
	if (res < 0) {
		evpy_ep_raise(ep, res);
		return -1;
	}
	return 0;
}

int evpy_resv_commit(struct evpy_ep *ep, Py_ssize_t len)
{
	if (ep->resv_state != EVPY_RESV_OPEN || !ep->resv) {
		PyErr_SetString(PyExc_ValueError, "no reservation is open");
		return -1;
	}
	return resv_finish(&ep->resv->z, true, len);
}

static PyObject *resv_exit(struct zbuf *z, PyObject *const *args, Py_ssize_t nargs)
{
	if (resv_finish(z, exit_type(args, nargs) == Py_None, -1) < 0)
		return NULL;
	Py_RETURN_FALSE;
}

static PyObject *resv_cancel_method(struct zbuf *z, PyObject *unused)
{
	(void)unused;
	if (resv_finish(z, false, -1) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyMethodDef resv_methods[] = {
	{ "__enter__", (PyCFunction)zbuf_enter, METH_NOARGS,
	  "A writable memoryview of the reserved room in the ring." },
	{ "__exit__", (PyCFunction)(void (*)(void))resv_exit, METH_FASTCALL, NULL },
	{ "cancel", (PyCFunction)resv_cancel_method, METH_NOARGS,
	  "Send nothing: give the room back (when no view of it is alive; "
	  "else the next send or reserve does)." },
	{ 0 }
};

PyTypeObject evpy_ResvType = ZBUF_TYPE("evshm.Reservation",
	"Room reserved in the ring (reserve() of a Channel or a Publisher).  "
	"`with ch.reserve(n) as buf:`: buf is a writable memoryview; the "
	"message is sent when the block ends, if no view derived from buf is "
	"alive then.", resv_methods);
