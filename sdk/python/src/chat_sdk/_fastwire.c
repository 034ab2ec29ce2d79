/* The dataclass target's wire codec in C: protobuf bytes to betterproto2 dataclasses and back.
 *
 * A Plan describes one message class: its fields in the dataclass's own order, each
 * with its number, protobuf type, attribute name, presence, oneof and, for messages
 * and enums, what their values are made of. Plans are built in Python from the
 * descriptors (chat_sdk/_native.py); this file knows nothing of the schema.
 *
 * The codec takes the common case only and hands everything else to a fallback, the
 * Python path over upb (chat_sdk/_wire.py), which gives the same result or raises the
 * same error: unknown fields, a wire type other than the field's, a message field
 * sent in two parts, two members of one oneof, invalid UTF-8, truncated input, tags
 * and lengths longer than upb's 5 bytes, lengths or output of 2 GiB, values of the
 * wrong Python type or out of range, Timestamps and Durations outside what datetime
 * holds. So the C code never decides what is an error: it either builds exactly what
 * the Python path builds, or declines.
 *
 * A Plan is filled once and never changes: parses and writes read its fields without
 * holding them, across calls into Python code (enums, fallbacks, __bool__). Values
 * taken from the caller's lists are held across such calls.
 *
 * Values are written in field-number order, as upb writes them, so both targets
 * produce the same bytes for the same message.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

/* protobuf's FieldDescriptor.TYPE_* values, and two of ours for the unwrapped types. */
enum {
    K_DOUBLE = 1, K_FLOAT = 2, K_INT64 = 3, K_UINT64 = 4, K_INT32 = 5, K_FIXED64 = 6,
    K_FIXED32 = 7, K_BOOL = 8, K_STRING = 9, K_MESSAGE = 11, K_BYTES = 12, K_UINT32 = 13,
    K_ENUM = 14, K_SFIXED32 = 15, K_SFIXED64 = 16, K_SINT32 = 17, K_SINT64 = 18,
    K_TIMESTAMP = 100, K_DURATION = 101, K_MAP = 102,
};

enum { F_REPEATED = 1, F_PRESENCE = 2 };
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Deeper messages go to the fallback, which applies protobuf's own recursion limit. */
#define MAX_DEPTH 64
#define SECONDS_PER_DAY 86400LL
/* datetime's range, 0001-01-01 to 9999-12-31T23:59:59, as seconds from the epoch. */
#define MIN_DATETIME_SECONDS (-62135596800LL)
#define MAX_DATETIME_SECONDS 253402300799LL
/* timedelta's range: |days| <= 999999999. */
#define MAX_TIMEDELTA_SECONDS (999999999LL * SECONDS_PER_DAY)

typedef struct Field {
    uint32_t number;
    int kind;
    int flags;
    int oneof;          /* index of its oneof, or -1 */
    PyObject *name;     /* the dataclass attribute */
    PyObject *sub;      /* a Plan (K_MESSAGE), the enum's members by value (K_ENUM), or NULL */
    PyObject *fallback; /* K_MESSAGE whose class has no Plan: (parse, serialize) of the Python path */
    PyObject *empty;    /* the value of an absent field without presence (NULL: None or a new list) */
    struct Field *entry; /* K_MAP: the entry's key (number 1) and value (number 2) */
} Field;

typedef struct {
    PyObject_HEAD
    PyObject *cls;
    PyObject *parse_fallback;     /* bytes -> instance, the Python path */
    PyObject *serialize_fallback; /* instance -> bytes, the Python path */
    Field *fields;                /* in the dataclass's own order (attributes are set in it) */
    Py_ssize_t count;
    Py_ssize_t *by_number_order;  /* field indexes in field-number order (the wire's) */
    int16_t *index_of;            /* field number -> index + 1, 0 for unknown */
    uint32_t max_number;
    int oneofs;
    int ready;
} Plan;

static PyTypeObject PlanType;
static PyObject *UNKNOWN_FIELDS; /* "_unknown_fields" */
static PyObject *EMPTY_BYTES;
static PyObject *EMPTY_TUPLE;

/* ------------------------------------------------------------------------------------ */
/* Reading                                                                              */

typedef enum { OK = 0, DECLINE = 1, FAILED = 2 } Outcome; /* FAILED: a Python exception is set */

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} Reader;

/* A varint of at most ``max_bytes`` bytes (10 for values; upb reads tags and lengths in 5). */
static int read_varint_of(Reader *r, int max_bytes, uint64_t *value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 7 * max_bytes; shift += 7) {
        if (r->at >= r->end) return 0;
        uint8_t byte = *r->at++;
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            if (shift == 63 && byte > 1) return 0; /* more than 64 bits */
            *value = result;
            return 1;
        }
    }
    return 0;
}

static int read_varint(Reader *r, uint64_t *value) { return read_varint_of(r, 10, value); }

/* A tag as upb reads it: at most 5 bytes, at most 32 bits (anything else: upb's error). */
static int read_tag(Reader *r, uint64_t *tag) { return read_varint_of(r, 5, tag) && *tag <= UINT32_MAX; }

static int read_fixed(Reader *r, int size, uint64_t *value) {
    if (r->end - r->at < size) return 0;
    uint64_t result = 0;
    for (int i = size - 1; i >= 0; i--) result = (result << 8) | r->at[i];
    r->at += size;
    *value = result;
    return 1;
}

static int read_length(Reader *r, const uint8_t **start, Py_ssize_t *length) {
    uint64_t size;
    /* upb: at most 5 bytes and below INT32_MAX, whatever follows */
    if (!read_varint_of(r, 5, &size) || size >= INT32_MAX || size > (uint64_t)(r->end - r->at)) return 0;
    *start = r->at;
    *length = (Py_ssize_t)size;
    r->at += size;
    return 1;
}

static int scalar_wire_type(int kind) {
    switch (kind) {
    case K_DOUBLE: case K_FIXED64: case K_SFIXED64: return WT_I64;
    case K_FLOAT: case K_FIXED32: case K_SFIXED32: return WT_I32;
    case K_STRING: case K_BYTES: case K_MESSAGE: case K_TIMESTAMP: case K_DURATION: case K_MAP: return WT_LEN;
    default: return WT_VARINT;
    }
}

/* One scalar value of ``kind`` read off ``r`` (its wire type already checked). */
static Outcome read_scalar(Reader *r, const Field *f, PyObject **out) {
    uint64_t raw;
    if (f->kind == K_STRING || f->kind == K_BYTES) {
        const uint8_t *start;
        Py_ssize_t length;
        if (!read_length(r, &start, &length)) return DECLINE;
        if (f->kind == K_BYTES) {
            *out = PyBytes_FromStringAndSize((const char *)start, length);
            return *out ? OK : FAILED;
        }
        *out = PyUnicode_DecodeUTF8((const char *)start, length, NULL);
        if (*out == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return FAILED;
            PyErr_Clear(); /* the fallback says what is wrong with it */
            return DECLINE;
        }
        return OK;
    }
    switch (scalar_wire_type(f->kind)) {
    case WT_I64: if (!read_fixed(r, 8, &raw)) return DECLINE; break;
    case WT_I32: if (!read_fixed(r, 4, &raw)) return DECLINE; break;
    default: if (!read_varint(r, &raw)) return DECLINE; break;
    }
    switch (f->kind) {
    case K_DOUBLE: {
        double d;
        memcpy(&d, &raw, sizeof d);
        *out = PyFloat_FromDouble(d);
        break;
    }
    case K_FLOAT: {
        uint32_t bits = (uint32_t)raw;
        float value;
        memcpy(&value, &bits, sizeof value);
        *out = PyFloat_FromDouble((double)value);
        break;
    }
    case K_INT64: case K_SFIXED64: *out = PyLong_FromLongLong((long long)(int64_t)raw); break;
    case K_UINT64: case K_FIXED64: *out = PyLong_FromUnsignedLongLong(raw); break;
    case K_INT32: case K_SFIXED32: *out = PyLong_FromLong((long)(int32_t)(uint32_t)raw); break;
    case K_UINT32: case K_FIXED32: *out = PyLong_FromUnsignedLong((unsigned long)(uint32_t)raw); break;
    case K_BOOL: *out = Py_NewRef(raw ? Py_True : Py_False); break;
    case K_SINT32: {
        uint32_t n = (uint32_t)raw;
        *out = PyLong_FromLong((long)(int32_t)((n >> 1) ^ (~(n & 1) + 1)));
        break;
    }
    case K_SINT64: *out = PyLong_FromLongLong((long long)(int64_t)((raw >> 1) ^ (~(raw & 1) + 1))); break;
    case K_ENUM: {
        PyObject *number = PyLong_FromLong((long)(int32_t)(uint32_t)raw);
        if (number == NULL) return FAILED;
        *out = PyObject_GetItem(f->sub, number); /* unknown values: the enum builds them */
        Py_DECREF(number);
        break;
    }
    default:
        return DECLINE;
    }
    return *out ? OK : FAILED;
}

/* The two varint fields (1 and 2) of a Timestamp or Duration. */
static int read_seconds_nanos(const uint8_t *start, Py_ssize_t length, int64_t *seconds, int64_t *nanos) {
    Reader r = {start, start + length};
    *seconds = 0;
    *nanos = 0;
    while (r.at < r.end) {
        uint64_t tag, value;
        if (!read_tag(&r, &tag) || (tag & 7) != WT_VARINT || !read_varint(&r, &value)) return 0;
        if (tag >> 3 == 1) *seconds = (int64_t)value;
        else if (tag >> 3 == 2) *nanos = (int32_t)(uint32_t)value;
        else return 0;
    }
    return 1;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/* Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date. */
static void civil_from_days(int64_t z, int *year, int *month, int *day) {
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* betterproto2's Timestamp.to_datetime: whole microseconds, truncated, in UTC. */
static Outcome make_datetime(const uint8_t *start, Py_ssize_t length, PyObject **out) {
    int64_t seconds, nanos;
    if (!read_seconds_nanos(start, length, &seconds, &nanos)) return DECLINE;
    if (nanos < 0 || nanos > 999999999 || seconds < MIN_DATETIME_SECONDS || seconds > MAX_DATETIME_SECONDS)
        return DECLINE;
    int64_t days = floor_div(seconds, SECONDS_PER_DAY);
    int64_t of_day = seconds - days * SECONDS_PER_DAY;
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    *out = PyDateTimeAPI->DateTime_FromDateAndTime(
        year, month, day, (int)(of_day / 3600), (int)(of_day / 60 % 60), (int)(of_day % 60),
        (int)(nanos / 1000), PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
    return *out ? OK : FAILED;
}

/* betterproto2's Duration.to_timedelta: the nearest microsecond, ties to even. */
static Outcome make_timedelta(const uint8_t *start, Py_ssize_t length, PyObject **out) {
    int64_t seconds, nanos;
    if (!read_seconds_nanos(start, length, &seconds, &nanos)) return DECLINE;
    /* Within a second of timedelta's range, after nanos out of their own range, could overflow. */
    if (seconds > MAX_TIMEDELTA_SECONDS - 1 || seconds < -MAX_TIMEDELTA_SECONDS + 1 || nanos < -999999999 ||
        nanos > 999999999)
        return DECLINE;
    int64_t magnitude = nanos < 0 ? -nanos : nanos;
    int64_t micros = magnitude / 1000, rest = magnitude % 1000;
    if (rest > 500 || (rest == 500 && (micros & 1))) micros += 1;
    if (nanos < 0) micros = -micros;
    int64_t days = floor_div(seconds, SECONDS_PER_DAY);
    *out = PyDateTimeAPI->Delta_FromDelta(
        (int)days, (int)(seconds - days * SECONDS_PER_DAY), (int)micros, 1, PyDateTimeAPI->DeltaType);
    return *out ? OK : FAILED;
}

static Outcome parse_into(Plan *plan, const uint8_t *start, Py_ssize_t length, int depth, PyObject **out);

/* A nested message's fallback failed: the whole message goes to the fallback, whose error
 * names the message the caller asked for. Anything but an Exception (KeyboardInterrupt) stays. */
static Outcome declined_by_fallback(void) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return FAILED;
    PyErr_Clear();
    return DECLINE;
}

/* A message-typed value: a dataclass, a datetime or a timedelta. */
static Outcome read_message_value(const Field *f, const uint8_t *start, Py_ssize_t length, int depth,
                                  PyObject **out) {
    if (f->kind == K_TIMESTAMP) return make_datetime(start, length, out);
    if (f->kind == K_DURATION) return make_timedelta(start, length, out);
    if (f->sub != NULL) return parse_into((Plan *)f->sub, start, length, depth + 1, out);
    PyObject *data = PyBytes_FromStringAndSize((const char *)start, length);
    if (data == NULL) return FAILED;
    *out = PyObject_CallOneArg(PyTuple_GET_ITEM(f->fallback, 0), data);
    Py_DECREF(data);
    return *out ? OK : declined_by_fallback();
}

static int is_message_kind(int kind) { return kind == K_MESSAGE || kind == K_TIMESTAMP || kind == K_DURATION; }

/* One value of ``f`` read off ``r`` (its wire type already checked): a scalar, or a
 * message, Timestamp or Duration after its length. */
static Outcome read_value(const Field *f, Reader *r, int depth, PyObject **out) {
    if (!is_message_kind(f->kind)) return read_scalar(r, f, out);
    const uint8_t *start;
    Py_ssize_t length;
    if (!read_length(r, &start, &length)) return DECLINE;
    return read_message_value(f, start, length, depth, out);
}

/* One entry of a map field into the dict ``*map``: an absent key or value is its default
 * (an empty message for message values), a key sent twice keeps the last value. */
static Outcome parse_map_entry(const Field *f, Reader *r, PyObject **map, int depth) {
    const uint8_t *start;
    Py_ssize_t length;
    if (!read_length(r, &start, &length)) return DECLINE;
    if (*map == NULL && (*map = PyDict_New()) == NULL) return FAILED;
    Reader entry = {start, start + length};
    PyObject *read[2] = {NULL, NULL};
    Outcome outcome = OK;
    while (entry.at < entry.end && outcome == OK) {
        uint64_t tag;
        if (!read_tag(&entry, &tag) || (tag >> 3) < 1 || (tag >> 3) > 2) { outcome = DECLINE; break; }
        const Field *part = &f->entry[(tag >> 3) - 1];
        PyObject **slot = &read[(tag >> 3) - 1];
        PyObject *item = NULL;
        if ((int)(tag & 7) != scalar_wire_type(part->kind)) outcome = DECLINE;
        else if (is_message_kind(part->kind) && *slot != NULL) outcome = DECLINE; /* merged: the fallback */
        else outcome = read_value(part, &entry, depth, &item);
        if (outcome == OK) Py_XSETREF(*slot, item);
    }
    for (int i = 0; i < 2 && outcome == OK; i++) {
        if (read[i] != NULL) continue;
        if (is_message_kind(f->entry[i].kind))
            outcome = read_message_value(&f->entry[i], (const uint8_t *)"", 0, depth, &read[i]);
        else if (f->entry[i].empty != NULL) read[i] = Py_NewRef(f->entry[i].empty);
        else outcome = DECLINE;
    }
    if (outcome == OK && PyDict_SetItem(*map, read[0], read[1]) < 0) outcome = FAILED;
    Py_XDECREF(read[0]);
    Py_XDECREF(read[1]);
    return outcome;
}

static int append_owned(PyObject **list, PyObject *item) {
    if (*list == NULL && (*list = PyList_New(0)) == NULL) {
        Py_DECREF(item);
        return 0;
    }
    int failed = PyList_Append(*list, item);
    Py_DECREF(item);
    return failed == 0;
}

static Outcome parse_field(const Field *f, Py_ssize_t index, int wire_type, Reader *r,
                           PyObject **values, int *oneof_member, int depth) {
    PyObject *item = NULL;
    Outcome outcome;
    int expected = scalar_wire_type(f->kind);
    if (f->kind == K_MAP) return wire_type == WT_LEN ? parse_map_entry(f, r, &values[index], depth) : DECLINE;
    if (f->flags & F_REPEATED) {
        if (wire_type == WT_LEN && expected != WT_LEN) { /* packed */
            const uint8_t *start;
            Py_ssize_t length;
            if (!read_length(r, &start, &length)) return DECLINE;
            Reader packed = {start, start + length};
            if (values[index] == NULL && (values[index] = PyList_New(0)) == NULL) return FAILED;
            while (packed.at < packed.end) {
                if ((outcome = read_scalar(&packed, f, &item)) != OK) return outcome;
                if (!append_owned(&values[index], item)) return FAILED;
            }
            return OK;
        }
        if (wire_type != expected) return DECLINE;
        if ((outcome = read_value(f, r, depth, &item)) != OK) return outcome;
        return append_owned(&values[index], item) ? OK : FAILED;
    }
    if (wire_type != expected) return DECLINE;
    if (f->oneof >= 0) {
        /* Two members of one oneof: protobuf keeps the last, the fallback does it. */
        if (oneof_member[f->oneof] >= 0 && oneof_member[f->oneof] != index) return DECLINE;
        oneof_member[f->oneof] = (int)index;
    }
    if (is_message_kind(f->kind) && values[index] != NULL) return DECLINE; /* sent in parts: protobuf merges them */
    if ((outcome = read_value(f, r, depth, &item)) != OK) return outcome;
    Py_XSETREF(values[index], item); /* a scalar sent twice: the last one counts */
    return OK;
}

static Outcome parse_into(Plan *plan, const uint8_t *start, Py_ssize_t length, int depth, PyObject **out) {
    if (depth > MAX_DEPTH || !plan->ready) return DECLINE; /* unfilled: its class turned out unplannable */
    Py_ssize_t count = plan->count;
    PyObject *small_values[32];
    int small_oneofs[8];
    PyObject **values = count <= 32 ? small_values : PyMem_Calloc((size_t)count, sizeof(PyObject *));
    if (values != NULL) memset(values, 0, sizeof(PyObject *) * (size_t)count); /* before any exit */
    int *oneof_member = plan->oneofs <= 8 ? small_oneofs : PyMem_Malloc(sizeof(int) * (size_t)plan->oneofs);
    Outcome outcome = OK;
    PyObject *result = NULL;
    if (values == NULL || oneof_member == NULL) {
        PyErr_NoMemory();
        outcome = FAILED;
        goto done;
    }
    for (int i = 0; i < plan->oneofs; i++) oneof_member[i] = -1;
    Reader r = {start, start + length};
    while (r.at < r.end && outcome == OK) {
        uint64_t tag;
        if (!read_tag(&r, &tag)) { outcome = DECLINE; break; }
        uint32_t number = (uint32_t)(tag >> 3);
        int slot = number <= plan->max_number ? plan->index_of[number] : 0;
        if (slot == 0) { outcome = DECLINE; break; } /* unknown, or field number 0 */
        outcome = parse_field(&plan->fields[slot - 1], slot - 1, (int)(tag & 7), &r, values,
                              oneof_member, depth);
    }
    if (outcome != OK) goto done;
    result = PyBaseObject_Type.tp_new((PyTypeObject *)plan->cls, EMPTY_TUPLE, NULL);
    if (result == NULL) { outcome = FAILED; goto done; }
    for (Py_ssize_t i = 0; i < count && outcome == OK; i++) {
        Field *f = &plan->fields[i];
        PyObject *value = values[i];
        if (value == NULL) {
            if (f->kind == K_MAP) value = PyDict_New();
            else if (f->flags & F_REPEATED) value = PyList_New(0);
            else value = Py_NewRef(f->empty != NULL ? f->empty : Py_None);
            if (value == NULL) { outcome = FAILED; break; }
            values[i] = value;
        }
        if (PyObject_SetAttr(result, f->name, value) < 0) outcome = FAILED;
    }
    if (outcome == OK && PyObject_SetAttr(result, UNKNOWN_FIELDS, EMPTY_BYTES) < 0) outcome = FAILED;
done:
    if (values != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) Py_XDECREF(values[i]);
        if (values != small_values) PyMem_Free(values);
    }
    if (oneof_member != NULL && oneof_member != small_oneofs) PyMem_Free(oneof_member);
    if (outcome == OK) *out = result;
    else Py_XDECREF(result);
    return outcome;
}

static PyObject *Plan_parse(Plan *self, PyObject *data) {
    Py_buffer view;
    if (self->cls == NULL) return PyErr_Format(PyExc_RuntimeError, "a Plan that was never initialised");
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    Outcome outcome = parse_into(self, view.buf, view.len, 0, &result);
    PyBuffer_Release(&view);
    if (outcome == OK) return result;
    if (outcome == FAILED) return NULL;
    return PyObject_CallOneArg(self->parse_fallback, data);
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                              */

typedef struct {
    uint8_t *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
    int too_big; /* past protobuf's 2 GiB: the write stops, no exception set, and the fallback refuses it */
} Writer;

static int reserve(Writer *w, Py_ssize_t more) {
    if (w->size + more <= w->capacity) return 1;
    if (more > INT32_MAX - w->size) {
        w->too_big = 1;
        return 0;
    }
    Py_ssize_t capacity = w->capacity ? w->capacity : 256;
    while (capacity < w->size + more) capacity *= 2;
    uint8_t *grown = PyMem_Realloc(w->data, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    w->data = grown;
    w->capacity = capacity;
    return 1;
}

static int varint_size(uint64_t value) {
    int size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

static int write_varint(Writer *w, uint64_t value) {
    if (!reserve(w, 10)) return 0;
    while (value >= 0x80) {
        w->data[w->size++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    w->data[w->size++] = (uint8_t)value;
    return 1;
}

static int write_fixed(Writer *w, uint64_t value, int size) {
    if (!reserve(w, size)) return 0;
    for (int i = 0; i < size; i++) w->data[w->size++] = (uint8_t)(value >> (8 * i));
    return 1;
}

static int write_tag(Writer *w, uint32_t number, int wire_type) {
    return write_varint(w, ((uint64_t)number << 3) | (uint64_t)wire_type);
}

static int write_bytes(Writer *w, const char *data, Py_ssize_t length) {
    if (!write_varint(w, (uint64_t)length) || !reserve(w, length)) return 0;
    memcpy(w->data + w->size, data, (size_t)length);
    w->size += length;
    return 1;
}

/* A length-delimited record is written after a one-byte length; a longer length moves it. */
static int close_length(Writer *w, Py_ssize_t mark) {
    uint64_t length = (uint64_t)(w->size - mark - 1);
    int size = varint_size(length);
    if (size > 1) {
        if (!reserve(w, size - 1)) return 0;
        memmove(w->data + mark + size, w->data + mark + 1, (size_t)length);
        w->size += size - 1;
    }
    for (int i = 0; i < size; i++, length >>= 7) w->data[mark + i] = (uint8_t)((length & 0x7F) | (i + 1 < size ? 0x80 : 0));
    return 1;
}

static Py_ssize_t open_length(Writer *w) {
    if (!reserve(w, 1)) return -1;
    w->data[w->size++] = 0;
    return w->size - 1;
}

/* ``value`` as an int in [low, high]: an exact int, or for enums any int but a bool (members are ints). */
static Outcome integer_in(PyObject *value, int exact, long long low, long long high, long long *out) {
    if (exact ? !PyLong_CheckExact(value) : !PyLong_Check(value) || PyBool_Check(value)) return DECLINE;
    int overflow;
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (*out == -1 && PyErr_Occurred()) return FAILED;
    return overflow || *out < low || *out > high ? DECLINE : OK;
}

/* The scalar ``value`` as its wire bits; DECLINE for what the fallback must judge. */
static Outcome scalar_bits(const Field *f, PyObject *value, uint64_t *bits) {
    long long number;
    Outcome outcome;
    switch (f->kind) {
    case K_DOUBLE: {
        if (!PyFloat_CheckExact(value)) return DECLINE;
        double d = PyFloat_AS_DOUBLE(value);
        memcpy(bits, &d, sizeof d);
        return OK;
    }
    case K_FLOAT: {
        if (!PyFloat_CheckExact(value)) return DECLINE;
        double d = PyFloat_AS_DOUBLE(value);
        if (d == d && (d > 3.4028234663852886e38 || d < -3.4028234663852886e38) && d - d == 0) return DECLINE;
        float narrowed = (float)d;
        uint32_t raw;
        memcpy(&raw, &narrowed, sizeof raw);
        *bits = raw;
        return OK;
    }
    case K_BOOL:
        if (value != Py_True && value != Py_False) return DECLINE;
        *bits = value == Py_True;
        return OK;
    case K_UINT64: case K_FIXED64: {
        if (!PyLong_CheckExact(value)) return DECLINE;
        unsigned long long u = PyLong_AsUnsignedLongLong(value);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return FAILED;
            PyErr_Clear();
            return DECLINE;
        }
        *bits = u;
        return OK;
    }
    case K_INT64: case K_SFIXED64:
        if ((outcome = integer_in(value, 1, INT64_MIN, INT64_MAX, &number)) != OK) return outcome;
        *bits = (uint64_t)number;
        return OK;
    case K_SINT64:
        if ((outcome = integer_in(value, 1, INT64_MIN, INT64_MAX, &number)) != OK) return outcome;
        *bits = ((uint64_t)number << 1) ^ (uint64_t)(number >> 63);
        return OK;
    case K_INT32: case K_SFIXED32: case K_ENUM:
        if ((outcome = integer_in(value, f->kind != K_ENUM, INT32_MIN, INT32_MAX, &number)) != OK) return outcome;
        /* int32 and enum varints are sign-extended to 64 bits; sfixed32 keeps 32 */
        *bits = f->kind == K_SFIXED32 ? (uint32_t)(int32_t)number : (uint64_t)(int64_t)number;
        return OK;
    case K_SINT32:
        if ((outcome = integer_in(value, 1, INT32_MIN, INT32_MAX, &number)) != OK) return outcome;
        *bits = (uint32_t)(((uint32_t)number << 1) ^ (uint32_t)((int32_t)number >> 31));
        return OK;
    case K_UINT32: case K_FIXED32:
        if ((outcome = integer_in(value, 1, 0, UINT32_MAX, &number)) != OK) return outcome;
        *bits = (uint64_t)number;
        return OK;
    default:
        return DECLINE;
    }
}

static int write_scalar_bits(Writer *w, int kind, uint64_t bits) {
    switch (scalar_wire_type(kind)) {
    case WT_I64: return write_fixed(w, bits, 8);
    case WT_I32: return write_fixed(w, bits, 4);
    default: return write_varint(w, bits);
    }
}

static Outcome write_seconds_nanos(Writer *w, const Field *f, int64_t seconds, int64_t nanos) {
    if (!write_tag(w, f->number, WT_LEN)) return FAILED;
    Py_ssize_t mark = open_length(w);
    if (mark < 0) return FAILED;
    if (seconds && (!write_tag(w, 1, WT_VARINT) || !write_varint(w, (uint64_t)seconds))) return FAILED;
    if (nanos && (!write_tag(w, 2, WT_VARINT) || !write_varint(w, (uint64_t)nanos))) return FAILED;
    return close_length(w, mark) ? OK : FAILED;
}

/* timestamp_fields of chat_sdk._convert: UTC datetimes only (others: the fallback). */
static Outcome write_timestamp(Writer *w, const Field *f, PyObject *value) {
    if (!PyDateTime_CheckExact(value) || PyDateTime_DATE_GET_TZINFO(value) != PyDateTime_TimeZone_UTC)
        return DECLINE;
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                   PyDateTime_GET_DAY(value));
    int64_t seconds = days * SECONDS_PER_DAY + PyDateTime_DATE_GET_HOUR(value) * 3600LL +
                      PyDateTime_DATE_GET_MINUTE(value) * 60LL + PyDateTime_DATE_GET_SECOND(value);
    return write_seconds_nanos(w, f, seconds, PyDateTime_DATE_GET_MICROSECOND(value) * 1000LL);
}

/* duration_fields of chat_sdk._convert: seconds and nanos share the sign. */
static Outcome write_duration(Writer *w, const Field *f, PyObject *value) {
    if (!PyDelta_CheckExact(value)) return DECLINE;
    int64_t seconds = PyDateTime_DELTA_GET_DAYS(value) * SECONDS_PER_DAY + PyDateTime_DELTA_GET_SECONDS(value);
    int64_t micros = PyDateTime_DELTA_GET_MICROSECONDS(value);
    if (seconds < 0 && micros > 0) {
        seconds += 1;
        micros -= 1000000;
    }
    return write_seconds_nanos(w, f, seconds, micros * 1000);
}

static Outcome serialize_into(Plan *plan, PyObject *message, Writer *w, int depth);

static Outcome write_message_value(Writer *w, const Field *f, PyObject *value, int depth) {
    if (f->kind == K_TIMESTAMP) return write_timestamp(w, f, value);
    if (f->kind == K_DURATION) return write_duration(w, f, value);
    if (f->sub == NULL) {
        PyObject *data = PyObject_CallOneArg(PyTuple_GET_ITEM(f->fallback, 1), value);
        if (data == NULL) return declined_by_fallback();
        int written = PyBytes_Check(data) && write_tag(w, f->number, WT_LEN) &&
                      write_bytes(w, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
        if (!PyBytes_Check(data)) PyErr_SetString(PyExc_TypeError, "a serializer returned no bytes");
        Py_DECREF(data);
        return written ? OK : FAILED;
    }
    if (!write_tag(w, f->number, WT_LEN)) return FAILED;
    Py_ssize_t mark = open_length(w);
    if (mark < 0) return FAILED;
    Outcome outcome = serialize_into((Plan *)f->sub, value, w, depth + 1);
    if (outcome != OK) return outcome;
    return close_length(w, mark) ? OK : FAILED;
}

static Outcome write_string_or_bytes(Writer *w, const Field *f, PyObject *value, int skip_empty) {
    const char *data;
    Py_ssize_t length;
    if (f->kind == K_STRING) {
        if (!PyUnicode_CheckExact(value)) return DECLINE;
        data = PyUnicode_AsUTF8AndSize(value, &length);
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return FAILED;
            PyErr_Clear(); /* a lone surrogate: the fallback says so */
            return DECLINE;
        }
    } else {
        if (!PyBytes_CheckExact(value)) return DECLINE;
        data = PyBytes_AS_STRING(value);
        length = PyBytes_GET_SIZE(value);
    }
    if (skip_empty && length == 0) return OK;
    return write_tag(w, f->number, WT_LEN) && write_bytes(w, data, length) ? OK : FAILED;
}

static Outcome write_field(Writer *w, const Field *f, PyObject *value, int depth) {
    int is_message = is_message_kind(f->kind);
    Outcome outcome;
    /* upb writes a map's entries in its hash table's order, which only upb knows: for the
     * same bytes, a map with entries is written by the fallback. */
    if (f->kind == K_MAP) return PyDict_CheckExact(value) && PyDict_GET_SIZE(value) == 0 ? OK : DECLINE;
    if (f->flags & F_REPEATED) {
        if (!PyList_CheckExact(value)) return DECLINE;
        Py_ssize_t n = PyList_GET_SIZE(value);
        if (n == 0) return OK;
        if (is_message || f->kind == K_STRING || f->kind == K_BYTES) {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
                /* Held: writing a message runs Python code (its _unknown_fields' __bool__, a
                 * fallback), which may empty the list and free a borrowed item. */
                PyObject *item = Py_NewRef(PyList_GET_ITEM(value, i));
                outcome = is_message ? write_message_value(w, f, item, depth) : write_string_or_bytes(w, f, item, 0);
                Py_DECREF(item);
                if (outcome != OK) return outcome;
            }
            return OK;
        }
        if (!write_tag(w, f->number, WT_LEN)) return FAILED; /* packed, as proto3 asks */
        Py_ssize_t mark = open_length(w);
        if (mark < 0) return FAILED;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            uint64_t bits;
            PyObject *item = Py_NewRef(PyList_GET_ITEM(value, i)); /* held, as above */
            outcome = scalar_bits(f, item, &bits);
            Py_DECREF(item);
            if (outcome != OK) return outcome;
            if (!write_scalar_bits(w, f->kind, bits)) return FAILED;
        }
        return close_length(w, mark) ? OK : FAILED;
    }
    if (value == Py_None) return (f->flags & F_PRESENCE) || is_message ? OK : DECLINE;
    if (is_message) return write_message_value(w, f, value, depth);
    if (f->kind == K_STRING || f->kind == K_BYTES) return write_string_or_bytes(w, f, value, !(f->flags & F_PRESENCE));
    uint64_t bits;
    if ((outcome = scalar_bits(f, value, &bits)) != OK) return outcome;
    /* Implicit presence: zero is not written; a float's -0.0 has bits and is (as upb does). */
    if (bits == 0 && !(f->flags & F_PRESENCE)) return OK;
    return write_tag(w, f->number, scalar_wire_type(f->kind)) && write_scalar_bits(w, f->kind, bits) ? OK : FAILED;
}

static Outcome serialize_into(Plan *plan, PyObject *message, Writer *w, int depth) {
    if (depth > MAX_DEPTH || !plan->ready || Py_TYPE(message) != (PyTypeObject *)plan->cls) return DECLINE;
    PyObject *unknown = PyObject_GetAttr(message, UNKNOWN_FIELDS);
    if (unknown == NULL) return FAILED;
    int has_unknown = PyObject_IsTrue(unknown);
    Py_DECREF(unknown);
    if (has_unknown != 0) return has_unknown < 0 ? FAILED : DECLINE;
    int small_oneofs[8];
    int *oneof_set = plan->oneofs <= 8 ? small_oneofs : PyMem_Calloc((size_t)plan->oneofs, sizeof(int));
    if (oneof_set == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    memset(oneof_set, 0, sizeof(int) * (size_t)plan->oneofs);
    Outcome outcome = OK;
    for (Py_ssize_t i = 0; i < plan->count && outcome == OK; i++) {
        const Field *f = &plan->fields[plan->by_number_order[i]];
        PyObject *value = PyObject_GetAttr(message, f->name);
        if (value == NULL) {
            outcome = FAILED;
            break;
        }
        /* Two members of one oneof: the fallback refuses the message. */
        if (f->oneof >= 0 && value != Py_None && oneof_set[f->oneof]++) outcome = DECLINE;
        else outcome = write_field(w, f, value, depth);
        Py_DECREF(value);
    }
    if (oneof_set != small_oneofs) PyMem_Free(oneof_set);
    return outcome;
}

static PyObject *Plan_serialize(Plan *self, PyObject *message) {
    if (self->cls == NULL) return PyErr_Format(PyExc_RuntimeError, "a Plan that was never initialised");
    Writer w = {NULL, 0, 0, 0};
    Outcome outcome = serialize_into(self, message, &w, 0);
    if (w.too_big) outcome = DECLINE; /* upb's encoder refuses lengths past 2 GiB: the fallback says so */
    PyObject *result = NULL;
    if (outcome == OK) result = PyBytes_FromStringAndSize((const char *)w.data, w.size);
    PyMem_Free(w.data);
    if (outcome == DECLINE) result = PyObject_CallOneArg(self->serialize_fallback, message);
    return result;
}

/* ------------------------------------------------------------------------------------ */
/* Plans                                                                                */

static void clear_field(Field *f) {
    Py_CLEAR(f->name);
    Py_CLEAR(f->sub);
    Py_CLEAR(f->fallback);
    Py_CLEAR(f->empty);
    if (f->entry != NULL) {
        clear_field(&f->entry[0]);
        clear_field(&f->entry[1]);
        PyMem_Free(f->entry);
        f->entry = NULL;
    }
}

static void clear_fields(Plan *self) {
    for (Py_ssize_t i = 0; i < self->count; i++) clear_field(&self->fields[i]);
    PyMem_Free(self->fields);
    PyMem_Free(self->by_number_order);
    PyMem_Free(self->index_of);
    self->fields = NULL;
    self->by_number_order = NULL;
    self->index_of = NULL;
    self->count = 0;
    self->ready = 0;
}

static int Plan_init(Plan *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"cls", "parse_fallback", "serialize_fallback", NULL};
    PyObject *cls, *parse_fallback, *serialize_fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO", keywords, &PyType_Type, &cls, &parse_fallback,
                                     &serialize_fallback))
        return -1;
    /* Plans are immutable once built: a parse or write in progress reads them without holding them. */
    if (self->cls != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Plan is initialised once");
        return -1;
    }
    Py_XSETREF(self->cls, Py_NewRef(cls));
    Py_XSETREF(self->parse_fallback, Py_NewRef(parse_fallback));
    Py_XSETREF(self->serialize_fallback, Py_NewRef(serialize_fallback));
    clear_fields(self);
    return 0;
}

static int valid_kind(int kind) {
    return (kind >= K_DOUBLE && kind <= K_SINT64 && kind != 10) || kind == K_TIMESTAMP || kind == K_DURATION ||
           kind == K_MAP;
}

/* protobuf's map keys: any integer type, bool or string. */
static int valid_key_kind(int kind) {
    return kind != K_DOUBLE && kind != K_FLOAT && kind != K_BYTES && kind != K_ENUM && kind <= K_SINT64 &&
           kind != K_MESSAGE;
}

/* One field spec (number, kind, name, flags, oneof, sub, fallback, empty) into ``f``; for a
 * map, ``sub`` is the pair of its entry's key and value specs. 0 with an exception when invalid. */
static int read_spec(Field *f, PyObject *spec, int oneofs, PyObject *cls, int in_entry) {
    PyObject *name, *sub, *fallback, *empty;
    unsigned int number;
    if (!PyTuple_Check(spec)) {
        PyErr_Format(PyExc_TypeError, "a field of %R: a tuple is expected", cls);
        return 0;
    }
    if (!PyArg_ParseTuple(spec, "IiO!iiOOO:field", &number, &f->kind, &PyUnicode_Type, &name, &f->flags,
                          &f->oneof, &sub, &fallback, &empty))
        return 0;
    f->number = number;
    f->name = Py_NewRef(name);
    PyUnicode_InternInPlace(&f->name);
    f->sub = sub == Py_None || f->kind == K_MAP ? NULL : Py_NewRef(sub);
    f->fallback = fallback == Py_None ? NULL : Py_NewRef(fallback);
    f->empty = empty == Py_None ? NULL : Py_NewRef(empty);
    int valid = number != 0 && number <= 536870911 && valid_kind(f->kind) && f->oneof < oneofs && f->oneof >= -1;
    if (f->kind == K_MESSAGE)
        valid = valid && (f->sub != NULL ? PyObject_TypeCheck(f->sub, &PlanType)
                                         : f->fallback != NULL && PyTuple_Check(f->fallback) &&
                                               PyTuple_GET_SIZE(f->fallback) == 2);
    if (f->kind == K_ENUM) valid = valid && f->sub != NULL;
    if (f->kind == K_MAP) {
        valid = valid && !in_entry && PyTuple_Check(sub) && PyTuple_GET_SIZE(sub) == 2;
        if (valid) {
            if ((f->entry = PyMem_Calloc(2, sizeof(Field))) == NULL) {
                PyErr_NoMemory();
                return 0;
            }
            for (int i = 0; i < 2; i++)
                if (!read_spec(&f->entry[i], PyTuple_GET_ITEM(sub, i), 0, cls, 1)) return 0;
            valid = f->entry[0].number == 1 && f->entry[1].number == 2 && valid_key_kind(f->entry[0].kind) &&
                    f->entry[1].kind != K_MAP && !((f->entry[0].flags | f->entry[1].flags) & F_REPEATED);
        }
    }
    if (!valid) PyErr_Format(PyExc_ValueError, "field %u of %R: an invalid plan", number, cls);
    return valid;
}

/* fill(fields, oneofs): each field a tuple (number, kind, name, flags, oneof, sub, fallback, empty). */
static PyObject *Plan_fill(Plan *self, PyObject *args) {
    PyObject *specs;
    int oneofs;
    if (!PyArg_ParseTuple(args, "O!i:fill", &PyTuple_Type, &specs, &oneofs)) return NULL;
    if (self->cls == NULL) return PyErr_Format(PyExc_RuntimeError, "a Plan that was never initialised");
    /* Filled once: a parse or write in progress (which may run Python code) reads its fields
     * without holding them. Until then the C code declines every message of the class. */
    if (self->ready) return PyErr_Format(PyExc_RuntimeError, "the plan of %R is already filled", self->cls);
    clear_fields(self);
    Py_ssize_t count = PyTuple_GET_SIZE(specs);
    if (oneofs < 0 || count > INT16_MAX) return PyErr_Format(PyExc_ValueError, "too many fields or oneofs");
    self->fields = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Field));
    self->by_number_order = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Py_ssize_t));
    if (self->fields == NULL || self->by_number_order == NULL) {
        clear_fields(self);
        return PyErr_NoMemory();
    }
    uint32_t max_number = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        self->count = i + 1; /* cleared on failure, whatever it holds by then */
        if (!read_spec(&self->fields[i], PyTuple_GET_ITEM(specs, i), oneofs, self->cls, 0)) goto invalid;
        if (self->fields[i].number > max_number) max_number = self->fields[i].number;
    }
    if (max_number > 4096) {
        PyErr_Format(PyExc_ValueError, "field numbers above 4096 are not planned (%R)", self->cls);
        goto invalid;
    }
    self->index_of = PyMem_Calloc((size_t)max_number + 1, sizeof(int16_t));
    if (self->index_of == NULL) {
        PyErr_NoMemory();
        goto invalid;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (self->index_of[self->fields[i].number]) {
            PyErr_Format(PyExc_ValueError, "field %u of %R is planned twice", self->fields[i].number, self->cls);
            goto invalid;
        }
        self->index_of[self->fields[i].number] = (int16_t)(i + 1);
    }
    for (Py_ssize_t i = 0, n = 0; i <= (Py_ssize_t)max_number && n < count; i++)
        if (self->index_of[i]) self->by_number_order[n++] = self->index_of[i] - 1;
    self->max_number = max_number;
    self->oneofs = oneofs;
    self->ready = 1;
    Py_RETURN_NONE;
invalid:
    clear_fields(self);
    return NULL;
}

static int Plan_traverse(Plan *self, visitproc visit, void *arg) {
    Py_VISIT(self->cls);
    Py_VISIT(self->parse_fallback);
    Py_VISIT(self->serialize_fallback);
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const Field *f = &self->fields[i];
        for (int part = -1; part < (f->entry != NULL ? 2 : 0); part++) {
            const Field *visited = part < 0 ? f : &f->entry[part];
            Py_VISIT(visited->sub);
            Py_VISIT(visited->fallback);
            Py_VISIT(visited->empty);
        }
    }
    return 0;
}

static int Plan_clear(Plan *self) {
    Py_CLEAR(self->cls);
    Py_CLEAR(self->parse_fallback);
    Py_CLEAR(self->serialize_fallback);
    clear_fields(self);
    return 0;
}

static void Plan_dealloc(Plan *self) {
    PyObject_GC_UnTrack(self);
    Plan_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Plan_methods[] = {
    {"fill", (PyCFunction)Plan_fill, METH_VARARGS,
     "fill(fields, oneofs): the class's fields, each (number, kind, name, flags, oneof, sub, fallback, empty)."},
    {"parse", (PyCFunction)Plan_parse, METH_O,
     "parse(data): the dataclass of ``data`` (the fallback parses what the C code declines)."},
    {"serialize", (PyCFunction)Plan_serialize, METH_O,
     "serialize(message): the bytes of ``message`` (the fallback writes what the C code declines)."},
    {NULL},
};

static PyObject *Plan_get_cls(Plan *self, void *Py_UNUSED(closure)) { return Py_NewRef(self->cls ? self->cls : Py_None); }

static PyGetSetDef Plan_getset[] = {
    {"cls", (getter)Plan_get_cls, NULL, "The dataclass this plan reads and writes.", NULL},
    {NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "chat_sdk._fastwire.Plan",
    .tp_doc = PyDoc_STR("How one dataclass of the schema is read from and written to the wire."),
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Plan_init,
    .tp_dealloc = (destructor)Plan_dealloc,
    .tp_traverse = (traverseproc)Plan_traverse,
    .tp_clear = (inquiry)Plan_clear,
    .tp_methods = Plan_methods,
    .tp_getset = Plan_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "chat_sdk._fastwire",
    .m_doc = PyDoc_STR("The dataclass target's wire codec in C (see chat_sdk._native)."),
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastwire(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL || PyType_Ready(&PlanType) < 0) return NULL;
    UNKNOWN_FIELDS = PyUnicode_InternFromString("_unknown_fields");
    EMPTY_BYTES = PyBytes_FromStringAndSize(NULL, 0);
    EMPTY_TUPLE = PyTuple_New(0);
    if (UNKNOWN_FIELDS == NULL || EMPTY_BYTES == NULL || EMPTY_TUPLE == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0 ||
        PyModule_AddIntConstant(m, "TIMESTAMP", K_TIMESTAMP) < 0 ||
        PyModule_AddIntConstant(m, "DURATION", K_DURATION) < 0 ||
        PyModule_AddIntConstant(m, "MAP", K_MAP) < 0 ||
        PyModule_AddIntConstant(m, "REPEATED", F_REPEATED) < 0 ||
        PyModule_AddIntConstant(m, "PRESENCE", F_PRESENCE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
