/* SPDX-License-Identifier: MIT */
/*
 * call.c: what every method needs: its arguments, its timeout, the
 * blocking-call loop and the mapping of errors onto Python exceptions.
 */
#include "evpy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* --- arguments ---------------------------------------------------------------- */

int evpy_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	      PyObject *kwnames, const char *const names[], int nreq,
	      PyObject **out)
{
	Py_ssize_t n = 0;

	while (names[n])
		n++;
	if (nargs > n) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %zd "
			     "arguments (%zd given)", fname, n, nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		out[i] = args[i];
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t k = 0; k < nkw; k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		Py_ssize_t i = 0;

		while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
			i++;
		if (i == n) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected "
				     "keyword argument '%U'", fname, key);
			return -1;
		}
		if (i < nargs) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values "
				     "for argument '%s'", fname, names[i]);
			return -1;
		}
		out[i] = args[nargs + k];
	}
	/* Required ones default to NULL: given positionally or by keyword. */
	for (int i = 0; i < nreq; i++)
		if (!out[i]) {
			PyErr_Format(PyExc_TypeError, "%s() missing required "
				     "argument '%s'", fname, names[i]);
			return -1;
		}
	return 0;
}

int evpy_size(PyObject *v, size_t *out)
{
	Py_ssize_t n = PyNumber_AsSsize_t(v, PyExc_OverflowError);

	if (n == -1 && PyErr_Occurred())
		return -1;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "size must be >= 0");
		return -1;
	}
	*out = (size_t)n;
	return 0;
}

/* --- timeouts ----------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int evpy_deadline_init(struct evpy_deadline *d, PyObject *timeout)
{
	d->forever = d->nonblock = false;
	d->end_ns = 0;
	if (timeout == Py_None) {
		d->forever = true; /* the common case reads no clock */
		return 0;
	}
	if (PyBool_Check(timeout) || !(PyFloat_Check(timeout) || PyLong_Check(timeout))) {
		PyErr_Format(PyExc_TypeError, "timeout must be None or a number "
			     "of seconds, not %.100s", Py_TYPE(timeout)->tp_name);
		return -1;
	}
	double s = PyFloat_AsDouble(timeout);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (isnan(s) || s < 0) {
		PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 or None");
		return -1;
	}
	if (s == 0) {
		d->nonblock = true;
		return 0;
	}
	if (s > 1e9) { /* 31 years: forever, as far as anyone can tell */
		d->forever = true;
		return 0;
	}
	d->end_ns = now_ns() + (uint64_t)ceil(s * 1e9);
	return 0;
}

/* Time left in ms, rounded up (never a timeout that came early); 0 when
 * the deadline has passed. */
static int left_ms(const struct evpy_deadline *d)
{
	uint64_t now = now_ns();

	if (now >= d->end_ns)
		return 0;
	uint64_t ms = (d->end_ns - now + 999999u) / 1000000u;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int evpy_deadline_ms(const struct evpy_deadline *d)
{
	if (d->forever)
		return -1;
	if (d->nonblock)
		return 0;
	int ms = left_ms(d);
	return ms ? ms : 1; /* past already: still try, briefly */
}

int evpy_wait(const struct evpy_deadline *d, evpy_wait_fn fn, void *arg,
	      const bool *closed)
{
	int res;

	for (;;) {
		int ms = 0;

		if (!d->nonblock) {
			ms = d->forever ? EVPY_SLICE_MS : left_ms(d);
			if (ms == 0)
				return -ETIMEDOUT;
			if (ms > EVPY_SLICE_MS)
				ms = EVPY_SLICE_MS;
		}
		Py_BEGIN_ALLOW_THREADS
		res = fn(arg, ms);
		Py_END_ALLOW_THREADS
		if (res != -ETIMEDOUT || d->nonblock)
			return res;
		/* A slice ended: Ctrl-C, close() from another thread? */
		if (PyErr_CheckSignals() < 0)
			return EVPY_PYERR;
		if (*closed) {
			PyErr_SetString(PyExc_ValueError, "closed by another "
					"thread during the call");
			return EVPY_PYERR;
		}
	}
}

/* --- errors -------------------------------------------------------------------- */

PyObject *evpy_ProtocolError;

/* Set OSError(errnum, text[, filename]) from @type: OSError itself picks
 * the subclass for errnum. */
static PyObject *raise_os(PyObject *type, int errnum, PyObject *text,
			  PyObject *filename)
{
	PyObject *exc = filename ?
		PyObject_CallFunction(type, "iOO", errnum, text, filename) :
		PyObject_CallFunction(type, "iO", errnum, text);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

PyObject *evpy_raise_why(int err, const char *reason, PyObject *filename)
{
	if (err == EVPY_PYERR)
		return NULL;
	PyObject *text = reason ?
		PyUnicode_FromFormat("%s: %s", evshm_strerror(err), reason) :
		PyUnicode_FromString(evshm_strerror(err));
	if (!text)
		return NULL;
	raise_os(err == -EPROTO ? evpy_ProtocolError : PyExc_OSError, -err,
		 text, filename);
	Py_DECREF(text);
	return NULL;
}

PyObject *evpy_raise(int err, PyObject *filename)
{
	return evpy_raise_why(err, NULL, filename);
}

PyObject *evpy_oserror(int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	PyObject *text = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	if (text) {
		raise_os(PyExc_OSError, errnum, text, NULL);
		Py_DECREF(text);
	}
	return NULL;
}

PyObject *evpy_closed(const char *what)
{
	PyErr_Format(PyExc_ValueError, "I/O operation on closed %s", what);
	return NULL;
}
