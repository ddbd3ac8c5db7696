/* SPDX-License-Identifier: MIT */
/*
 * opts.c: keyword arguments of listen(), connect(), publish() and
 * subscribe() -> struct evshm_opts.
 * One row per field: a new field of evshm_opts is one line here.
 */
#include "evpy.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum opt_kind {
	OPT_U32,
	OPT_I32,
	OPT_I64,
	OPT_FLAGS,     /* an int of EVSHM_OPT_* bits, or-ed in */
	OPT_FDS,       /* a bool: EVSHM_OPT_FDS in flags */
	OPT_POLICY,    /* "reliable" or "latest" */
	OPT_AUTHORIZE, /* a callable(pid, uid, gid) -> bool */
};

struct opt {
	const char *name; /* the keyword: the field's name, but fds */
	size_t off;
	enum opt_kind kind;
	unsigned where; /* EVPY_LISTEN | EVPY_CONNECT | ... */
};

#define OPT(name, field, kind, where) \
	{ name, offsetof(struct evshm_opts, field), kind, where }
#define L EVPY_LISTEN
#define C EVPY_CONNECT
#define P EVPY_PUBLISH
#define S EVPY_SUBSCRIBE

/* Which call takes which field: as include/evshm.h documents them. */
static const struct opt opt_table[] = {
	OPT("ring_size", ring_size, OPT_U32, L | C | P),
	OPT("peer_ring_size", peer_ring_size, OPT_U32, C),
	OPT("max_ring_size", max_ring_size, OPT_U32, L | C | S),
	OPT("mode", mode, OPT_U32, L | P),
	OPT("spin_ns", spin_ns, OPT_I64, L | C | P | S),
	OPT("handshake_timeout_ms", handshake_timeout_ms, OPT_I32, L | C | P | S),
	OPT("max_clients", max_clients, OPT_U32, L | P),
	OPT("authorize", authorize, OPT_AUTHORIZE, L | C | P | S),
	OPT("fds", flags, OPT_FDS, L | C),
	OPT("flags", flags, OPT_FLAGS, L | C),
	OPT("policy", policy, OPT_POLICY, P),
	OPT("stall_timeout_ms", stall_timeout_ms, OPT_I32, P),
	OPT("history", history, OPT_U32, S),
};

static const char *const call_names[] = { "listen", "connect", "publish",
					  "subscribe" };

static const char *call_name(unsigned where)
{
	for (unsigned i = 0; i < 4; i++)
		if (where == 1u << i)
			return call_names[i];
	return "?";
}

const char *evpy_policy_name(unsigned policy)
{
	return policy == EVSHM_LATEST ? "latest" : "reliable";
}

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
	if (op->kind == OPT_FDS) {
		int yes = PyObject_IsTrue(v);
		if (yes < 0)
			return -1;
		if (yes)
			o->flags |= EVSHM_OPT_FDS;
		return 0;
	}
	if (op->kind == OPT_POLICY) {
		const char *p = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
		if (p && strcmp(p, "reliable") == 0) {
			o->policy = EVSHM_RELIABLE;
		} else if (p && strcmp(p, "latest") == 0) {
			o->policy = EVSHM_LATEST;
		} else {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_ValueError, "policy must be "
					     "'reliable' or 'latest', not %R", v);
			return -1;
		}
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
	case OPT_FLAGS: *(uint32_t *)(void *)field |= (uint32_t)x; break;
	case OPT_I32: *(int32_t *)(void *)field = (int32_t)x; break;
	case OPT_I64: *(int64_t *)(void *)field = (int64_t)x; break;
	case OPT_FDS:
	case OPT_POLICY:
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
			char also[80] = "";
			if (i < n) {
				size_t k = 0;
				for (unsigned b = 0; b < 4; b++)
					if (opt_table[i].where & (1u << b))
						k += (size_t)snprintf(also + k, sizeof(also) - k,
							"%s%s()", k ? ", " : " (an option of ",
							call_names[b]);
				snprintf(also + k, sizeof(also) - k, ")");
			}
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected "
				     "keyword argument '%S'%s", call_name(where),
				     key, also);
			return -1;
		}
		if (opt_set(o, &opt_table[i], v, auth) < 0)
			return -1;
	}
	return 0;
}
