/* SPDX-License-Identifier: MIT */
/*
 * zcopy.c: evshm.Message (from Channel.peek) and evshm.Reservation (from
 * Channel.reserve), the buffer exporters of zero copy.  Both are context
 * managers whose __enter__ returns a memoryview of ring memory.
 *
 * The rules, and how they are kept:
 *  - Ring memory is never unmapped under a view: every exported buffer
 *    pins the channel (evpy_chan_pin), and close() unmaps only when the
 *    last pin goes.  numpy.frombuffer(buf) makes its own memoryview of the
 *    same export, so an array keeps the pin as long as it lives.
 *  - A message is never released (its room handed back to the peer, who
 *    overwrites it) while a view of it is alive: the end of the with-block
 *    releases the memoryview it gave out; if views derived from it remain
 *    (a numpy array, a slice), it raises BufferError and the message stays
 *    peeked, to be released by the next receive call once they are gone.
 *    After the block the memoryview is released: using it raises.
 *  - A reservation is committed only when its block ends normally and no
 *    view of it remains: a view alive after the commit could write into a
 *    message the peer is reading.  Otherwise nothing is sent
 *    (BufferError if the block ended normally) and the reservation is
 *    abandoned (see evpy_resv_reuse()).
 *  - When the block exits by an exception, that exception propagates
 *    unchanged: the message stays peeked, the reservation is abandoned.
 */
#include "evpy.h"

#include <errno.h>
#include <string.h>

struct zbuf {
	PyObject_HEAD
	struct evpy_chan *chan; /* strong reference */
	void *ptr;
	Py_ssize_t len;
	Py_ssize_t exports; /* buffers handed out and not yet released */
	PyObject *view;     /* the memoryview __enter__ gave out */
	bool live;          /* still the channel's peeked message / open
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

static const char *zbuf_what(const struct zbuf *z)
{
	return z->writable ? "reservation" : "message";
}

static int zbuf_getbuffer(struct zbuf *z, Py_buffer *view, int flags)
{
	if (!z->live) {
		PyErr_Format(PyExc_BufferError, "the %s is over (%s)", zbuf_what(z),
			     z->writable ? "committed or abandoned" : "released");
		return -1;
	}
	if (z->chan->closed) {
		evpy_closed("channel");
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)z, z->ptr, z->len,
			      !z->writable, flags) < 0)
		return -1;
	z->exports++;
	evpy_chan_pin(z->chan);
	return 0;
}

static void zbuf_releasebuffer(struct zbuf *z, Py_buffer *view)
{
	(void)view;
	z->exports--;
	evpy_chan_unpin(z->chan);
}

static PyObject *zbuf_enter(struct zbuf *z, PyObject *unused)
{
	(void)unused;
	if (!z->live) {
		PyErr_Format(PyExc_ValueError, "the %s is over", zbuf_what(z));
		return NULL;
	}
	if (z->chan->closed)
		return evpy_closed("channel");
	if (!z->view && !(z->view = PyMemoryView_FromObject((PyObject *)z)))
		return NULL;
	Py_INCREF(z->view);
	return z->view;
}

/* Release the memoryview __enter__ gave out.  It fails (BufferError) only
 * if someone holds a buffer of that very memoryview; @quiet ignores that. */
static int zbuf_drop_view(struct zbuf *z, bool quiet)
{
	static PyObject *release; /* "release", interned once */

	if (!z->view)
		return 0;
	if (!release && !(release = PyUnicode_InternFromString("release")))
		return -1;
	PyObject *r = PyObject_CallMethodNoArgs(z->view, release);
	if (!r) {
		if (!quiet)
			return -1;
		PyErr_Clear();
		return 0;
	}
	Py_DECREF(r);
	Py_CLEAR(z->view);
	return 0;
}

static struct zbuf *zbuf_new(PyTypeObject *type, struct evpy_chan *ch,
			     const void *ptr, size_t len, bool writable)
{
	struct zbuf *z = PyObject_GC_New(struct zbuf, type);

	if (!z)
		return NULL;
	Py_INCREF(ch);
	z->chan = ch;
	z->ptr = (void *)ptr; /* read-only for a Message: see getbuffer */
	z->len = (Py_ssize_t)len;
	z->exports = 0;
	z->view = NULL;
	z->live = true;
	z->writable = writable;
	PyObject_GC_Track(z);
	return z;
}

/* The memoryview refers back to us: a cycle the collector may break. */
static int zbuf_traverse(struct zbuf *z, visitproc visit, void *arg)
{
	Py_VISIT(z->view);
	return 0;
}

static int zbuf_clear(struct zbuf *z)
{
	Py_CLEAR(z->view);
	return 0;
}

static PyObject *zbuf_get_nbytes(struct zbuf *z, void *unused)
{
	(void)unused;
	return PyLong_FromSsize_t(z->len);
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

static void msg_detach_from(struct evpy_chan *ch, struct zbuf *z);
static void resv_detach_from(struct evpy_chan *ch, struct zbuf *z);

static void zbuf_dealloc(struct zbuf *z)
{
	PyObject_GC_UnTrack(z);
	Py_CLEAR(z->view);
	if (z->writable)
		resv_detach_from(z->chan, z);
	else
		msg_detach_from(z->chan, z);
	Py_DECREF(z->chan);
	PyObject_GC_Del(z);
}

#define ZBUF_TYPE(pyname, doc, methods) {				\
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
	.tp_getset = zbuf_getset,					\
}

/* --- Message ---------------------------------------------------------------------- */

PyObject *evpy_msg_new(struct evpy_chan *ch, const void *ptr, size_t len)
{
	struct zbuf *z = zbuf_new(&evpy_MsgType, ch, ptr, len, false);

	/* Without an object the message stays peeked: the next receive
	 * settles it. */
	ch->msg = (struct evpy_msg *)z;
	return (PyObject *)z;
}

Py_ssize_t evpy_msg_exports(const struct evpy_msg *m)
{
	return m->z.exports;
}

void evpy_msg_detach(struct evpy_msg *m)
{
	m->z.live = false;
}

/* The Message goes away.  Still peeked: the next receive releases it. */
static void msg_detach_from(struct evpy_chan *ch, struct zbuf *z)
{
	if (ch->msg == (struct evpy_msg *)z)
		ch->msg = NULL;
}

/* Release the message, unless views of it remain (BufferError, or
 * nothing with @quiet). */
static int msg_finish(struct zbuf *z, bool quiet)
{
	if (!z->live)
		return 0;
	if (zbuf_drop_view(z, quiet) < 0)
		return -1;
	if (z->exports) {
		if (quiet)
			return 0;
		PyErr_Format(PyExc_BufferError, "%zd view(s) of the peeked "
			     "message outlive its with-block (a numpy array or "
			     "a slice of it?): it stays unreleased until they "
			     "are gone; copy what you keep", z->exports);
		return -1;
	}
	return evpy_rx_settle(z->chan); /* chan->msg is z: releases it */
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
	  "with-block does).  BufferError while views of it are alive." },
	{ 0 }
};

PyTypeObject evpy_MsgType = ZBUF_TYPE("evshm.Message",
	"A message peeked in shared memory (Channel.peek()).  `with "
	"ch.peek() as buf:`: buf is a read-only memoryview of it; views "
	"derived from buf (numpy arrays, slices) must be gone when the block "
	"ends.", msg_methods);

/* --- Reservation ------------------------------------------------------------------- */

PyObject *evpy_resv_new(struct evpy_chan *ch, size_t len)
{
	struct zbuf *z = zbuf_new(&evpy_ResvType, ch, ch->resv_ptr, len, true);

	ch->resv = (struct evpy_resv *)z;
	ch->resv_state = z ? EVPY_RESV_OPEN : EVPY_RESV_ABANDONED;
	return (PyObject *)z;
}

/*
 * WORKAROUND (evshm 0.1 has no evshm_cancel()): a reservation that is not
 * to be committed cannot be given back; the library refuses every other
 * reserve or send with -EBUSY while it is open.  So it is kept
 * "abandoned", and the next reserve() or send() of at most its size uses
 * that room (once no stale view of it is alive); a larger one gets
 * OSError(EBUSY).  Remove when the library can cancel.
 */
int evpy_resv_reuse(struct evpy_chan *ch, size_t len, void **ptr)
{
	switch (ch->resv_state) {
	case EVPY_RESV_NONE:
		return 0;
	case EVPY_RESV_OPEN:
		evpy_oserror(EBUSY, "a reservation is open on this channel");
		return -1;
	case EVPY_RESV_ABANDONED:
		break;
	}
	if (ch->resv && ch->resv->z.exports) {
		PyErr_SetString(PyExc_BufferError, "views of an abandoned "
				"reservation are still alive");
		return -1;
	}
	if (len > ch->resv_len) {
		evpy_oserror(EBUSY, "a reservation of %zu bytes abandoned "
			     "earlier still holds the ring: reserve or send at "
			     "most that much", ch->resv_len);
		return -1;
	}
	ch->resv = NULL;
	ch->resv_state = EVPY_RESV_NONE;
	*ptr = ch->resv_ptr;
	return 1;
}

/* The Reservation goes away: still open, it is abandoned. */
static void resv_detach_from(struct evpy_chan *ch, struct zbuf *z)
{
	if (ch->resv == (struct evpy_resv *)z) {
		ch->resv = NULL;
		if (ch->resv_state == EVPY_RESV_OPEN)
			ch->resv_state = EVPY_RESV_ABANDONED;
	}
}

/* Commit @len bytes (-1: all), or abandon the reservation (!@commit). */
static int resv_finish(struct zbuf *z, bool commit, Py_ssize_t len)
{
	struct evpy_chan *ch = z->chan;

	if (!z->live)
		return 0;
	if (len > z->len) {
		PyErr_Format(PyExc_ValueError, "cannot commit %zd bytes of a "
			     "%zd-byte reservation", len, z->len);
		return -1;
	}
	if (zbuf_drop_view(z, !commit) < 0)
		return -1;
	z->live = false;
	if (!commit || z->exports) {
		ch->resv_state = EVPY_RESV_ABANDONED; /* ch->resv stays z */
		if (!commit)
			return 0;
		PyErr_Format(PyExc_BufferError, "%zd view(s) of the reservation "
			     "outlive its with-block (a numpy array or a slice "
			     "of it?): nothing was sent", z->exports);
		return -1;
	}
	ch->resv = NULL;
	ch->resv_state = EVPY_RESV_NONE;
	if (ch->closed) {
		evpy_closed("channel");
		return -1;
	}
	int res = evshm_commit(ch->c, len < 0 ? (size_t)z->len : (size_t)len);
	if (res < 0) {
		evpy_raise(res, NULL);
		return -1;
	}
	return 0;
}

int evpy_resv_commit(struct evpy_chan *ch, Py_ssize_t len)
{
	if (ch->resv_state != EVPY_RESV_OPEN || !ch->resv) {
		PyErr_SetString(PyExc_ValueError, "no reservation is open");
		return -1;
	}
	return resv_finish(&ch->resv->z, true, len);
}

static PyObject *resv_exit(struct zbuf *z, PyObject *const *args, Py_ssize_t nargs)
{
	if (resv_finish(z, exit_type(args, nargs) == Py_None, -1) < 0)
		return NULL;
	Py_RETURN_FALSE;
}

static PyMethodDef resv_methods[] = {
	{ "__enter__", (PyCFunction)zbuf_enter, METH_NOARGS,
	  "A writable memoryview of the reserved room in the ring." },
	{ "__exit__", (PyCFunction)(void (*)(void))resv_exit, METH_FASTCALL, NULL },
	{ 0 }
};

PyTypeObject evpy_ResvType = ZBUF_TYPE("evshm.Reservation",
	"Room reserved in the ring (Channel.reserve()).  `with "
	"ch.reserve(n) as buf:`: buf is a writable memoryview; the message is "
	"sent when the block ends, if no view derived from buf is alive "
	"then.", resv_methods);
