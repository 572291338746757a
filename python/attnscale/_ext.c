/*
 * _ext.c: the CPython extension of the attnscale package (DESIGN.md, Python contract).
 *
 * One generic entry point drives every command of the library exactly as the CLI does:
 * run(command, kwargs) finds the command (ats_command_find), fills its spec from the keyword
 * arguments through the command's option table (ats_command_option: Python's underscores are
 * the CLI's dashes), then runs run_alloc and ats_run_next in a worker thread and gathers the
 * records into columns, one entry per record. The pure-Python layer (__init__.py) turns the
 * columns into numpy arrays. Nothing here computes an experiment: the numbers are the
 * library's, so Python and the CLI agree bit for bit.
 *
 * Inputs use only the buffer protocol (no NumPy C-API, hence no NumPy ABI coupling):
 *   - numeric options (VALUES, NUMBER): a Python number, a sequence of numbers, a 0-d or 1-D
 *     buffer (float16/32/64 or integers, converted exactly to double) or the CLI's text
 *     ("1,2,3", "lo:hi:k", "lo:hi:k:log", parsed by ats_values_parse);
 *   - CHOICE: a str among the choices; FLAG: a bool; TEXT: a str or os.PathLike, or a
 *     sequence of str joined by ',' (list options such as phase's metric);
 *   - arrays (phase tokens, diagnose scores / q / k / mask, and ATS_OPTION_ARRAY options): any
 *     buffer or object with __array__, dtype float16, float32 or float64 in native byte
 *     order (a mask also bool; int16/uint16 buffers are bfloat16 bits where a diagnose layer
 *     says "dtype": "bfloat16"). C-contiguous buffers reach the library without a copy
 *     (ats_array_wrap over the buffer itself); other layouts are copied once into a
 *     C-contiguous buffer.
 *   - diagnose's layers: a sequence of dicts, one struct ats_diagnose_layer each.
 *
 * Threads and interrupts: the library runs in a worker pthread (all signals blocked there)
 * while the calling thread waits with the GIL released, waking every 50 ms to run Python's
 * signal handlers (PyErr_CheckSignals). On an exception (KeyboardInterrupt) it cancels the run
 * (ats_run_cancel: the drivers return ATS_STATUS_ECANCEL between units of work), joins the
 * worker, frees everything and raises. ats_last_error() is thread-local, so the worker reads
 * it right after the failing call and hands the text back.
 *
 * Built by the Makefile into build/python/attnscale/ (make python), or by pip (setup.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attnscale.h"

// ----------------------------------------------------------------------------
// Errors

// The exception class of a library status (DESIGN.md: usage errors and bad values are
// ValueError, I/O OSError, allocation MemoryError).
static PyObject *status_exception(int status) {
    switch (status) {
    case ATS_STATUS_EARG:
    case ATS_STATUS_EDOM:
    case ATS_STATUS_EINVAL:
    case ATS_STATUS_ERANGE:
    case ATS_STATUS_EUNSUP:
        return PyExc_ValueError;
    case ATS_STATUS_EIO:
        return PyExc_OSError;
    case ATS_STATUS_ENOMEM:
        return PyExc_MemoryError;
    default:
        return PyExc_RuntimeError;
    }
}

static void raise_status(int status, const char *msg) {
    PyErr_SetString(status_exception(status), msg && msg[0] ? msg : ats_strerror(status));
}

// ----------------------------------------------------------------------------
// Buffers: dtypes from struct-module format strings

static int host_little_endian(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

// The format without a native byte-order prefix, or NULL for a non-native byte order.
static const char *native_format(const char *fmt) {
    if (!fmt)
        return "B";
    if (fmt[0] == '@' || fmt[0] == '=')
        return fmt + 1;
    if (fmt[0] == '<')
        return host_little_endian() ? fmt + 1 : NULL;
    if (fmt[0] == '>' || fmt[0] == '!')
        return host_little_endian() ? NULL : fmt + 1;
    return fmt;
}

// A NumPy-style name for the item type of a buffer format ("int64", "complex128", ...).
static const char *format_name(const char *fmt, Py_ssize_t itemsize, char *buf, size_t size) {
    const char *f = native_format(fmt);
    if (!f) {
        snprintf(buf, size, "'%s' (non-native byte order)", fmt);
        return buf;
    }
    int sign = 0; // 1 signed int, 2 unsigned int
    switch (f[0]) {
    case 'e':
    case 'f':
    case 'd':
    case 'g':
        if (f[1] == '\0') {
            snprintf(buf, size, "float%d", (int)(8 * itemsize));
            return buf;
        }
        break;
    case 'Z':
        snprintf(buf, size, "complex%d", (int)(8 * itemsize));
        return buf;
    case '?':
        return "bool";
    case 'b':
    case 'h':
    case 'i':
    case 'l':
    case 'q':
    case 'n':
        sign = 1;
        break;
    case 'B':
    case 'H':
    case 'I':
    case 'L':
    case 'Q':
    case 'N':
        sign = 2;
        break;
    case 'O':
        return "object";
    default:
        break;
    }
    if (sign && f[1] == '\0')
        snprintf(buf, size, "%s%d", sign == 1 ? "int" : "uint", (int)(8 * itemsize));
    else
        snprintf(buf, size, "format '%s'", fmt);
    return buf;
}

enum { ARRAY_BOOL = 1, ARRAY_BF16 = 2 }; // what array_from_object accepts beside floats

// The library dtype of a float buffer (with flags: a bool buffer, or int16/uint16 bits of
// bfloat16), or -1.
static int float_dtype(const Py_buffer *v, int flags) {
    const char *f = native_format(v->format);
    if (!f || !f[0] || f[1])
        return -1;
    if ((flags & ARRAY_BOOL) && f[0] == '?' && v->itemsize == 1)
        return ATS_DTYPE_BOOL;
    if ((flags & ARRAY_BF16) && (f[0] == 'h' || f[0] == 'H') && v->itemsize == 2)
        return ATS_DTYPE_BF16;
    if (f[0] == 'e' && v->itemsize == 2)
        return ATS_DTYPE_F16;
    if (f[0] == 'f' && v->itemsize == 4)
        return ATS_DTYPE_F32;
    if (f[0] == 'd' && v->itemsize == 8)
        return ATS_DTYPE_F64;
    return -1;
}

// IEEE binary16 to double (exact).
static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : HUGE_VAL;
    else
        v = ldexp((double)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

// Element p of a buffer item type to double: 0 on success, -1 for a type that is not a real
// number, -2 for an integer that a double cannot hold exactly.
static int item_to_double(double *out, const char *p, const char *f, Py_ssize_t itemsize) {
    if (!f || !f[0] || f[1])
        return -1;
    char c = f[0];
    if (c == 'e' && itemsize == 2) {
        uint16_t h;
        memcpy(&h, p, 2);
        *out = half_to_double(h);
        return 0;
    }
    if (c == 'f' && itemsize == 4) {
        float x;
        memcpy(&x, p, 4);
        *out = x;
        return 0;
    }
    if (c == 'd' && itemsize == 8) {
        memcpy(out, p, 8);
        return 0;
    }
    int is_signed = strchr("bhilqn", c) != NULL, is_unsigned = strchr("BHILQN", c) != NULL;
    if ((!is_signed && !is_unsigned) ||
        (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8))
        return -1;
    // The item's bits (native order) zero-extended, then its value: a signed item whose top
    // bit is set is that much below zero.
    uint64_t u;
    if (itemsize == 1) {
        uint8_t t;
        memcpy(&t, p, 1);
        u = t;
    } else if (itemsize == 2) {
        uint16_t t;
        memcpy(&t, p, 2);
        u = t;
    } else if (itemsize == 4) {
        uint32_t t;
        memcpy(&t, p, 4);
        u = t;
    } else {
        memcpy(&u, p, 8);
    }
    const int bits = 8 * (int)itemsize;
    if (is_signed && (u >> (bits - 1)) & 1) {
        // |value| = 2^bits - u, computed without overflow (2^64 - u is ~u + 1).
        uint64_t mag = bits == 64 ? ~u + 1 : (UINT64_C(1) << bits) - u;
        if (mag > (uint64_t)ATS_INT_EXACT_MAX)
            return -2;
        *out = -(double)mag;
        return 0;
    }
    if (u > (uint64_t)ATS_INT_EXACT_MAX)
        return -2;
    *out = (double)u;
    return 0;
}

// ----------------------------------------------------------------------------
// What a call holds until it returns: buffer views, copies, wrapped arrays, value lists and
// Python objects whose storage the spec points into.

struct held {
    Py_buffer **views; // each view apart, so a view in use stays put while the lists grow
    int nviews, capviews;
    void **mem; // PyMem_Malloc'd: value lists, contiguous copies
    int nmem, capmem;
    struct ats_array **arrays;
    int narrays, caparrays;
    PyObject **refs;
    int nrefs, caprefs;
};

static void held_release(struct held *h) {
    for (int i = 0; i < h->narrays; i++)
        ats_array_close(h->arrays[i]);
    for (int i = 0; i < h->nviews; i++)
        PyBuffer_Release(h->views[i]);
    for (int i = 0; i < h->capviews; i++)
        PyMem_Free(h->views[i]);
    for (int i = 0; i < h->nmem; i++)
        PyMem_Free(h->mem[i]);
    for (int i = 0; i < h->nrefs; i++)
        Py_DECREF(h->refs[i]);
    PyMem_Free(h->views);
    PyMem_Free(h->mem);
    PyMem_Free(h->arrays);
    PyMem_Free(h->refs);
    memset(h, 0, sizeof *h);
}

// list: (*cap,) entries of size bytes, doubled (the new entries zeroed): the new list, or
// NULL (list and *cap unchanged) when out of memory.
static void *grow_to(void *list, int *cap, size_t size) {
    int ncap = *cap ? 2 * *cap : 16;
    char *p = PyMem_Realloc(list, (size_t)ncap * size);
    if (!p)
        return NULL;
    memset(p + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
    *cap = ncap;
    return p;
}

// Makes room for one more view, copy, array and reference: 0, or 1 with MemoryError.
static int held_full(struct held *h) {
    void *p;
    if (h->nviews == h->capviews) {
        if (!(p = grow_to(h->views, &h->capviews, sizeof *h->views)))
            goto oom;
        h->views = p;
    }
    if (h->nmem == h->capmem) {
        if (!(p = grow_to(h->mem, &h->capmem, sizeof *h->mem)))
            goto oom;
        h->mem = p;
    }
    if (h->narrays == h->caparrays) {
        if (!(p = grow_to(h->arrays, &h->caparrays, sizeof *h->arrays)))
            goto oom;
        h->arrays = p;
    }
    if (h->nrefs == h->caprefs) {
        if (!(p = grow_to(h->refs, &h->caprefs, sizeof *h->refs)))
            goto oom;
        h->refs = p;
    }
    if (!h->views[h->nviews] && !(h->views[h->nviews] = PyMem_Calloc(1, sizeof(Py_buffer))))
        goto oom;
    return 0;
oom:
    PyErr_NoMemory();
    return 1;
}

// Keeps a new reference until the call returns (steals o).
static PyObject *held_ref(struct held *h, PyObject *o) {
    if (!o)
        return NULL;
    if (held_full(h)) {
        Py_DECREF(o);
        return NULL;
    }
    h->refs[h->nrefs++] = o;
    return o;
}

// ----------------------------------------------------------------------------
// Numbers and value lists

static PyObject *object_array(PyObject *o) {
    return PyObject_CallMethod(o, "__array__", NULL);
}

// Gets a strided view of o (or of o.__array__()) into *v: 0, or -1 with an exception.
static int get_view(Py_buffer *v, PyObject *o, const char *name, PyObject **converted) {
    *converted = NULL;
    if (!PyObject_CheckBuffer(o)) {
        if (!PyObject_HasAttrString(o, "__array__")) {
            PyErr_Format(PyExc_TypeError, "%s: expected an array (buffer protocol or __array__), "
                         "not %s", name, Py_TYPE(o)->tp_name);
            return -1;
        }
        PyObject *a = object_array(o);
        if (!a)
            return -1;
        if (!PyObject_CheckBuffer(a)) {
            PyErr_Format(PyExc_TypeError, "%s: %s.__array__() returned %s, which has no buffer",
                         name, Py_TYPE(o)->tp_name, Py_TYPE(a)->tp_name);
            Py_DECREF(a);
            return -1;
        }
        *converted = a;
        o = a;
    }
    if (PyObject_GetBuffer(o, v, PyBUF_FORMAT | PyBUF_STRIDES) != 0) {
        Py_XDECREF(*converted);
        *converted = NULL;
        return -1;
    }
    return 0;
}

// One Python number into *out: a float, an int (exactly), a 0-d buffer, or an object with
// __index__ or __float__. Bools and strings are refused.
static int number_from_object(double *out, PyObject *o, const char *name) {
    if (PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: a bool is not a number", name);
        return -1;
    }
    if (PyFloat_Check(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    if (PyUnicode_Check(o) || PyBytes_Check(o) || PyByteArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a number, not %s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    if (PyObject_CheckBuffer(o)) {
        Py_buffer v;
        PyObject *conv;
        if (get_view(&v, o, name, &conv) != 0)
            return -1;
        int rc = 0;
        char tn[64];
        if (v.ndim != 0) {
            PyErr_Format(PyExc_TypeError, "%s: expected a number, not a %d-D array", name, v.ndim);
            rc = -1;
        } else {
            int c = item_to_double(out, v.buf, native_format(v.format), v.itemsize);
            if (c == -1) {
                PyErr_Format(PyExc_ValueError, "%s: dtype %s is not a real number", name,
                             format_name(v.format, v.itemsize, tn, sizeof tn));
                rc = -1;
            } else if (c == -2) {
                PyErr_Format(PyExc_ValueError, "%s: an integer beyond 2^53 is not exact as a double",
                             name);
                rc = -1;
            }
        }
        PyBuffer_Release(&v);
        Py_XDECREF(conv);
        return rc;
    }
    PyObject *num = NULL;
    if (PyLong_Check(o)) {
        num = o;
        Py_INCREF(num);
    } else if (PyIndex_Check(o)) {
        num = PyNumber_Index(o);
    } else if (Py_TYPE(o)->tp_as_number && Py_TYPE(o)->tp_as_number->nb_float) {
        PyObject *f = PyNumber_Float(o);
        if (!f)
            return -1;
        *out = PyFloat_AS_DOUBLE(f);
        Py_DECREF(f);
        return 0;
    } else {
        PyErr_Format(PyExc_TypeError, "%s: expected a number, not %s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    if (!num)
        return -1;
    double d = PyLong_AsDouble(num);
    if (d == -1.0 && PyErr_Occurred()) {
        Py_DECREF(num);
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: integer %R is too large", name, o);
        return -1;
    }
    if (fabs(d) > (double)ATS_INT_EXACT_MAX) {
        // Refuse an integer that the double would change, never round it silently.
        PyObject *back = PyLong_FromDouble(d);
        int same = back ? PyObject_RichCompareBool(num, back, Py_EQ) : -1;
        Py_XDECREF(back);
        if (same != 1) {
            Py_DECREF(num);
            if (same == 0)
                PyErr_Format(PyExc_ValueError, "%s: integer %R is not exact as a double", name, o);
            return -1;
        }
    }
    Py_DECREF(num);
    *out = d;
    return 0;
}

// The CLI's text for a numeric option ("1,2,3", "lo:hi:k", ...), with the CLI's message.
static int values_from_text(struct ats_values *v, const char *text, const char *name,
                            const struct ats_option *o) {
    struct ats_parse_diag diag = {0, 0, NAN};
    int rc = ats_values_parse(v, text, &o->domain, &diag);
    if (rc == ATS_STATUS_OK)
        return 0;
    if (rc == ATS_STATUS_ENOMEM) {
        PyErr_Format(PyExc_MemoryError, "%s: %s", name, ats_strerror(rc));
        return -1;
    }
    char accepted[128];
    ats_domain_describe(accepted, sizeof accepted, &o->domain);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: '%.*s': %s (accepted: %s; or a list a,b,c or a range lo:hi:k)",
             name, (int)diag.length, text + diag.offset, ats_last_error(), accepted);
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

// A value list from a number, a sequence, a 0-d or 1-D buffer or the CLI's text; the array is
// PyMem_Malloc'd and recorded in h. Values are not checked here: run_alloc checks them
// against the option's domain with the CLI's words.
static int values_from_object(struct ats_values *out, PyObject *o, const char *name,
                              const struct ats_option *opt, struct held *h) {
    out->v = NULL;
    out->count = 0;
    if (held_full(h))
        return -1;
    if (PyUnicode_Check(o)) {
        const char *text = PyUnicode_AsUTF8(o);
        if (!text)
            return -1;
        struct ats_values parsed;
        if (values_from_text(&parsed, text, name, opt) != 0)
            return -1;
        double *v = PyMem_Malloc((size_t)parsed.count * sizeof *v);
        if (!v) {
            ats_values_clear(&parsed);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(v, parsed.v, (size_t)parsed.count * sizeof *v);
        out->v = v;
        out->count = parsed.count;
        ats_values_clear(&parsed);
        h->mem[h->nmem++] = v;
        return 0;
    }
    if (PyBytes_Check(o) || PyByteArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: expected numbers, not %s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    int is_buffer = PyObject_CheckBuffer(o) ||
                    (!PyList_Check(o) && !PyTuple_Check(o) && !PyFloat_Check(o) &&
                     !PyLong_Check(o) && PyObject_HasAttrString(o, "__array__"));
    if (is_buffer) {
        Py_buffer v;
        PyObject *conv;
        if (get_view(&v, o, name, &conv) != 0)
            return -1;
        int rc = 0;
        char tn[64];
        Py_ssize_t count = v.ndim == 0 ? 1 : v.shape[0];
        if (v.ndim > 1) {
            PyErr_Format(PyExc_ValueError, "%s: a number, a sequence or a 0-d or 1-D array is "
                         "needed, not a %d-D array", name, v.ndim);
            rc = -1;
        } else if (count == 0) {
            PyErr_Format(PyExc_ValueError, "%s: an empty array (give at least one value)", name);
            rc = -1;
        } else {
            double *vals = PyMem_Malloc((size_t)count * sizeof *vals);
            if (!vals) {
                PyErr_NoMemory();
                rc = -1;
            }
            const char *f = native_format(v.format);
            for (Py_ssize_t i = 0; rc == 0 && i < count; i++) {
                const char *p = (const char *)v.buf + (v.ndim ? i * v.strides[0] : 0);
                int c = item_to_double(&vals[i], p, f, v.itemsize);
                if (c == -1) {
                    PyErr_Format(PyExc_ValueError, "%s: dtype %s is not supported (a real "
                                 "number: float16, float32, float64 or integers)", name,
                                 format_name(v.format, v.itemsize, tn, sizeof tn));
                    rc = -1;
                } else if (c == -2) {
                    PyErr_Format(PyExc_ValueError, "%s: element %zd is an integer beyond 2^53, "
                                 "not exact as a double", name, i);
                    rc = -1;
                }
            }
            if (rc == 0) {
                out->v = vals;
                out->count = count;
                h->mem[h->nmem++] = vals;
            } else {
                PyMem_Free(vals);
            }
        }
        PyBuffer_Release(&v);
        Py_XDECREF(conv);
        return rc;
    }
    if (PySequence_Check(o)) {
        PyObject *seq = PySequence_Fast(o, "a sequence");
        if (!seq)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n == 0) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "%s: an empty sequence (give at least one value)",
                         name);
            return -1;
        }
        double *vals = PyMem_Malloc((size_t)n * sizeof *vals);
        if (!vals) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            if (PySequence_Check(item) && !PyUnicode_Check(item)) {
                PyErr_Format(PyExc_TypeError, "%s: a flat sequence of numbers is needed (item "
                             "%zd is %s)", name, i, Py_TYPE(item)->tp_name);
                PyMem_Free(vals);
                Py_DECREF(seq);
                return -1;
            }
            if (number_from_object(&vals[i], item, name) != 0) {
                PyMem_Free(vals);
                Py_DECREF(seq);
                return -1;
            }
        }
        Py_DECREF(seq);
        out->v = vals;
        out->count = n;
        h->mem[h->nmem++] = vals;
        return 0;
    }
    double *one = PyMem_Malloc(sizeof *one);
    if (!one) {
        PyErr_NoMemory();
        return -1;
    }
    if (number_from_object(one, o, name) != 0) {
        PyMem_Free(one);
        return -1;
    }
    out->v = one;
    out->count = 1;
    h->mem[h->nmem++] = one;
    return 0;
}

// ----------------------------------------------------------------------------
// Text and arrays

// A str, an os.PathLike, or a sequence of str joined by ','; the storage lives in h.
static const char *text_from_object(PyObject *o, const char *name, struct held *h) {
    PyObject *s = NULL;
    if (PyUnicode_Check(o)) {
        s = o;
        Py_INCREF(s);
    } else if (PyObject_HasAttrString(o, "__fspath__")) {
        PyObject *p = PyOS_FSPath(o);
        if (!p)
            return NULL;
        if (PyBytes_Check(p)) {
            s = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(p));
            Py_DECREF(p);
        } else {
            s = p;
        }
    } else if (PySequence_Check(o) && !PyBytes_Check(o) && !PyByteArray_Check(o)) {
        PyObject *seq = PySequence_Fast(o, "a sequence");
        if (!seq)
            return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; i++)
            if (!PyUnicode_Check(PySequence_Fast_GET_ITEM(seq, i))) {
                PyErr_Format(PyExc_TypeError, "%s: a str or a sequence of str is needed (item "
                             "%zd is %s)", name, i, Py_TYPE(PySequence_Fast_GET_ITEM(seq, i))->tp_name);
                Py_DECREF(seq);
                return NULL;
            }
        PyObject *comma = PyUnicode_FromString(",");
        s = comma ? PyUnicode_Join(comma, seq) : NULL;
        Py_XDECREF(comma);
        Py_DECREF(seq);
    } else {
        PyErr_Format(PyExc_TypeError, "%s: expected a str, not %s", name, Py_TYPE(o)->tp_name);
        return NULL;
    }
    if (!held_ref(h, s))
        return NULL;
    Py_ssize_t len;
    const char *t = PyUnicode_AsUTF8AndSize(s, &len);
    if (!t)
        return NULL;
    if (len == 0) {
        PyErr_Format(PyExc_ValueError, "%s: empty value", name);
        return NULL;
    }
    if ((Py_ssize_t)strlen(t) != len) {
        PyErr_Format(PyExc_ValueError, "%s: embedded NUL character", name);
        return NULL;
    }
    return t;
}

// An ats_array over o's buffer: no copy when o is C-contiguous, else one copy into a
// C-contiguous buffer. *data: the address handed to the library; *copied: 1 after a copy.
static struct ats_array *array_from_object(PyObject *o, const char *name, struct held *h,
                                           int flags, const void **data, int *copied) {
    if (held_full(h))
        return NULL;
    Py_buffer *v = h->views[h->nviews];
    PyObject *conv;
    if (get_view(v, o, name, &conv) != 0)
        return NULL;
    h->nviews++;
    if (conv && !held_ref(h, conv))
        return NULL;
    int t = float_dtype(v, flags);
    if (t < 0) {
        char tn[64];
        PyErr_Format(PyExc_ValueError, "%s: dtype %s is not supported (float16, float32 or "
                     "float64%s in native byte order)", name,
                     format_name(v->format, v->itemsize, tn, sizeof tn),
                     flags & ARRAY_BOOL ? ", or bool" : "");
        return NULL;
    }
    if (v->ndim > 64) {
        PyErr_Format(PyExc_ValueError, "%s: %d dimensions (at most 64)", name, v->ndim);
        return NULL;
    }
    int64_t shape[64];
    for (int i = 0; i < v->ndim; i++)
        shape[i] = (int64_t)v->shape[i];
    const void *buf = v->buf;
    *copied = 0;
    if (!PyBuffer_IsContiguous(v, 'C')) {
        void *c = PyMem_Malloc(v->len > 0 ? (size_t)v->len : 1);
        if (!c) {
            PyErr_NoMemory();
            return NULL;
        }
        h->mem[h->nmem++] = c;
        if (PyBuffer_ToContiguous(c, v, v->len, 'C') != 0)
            return NULL;
        buf = c;
        *copied = 1;
    }
    struct ats_array *a;
    int rc = ats_array_wrap(&a, buf, (enum ats_dtype)t, shape, v->ndim);
    if (rc != ATS_STATUS_OK) {
        PyErr_Format(status_exception(rc), "%s: %s", name, ats_last_error());
        return NULL;
    }
    h->arrays[h->narrays++] = a;
    *data = buf;
    return a;
}

// Spec fields that hold in-memory arrays for a TEXT option of the same name (the public spec
// structs); options of kind ATS_OPTION_ARRAY are found through their table.
static const struct {
    const char *command, *option;
    size_t offset;
} array_fields[] = {
    {"phase", "tokens", offsetof(struct ats_phase_spec, tokens_array)},
    {"diagnose", "scores", offsetof(struct ats_diagnose_spec, scores_array)},
    {"diagnose", "q", offsetof(struct ats_diagnose_spec, q_array)},
    {"diagnose", "k", offsetof(struct ats_diagnose_spec, k_array)},
    {"diagnose", "mask", offsetof(struct ats_diagnose_spec, mask_array)},
};

// The spec offset of the array field for option `name` of cmd, or (size_t)-1.
static size_t array_offset(const struct ats_command *cmd, const struct ats_option *o) {
    if (o && o->kind == ATS_OPTION_ARRAY)
        return o->offset;
    for (size_t i = 0; i < sizeof array_fields / sizeof array_fields[0]; i++)
        if (strcmp(array_fields[i].command, cmd->name) == 0 && o &&
            strcmp(array_fields[i].option, o->name) == 0)
            return array_fields[i].offset;
    return (size_t)-1;
}

// ----------------------------------------------------------------------------
// The spec from keyword arguments

// Sets option o of spec from value; name is the keyword as given.
static int set_option(const struct ats_command *cmd, void *spec, const struct ats_option *o,
                      const char *name, PyObject *value, struct held *h) {
    char *t = (char *)spec + o->offset;
    size_t aoff = array_offset(cmd, o);
    if (aoff != (size_t)-1 && !PyUnicode_Check(value) &&
        !PyObject_HasAttrString(value, "__fspath__")) {
        const void *data;
        int copied;
        int flags = strcmp(o->name, "mask") == 0 ? ARRAY_BOOL : 0;
        struct ats_array *a = array_from_object(value, name, h, flags, &data, &copied);
        if (!a)
            return -1;
        const struct ats_array *ca = a;
        memcpy((char *)spec + aoff, &ca, sizeof ca);
        return 0;
    }
    switch (o->kind) {
    case ATS_OPTION_VALUES: {
        struct ats_values v;
        if (values_from_object(&v, value, name, o, h) != 0)
            return -1;
        memcpy(t, &v, sizeof v);
        return 0;
    }
    case ATS_OPTION_NUMBER: {
        struct ats_values v;
        if (values_from_object(&v, value, name, o, h) != 0)
            return -1;
        if (v.count != 1) {
            PyErr_Format(PyExc_ValueError, "%s takes one value, not %lld", name,
                         (long long)v.count);
            return -1;
        }
        if (isnan(v.v[0])) {
            // NAN is how a spec says "absent": never let a value turn into the default.
            char accepted[128];
            ats_domain_describe(accepted, sizeof accepted, &o->domain);
            PyErr_Format(PyExc_ValueError, "%s: nan is not %s", name, accepted);
            return -1;
        }
        memcpy(t, &v.v[0], sizeof v.v[0]);
        return 0;
    }
    case ATS_OPTION_CHOICE: {
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a str, not %s", name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        const char *s = PyUnicode_AsUTF8(value);
        if (!s)
            return -1;
        int n = 0, found = -1;
        for (; o->choices[n]; n++)
            if (strcmp(s, o->choices[n]) == 0)
                found = n;
        if (found < 0) {
            char list[512] = "";
            for (int i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i == 0 ? "" : i == n - 1 ? " or " : ", ", o->choices[i]);
            PyErr_Format(PyExc_ValueError, "%s: '%s' is not %s", name, s, list);
            return -1;
        }
        memcpy(t, &found, sizeof found);
        return 0;
    }
    case ATS_OPTION_FLAG: {
        // True or False (numpy's bool_ too, through __bool__ on a type named bool_).
        int truth = -1;
        if (PyBool_Check(value) || strncmp(Py_TYPE(value)->tp_name, "numpy.bool", 10) == 0)
            truth = PyObject_IsTrue(value);
        if (truth < 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%s: expected a bool, not %s", name,
                             Py_TYPE(value)->tp_name);
            return -1;
        }
        if (truth) {
            int one = 1;
            memcpy(t, &one, sizeof one);
        }
        return 0;
    }
    case ATS_OPTION_TEXT: {
        const char *s = text_from_object(value, name, h);
        if (!s)
            return -1;
        memcpy(t, &s, sizeof s);
        return 0;
    }
    case ATS_OPTION_ARRAY:
        break;
    }
    PyErr_Format(PyExc_TypeError, "%s: this option cannot be set from Python", name);
    return -1;
}

// diagnose's layers: a sequence of dicts {"name": str, "scores": array | "q", "k": arrays,
// "mask": array, "scale": float, "masked_logits": bool, "causal": bool, "dtype": "bfloat16"}.
static int set_layers(struct ats_diagnose_spec *spec, PyObject *value, struct held *h) {
    PyObject *seq = PySequence_Fast(value, "layers: expected a sequence of dicts");
    if (!seq || !held_ref(h, seq))
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "layers: no layers given");
        return -1;
    }
    if (held_full(h))
        return -1;
    struct ats_diagnose_layer *ls = PyMem_Calloc((size_t)n, sizeof *ls);
    if (!ls) {
        PyErr_NoMemory();
        return -1;
    }
    h->mem[h->nmem++] = ls;
    static const char *const keys[] = {"name", "scores", "q", "k", "mask", "scale",
                                       "masked_logits", "causal", "dtype", NULL};
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PySequence_Fast_GET_ITEM(seq, i);
        char label[320];
        if (!PyDict_Check(d)) {
            PyErr_Format(PyExc_TypeError, "layers[%zd]: expected a dict, not %s", i,
                         Py_TYPE(d)->tp_name);
            return -1;
        }
        PyObject *key, *item;
        Py_ssize_t pos = 0;
        while (PyDict_Next(d, &pos, &key, &item)) {
            const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
            int known = 0;
            for (int j = 0; k && keys[j]; j++)
                known = known || strcmp(k, keys[j]) == 0;
            if (!known) {
                PyErr_Format(PyExc_TypeError, "layers[%zd]: unexpected key %R (known: name, "
                             "scores, q, k, mask, scale, masked_logits, causal, dtype)", i, key);
                return -1;
            }
        }
        struct ats_diagnose_layer *l = &ls[i];
        l->scale = NAN;
        PyObject *name = PyDict_GetItemString(d, "name");
        snprintf(label, sizeof label, "layers[%zd].name", i);
        if (!name) {
            PyErr_Format(PyExc_ValueError, "layers[%zd]: no name", i);
            return -1;
        }
        if (!(l->name = text_from_object(name, label, h)))
            return -1;
        int flags = 0;
        PyObject *dt = PyDict_GetItemString(d, "dtype");
        if (dt && dt != Py_None) {
            const char *t = PyUnicode_Check(dt) ? PyUnicode_AsUTF8(dt) : NULL;
            if (!t || strcmp(t, "bfloat16") != 0) {
                PyErr_Format(PyExc_ValueError, "layer %s: dtype must be 'bfloat16' (int16 "
                             "buffers holding bfloat16 bits) or absent", l->name);
                return -1;
            }
            flags = ARRAY_BF16;
        }
        static const char *const arrays[] = {"scores", "q", "k", "mask"};
        const struct ats_array **slot[] = {&l->scores, &l->q, &l->k, &l->mask};
        for (int j = 0; j < 4; j++) {
            PyObject *a = PyDict_GetItemString(d, arrays[j]);
            if (!a || a == Py_None)
                continue;
            snprintf(label, sizeof label, "layer %s: %s", l->name, arrays[j]);
            const void *data;
            int copied;
            struct ats_array *arr =
                array_from_object(a, label, h, flags | (j == 3 ? ARRAY_BOOL : 0), &data, &copied);
            if (!arr)
                return -1;
            *slot[j] = arr;
        }
        PyObject *sc = PyDict_GetItemString(d, "scale");
        snprintf(label, sizeof label, "layer %s: scale", l->name);
        if (sc && sc != Py_None && number_from_object(&l->scale, sc, label) != 0)
            return -1;
        static const char *const flags_[] = {"masked_logits", "causal"};
        int *flag_slot[] = {&l->masked_logits, &l->causal};
        for (int j = 0; j < 2; j++) {
            PyObject *fl = PyDict_GetItemString(d, flags_[j]);
            int t = fl && fl != Py_None ? PyObject_IsTrue(fl) : 0;
            if (t < 0)
                return -1;
            *flag_slot[j] = t;
        }
    }
    spec->layers = ls;
    spec->nlayers = (int64_t)n;
    return 0;
}

static int fill_spec(const struct ats_command *cmd, void *spec, PyObject *kwargs,
                     struct held *h) {
    cmd->spec_default(spec);
    if (!kwargs)
        return 0;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keywords must be strings");
            return -1;
        }
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            return -1;
        if (value == Py_None)
            continue; // absent: the library's default
        if (strcmp(name, "layers") == 0 && strcmp(cmd->name, "diagnose") == 0) {
            if (set_layers(spec, value, h) != 0)
                return -1;
            continue;
        }
        const struct ats_option *o = strchr(name, '-') ? NULL : ats_command_option(cmd, name);
        if (!o) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'",
                         cmd->name, name);
            return -1;
        }
        if (set_option(cmd, spec, o, name, value, h) != 0)
            return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Records into columns (built by the worker without the GIL)

enum { T_ABSENT = 0, T_DOUBLE = 1, T_INT = 2, T_STRING = 3 };

#define RECENT 8
#define SIGS_MAX 4096

struct column {
    char *key;
    unsigned char *type; // (cap,)
    int64_t *slot;       // (cap,) double bits, int64, or an offset into the string pool
    int has_string;
    int64_t recent[RECENT]; // pool offsets of recent distinct strings (shared storage)
    int nrecent, next_recent;
};

struct store {
    struct column *col;
    int64_t ncol, capcol;
    int64_t nrec, caprec;
    char *pool;
    size_t poollen, poolcap;
    int32_t *sig;              // (caprec,) signature id per record, -1 untracked
    int64_t (*sigs)[1 + ATS_RECORD_FIELDS]; // [0]: count, then column indices
    int64_t nsigs, capsigs;
    int64_t hint[ATS_RECORD_FIELDS];
};

static void store_free(struct store *s) {
    for (int64_t c = 0; c < s->ncol; c++) {
        free(s->col[c].key);
        free(s->col[c].type);
        free(s->col[c].slot);
    }
    free(s->col);
    free(s->pool);
    free(s->sig);
    free(s->sigs);
    memset(s, 0, sizeof *s);
}

static int store_grow_records(struct store *s) {
    int64_t cap = s->caprec ? 2 * s->caprec : 64;
    for (int64_t c = 0; c < s->ncol; c++) {
        unsigned char *t = realloc(s->col[c].type, (size_t)cap);
        if (!t)
            return -1;
        s->col[c].type = t;
        memset(t + s->caprec, 0, (size_t)(cap - s->caprec));
        int64_t *sl = realloc(s->col[c].slot, (size_t)cap * sizeof *sl);
        if (!sl)
            return -1;
        s->col[c].slot = sl;
    }
    int32_t *sig = realloc(s->sig, (size_t)cap * sizeof *sig);
    if (!sig)
        return -1;
    s->sig = sig;
    s->caprec = cap;
    return 0;
}

static int64_t store_column(struct store *s, const char *key, int64_t k) {
    if (k < ATS_RECORD_FIELDS && s->hint[k] < s->ncol && strcmp(s->col[s->hint[k]].key, key) == 0)
        return s->hint[k];
    for (int64_t c = 0; c < s->ncol; c++)
        if (strcmp(s->col[c].key, key) == 0)
            return s->hint[k] = c;
    if (s->ncol == s->capcol) {
        int64_t cap = s->capcol ? 2 * s->capcol : 32;
        struct column *nc = realloc(s->col, (size_t)cap * sizeof *nc);
        if (!nc)
            return -1;
        s->col = nc;
        s->capcol = cap;
    }
    struct column *c = &s->col[s->ncol];
    memset(c, 0, sizeof *c);
    c->key = strdup(key);
    c->type = calloc((size_t)(s->caprec ? s->caprec : 1), 1);
    c->slot = malloc((size_t)(s->caprec ? s->caprec : 1) * sizeof *c->slot);
    if (!c->key || !c->type || !c->slot) {
        free(c->key);
        free(c->type);
        free(c->slot);
        return -1;
    }
    return s->hint[k] = s->ncol++;
}

// The pool offset of string v for column c (recent equal strings share one copy).
static int64_t store_string(struct store *s, struct column *c, const char *v) {
    size_t len = strlen(v);
    for (int i = 0; i < c->nrecent; i++)
        if (strcmp(s->pool + c->recent[i], v) == 0)
            return c->recent[i];
    if (s->poollen + len + 1 > s->poolcap) {
        size_t cap = s->poolcap ? s->poolcap : 4096;
        while (cap < s->poollen + len + 1)
            cap *= 2;
        char *p = realloc(s->pool, cap);
        if (!p)
            return -1;
        s->pool = p;
        s->poolcap = cap;
    }
    int64_t off = (int64_t)s->poollen;
    memcpy(s->pool + off, v, len + 1);
    s->poollen += len + 1;
    c->recent[c->next_recent] = off;
    c->next_recent = (c->next_recent + 1) % RECENT;
    if (c->nrecent < RECENT)
        c->nrecent++;
    return off;
}

static int32_t store_signature(struct store *s, const int64_t *cols, int64_t n) {
    for (int64_t i = s->nsigs - 1; i >= 0; i--)
        if (s->sigs[i][0] == n && memcmp(&s->sigs[i][1], cols, (size_t)n * sizeof *cols) == 0)
            return (int32_t)i;
    if (s->nsigs >= SIGS_MAX)
        return -1;
    if (s->nsigs == s->capsigs) {
        int64_t cap = s->capsigs ? 2 * s->capsigs : 8;
        void *p = realloc(s->sigs, (size_t)cap * sizeof *s->sigs);
        if (!p)
            return -2;
        s->sigs = p;
        s->capsigs = cap;
    }
    s->sigs[s->nsigs][0] = n;
    memcpy(&s->sigs[s->nsigs][1], cols, (size_t)n * sizeof *cols);
    return (int32_t)s->nsigs++;
}

// Appends rec: 0, or -1 when out of memory.
static int store_add(struct store *s, const struct ats_record *rec) {
    if (s->nrec == s->caprec && store_grow_records(s) != 0)
        return -1;
    int64_t r = s->nrec, cols[ATS_RECORD_FIELDS];
    for (int64_t k = 0; k < rec->count; k++) {
        const struct ats_field *f = &rec->field[k];
        int64_t ci = store_column(s, f->key, k);
        if (ci < 0)
            return -1;
        cols[k] = ci;
        struct column *c = &s->col[ci];
        if (f->type == ATS_FIELD_DOUBLE) {
            c->type[r] = T_DOUBLE;
            memcpy(&c->slot[r], &f->d, sizeof f->d);
        } else if (f->type == ATS_FIELD_INT) {
            c->type[r] = T_INT;
            c->slot[r] = f->i;
        } else {
            int64_t off = store_string(s, c, f->s ? f->s : "");
            if (off < 0)
                return -1;
            c->type[r] = T_STRING;
            c->slot[r] = off;
            c->has_string = 1;
        }
    }
    int32_t sig = store_signature(s, cols, rec->count);
    if (sig == -2)
        return -1;
    s->sig[r] = sig;
    s->nrec++;
    return 0;
}

// ----------------------------------------------------------------------------
// The worker

#define NOTES_MAX 256

struct job {
    const struct ats_command *cmd;
    const void *spec;
    const char *plot; // draw the run's figure here after the last record, or NULL
    struct store store;
    char *notes[NOTES_MAX];
    int nnotes;
    int status;
    char msg[1024];
    struct ats_run *run;
    atomic_int cancel;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void job_fail(struct job *j, int status, const char *fmt, const char *a, const char *b) {
    j->status = status;
    snprintf(j->msg, sizeof j->msg, fmt, a, b);
}

static void job_notes(struct job *j) {
    for (const char *n; (n = ats_run_note(j->run));)
        if (j->nnotes < NOTES_MAX)
            j->notes[j->nnotes++] = strdup(n);
}

static void *worker(void *arg) {
    struct job *j = arg;
    struct ats_run *run = NULL;
    int rc = j->cmd->run_alloc(&run, j->spec);
    if (rc != ATS_STATUS_OK) {
        job_fail(j, rc, "%s%s", ats_last_error(), "");
        goto done;
    }
    pthread_mutex_lock(&j->mu);
    j->run = run;
    if (atomic_load(&j->cancel))
        ats_run_cancel(run);
    pthread_mutex_unlock(&j->mu);
    job_notes(j);
    struct ats_record rec;
    for (;;) {
        if (atomic_load(&j->cancel)) {
            job_fail(j, ATS_STATUS_ECANCEL, "%s%s", "cancelled", "");
            goto done;
        }
        rc = ats_run_next(run, &rec);
        if (rc != ATS_STATUS_OK) {
            job_fail(j, rc, "%s%s", ats_last_error(), "");
            goto done;
        }
        job_notes(j);
        if (rec.count == 0)
            break;
        if (store_add(&j->store, &rec) != 0) {
            job_fail(j, ATS_STATUS_ENOMEM, "%s%s", "out of memory for the records", "");
            goto done;
        }
    }
    job_notes(j);
    const struct ats_figure *fig = ats_run_figure(run);
    if (fig && j->plot) {
        rc = ats_figure_plot(fig, j->plot);
        if (rc != ATS_STATUS_OK) {
            job_fail(j, rc, "plot: %s%s", ats_last_error(), "");
            goto done;
        }
    }
    j->status = ATS_STATUS_OK;
done:
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

// Runs j in a worker thread; the caller holds the GIL, which is released while waiting.
// Returns 0, or -1 with a Python exception set by a signal handler (the run cancelled).
static int job_run(struct job *j) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->cancel, 0);
    int interrupted = 0;
    Py_BEGIN_ALLOW_THREADS
    // Signals go to the calling (main) thread, where Python handles them; the worker and the
    // OpenMP threads it starts inherit the blocked mask.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int started = pthread_create(&tid, NULL, worker, j) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        worker(j); // no thread to be had: run here (not interruptible)
    } else {
        pthread_mutex_lock(&j->mu);
        while (!j->done) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 50000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            if (j->done || interrupted)
                continue;
            pthread_mutex_unlock(&j->mu);
            Py_BLOCK_THREADS
            int sig = PyErr_CheckSignals();
            Py_UNBLOCK_THREADS
            pthread_mutex_lock(&j->mu);
            if (sig < 0) {
                interrupted = 1;
                atomic_store(&j->cancel, 1);
                if (j->run)
                    ats_run_cancel(j->run);
            }
        }
        pthread_mutex_unlock(&j->mu);
        pthread_join(tid, NULL);
    }
    Py_END_ALLOW_THREADS
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    return interrupted ? -1 : 0;
}

static void job_clear(struct job *j) {
    ats_run_free(j->run);
    j->run = NULL;
    store_free(&j->store);
    for (int i = 0; i < j->nnotes; i++)
        free(j->notes[i]);
    j->nnotes = 0;
}

// ----------------------------------------------------------------------------
// Columns to Python

// {"count": n, "columns": [(key, types, slots, strings or None)], "signatures": [tuple],
//  "signature_of": bytes of int32 per record, "notes": [str]}
static PyObject *store_to_python(struct job *j) {
    struct store *s = &j->store;
    PyObject *res = PyDict_New(), *cols = PyList_New(0), *sigs = PyList_New(0),
             *notes = PyList_New(0);
    PyObject *sigof = PyBytes_FromStringAndSize((const char *)s->sig,
                                                (Py_ssize_t)(s->nrec * (int64_t)sizeof(int32_t)));
    if (!res || !cols || !sigs || !notes || !sigof)
        goto fail;
    for (int64_t c = 0; c < s->ncol; c++) {
        struct column *col = &s->col[c];
        PyObject *strings = Py_None;
        Py_INCREF(strings);
        if (col->has_string) {
            Py_DECREF(strings);
            strings = PyList_New((Py_ssize_t)s->nrec);
            PyObject *cache = PyDict_New();
            if (!strings || !cache) {
                Py_XDECREF(strings);
                Py_XDECREF(cache);
                goto fail;
            }
            for (int64_t r = 0; r < s->nrec; r++) {
                PyObject *item;
                if (col->type[r] != T_STRING) {
                    item = Py_None;
                    Py_INCREF(item);
                } else {
                    PyObject *k = PyLong_FromLongLong(col->slot[r]);
                    item = k ? PyDict_GetItemWithError(cache, k) : NULL;
                    if (item) {
                        Py_INCREF(item);
                    } else if (k && !PyErr_Occurred()) {
                        item = PyUnicode_FromString(s->pool + col->slot[r]);
                        if (item && PyDict_SetItem(cache, k, item) != 0)
                            Py_CLEAR(item);
                    }
                    Py_XDECREF(k);
                }
                if (!item) {
                    Py_DECREF(strings);
                    Py_DECREF(cache);
                    goto fail;
                }
                PyList_SET_ITEM(strings, (Py_ssize_t)r, item);
            }
            Py_DECREF(cache);
        }
        PyObject *t = Py_BuildValue(
            "(sy#y#N)", col->key, (const char *)col->type, (Py_ssize_t)s->nrec,
            (const char *)col->slot, (Py_ssize_t)(s->nrec * (int64_t)sizeof(int64_t)), strings);
        if (!t || PyList_Append(cols, t) != 0) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    for (int64_t i = 0; i < s->nsigs; i++) {
        PyObject *tup = PyTuple_New((Py_ssize_t)s->sigs[i][0]);
        if (!tup)
            goto fail;
        for (int64_t k = 0; k < s->sigs[i][0]; k++)
            PyTuple_SET_ITEM(tup, (Py_ssize_t)k, PyLong_FromLongLong(s->sigs[i][1 + k]));
        int bad = PyList_Append(sigs, tup) != 0;
        Py_DECREF(tup);
        if (bad)
            goto fail;
    }
    for (int i = 0; i < j->nnotes; i++) {
        PyObject *n = PyUnicode_FromString(j->notes[i] ? j->notes[i] : "");
        if (!n || PyList_Append(notes, n) != 0) {
            Py_XDECREF(n);
            goto fail;
        }
        Py_DECREF(n);
    }
    PyObject *count = PyLong_FromLongLong(s->nrec);
    if (!count || PyDict_SetItemString(res, "count", count) != 0) {
        Py_XDECREF(count);
        goto fail;
    }
    Py_DECREF(count);
    if (PyDict_SetItemString(res, "columns", cols) || PyDict_SetItemString(res, "signatures", sigs) ||
        PyDict_SetItemString(res, "signature_of", sigof) || PyDict_SetItemString(res, "notes", notes))
        goto fail;
    Py_DECREF(cols);
    Py_DECREF(sigs);
    Py_DECREF(sigof);
    Py_DECREF(notes);
    return res;
fail:
    Py_XDECREF(res);
    Py_XDECREF(cols);
    Py_XDECREF(sigs);
    Py_XDECREF(sigof);
    Py_XDECREF(notes);
    return NULL;
}

// ----------------------------------------------------------------------------
// Module functions

static const struct ats_command *find_command(PyObject *name_obj) {
    const char *name = PyUnicode_AsUTF8(name_obj);
    if (!name)
        return NULL;
    const struct ats_command *cmd = ats_command_find(name);
    if (!cmd)
        PyErr_Format(PyExc_ValueError, "unknown command '%s'", name);
    return cmd;
}

PyDoc_STRVAR(run_doc,
             "run(command, kwargs) -> dict\n\n"
             "Runs a library command with options from kwargs (None: absent) and returns its\n"
             "records as columns: {'count', 'columns': [(key, types, slots, strings)],\n"
             "'signatures', 'signature_of', 'notes'}. Used by the attnscale functions.");

static PyObject *ext_run(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *name_obj, *kwargs = NULL;
    if (!PyArg_ParseTuple(args, "U|O!:run", &name_obj, &PyDict_Type, &kwargs))
        return NULL;
    const struct ats_command *cmd = find_command(name_obj);
    if (!cmd)
        return NULL;
    if (cmd->operand || strcmp(cmd->name, "reproduce") == 0) {
        PyErr_Format(PyExc_ValueError, "%s yields figures, not records", cmd->name);
        return NULL;
    }
    void *spec = PyMem_Calloc(1, cmd->spec_size);
    struct held *h = PyMem_Calloc(1, sizeof *h);
    struct job *j = PyMem_Calloc(1, sizeof *j);
    PyObject *res = NULL;
    if (!spec || !h || !j) {
        PyErr_NoMemory();
        goto out;
    }
    if (fill_spec(cmd, spec, kwargs, h) != 0)
        goto out;
    j->cmd = cmd;
    j->spec = spec;
    j->plot = ats_command_text(cmd, spec, "plot");
    if (job_run(j) != 0)
        goto out; // interrupted: the handler's exception (KeyboardInterrupt) is set
    if (j->status != ATS_STATUS_OK) {
        raise_status(j->status, j->msg);
        goto out;
    }
    res = store_to_python(j);
out:
    if (j)
        job_clear(j);
    if (h)
        held_release(h);
    PyMem_Free(j);
    PyMem_Free(h);
    PyMem_Free(spec);
    return res;
}

PyDoc_STRVAR(commands_doc, "commands() -> list of the library's command names");

static PyObject *ext_commands(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyObject *l = PyList_New(0);
    for (int64_t i = 0; l && i < ats_command_count(); i++) {
        PyObject *s = PyUnicode_FromString(ats_command_get(i)->name);
        if (!s || PyList_Append(l, s) != 0) {
            Py_XDECREF(s);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(s);
    }
    return l;
}

static const char *const kind_names[] = {"values", "number", "choice", "flag", "text", "array"};

PyDoc_STRVAR(command_doc,
             "command(name) -> dict: usage, doc, records and the options of a command\n"
             "(each a dict: name, python (the keyword), kind, metavar, help, section,\n"
             "choices, domain (lo, hi, lo_open, hi_open, integer), array (accepts an array)).");

static PyObject *ext_command(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *name_obj;
    if (!PyArg_ParseTuple(args, "U:command", &name_obj))
        return NULL;
    const struct ats_command *cmd = find_command(name_obj);
    if (!cmd)
        return NULL;
    PyObject *opts = PyList_New(0);
    if (!opts)
        return NULL;
    for (int64_t i = 0; i < cmd->noptions; i++) {
        const struct ats_option *o = &cmd->options[i];
        char py[128];
        snprintf(py, sizeof py, "%s", o->name);
        for (char *c = py; *c; c++)
            if (*c == '-')
                *c = '_';
        PyObject *choices = Py_None;
        Py_INCREF(choices);
        if (o->kind == ATS_OPTION_CHOICE && o->choices) {
            Py_DECREF(choices);
            int n = 0;
            while (o->choices[n])
                n++;
            choices = PyTuple_New(n);
            for (int k = 0; choices && k < n; k++)
                PyTuple_SET_ITEM(choices, k, PyUnicode_FromString(o->choices[k]));
        }
        int kind = (int)o->kind;
        PyObject *d = Py_BuildValue(
            "{s:s,s:s,s:s,s:z,s:z,s:z,s:N,s:(ddiii),s:O}", "name", o->name, "python", py, "kind",
            kind >= 0 && kind < 6 ? kind_names[kind] : "unknown", "metavar", o->metavar, "help",
            o->help, "section", o->section, "choices", choices, "domain", o->domain.lo,
            o->domain.hi, o->domain.lo_open, o->domain.hi_open, o->domain.integer, "array",
            array_offset(cmd, o) != (size_t)-1 ? Py_True : Py_False);
        if (!d || PyList_Append(opts, d) != 0) {
            Py_XDECREF(d);
            Py_DECREF(opts);
            return NULL;
        }
        Py_DECREF(d);
    }
    return Py_BuildValue("{s:s,s:z,s:z,s:z,s:N}", "name", cmd->name, "usage", cmd->usage, "doc",
                         cmd->doc, "records", cmd->records, "options", opts);
}

PyDoc_STRVAR(array_address_doc,
             "_array_address(obj) -> (address, copied, dtype, shape)\n\n"
             "The address the library would read obj's elements from, as the array arguments\n"
             "are converted (for tests of zero-copy input): copied is True when obj was not\n"
             "C-contiguous and had to be copied.");

static PyObject *ext_array_address(PyObject *self, PyObject *obj) {
    (void)self;
    struct held *h = PyMem_Calloc(1, sizeof *h);
    if (!h)
        return PyErr_NoMemory();
    const void *data = NULL;
    int copied = 0;
    PyObject *res = NULL;
    struct ats_array *a = array_from_object(obj, "array", h, ARRAY_BOOL, &data, &copied);
    if (a) {
        int nd = ats_array_ndim(a);
        PyObject *shape = PyTuple_New(nd);
        for (int i = 0; shape && i < nd; i++)
            PyTuple_SET_ITEM(shape, i, PyLong_FromLongLong(ats_array_dim(a, i)));
        if (shape)
            res = Py_BuildValue("(NOsN)", PyLong_FromVoidPtr((void *)(uintptr_t)data),
                                copied ? Py_True : Py_False, ats_dtype_name(ats_array_dtype(a)),
                                shape);
    }
    held_release(h);
    PyMem_Free(h);
    return res;
}

PyDoc_STRVAR(plot_heads_doc,
             "plot_heads(path, layers, ratio, window) -> None\n\n"
             "The layer x head heat map of ratio (a C-contiguous float64 (layers, heads)\n"
             "buffer, NaN where a head has none) into path, and its CSV beside it\n"
             "(ats_diagnose_plot_heads). layers: a sequence of names, or None.");

static PyObject *ext_plot_heads(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj, *layers_obj, *ratio_obj;
    double window;
    if (!PyArg_ParseTuple(args, "O&OOd:plot_heads", PyUnicode_FSConverter, &path_obj,
                          &layers_obj, &ratio_obj, &window))
        return NULL;
    Py_buffer v;
    PyObject *res = NULL, *conv = NULL;
    const char **names = NULL;
    PyObject *seq = NULL;
    if (get_view(&v, ratio_obj, "ratio", &conv) != 0) {
        Py_DECREF(path_obj);
        return NULL;
    }
    const char *f = native_format(v.format);
    if (!f || strcmp(f, "d") != 0 || v.ndim != 2 || !PyBuffer_IsContiguous(&v, 'C')) {
        PyErr_SetString(PyExc_ValueError, "ratio: a C-contiguous float64 array (layers, heads) "
                                          "is needed");
        goto out;
    }
    int64_t nl = (int64_t)v.shape[0], nh = (int64_t)v.shape[1];
    if (layers_obj != Py_None) {
        seq = PySequence_Tuple(layers_obj); // its own references: safe while the GIL is out
        if (!seq)
            goto out;
        if (PySequence_Fast_GET_SIZE(seq) != v.shape[0]) {
            PyErr_Format(PyExc_ValueError, "layers: %zd names for %zd rows of ratio",
                         PySequence_Fast_GET_SIZE(seq), v.shape[0]);
            goto out;
        }
        names = PyMem_Calloc((size_t)(nl > 0 ? nl : 1), sizeof *names);
        if (!names) {
            PyErr_NoMemory();
            goto out;
        }
        for (int64_t i = 0; i < nl; i++) {
            PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyUnicode_Check(o) || !(names[i] = PyUnicode_AsUTF8(o))) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_TypeError, "layers[%lld]: expected a str", (long long)i);
                goto out;
            }
        }
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ats_diagnose_plot_heads(PyBytes_AS_STRING(path_obj), names, nl, nh,
                                 (const double *)v.buf, window);
    Py_END_ALLOW_THREADS
    if (rc != ATS_STATUS_OK) {
        raise_status(rc, ats_last_error());
        goto out;
    }
    res = Py_NewRef(Py_None);
out:
    PyMem_Free(names);
    Py_XDECREF(seq);
    PyBuffer_Release(&v);
    Py_XDECREF(conv);
    Py_DECREF(path_obj);
    return res;
}

PyDoc_STRVAR(build_info_doc, "build_info() -> str: version, git hash, flags, BLAS, threads");

static PyObject *ext_build_info(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyUnicode_FromString(ats_build_info());
}

static PyMethodDef methods[] = {
    {"run", ext_run, METH_VARARGS, run_doc},
    {"commands", ext_commands, METH_NOARGS, commands_doc},
    {"command", ext_command, METH_VARARGS, command_doc},
    {"build_info", ext_build_info, METH_NOARGS, build_info_doc},
    {"_array_address", ext_array_address, METH_O, array_address_doc},
    {"plot_heads", ext_plot_heads, METH_VARARGS, plot_heads_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "attnscale._ext",
    "The C extension of attnscale: the library's commands over the public header.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ext(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddStringConstant(m, "VERSION", ATS_VERSION) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
