/* SPDX-License-Identifier: MIT */
/*
 * module.c: the module evshm._evshm (the package evshm re-exports it).
 */
#include "evpy.h"

#include <stdio.h>
#include <string.h>

PyTypeObject *evpy_StatsType;
PyTypeObject *evpy_PeerCredType;
PyTypeObject *evpy_SubInfoType;
PyTypeObject *evpy_PubStatsType;

static PyStructSequence_Field stats_fields[] = {
	{ "msgs_sent", "messages committed to the outbound ring" },
	{ "bytes_sent", "payload bytes committed" },
	{ "msgs_recv", "messages released from the inbound ring" },
	{ "bytes_recv", "payload bytes released" },
	{ "kicks_sent", "eventfd writes to the peer (system calls)" },
	{ "sleeps", "times this side slept" },
	{ "spins", "waits satisfied while spinning, no sleep" },
	{ "lost", "subscriber (latest): messages it missed because the "
		  "publisher lapped it" },
	{ 0 }
};

static PyStructSequence_Desc stats_desc = {
	"evshm.Stats", "Counters of a channel or a subscriber, running totals "
	"since the handshake.", stats_fields, 8,
};

static PyStructSequence_Field sub_info_fields[] = {
	{ "pid", "SO_PEERCRED at its connect" },
	{ "uid", NULL },
	{ "gid", NULL },
	{ "asleep", "it sleeps waiting for a message" },
	{ "msgs_recv", "messages it released" },
	{ "bytes_recv", NULL },
	{ "lost", "latest: messages it missed" },
	{ "lag", "messages published to it it has neither released nor lost" },
	{ "kicks", "doorbell writes the publisher made to it" },
	{ 0 }
};

static PyStructSequence_Desc sub_info_desc = {
	"evshm.SubscriberInfo", "What a publisher knows about one of its "
	"subscribers.  The counters come from the subscriber's own memory: "
	"figures it could lie about.", sub_info_fields, 9,
};

static PyStructSequence_Field pub_stats_fields[] = {
	{ "msgs_sent", "messages published" },
	{ "bytes_sent", NULL },
	{ "kicks_sent", "doorbell writes, all subscribers" },
	{ "sleeps", "times it slept waiting for room" },
	{ "joined", "subscribers admitted since it opened" },
	{ "left", "subscribers gone (closed, died)" },
	{ "dropped", "subscribers dropped for stalling" },
	{ "subscribers", "attached now" },
	{ 0 }
};

static PyStructSequence_Desc pub_stats_desc = {
	"evshm.PublisherStats", "Counters of a publisher, running totals "
	"since it opened.", pub_stats_fields, 8,
};

static PyStructSequence_Field cred_fields[] = {
	{ "pid", NULL }, { "uid", NULL }, { "gid", NULL }, { 0 }
};

static PyStructSequence_Desc cred_desc = {
	"evshm.PeerCred", "The peer's credentials (SO_PEERCRED).",
	cred_fields, 3,
};

static PyObject *aio; /* evshm._aio, imported on first use */

void evpy_aio_closing(int fd)
{
	if (fd < 0 || !aio) /* nothing can wait on the loop for it */
		return;
	PyObject *r = PyObject_CallMethod(aio, "_closing", "i", fd);
	if (r)
		Py_DECREF(r);
	else
		PyErr_WriteUnraisable(aio);
}

PyObject *evpy_aio(const char *fname, PyObject *self, PyObject *arg)
{
	if (!aio && !(aio = PyImport_ImportModule("evshm._aio")))
		return NULL;
	PyObject *fn = PyObject_GetAttrString(aio, fname);
	if (!fn)
		return NULL;
	PyObject *r = arg ? PyObject_CallFunctionObjArgs(fn, self, arg, NULL) :
			    PyObject_CallOneArg(fn, self);
	Py_DECREF(fn);
	return r;
}

static PyObject *mod_version(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyUnicode_FromString(evshm_version());
}

/* For the tests of the error mapping: the exception a library result
 * raises. */
static PyObject *mod_exception_for(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long e = PyLong_AsLong(arg);
	if (e == -1 && PyErr_Occurred())
		return NULL;
	if (e <= 0 || e >= 4096) {
		PyErr_SetString(PyExc_ValueError, "an errno value, 1 to 4095");
		return NULL;
	}
	evpy_raise(-(int)e, NULL);
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
	return value;
}

static PyMethodDef mod_methods[] = {
	{ "listen", (PyCFunction)(void (*)(void))evpy_listen,
	  METH_VARARGS | METH_KEYWORDS,
	  "listen(name, **options)\n--\n\nListen at a Unix socket path or "
	  "\"@abstract\" name: a Listener.  Options: ring_size, max_ring_size, "
	  "mode, spin_ns, handshake_timeout_ms, max_clients, authorize, fds." },
	{ "connect", (PyCFunction)(void (*)(void))evpy_connect,
	  METH_VARARGS | METH_KEYWORDS,
	  "connect(name, timeout=None, **options)\n--\n\nConnect to a listener "
	  "and run the handshake: a Channel.  Options: ring_size, "
	  "peer_ring_size, max_ring_size, spin_ns, handshake_timeout_ms, "
	  "authorize, fds." },
	{ "publish", (PyCFunction)(void (*)(void))evpy_publish,
	  METH_VARARGS | METH_KEYWORDS,
	  "publish(name, **options)\n--\n\nCreate a topic at a Unix socket "
	  "path or \"@abstract\" name: a Publisher.  Options: ring_size, policy "
	  "('reliable' or 'latest'), stall_timeout_ms, max_clients, authorize, "
	  "mode, handshake_timeout_ms, spin_ns." },
	{ "subscribe", (PyCFunction)(void (*)(void))evpy_subscribe,
	  METH_VARARGS | METH_KEYWORDS,
	  "subscribe(name, timeout=None, **options)\n--\n\nSubscribe to the "
	  "topic published at name: a Subscriber.  Nobody publishing is not "
	  "waited for (FileNotFoundError, ConnectionRefusedError).  Options: "
	  "history, authorize, max_ring_size, handshake_timeout_ms, spin_ns." },
	{ "version", mod_version, METH_NOARGS,
	  "The version of the libevshm that is loaded." },
	{ "_exception_for", mod_exception_for, METH_O, NULL },
	{ 0 }
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "evshm._evshm",
	.m_doc = "The C part of evshm; import evshm instead.",
	.m_size = -1,
	.m_methods = mod_methods,
};

/* The library loaded must speak the API this module was built against:
 * same major, and (before 1.0) same minor version. */
static int check_version(void)
{
	unsigned major, minor;

	if (sscanf(evshm_version(), "%u.%u", &major, &minor) != 2 ||
	    major != EVSHM_VERSION_MAJOR || minor != EVSHM_VERSION_MINOR) {
		PyErr_Format(PyExc_ImportError, "libevshm %s is loaded, but this "
			     "module was built for %s", evshm_version(),
			     EVSHM_VERSION_STRING);
		return -1;
	}
	return 0;
}

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

PyMODINIT_FUNC PyInit__evshm(void);
PyMODINIT_FUNC PyInit__evshm(void)
{
	if (check_version() < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	evpy_StatsType = PyStructSequence_NewType(&stats_desc);
	evpy_PeerCredType = PyStructSequence_NewType(&cred_desc);
	evpy_SubInfoType = PyStructSequence_NewType(&sub_info_desc);
	evpy_PubStatsType = PyStructSequence_NewType(&pub_stats_desc);
	evpy_ProtocolError = PyErr_NewExceptionWithDoc("evshm.ProtocolError",
		"The peer broke the evshm protocol (errno EPROTO); the "
		"channel is unusable.", PyExc_OSError, NULL);
	if (!evpy_StatsType || !evpy_PeerCredType || !evpy_SubInfoType ||
	    !evpy_PubStatsType || !evpy_ProtocolError ||
	    add_type(m, &evpy_ChanType, "Channel") < 0 ||
	    add_type(m, &evpy_PubType, "Publisher") < 0 ||
	    add_type(m, &evpy_SubType, "Subscriber") < 0 ||
	    add_type(m, evpy_SubInfoType, "SubscriberInfo") < 0 ||
	    add_type(m, evpy_PubStatsType, "PublisherStats") < 0 ||
	    add_type(m, &evpy_ListenerType, "Listener") < 0 ||
	    add_type(m, &evpy_MsgType, "Message") < 0 ||
	    add_type(m, &evpy_RunType, "MessageRun") < 0 ||
	    add_type(m, &evpy_ResvType, "Reservation") < 0 ||
	    add_type(m, evpy_StatsType, "Stats") < 0 ||
	    add_type(m, evpy_PeerCredType, "PeerCred") < 0 ||
	    PyModule_AddObjectRef(m, "ProtocolError", evpy_ProtocolError) < 0 ||
	    PyModule_AddStringConstant(m, "HEADER_VERSION", EVSHM_VERSION_STRING) < 0 ||
	    PyModule_AddIntConstant(m, "RING_DEFAULT", EVSHM_RING_DEFAULT) < 0 ||
	    PyModule_AddIntConstant(m, "RING_MIN", EVSHM_RING_MIN) < 0 ||
	    PyModule_AddIntConstant(m, "RING_MAX", EVSHM_RING_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_FDS", EVSHM_MAX_FDS) < 0 ||
	    PyModule_AddIntConstant(m, "SPIN_NEVER", EVSHM_SPIN_NEVER) < 0 ||
	    PyModule_AddIntConstant(m, "OPT_FDS", EVSHM_OPT_FDS) < 0 ||
	    PyModule_AddStringConstant(m, "RELIABLE", "reliable") < 0 ||
	    PyModule_AddStringConstant(m, "LATEST", "latest") < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
