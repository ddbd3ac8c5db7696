/* SPDX-License-Identifier: MIT */
/*
 * ep.c: what a Channel, a Publisher and a Subscriber share: struct
 * evpy_ep, its life (pins, close), its sides (one thread on each) and the
 * mapping of its errors.
 *
 * Threads: the library allows one thread on each side (send / receive) of
 * a channel, and one thread at a time on a publisher or a subscriber.  A
 * second thread on a side that is in use gets RuntimeError rather than
 * undefined behaviour.  All the bookkeeping below is done with the GIL
 * held.
 */
#include "evpy.h"

#include <errno.h>

static const char *const side_verbs[2] = { "receiving", "sending" };

/* --- life --------------------------------------------------------------------- */

void evpy_ep_pin(struct evpy_ep *ep)
{
	ep->pins++;
}

void evpy_ep_unpin(struct evpy_ep *ep)
{
	if (--ep->pins == 0 && ep->closed && ep->h) {
		ep->ops->close(ep->h);
		ep->h = NULL;
	}
}

PyObject *evpy_ep_new(PyTypeObject *type, const struct evpy_ep_ops *ops,
		      void *h)
{
	struct evpy_ep *ep = PyObject_GC_New(struct evpy_ep, type);

	if (!ep) {
		ops->close(h);
		return NULL;
	}
	ep->h = h;
	ep->ops = ops;
	ep->closed = ep->peeked = false;
	ep->busy[EVPY_RX] = ep->busy[EVPY_TX] = false;
	ep->pins = 0;
	ep->max_msg = 0;
	ep->fd = -1;
	ep->name = NULL;
	ep->msg = NULL;
	ep->resv_state = EVPY_RESV_NONE;
	ep->resv_ptr = NULL;
	ep->resv_len = 0;
	ep->resv = NULL;
	ep->auth = (struct evpy_auth){ 0 };
	ep->policy = 0;
	ep->pid = 0;
	ep->uid = 0;
	ep->gid = 0;
	ep->weakrefs = NULL;
	PyObject_GC_Track(ep);
	return (PyObject *)ep;
}

void evpy_ep_dealloc(struct evpy_ep *ep)
{
	/* Whatever pins the mapping holds a reference to us: pins == 0. */
	PyObject_GC_UnTrack(ep);
	if (ep->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)ep);
	if (ep->h)
		ep->ops->close(ep->h);
	Py_XDECREF(ep->name);
	Py_XDECREF(ep->auth.fn);
	evpy_auth_clear(&ep->auth);
	PyObject_GC_Del(ep);
}

/* authorize may refer back to its publisher (a closure): a cycle. */
int evpy_ep_traverse(struct evpy_ep *ep, visitproc visit, void *arg)
{
	Py_VISIT(ep->auth.fn);
	return 0;
}

int evpy_ep_clear(struct evpy_ep *ep)
{
	Py_CLEAR(ep->auth.fn);
	return 0;
}

/* --- sides --------------------------------------------------------------------- */

int evpy_ep_check(struct evpy_ep *ep, enum evpy_side side)
{
	if (ep->closed) {
		evpy_closed(ep->ops->what);
		return -1;
	}
	if (ep->busy[side]) {
		PyErr_Format(PyExc_RuntimeError, "another thread is %s on this "
			     "%s", side_verbs[side], ep->ops->what);
		return -1;
	}
	return 0;
}

int evpy_ep_quick(struct evpy_ep *ep)
{
	if (ep->ops->side >= 0)
		return evpy_ep_check(ep, (enum evpy_side)ep->ops->side);
	if (ep->closed) {
		evpy_closed(ep->ops->what);
		return -1;
	}
	return 0;
}

int evpy_ep_enter(struct evpy_ep *ep, enum evpy_side side)
{
	if (evpy_ep_check(ep, side) < 0)
		return -1;
	ep->busy[side] = true;
	evpy_ep_pin(ep);
	return 0;
}

void evpy_ep_end(struct evpy_ep *ep, enum evpy_side side)
{
	ep->busy[side] = false;
	evpy_ep_unpin(ep);
}

/* --- errors ---------------------------------------------------------------------- */

PyObject *evpy_ep_raise(struct evpy_ep *ep, int err)
{
	const char *why = NULL;

	if (err == -EPROTO && ep->h && ep->ops->reason)
		why = ep->ops->reason(ep->h);
	return evpy_raise_why(err, why, NULL);
}
