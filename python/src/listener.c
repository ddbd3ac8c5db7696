/* SPDX-License-Identifier: MIT */
/*
 * listener.c: evshm.Listener and evshm.listen().
 */
#include "evpy.h"

#include <errno.h>
#include <structmember.h>

struct evpy_listener {
	PyObject_HEAD
	struct evshm_listener *l; /* NULL once closed */
	PyObject *name;
	struct evpy_auth auth; /* its address is the library's authorize_arg */
	bool closed;
	bool busy; /* accept() under way (maybe without the GIL) */
	int fd;    /* what fileno() gave, -1: never asked */
};

static void listener_free(struct evpy_listener *self)
{
	evshm_listener_close(self->l);
	self->l = NULL;
}

static PyObject *listener_close(struct evpy_listener *self, PyObject *unused)
{
	(void)unused;
	if (!self->closed) {
		self->closed = true; /* first: see evpy_io_close() */
		evpy_aio_closing(self->fd);
	}
	if (!self->busy) /* else the accept under way closes it */
		listener_free(self);
	Py_RETURN_NONE;
}

static void listener_dealloc(struct evpy_listener *self)
{
	PyObject_GC_UnTrack(self);
	listener_free(self);
	Py_XDECREF(self->name);
	Py_XDECREF(self->auth.fn);
	evpy_auth_clear(&self->auth);
	PyObject_GC_Del(self);
}

/* authorize may refer back to the listener (a closure): a cycle. */
static int listener_traverse(struct evpy_listener *self, visitproc visit, void *arg)
{
	Py_VISIT(self->auth.fn);
	return 0;
}

static int listener_clear(struct evpy_listener *self)
{
	Py_CLEAR(self->auth.fn);
	return 0;
}

struct accept_arg {
	struct evshm_listener *l;
	struct evshm_chan *c;
};

/* -ETIMEDOUT from evshm_accept() may also mean "a silent client was
 * dropped": with a timeout, evpy_wait() just goes on; without one, look
 * again at once. */
static int accept_fn(void *arg, int ms)
{
	struct accept_arg *a = arg;
	int res;

	do
		res = evshm_accept(a->l, &a->c, ms);
	while (res == -ETIMEDOUT && ms == 0);
	return res;
}

static PyObject *listener_accept(struct evpy_listener *self,
				 PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	struct evpy_deadline d;
	int res;

	if (evpy_args("accept", args, nargs, kwnames, names, 0, &timeout) < 0 ||
	    evpy_deadline_init(&d, timeout) < 0)
		return NULL;
	if (self->closed)
		return evpy_closed("listener");
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "another thread is "
				"accepting on this listener");
		return NULL;
	}
	struct accept_arg a = { .l = self->l };
	self->busy = true;
	res = evpy_wait(&d, accept_fn, &a, &self->closed);
	self->busy = false;
	if (self->closed) /* by another thread meanwhile */
		listener_free(self);
	if (evpy_auth_reraise(&self->auth)) {
		if (res >= 0)
			evshm_close(a.c);
		return NULL;
	}
	if (res < 0)
		return evpy_raise(res, NULL);
	return evpy_chan_new(a.c);
}

static PyObject *listener_fileno(struct evpy_listener *self, PyObject *unused)
{
	(void)unused;
	if (self->closed)
		return evpy_closed("listener");
	self->fd = evshm_listener_fd(self->l);
	return PyLong_FromLong(self->fd);
}

static PyObject *listener_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	if (((struct evpy_listener *)self)->closed)
		return evpy_closed("listener");
	Py_INCREF(self);
	return self;
}

static PyObject *listener_exit(struct evpy_listener *self, PyObject *args)
{
	(void)args;
	return listener_close(self, NULL);
}

static PyObject *listener_aaccept(PyObject *self, PyObject *unused)
{
	(void)unused;
	return evpy_aio("aaccept", self, NULL);
}

static PyObject *listener_repr(struct evpy_listener *self)
{
	return PyUnicode_FromFormat("<evshm.Listener %R%s>", self->name,
				    self->closed ? " closed" : "");
}

PyObject *evpy_listen(PyObject *mod, PyObject *args, PyObject *kw)
{
	PyObject *name, *bname = NULL;
	struct evshm_opts o;
	int res;

	(void)mod;
	if (!PyArg_ParseTuple(args, "O:listen", &name))
		return NULL;
	struct evpy_listener *self = PyObject_GC_New(struct evpy_listener,
						     &evpy_ListenerType);
	if (!self)
		return NULL;
	self->l = NULL;
	self->name = Py_NewRef(name);
	self->auth = (struct evpy_auth){ 0 };
	self->closed = self->busy = false;
	self->fd = -1;
	PyObject_GC_Track(self);
	if (evpy_opts(&o, kw, EVPY_LISTEN, &self->auth) < 0 ||
	    !PyUnicode_FSConverter(name, &bname))
		goto fail;
	res = evshm_listen(&self->l, PyBytes_AS_STRING(bname), &o);
	Py_DECREF(bname);
	if (res < 0) {
		evpy_raise(res, name);
		goto fail;
	}
	return (PyObject *)self;
fail:
	Py_DECREF(self);
	return NULL;
}

static PyMethodDef listener_methods[] = {
	{ "accept", (PyCFunction)(void (*)(void))listener_accept,
	  METH_FASTCALL | METH_KEYWORDS,
	  "accept(timeout=None)\n--\n\nAccept one client and run the handshake: "
	  "a Channel.  A client refused or failing its handshake raises that "
	  "error (PermissionError, evshm.ProtocolError, ...); the next call "
	  "serves the next client." },
	{ "fileno", (PyCFunction)listener_fileno, METH_NOARGS,
	  "A descriptor that polls readable when accept() has something to do." },
	{ "close", (PyCFunction)listener_close, METH_NOARGS,
	  "Stop listening and remove the socket file.  Accepted channels stay." },
	{ "aaccept", (PyCFunction)listener_aaccept, METH_NOARGS,
	  "await listener.aaccept(): accept() on the running asyncio loop." },
	{ "__enter__", (PyCFunction)listener_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)listener_exit, METH_VARARGS, NULL },
	{ 0 }
};

static PyMemberDef listener_members[] = {
	{ "name", T_OBJECT, offsetof(struct evpy_listener, name), READONLY,
	  "The name listened at." },
	{ 0 }
};

PyTypeObject evpy_ListenerType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "evshm.Listener",
	.tp_doc = "A listening endpoint: evshm.listen(name, **options).",
	.tp_basicsize = sizeof(struct evpy_listener),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_dealloc = (destructor)listener_dealloc,
	.tp_traverse = (traverseproc)listener_traverse,
	.tp_clear = (inquiry)listener_clear,
	.tp_repr = (reprfunc)listener_repr,
	.tp_methods = listener_methods,
	.tp_members = listener_members,
};
