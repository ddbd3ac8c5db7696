/* SPDX-License-Identifier: MIT */
/*
 * opts.c: keyword arguments of listen() and connect() -> struct evshm_opts.
 * One row per field: a new field of evshm_opts is one line here.
 */
#include "evpy.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

enum opt_kind {
	OPT_U32,
	OPT_I32,
	OPT_I64,
	OPT_AUTHORIZE, /* a callable(pid, uid, gid) -> bool */
};

struct opt {
	const char *name; /* the keyword: the field's name */
	size_t off;
	enum opt_kind kind;
	unsigned where; /* EVPY_LISTEN | EVPY_CONNECT */
};

#define OPT(field, kind, where) \
	{ #field, offsetof(struct evshm_opts, field), kind, where }
#define BOTH (EVPY_LISTEN | EVPY_CONNECT)

static const struct opt opt_table[] = {
	OPT(ring_size, OPT_U32, BOTH),
	OPT(peer_ring_size, OPT_U32, EVPY_CONNECT),
	OPT(max_ring_size, OPT_U32, EVPY_LISTEN),
	OPT(mode, OPT_U32, EVPY_LISTEN),
	OPT(spin_ns, OPT_I64, BOTH),
	OPT(handshake_timeout_ms, OPT_I32, BOTH),
	OPT(max_clients, OPT_U32, EVPY_LISTEN),
	OPT(authorize, OPT_AUTHORIZE, BOTH),
};

/*
 * The authorize trampoline.  The library calls it from the thread that
 * accepts or connects, inside a call made without the GIL: take it.  The
 * callable admits with a true value; False, or an exception (kept and
 * raised by the accept() / connect() that called it), refuses: the peer
 * gets -EACCES.
 */
static int authorize_tramp(void *arg, pid_t pid, uid_t uid, gid_t gid)
{
	struct evpy_auth *a = arg;
	PyGILState_STATE g = PyGILState_Ensure();
	int res = -EACCES;

	if (!a->fn) { /* cleared by the collector: nobody can accept now */
		PyGILState_Release(g);
		return res;
	}
	PyObject *r = PyObject_CallFunction(a->fn, "iII", (int)pid,
					    (unsigned)uid, (unsigned)gid);
	if (r) {
		int yes = PyObject_IsTrue(r);
		Py_DECREF(r);
		if (yes > 0)
			res = 0;
	}
	if (PyErr_Occurred()) {
		evpy_auth_clear(a); /* keep the latest */
		PyErr_Fetch(&a->type, &a->value, &a->tb);
	}
	PyGILState_Release(g);
	return res;
}

bool evpy_auth_reraise(struct evpy_auth *a)
{
	if (!a->type)
		return false;
	PyErr_Restore(a->type, a->value, a->tb);
	a->type = a->value = a->tb = NULL;
	return true;
}

void evpy_auth_clear(struct evpy_auth *a)
{
	Py_CLEAR(a->type);
	Py_CLEAR(a->value);
	Py_CLEAR(a->tb);
}

static int opt_set(struct evshm_opts *o, const struct opt *op, PyObject *v,
		   struct evpy_auth *auth)
{
	char *field = (char *)o + op->off;
	long long x, lo = 0, hi = UINT32_MAX;

	if (op->kind == OPT_AUTHORIZE) {
		if (v == Py_None)
			return 0;
		if (!PyCallable_Check(v)) {
			PyErr_SetString(PyExc_TypeError, "authorize must be a "
					"callable(pid, uid, gid) or None");
			return -1;
		}
		Py_INCREF(v);
		Py_XSETREF(auth->fn, v);
		o->authorize = authorize_tramp;
		o->authorize_arg = auth;
		return 0;
	}
	if (!PyLong_Check(v) || PyBool_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s",
			     op->name, Py_TYPE(v)->tp_name);
		return -1;
	}
	if (op->kind == OPT_I32) {
		lo = INT32_MIN;
		hi = INT32_MAX;
	} else if (op->kind == OPT_I64) {
		lo = INT64_MIN;
		hi = INT64_MAX;
	}
	x = PyLong_AsLongLong(v);
	if (x == -1 && PyErr_Occurred())
		return -1;
	if (x < lo || x > hi) {
		PyErr_Format(PyExc_ValueError, "%s must be in [%lld, %lld]",
			     op->name, lo, hi);
		return -1;
	}
	switch (op->kind) {
	case OPT_U32: *(uint32_t *)(void *)field = (uint32_t)x; break;
	case OPT_I32: *(int32_t *)(void *)field = (int32_t)x; break;
	case OPT_I64: *(int64_t *)(void *)field = (int64_t)x; break;
	case OPT_AUTHORIZE: break;
	}
	return 0;
}

int evpy_opts(struct evshm_opts *o, PyObject *kw, unsigned where,
	      struct evpy_auth *auth)
{
	const size_t n = sizeof(opt_table) / sizeof(opt_table[0]);
	Py_ssize_t pos = 0;
	PyObject *key, *v;

	memset(o, 0, sizeof(*o));
	while (kw && PyDict_Next(kw, &pos, &key, &v)) {
		size_t i = 0;

		while (i < n && PyUnicode_CompareWithASCIIString(key, opt_table[i].name) != 0)
			i++;
		if (i == n || !(opt_table[i].where & where)) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected "
				     "keyword argument '%S'%s", where == EVPY_LISTEN ?
				     "listen" : "connect", key, i == n ? "" :
				     " (it is an option of the other side)");
			return -1;
		}
		if (opt_set(o, &opt_table[i], v, auth) < 0)
			return -1;
	}
	return 0;
}
