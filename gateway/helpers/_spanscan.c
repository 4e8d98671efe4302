/* Per-span walks over serialized OTLP trace requests, in C.

   Each function here has a Python twin that is the reference (named in its comment); the twin runs when this
   module is not built (no C compiler at install time) or when OTELGW_PURE_PYTHON=1, and the tests check that
   both give the same answer for the same bytes. What moves here is only the loop over every span: reading a
   length, a trace id, a few scalar fields. Python still owns every decision made with the results.

   Every read is bounds-checked: bytes that are not well-formed protobuf raise ValueError, never read past the
   buffer. The callers pass bytes that upb parsed or serialized, so that error means a bug, not bad input. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
} Buffer;

static int fail(const char *what) {
    PyErr_Format(PyExc_ValueError, "malformed protobuf: %s", what);
    return -1;
}

static int read_varint_slow(const Buffer *buf, Py_ssize_t *pos, uint64_t *out) {
    uint64_t result = 0;
    int shift = 0;
    while (*pos < buf->size && shift < 64) {
        unsigned char byte = buf->data[(*pos)++];
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = result;
            return 0;
        }
        shift += 7;
    }
    return fail("truncated varint");
}

/* The two readers below run for every field of every span: inlined where they are called, they cost about a fifth
   less per span than as calls. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

/* Reads the varint at *pos, moving *pos past it, with a one-byte fast path: tags and most lengths are one byte. */
HOT int read_varint(const Buffer *buf, Py_ssize_t *pos, uint64_t *out) {
    if (*pos < buf->size && buf->data[*pos] < 0x80) {
        *out = buf->data[(*pos)++];
        return 0;
    }
    return read_varint_slow(buf, pos, out);
}

/* The field at *pos: its tag, where its payload starts (length-delimited fields) and where it ends. */
HOT int skip_field(const Buffer *buf, Py_ssize_t pos, uint64_t *tag, Py_ssize_t *body, Py_ssize_t *field_end) {
    uint64_t value;
    if (read_varint(buf, &pos, tag) < 0)
        return -1;
    *body = pos;
    switch (*tag & 7) {
    case 0:
        if (read_varint(buf, &pos, &value) < 0)
            return -1;
        *field_end = pos;
        break;
    case 1:
        *field_end = pos + 8;
        break;
    case 5:
        *field_end = pos + 4;
        break;
    case 2:
        if (read_varint(buf, &pos, &value) < 0)
            return -1;
        if (value > (uint64_t)(buf->size - pos))
            return fail("length past the end");
        *body = pos;
        *field_end = pos + (Py_ssize_t)value;
        break;
    default:
        return fail("unsupported wire type");
    }
    if (*field_end > buf->size)
        return fail("field past the end");
    return 0;
}

/* Little-endian fixed64 at p. */
static uint64_t fixed64(const unsigned char *p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

/* What walk_request calls back, in request order: each ScopeSpans payload (ScopeLogs for logs: the nesting is the
   same) with the index of its resource, each other field of a ResourceSpans (its header), and the end of each
   ResourceSpans. A callback returns -1 with an exception set to stop the walk; NULL callbacks are skipped. */
typedef struct {
    int (*scope)(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end);
    int (*resource_field)(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end);
    int (*resource_end)(void *context);
} RequestVisitor;

/* Walks an Export*ServiceRequest: its field 1 (resources), their field 2 (scopes); other top-level fields are
   skipped. */
static int walk_request(const Buffer *buf, const RequestVisitor *visitor, void *context) {
    for (Py_ssize_t pos = 0; pos < buf->size;) {
        uint64_t tag;
        Py_ssize_t body, field_end;
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            return -1;
        for (Py_ssize_t inner = body; tag == 0x0A && inner < field_end;) {
            uint64_t inner_tag;
            Py_ssize_t inner_body, inner_end;
            if (skip_field(buf, inner, &inner_tag, &inner_body, &inner_end) < 0)
                return -1;
            if (inner_end > field_end)
                return fail("field past its resource");
            if (inner_tag == 0x12) {
                if (visitor->scope != NULL && visitor->scope(context, buf, inner_body, inner_end) < 0)
                    return -1;
            } else if (visitor->resource_field != NULL &&
                       visitor->resource_field(context, buf, inner, inner_end) < 0) {
                return -1;
            }
            inner = inner_end;
        }
        if (tag == 0x0A && visitor->resource_end != NULL && visitor->resource_end(context) < 0)
            return -1;
        pos = field_end;
    }
    return 0;
}

/* The fields of a span the functions here read. Scalars: the last occurrence, as a parse keeps. */
typedef struct {
    Py_ssize_t name_start, name_length;  /* field 5 */
    int32_t kind;                        /* field 6 */
    uint64_t start, end;                 /* fields 7 and 8 */
    int32_t status_code;                 /* field 15, its field 3: occurrences of a message field merge */
} SpanFields;

static int read_status_code(const Buffer *buf, Py_ssize_t pos, Py_ssize_t end, int32_t *code) {
    uint64_t tag, value;
    Py_ssize_t body, field_end;
    while (pos < end) {
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            return -1;
        if (field_end > end)
            return fail("status field past the status");
        if (tag == 0x18) {
            Py_ssize_t at = body;
            if (read_varint(buf, &at, &value) < 0)
                return -1;
            *code = (int32_t)(uint32_t)value;  /* an enum is an int32 on the wire */
        }
        pos = field_end;
    }
    return 0;
}

static int read_span(const Buffer *buf, Py_ssize_t pos, Py_ssize_t end, SpanFields *span) {
    uint64_t tag, value;
    Py_ssize_t body, field_end;
    memset(span, 0, sizeof *span);
    while (pos < end) {
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            return -1;
        if (field_end > end)
            return fail("span field past the span");
        switch (tag) {
        case 0x2A:
            span->name_start = body;
            span->name_length = field_end - body;
            break;
        case 0x30: {
            Py_ssize_t at = body;
            if (read_varint(buf, &at, &value) < 0)
                return -1;
            span->kind = (int32_t)(uint32_t)value;
            break;
        }
        case 0x39:
            span->start = fixed64(buf->data + body);
            break;
        case 0x41:
            span->end = fixed64(buf->data + body);
            break;
        case 0x7A:
            if (read_status_code(buf, body, field_end, &span->status_code) < 0)
                return -1;
            break;
        }
        pos = field_end;
    }
    return 0;
}

/* end - start as Python computes it from the two unsigned fields: negative when the span ends first. */
static PyObject *duration(const SpanFields *span) {
    if (span->end >= span->start)
        return PyLong_FromUnsignedLongLong(span->end - span->start);
    PyObject *positive = PyLong_FromUnsignedLongLong(span->start - span->end);
    if (positive == NULL)
        return NULL;
    PyObject *negative = PyNumber_Negative(positive);
    Py_DECREF(positive);
    return negative;
}

/* Twin: trace_runs._is_root. True when the span has no parent_span_id (field 4), reading fields 1-3 only
   (the canonical order puts field 4 right after them). */
static int is_root(const Buffer *buf, Py_ssize_t pos, Py_ssize_t end) {
    const unsigned char *d = buf->data;
    while (pos < end) {
        unsigned char tag = d[pos];
        if (tag == 0x22)
            return pos + 1 < buf->size && d[pos + 1] == 0;
        if (tag > 0x22 || (tag & 7) != 2)
            return 1;
        Py_ssize_t at = pos + 1;
        uint64_t length;
        if (read_varint(buf, &at, &length) < 0)
            return -1;
        if (length > (uint64_t)(buf->size - at))
            return fail("length past the end");
        pos = at + (Py_ssize_t)length;
    }
    return 1;
}

static PyObject *slice(const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    return PyBytes_FromStringAndSize((const char *)buf->data + start, end - start);
}

/* Appends buf[start:end] to *header (a growing bytes object; NULL when empty so far). */
static int append_to(PyObject **header, const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    PyObject *part = slice(buf, start, end);
    if (part == NULL)
        return -1;
    if (*header == NULL) {
        *header = part;
        return 0;
    }
    PyBytes_ConcatAndDel(header, part);
    return *header == NULL ? -1 : 0;
}

typedef struct {
    Py_ssize_t start;       /* where the run's first span field starts; -1: no run yet */
    Py_ssize_t key_length;  /* how many bytes every span of the run starts with (tag, length, trace id) */
    Py_ssize_t tid_start;
    Py_ssize_t tid_length;
    long count;
    uint64_t first, last;
    int root;
    long codes;  /* status codes seen: bit c for code c (0-2), bit 3 for any other; -1 when not read */
} Run;

static int close_run(const Buffer *buf, const Run *run, Py_ssize_t end, PyObject *runs) {
    PyObject *item = Py_BuildValue("(NNlNNOl)", slice(buf, run->tid_start, run->tid_start + run->tid_length),
                                   slice(buf, run->start, end), run->count,
                                   PyLong_FromUnsignedLongLong(run->first), PyLong_FromUnsignedLongLong(run->last),
                                   run->root ? Py_True : Py_False, run->codes);
    if (item == NULL)
        return -1;
    int result = PyList_Append(runs, item);
    Py_DECREF(item);
    return result;
}

/* Twin: trace_runs._scope_runs. Appends to ``runs`` the runs of the ScopeSpans payload buf[start:end] and
   returns its header bytes (every field but the spans). */
static PyObject *scope_runs(const Buffer *buf, Py_ssize_t start, Py_ssize_t end, int want_times, int want_root,
                            int want_status, PyObject *runs) {
    static const unsigned char no_key = 0xFF;  /* matches no span: a span never starts with a 0xff byte */
    const unsigned char *d = buf->data;
    PyObject *header = NULL;
    Run run = {-1, 1, 0, 0, 0, 0, 0, 0, -1};  /* key_length 1: the no_key byte */
    int walk = want_times || want_status;
    const unsigned char *key = &no_key;
    Py_ssize_t pos = start;
    while (pos < end) {
        uint64_t tag, length;
        Py_ssize_t body, field_end;
        if (d[pos] != 0x12) {
            if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
                goto error;
            if (field_end > end) {
                fail("field past its scope");
                goto error;
            }
            if (append_to(&header, buf, pos, field_end) < 0)
                goto error;
            pos = field_end;
            continue;
        }
        body = pos + 1;
        if (read_varint(buf, &body, &length) < 0)
            goto error;
        if (length > (uint64_t)(end - body)) {
            fail("span past its scope");
            goto error;
        }
        Py_ssize_t span_end = body + (Py_ssize_t)length;
        Py_ssize_t key_length = run.key_length;
        int same = body < span_end && body + key_length <= buf->size &&
                   memcmp(d + body, key, (size_t)key_length) == 0;
        if (!same) {
            if (run.start >= 0 && close_run(buf, &run, pos, runs) < 0)
                goto error;
            run.start = pos;
            run.count = 0;
            run.first = run.last = 0;
            run.root = 0;
            run.codes = want_status ? 0 : -1;
            if (body < span_end && d[body] == 0x0A) {
                /* As the twin: the id's length is read as one byte, and the key is cut at the buffer's end. */
                Py_ssize_t want = 2 + (body + 1 < buf->size ? d[body + 1] : 0);
                run.key_length = body + want <= buf->size ? want : buf->size - body;
                run.tid_start = body + 2 <= buf->size ? body + 2 : buf->size;
                run.tid_length = body + run.key_length - run.tid_start;
                key = d + body;
            } else {  /* no trace id (or an empty span): invalid, but kept together rather than lost */
                /* As the twin: the key is the byte at the span's start, even past an empty span's end. */
                run.key_length = 1;
                run.tid_start = body;
                run.tid_length = 0;
                key = body < buf->size ? d + body : &no_key;
            }
        }
        run.count++;
        if (walk) {
            SpanFields span;
            if (read_span(buf, body, span_end, &span) < 0)
                goto error;
            if (want_times) {
                if (run.count == 1 || span.start < run.first)
                    run.first = span.start;
                if (span.end > run.last)
                    run.last = span.end;
            }
            if (want_status)
                run.codes |= span.status_code >= 0 && span.status_code <= 2 ? 1L << span.status_code : 8L;
        }
        if (want_root && !run.root) {
            int root = is_root(buf, body, span_end);
            if (root < 0)
                goto error;
            run.root = root;
        }
        pos = span_end;
    }
    if (run.start >= 0 && close_run(buf, &run, pos, runs) < 0)
        goto error;
    if (header == NULL)
        header = PyBytes_FromStringAndSize(NULL, 0);
    return header;
error:
    Py_XDECREF(header);
    return NULL;
}

typedef struct {
    int want_times, want_root, want_status;
    PyObject *out;              /* (resource header, scope header, runs) per scope */
    PyObject *scopes;           /* (scope header, runs) of the current resource, until its header is complete */
    PyObject *resource_header;  /* NULL while empty */
} SplitState;

static int split_scope(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    SplitState *state = context;
    PyObject *runs = PyList_New(0);
    if (runs == NULL)
        return -1;
    PyObject *header = scope_runs(buf, start, end, state->want_times, state->want_root, state->want_status, runs);
    if (header == NULL) {
        Py_DECREF(runs);
        return -1;
    }
    PyObject *pair = Py_BuildValue("(NN)", header, runs);
    int result = pair == NULL ? -1 : PyList_Append(state->scopes, pair);
    Py_XDECREF(pair);
    return result;
}

static int split_resource_field(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    return append_to(&((SplitState *)context)->resource_header, buf, start, end);
}

static int split_resource_end(void *context) {
    SplitState *state = context;
    int result = 0;
    if (state->resource_header == NULL && (state->resource_header = PyBytes_FromStringAndSize(NULL, 0)) == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(state->scopes) && result == 0; i++) {
        PyObject *pair = PyList_GET_ITEM(state->scopes, i);
        PyObject *item = PyTuple_Pack(3, state->resource_header, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        result = item == NULL ? -1 : PyList_Append(state->out, item);
        Py_XDECREF(item);
    }
    Py_CLEAR(state->resource_header);
    if (result == 0)
        result = PyList_SetSlice(state->scopes, 0, PyList_GET_SIZE(state->scopes), NULL);
    return result;
}

/* Twin: trace_runs.split_request (the pure-Python one). */
static PyObject *split_request(PyObject *self, PyObject *args) {
    Py_buffer view;
    SplitState state = {0, 0, 0, NULL, NULL, NULL};
    if (!PyArg_ParseTuple(args, "y*|ppp", &view, &state.want_times, &state.want_root, &state.want_status))
        return NULL;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    static const RequestVisitor visitor = {split_scope, split_resource_field, split_resource_end};
    state.out = PyList_New(0);
    state.scopes = PyList_New(0);
    if (state.out == NULL || state.scopes == NULL || walk_request(&buf, &visitor, &state) < 0)
        Py_CLEAR(state.out);
    Py_XDECREF(state.scopes);
    Py_XDECREF(state.resource_header);
    PyBuffer_Release(&view);
    return state.out;
}

/* One series of span_groups: spans of one name, kind and status code. */
typedef struct {
    Py_ssize_t name_start, name_length;
    int32_t kind, code;
    uint64_t hash;
    PyObject *durations;  /* a list, in span order */
} Group;

typedef struct {
    Group *groups;
    Py_ssize_t count, capacity;
    Py_ssize_t *slots;  /* open addressing: index + 1 into groups, 0 empty */
    Py_ssize_t mask;
} GroupTable;

static uint64_t group_hash(const unsigned char *name, Py_ssize_t length, int32_t kind, int32_t code) {
    uint64_t hash = 1469598103934665603ULL ^ ((uint64_t)(uint32_t)kind << 8) ^ ((uint64_t)(uint32_t)code << 40);
    for (Py_ssize_t i = 0; i < length; i++)
        hash = (hash ^ name[i]) * 1099511628211ULL;
    return hash;
}

static int table_grow(GroupTable *table) {
    Py_ssize_t size = (table->mask + 1) * 2;
    Py_ssize_t *slots = PyMem_Calloc((size_t)size, sizeof *slots);
    Group *groups = PyMem_Realloc(table->groups, (size_t)(size / 2) * sizeof *groups);
    if (slots == NULL || groups == NULL) {
        PyMem_Free(slots);
        if (groups != NULL)
            table->groups = groups;
        PyErr_NoMemory();
        return -1;
    }
    table->groups = groups;
    table->capacity = size / 2;
    for (Py_ssize_t i = 0; i < table->count; i++) {
        Py_ssize_t slot = (Py_ssize_t)(groups[i].hash & (uint64_t)(size - 1));
        while (slots[slot])
            slot = (slot + 1) & (size - 1);
        slots[slot] = i + 1;
    }
    PyMem_Free(table->slots);
    table->slots = slots;
    table->mask = size - 1;
    return 0;
}

/* The group of a span, made when it is the first of its name, kind and code. */
static Group *group_of(const Buffer *buf, GroupTable *table, const SpanFields *span, int32_t code) {
    const unsigned char *name = buf->data + span->name_start;
    uint64_t hash = group_hash(name, span->name_length, span->kind, code);
    Py_ssize_t slot = (Py_ssize_t)(hash & (uint64_t)table->mask);
    while (table->slots[slot]) {
        Group *group = &table->groups[table->slots[slot] - 1];
        if (group->hash == hash && group->kind == span->kind && group->code == code &&
            group->name_length == span->name_length &&
            memcmp(buf->data + group->name_start, name, (size_t)span->name_length) == 0)
            return group;
        slot = (slot + 1) & table->mask;
    }
    if (table->count == table->capacity) {  /* at half the slots: grow, then find the free slot again */
        if (table_grow(table) < 0)
            return NULL;
        slot = (Py_ssize_t)(hash & (uint64_t)table->mask);
        while (table->slots[slot])
            slot = (slot + 1) & table->mask;
    }
    Group *group = &table->groups[table->count];
    group->durations = PyList_New(0);
    if (group->durations == NULL)
        return NULL;
    group->name_start = span->name_start;
    group->name_length = span->name_length;
    group->kind = span->kind;
    group->code = code;
    group->hash = hash;
    table->slots[slot] = ++table->count;
    return group;
}

static void table_free(GroupTable *table) {
    for (Py_ssize_t i = 0; i < table->count; i++)
        Py_XDECREF(table->groups[i].durations);
    PyMem_Free(table->groups);
    PyMem_Free(table->slots);
}

/* The groups of the ScopeSpans payload buf[start:end], as a list of (name, kind, code, durations). */
static PyObject *scope_groups(const Buffer *buf, Py_ssize_t start, Py_ssize_t end, int read_status) {
    GroupTable table = {NULL, 0, 0, NULL, 7};
    PyObject *out = NULL;
    table.slots = PyMem_Calloc(8, sizeof *table.slots);
    table.groups = PyMem_Malloc(4 * sizeof *table.groups);
    table.capacity = 4;
    if (table.slots == NULL || table.groups == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t pos = start;
    while (pos < end) {
        uint64_t tag;
        Py_ssize_t body, field_end;
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            goto done;
        if (field_end > end) {
            fail("field past its scope");
            goto done;
        }
        if (tag == 0x12) {
            SpanFields span;
            if (read_span(buf, body, field_end, &span) < 0)
                goto done;
            Group *group = group_of(buf, &table, &span, read_status ? span.status_code : 0);
            if (group == NULL)
                goto done;
            PyObject *value = duration(&span);
            if (value == NULL)
                goto done;
            int appended = PyList_Append(group->durations, value);
            Py_DECREF(value);
            if (appended < 0)
                goto done;
        }
        pos = field_end;
    }
    out = PyList_New(table.count);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < table.count; i++) {
        Group *group = &table.groups[i];
        PyObject *name = PyUnicode_DecodeUTF8((const char *)buf->data + group->name_start, group->name_length,
                                              NULL);
        PyObject *item = name == NULL ? NULL : Py_BuildValue("(NiiO)", name, group->kind, group->code,
                                                             group->durations);
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
    }
done:
    table_free(&table);
    return out;
}

typedef struct {
    int read_status;
    PyObject *out;     /* per resource: its scopes' groups */
    PyObject *scopes;  /* of the current resource */
} GroupsState;

static int groups_scope(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    GroupsState *state = context;
    if (state->scopes == NULL && (state->scopes = PyList_New(0)) == NULL)
        return -1;
    PyObject *groups = scope_groups(buf, start, end, state->read_status);
    int result = groups == NULL ? -1 : PyList_Append(state->scopes, groups);
    Py_XDECREF(groups);
    return result;
}

static int groups_resource_end(void *context) {
    GroupsState *state = context;
    if (state->scopes == NULL && (state->scopes = PyList_New(0)) == NULL)
        return -1;
    int result = PyList_Append(state->out, state->scopes);
    Py_CLEAR(state->scopes);
    return result;
}

/* Twin: span_metrics.aggregator.SpanAggregator._add_grouped's loop over spans. Per ResourceSpans of the
   serialized request, per ScopeSpans: its spans grouped by (name, kind, status code), in the order each group's
   first span came, each group with the spans' end - start in span order. */
static PyObject *span_groups(PyObject *self, PyObject *args) {
    Py_buffer view;
    GroupsState state = {1, NULL, NULL};
    if (!PyArg_ParseTuple(args, "y*|p", &view, &state.read_status))
        return NULL;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    static const RequestVisitor visitor = {groups_scope, NULL, groups_resource_end};
    state.out = PyList_New(0);
    if (state.out == NULL || walk_request(&buf, &visitor, &state) < 0)
        Py_CLEAR(state.out);
    Py_XDECREF(state.scopes);
    PyBuffer_Release(&view);
    return state.out;
}

/* The last occurrence of up to three length-delimited fields of one item: its length, and whether it is all
   zero bytes. Absent: length 0. */
typedef struct {
    Py_ssize_t length[3];
    int zero[3];
} Ids;

static int read_ids(const Buffer *buf, Py_ssize_t pos, Py_ssize_t end, const uint64_t tags[3], Ids *ids) {
    uint64_t tag;
    Py_ssize_t body, field_end;
    memset(ids, 0, sizeof *ids);
    while (pos < end) {
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            return -1;
        if (field_end > end)
            return fail("item field past the item");
        for (int i = 0; i < 3; i++) {
            if (tag == tags[i]) {
                ids->length[i] = field_end - body;
                int zero = 1;
                for (Py_ssize_t at = body; at < field_end && zero; at++)
                    zero = buf->data[at] == 0;
                ids->zero[i] = zero;
            }
        }
        pos = field_end;
    }
    return 0;
}

typedef struct {
    const uint64_t *tags;
    int logs;
    int valid;
} IdsState;

static int ids_scope(void *context, const Buffer *buf, Py_ssize_t start, Py_ssize_t end) {
    IdsState *state = context;
    for (Py_ssize_t at = start; at < end && state->valid;) {
        uint64_t tag;
        Py_ssize_t body, item_end;
        if (skip_field(buf, at, &tag, &body, &item_end) < 0)
            return -1;
        if (tag == 0x12) {
            Ids ids;
            if (read_ids(buf, body, item_end, state->tags, &ids) < 0)
                return -1;
            if (state->logs)
                state->valid = (ids.length[0] == 0 || ids.length[0] == 16) &&
                               (ids.length[1] == 0 || ids.length[1] == 8);
            else
                state->valid = ids.length[0] == 16 && !ids.zero[0] && ids.length[1] == 8 && !ids.zero[1] &&
                               (ids.length[2] == 0 || ids.length[2] == 8);
        }
        at = item_end;
    }
    return 0;
}

/* Twin: plugins/receivers/otlp/ids.py, _first_bad_span and _first_bad_log over every item. True when every
   span has a 16-byte trace_id and an 8-byte span_id, neither all zero, and an empty or 8-byte parent_span_id
   (logs: trace_id empty or 16 bytes, span_id empty or 8). */
static PyObject *ids_valid(PyObject *self, PyObject *args) {
    Py_buffer view;
    static const uint64_t span_tags[3] = {0x0A, 0x12, 0x22};  /* trace_id, span_id, parent_span_id */
    static const uint64_t log_tags[3] = {0x4A, 0x52, 0};      /* trace_id (9), span_id (10) */
    IdsState state = {span_tags, 0, 1};
    if (!PyArg_ParseTuple(args, "y*|p", &view, &state.logs))
        return NULL;
    if (state.logs)
        state.tags = log_tags;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    static const RequestVisitor visitor = {ids_scope, NULL, NULL};
    int walked = walk_request(&buf, &visitor, &state);
    PyBuffer_Release(&view);
    return walked < 0 ? NULL : PyBool_FromLong(state.valid);
}

/* Twin: tail_sampling's probabilistic.fnv1a_64. FNV-1a 64 of data, from state. */
static PyObject *fnv1a_64(PyObject *self, PyObject *args) {
    Py_buffer view;
    unsigned long long state = 0xCBF29CE484222325ULL;
    if (!PyArg_ParseTuple(args, "y*|K", &view, &state))
        return NULL;
    const unsigned char *data = view.buf;
    for (Py_ssize_t i = 0; i < view.len; i++)
        state = (state ^ data[i]) * 0x100000001B3ULL;
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(state);
}

/* Twin: span_metrics.aggregator.SpanAggregator._count with explicit buckets (its loop over one value at a time).
   Counts each span's duration, given its end - start in ``diffs`` (ints, in span order): value = diff / divider,
   or 0.0 when diff <= 0; counts[bisect_left(bounds, value)] += 1; total += value, left to right. Returns the new
   total: the same double, to the last bit, as the Python loop (the int becomes a double as Python converts it,
   then one division and one addition per value, in order). ``counts`` must be one longer than ``bounds``. */
static PyObject *count_durations(PyObject *self, PyObject *args) {
    PyObject *counts, *bounds, *diffs;
    double divider, total;
    if (!PyArg_ParseTuple(args, "O!O!O!dd", &PyList_Type, &counts, &PyTuple_Type, &bounds, &PyList_Type, &diffs,
                          &divider, &total))
        return NULL;
    Py_ssize_t nbounds = PyTuple_GET_SIZE(bounds), nbuckets = PyList_GET_SIZE(counts);
    if (nbuckets != nbounds + 1) {
        PyErr_SetString(PyExc_ValueError, "counts must have one more entry than bounds");
        return NULL;
    }
    double *edges = PyMem_Malloc((size_t)(nbounds ? nbounds : 1) * sizeof *edges);
    Py_ssize_t *added = PyMem_Calloc((size_t)nbuckets, sizeof *added);
    if (edges == NULL || added == NULL) {
        PyMem_Free(edges);
        PyMem_Free(added);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nbounds; i++) {
        edges[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(bounds, i));
        if (edges[i] == -1.0 && PyErr_Occurred())
            goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(diffs); i++) {
        PyObject *diff = PyList_GET_ITEM(diffs, i);
        int overflow;
        long long small = PyLong_AsLongLongAndOverflow(diff, &overflow);
        if (small == -1 && !overflow && PyErr_Occurred())
            goto error;
        double value = 0.0;
        if (overflow > 0) {  /* beyond 64 bits: convert as Python does */
            value = PyLong_AsDouble(diff);
            if (value == -1.0 && PyErr_Occurred())
                goto error;
            value = value / divider;
        } else if (!overflow && small > 0) {
            /* Rounds to nearest, ties to even, as Python's int to float conversion. */
            value = (double)small / divider;
        }
        Py_ssize_t low = 0, high = nbounds;  /* bisect_left */
        while (low < high) {
            Py_ssize_t middle = (low + high) / 2;
            if (edges[middle] < value)
                low = middle + 1;
            else
                high = middle;
        }
        added[low]++;
        total += value;
    }
    for (Py_ssize_t i = 0; i < nbuckets; i++) {
        if (!added[i])
            continue;
        PyObject *more = PyLong_FromSsize_t(added[i]);
        PyObject *sum = more == NULL ? NULL : PyNumber_Add(PyList_GET_ITEM(counts, i), more);
        Py_XDECREF(more);
        if (sum == NULL)
            goto error;
        PyList_SetItem(counts, i, sum);  /* steals sum, releases the old count */
    }
    PyMem_Free(edges);
    PyMem_Free(added);
    return PyFloat_FromDouble(total);
error:
    PyMem_Free(edges);
    PyMem_Free(added);
    return NULL;
}

/* Twin: trace_runs.stamp (the Python one). ``run`` (framed ScopeSpans.spans entries) with ``suffix`` (serialized
   Span fields) appended to every span: each span's length prefix is written again, its bytes copied, then the
   suffix; a parse merges the appended fields into the span. */
static PyObject *stamp(PyObject *self, PyObject *args) {
    Py_buffer view, extra;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &extra))
        return NULL;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    PyObject *out = NULL;
    /* Output size: each span grows by the suffix and by at most 9 more length-prefix bytes. */
    Py_ssize_t spans = 0;
    for (Py_ssize_t pos = 0; pos < buf.size;) {
        uint64_t tag;
        Py_ssize_t body, field_end;
        if (skip_field(&buf, pos, &tag, &body, &field_end) < 0)
            goto done;
        if (tag != 0x12) {
            fail("a run holds spans only");
            goto done;
        }
        spans++;
        pos = field_end;
    }
    out = PyBytes_FromStringAndSize(NULL, buf.size + spans * (extra.len + 10));
    if (out == NULL)
        goto done;
    unsigned char *write = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t pos = 0; pos < buf.size;) {
        uint64_t tag;
        Py_ssize_t body, field_end;
        if (skip_field(&buf, pos, &tag, &body, &field_end) < 0) {  /* cannot fail: the first pass read the same */
            Py_CLEAR(out);
            goto done;
        }
        uint64_t length = (uint64_t)(field_end - body + extra.len);
        *write++ = 0x12;
        do {
            unsigned char byte = length & 0x7F;
            length >>= 7;
            *write++ = length ? byte | 0x80 : byte;
        } while (length);
        memcpy(write, buf.data + body, (size_t)(field_end - body));
        write += field_end - body;
        memcpy(write, extra.buf, (size_t)extra.len);
        write += extra.len;
        pos = field_end;
    }
    _PyBytes_Resize(&out, (Py_ssize_t)(write - (unsigned char *)PyBytes_AS_STRING(out)));
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&extra);
    return out;
}

/* ------------------------------------------------------------------------------------------------------------
   Redaction: a traces or logs request's items (spans, log records) as byte ranges of the request, and a splice
   of new items into the request's bytes. Both signals nest the same way: request field 1 (resources), resource
   field 2 (scopes), scope field 2 (items), each length-delimited; an occurrence with another wire type is an
   unknown field to the parser, so it is no element here either. */

/* Appends value to list as a Python int. */
static int append_size(PyObject *list, Py_ssize_t value) {
    PyObject *number = PyLong_FromSsize_t(value);
    if (number == NULL)
        return -1;
    int result = PyList_Append(list, number);
    Py_DECREF(number);
    return result;
}

/* Adds buf[start:end] to the envelope ranges (flat [start, end, ...]), joined to the last range when adjacent. */
static int add_envelope(PyObject *envelope, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t count = PyList_GET_SIZE(envelope);
    if (count && PyLong_AsSsize_t(PyList_GET_ITEM(envelope, count - 1)) == start) {
        PyObject *number = PyLong_FromSsize_t(end);
        if (number == NULL)
            return -1;
        return PyList_SetItem(envelope, count - 1, number);  /* steals number */
    }
    return append_size(envelope, start) < 0 || append_size(envelope, end) < 0 ? -1 : 0;
}

/* The tag of the containers one level down: resources in a request (field 1), scopes in a resource and items
   in a scope (field 2), always length-delimited. Every other field at a level is envelope content. */
static uint64_t child_tag(int level) { return level == 0 ? 0x0A : 0x12; }

/* Twin: plugins/processors/redaction/items.py, split_python (the item view). Walks the request payload
   buf[start:end] at ``level`` (0 request, 1 resource, 2 scope) and appends item ranges, envelope ranges and,
   per scope, (first item index, resource index, scope index); ``resource`` is the index of the resource
   being walked at level 1. */
static int walk_items(const Buffer *buf, Py_ssize_t start, Py_ssize_t end, int level, Py_ssize_t resource,
                      PyObject *items, PyObject *envelope, PyObject *scopes) {
    uint64_t child = child_tag(level);
    Py_ssize_t index = 0, pos = start;
    while (pos < end) {
        uint64_t tag;
        Py_ssize_t body, field_end;
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0)
            return -1;
        if (field_end > end)
            return fail("field past its container");
        if (tag != child) {
            if (add_envelope(envelope, pos, field_end) < 0)
                return -1;
        } else if (level == 2) {
            if (append_size(items, body) < 0 || append_size(items, field_end) < 0)
                return -1;
        } else {
            if (level == 1) {
                PyObject *scope = Py_BuildValue("(nnn)", PyList_GET_SIZE(items) / 2, resource, index);
                if (scope == NULL)
                    return -1;
                int appended = PyList_Append(scopes, scope);
                Py_DECREF(scope);
                if (appended < 0)
                    return -1;
            }
            if (walk_items(buf, body, field_end, level + 1, index, items, envelope, scopes) < 0)
                return -1;
            index++;
        }
        pos = field_end;
    }
    return 0;
}

/* request_items(data) -> (items, envelope, scopes): see the method table. */
static PyObject *request_items(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view))
        return NULL;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    PyObject *items = PyList_New(0), *envelope = PyList_New(0), *scopes = PyList_New(0), *out = NULL;
    if (items != NULL && envelope != NULL && scopes != NULL &&
        walk_items(&buf, 0, buf.size, 0, 0, items, envelope, scopes) == 0)
        out = PyTuple_Pack(3, items, envelope, scopes);
    Py_XDECREF(items);
    Py_XDECREF(envelope);
    Py_XDECREF(scopes);
    PyBuffer_Release(&view);
    return out;
}

/* The new items of a splice, by ascending flat index, and how far the walk has got. */
typedef struct {
    Py_ssize_t count;
    Py_ssize_t *indexes;
    Py_buffer *items;
    Py_ssize_t item;  /* flat index of the next item the walk meets */
    Py_ssize_t next;  /* the first change not yet met */
} Changes;

static Py_ssize_t varint_size(uint64_t value) {
    Py_ssize_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

static unsigned char *write_varint(unsigned char *out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = (unsigned char)(value | 0x80);
        value >>= 7;
    }
    *out++ = (unsigned char)value;
    return out;
}

/* Twin: plugins/processors/redaction/items.py, splice_python. The new size of the container payload
   buf[start:end] at ``level`` (as walk_items) with the changes it holds put in, writing it at *out unless out
   is NULL (then it only measures). A field holding no change is copied byte for byte, framing included; a
   changed item or a container holding one keeps its tag bytes and gets a new length. */
static Py_ssize_t splice_walk(const Buffer *buf, Py_ssize_t start, Py_ssize_t end, int level, Changes *changes,
                              unsigned char **out) {
    uint64_t child = child_tag(level);
    Py_ssize_t size = 0, pos = start;
    while (pos < end) {
        uint64_t tag;
        Py_ssize_t body, field_end, tag_end = pos;
        if (skip_field(buf, pos, &tag, &body, &field_end) < 0 || read_varint(buf, &tag_end, &tag) < 0)
            return -1;
        if (field_end > end)
            return fail("field past its container");
        const unsigned char *payload = NULL;
        Py_ssize_t length = -1;  /* -1: copy the field as it is */
        if (tag == child && level == 2) {
            if (changes->next < changes->count && changes->indexes[changes->next] == changes->item) {
                payload = changes->items[changes->next].buf;
                length = changes->items[changes->next].len;
                changes->next++;
            }
            changes->item++;
        } else if (tag == child) {
            Py_ssize_t item = changes->item, next = changes->next;
            Py_ssize_t inner = splice_walk(buf, body, field_end, level + 1, changes, NULL);
            if (inner < 0)
                return -1;
            if (changes->next != next) {  /* holds a change: write it again, this time for real */
                length = inner;
                if (out != NULL) {
                    changes->item = item;
                    changes->next = next;
                    memcpy(*out, buf->data + pos, (size_t)(tag_end - pos));
                    *out = write_varint(*out + (tag_end - pos), (uint64_t)length);
                    if (splice_walk(buf, body, field_end, level + 1, changes, out) < 0)
                        return -1;
                }
                size += (tag_end - pos) + varint_size((uint64_t)length) + length;
                pos = field_end;
                continue;
            }
        }
        if (length < 0) {
            size += field_end - pos;
            if (out != NULL) {
                memcpy(*out, buf->data + pos, (size_t)(field_end - pos));
                *out += field_end - pos;
            }
        } else {
            size += (tag_end - pos) + varint_size((uint64_t)length) + length;
            if (out != NULL) {
                memcpy(*out, buf->data + pos, (size_t)(tag_end - pos));
                *out = write_varint(*out + (tag_end - pos), (uint64_t)length);
                memcpy(*out, payload, (size_t)length);
                *out += length;
            }
        }
        pos = field_end;
    }
    return size;
}

/* splice_items(data, changes) -> bytes: see the method table. */
static PyObject *splice_items(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *given, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*O", &view, &given))
        return NULL;
    Buffer buf = {(const unsigned char *)view.buf, view.len};
    PyObject *sequence = PySequence_Fast(given, "changes must be a sequence of (index, bytes)");
    Changes changes = {0, NULL, NULL, 0, 0};
    Py_ssize_t taken = 0;
    if (sequence == NULL)
        goto done;
    changes.count = PySequence_Fast_GET_SIZE(sequence);
    changes.indexes = PyMem_Malloc((size_t)(changes.count ? changes.count : 1) * sizeof *changes.indexes);
    changes.items = PyMem_Malloc((size_t)(changes.count ? changes.count : 1) * sizeof *changes.items);
    if (changes.indexes == NULL || changes.items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; taken < changes.count; taken++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(sequence, taken);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a change is a tuple (index, bytes)");
            goto done;
        }
        changes.indexes[taken] = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
        if (changes.indexes[taken] == -1 && PyErr_Occurred())
            goto done;
        if (taken && changes.indexes[taken] <= changes.indexes[taken - 1]) {
            PyErr_SetString(PyExc_ValueError, "changes must come by ascending index, each once");
            goto done;
        }
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(pair, 1), &changes.items[taken], PyBUF_SIMPLE) < 0)
            goto done;
    }
    Py_ssize_t size = splice_walk(&buf, 0, buf.size, 0, &changes, NULL);
    if (size < 0)
        goto done;
    if (changes.next != changes.count) {
        PyErr_Format(PyExc_ValueError, "no item at index %zd: the request has %zd", changes.indexes[changes.next],
                     changes.item);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        goto done;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    changes.item = changes.next = 0;
    if (splice_walk(&buf, 0, buf.size, 0, &changes, &at) != size ||
        at != (unsigned char *)PyBytes_AS_STRING(out) + size) {
        Py_CLEAR(out);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "splice_items wrote another size than it measured");
    }
done:
    for (Py_ssize_t i = 0; i < taken; i++)
        PyBuffer_Release(&changes.items[i]);
    PyMem_Free(changes.indexes);
    PyMem_Free(changes.items);
    Py_XDECREF(sequence);
    PyBuffer_Release(&view);
    return out;
}

/* ------------------------------------------------------------------------------------------------------------
   validate(data, schema): whether upb's FromString would accept data as the message the schema describes, and
   how many items it holds, without building the message. Twin: gateway/helpers/wireschema.py, check_python
   (FromString + count_items).

   The schema is the bytes gateway/helpers/wireschema.py builds from the message descriptors (its docstring
   gives the layout): per message, a table indexed by tag (field number and wire type) of what to do with the
   field, so that a known field with another wire type than its own is simply an entry saying "unknown". This
   walk applies the rules upb applies, each found by experiment against upb (tests/gateway/helpers/
   test_wireschema.py keeps them): a tag is a varint of at most 5 bytes below 2^32 with a field number other
   than 0 (inside an unknown group, 0 passes: upb skips a group without looking at numbers); any other varint is
   at most 10 bytes; a length is a varint of at most 5 bytes and stays within its message; a known field with
   another wire type than its own is an unknown field (kept, not looked into); a repeated scalar may also come
   packed, and a packed fixed-size run is a whole number of values; wire types 6 and 7 and an end-group tag
   outside its group are errors; groups and messages together nest at most 100 deep below the top message; a
   proto3 string is valid UTF-8. Item counts follow what a parse keeps: a oneof keeps its last member (a member
   repeated in a row merges), a singular message merges its occurrences. The rules, in words: docs/protocols.md
   §1.5. */

#define WIRE_DEPTH_LIMIT 100

/* What to do with a field, by tag (wireschema.py, the _ACTION constants). */
enum { ACT_UNKNOWN = 0, ACT_VARINT = 1, ACT_FIXED64 = 2, ACT_FIXED32 = 3, ACT_BYTES = 4, ACT_STRING = 5,
       ACT_MESSAGE = 6, ACT_ITEM = 7, ACT_PACKED_VARINT = 8, ACT_PACKED_FIXED64 = 9, ACT_PACKED_FIXED32 = 10 };
#define ONEOF_SLOTS 8
#define SCHEMA_HEADER 8
#define SCHEMA_MESSAGE 12

typedef struct {
    const unsigned char *data;
    const unsigned char *schema;
    Py_ssize_t schema_size;
    uint32_t messages;
} Validator;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int malformed(const char *what, Py_ssize_t offset) {
    PyErr_Format(PyExc_ValueError, "malformed protobuf: %s at offset %zd", what, offset);
    return -1;
}

static int bad_schema(void) {
    PyErr_SetString(PyExc_TypeError, "validate: the schema is not one gateway.helpers.wireschema built");
    return -1;
}

/* The varint at *pos (below end) of at most `longest` bytes, past the first byte (the caller's fast path took
   one-byte varints). Bits past 64 are dropped, as upb drops them. */
static int wire_varint_slow(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, int longest,
                            uint64_t *out, const char *what) {
    Py_ssize_t at = *pos;
    uint64_t result = 0;
    for (int i = 0; i < longest; i++) {
        if (at + i >= end)
            return malformed(what, at);
        unsigned char byte = data[at + i];
        if (i < 10)
            result |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            *out = result;
            *pos = at + i + 1;
            return 0;
        }
    }
    return malformed(what, at);
}

HOT int wire_varint(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, int longest, uint64_t *out,
                    const char *what) {
    if (*pos < end && data[*pos] < 0x80) {
        *out = data[(*pos)++];
        return 0;
    }
    return wire_varint_slow(data, pos, end, longest, out, what);
}

/* A tag: at most 5 bytes, and a value that fits 32 bits (the 5th byte at most 0x0F). */
HOT int wire_tag(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, uint32_t *tag) {
    Py_ssize_t at = *pos;
    uint64_t value;
    if (wire_varint(data, pos, end, 5, &value, "truncated or overlong tag") < 0)
        return -1;
    if (value > 0xFFFFFFFFu)
        return malformed("tag above 32 bits", at);
    *tag = (uint32_t)value;
    return 0;
}

/* A length-delimited field's length at *pos: at most 5 bytes, within end. Sets *field_end. */
HOT int wire_length(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, Py_ssize_t *field_end) {
    Py_ssize_t at = *pos;
    uint64_t length;
    if (wire_varint(data, pos, end, 5, &length, "truncated or overlong length") < 0)
        return -1;
    if (length >= 0x7FFFFFFF || length > (uint64_t)(end - *pos))
        return malformed("length past the end of its message", at);
    *field_end = *pos + (Py_ssize_t)length;
    return 0;
}

/* Whether p[0:length] is UTF-8 as upb checks it: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_rest_valid(const unsigned char *p, Py_ssize_t length) {
    Py_ssize_t i = 0;
    while (i < length) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        Py_ssize_t more;
        unsigned char low = 0x80, high = 0xBF;  /* the range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                low = 0xA0;  /* overlong */
            else if (c == 0xED)
                high = 0x9F;  /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                low = 0x90;  /* overlong */
            else if (c == 0xF4)
                high = 0x8F;  /* past U+10FFFF */
        } else {
            return 0;
        }
        if (i + more >= length)
            return 0;  /* cut short */
        if (p[i + 1] < low || p[i + 1] > high)
            return 0;
        for (Py_ssize_t k = 2; k <= more; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* Most strings are ASCII: the high bits of all bytes are OR-ed with whole-word loads (the last word overlapping,
   so that no load is of a variable size), and only a string with a byte past ASCII gets the full check. */
HOT int utf8_valid(const unsigned char *p, Py_ssize_t length) {
    uint64_t high = 0, a, b;
    if (length >= 8) {
        Py_ssize_t i = 0;
        for (; i + 16 <= length; i += 16) {
            memcpy(&a, p + i, 8);
            memcpy(&b, p + i + 8, 8);
            high |= a | b;
        }
        memcpy(&a, p + length - 8, 8);
        memcpy(&b, p + (i + 8 <= length ? i : length - 8), 8);
        high |= a | b;
    } else if (length >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + length - 4, 4);
        high = x | y;
    } else if (length > 0) {
        high = p[0] | p[length >> 1] | p[length - 1];
    }
    return (high & 0x8080808080808080ull) ? utf8_rest_valid(p, length) : 1;
}

static int skip_group(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, uint32_t number, int depth);

/* Skips the value of an unknown field of wire type `wire` whose tag (of field `number`, at tag_at) ended at
   *pos. `depth` is that of the message or group the field is in. */
static int skip_unknown(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, uint32_t wire,
                        uint32_t number, int depth, Py_ssize_t tag_at) {
    uint64_t value;
    Py_ssize_t field_end;
    switch (wire) {
    case 0:
        return wire_varint(data, pos, end, 10, &value, "truncated or overlong varint");
    case 1:
        if (end - *pos < 8)
            return malformed("fixed64 past the end of its message", *pos);
        *pos += 8;
        return 0;
    case 5:
        if (end - *pos < 4)
            return malformed("fixed32 past the end of its message", *pos);
        *pos += 4;
        return 0;
    case 2:
        if (wire_length(data, pos, end, &field_end) < 0)
            return -1;
        *pos = field_end;
        return 0;
    case 3:
        return skip_group(data, pos, end, number, depth + 1);
    case 4:
        return malformed("end-group tag outside its group", tag_at);
    default:
        return malformed("wire type 6 or 7", tag_at);
    }
}

/* Skips an unknown group of field `number` at `depth` whose start tag ended at *pos, up to and past its end
   tag. */
static int skip_group(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end, uint32_t number, int depth) {
    if (depth > WIRE_DEPTH_LIMIT)
        return malformed("groups and messages nested deeper than 100", *pos);
    while (*pos < end) {
        Py_ssize_t tag_at = *pos;
        uint32_t tag;
        if (wire_tag(data, pos, end, &tag) < 0)
            return -1;
        if ((tag & 7) == 4) {
            if (tag >> 3 != number)
                return malformed("end-group tag of another field than its group", tag_at);
            return 0;
        }
        if (skip_unknown(data, pos, end, tag & 7, tag >> 3, depth, tag_at) < 0)
            return -1;
    }
    return malformed("group without its end-group tag", *pos);
}

/* A packed run of varints data[start:end]. */
static int check_packed_varints(const unsigned char *data, Py_ssize_t start, Py_ssize_t end) {
    uint64_t value;
    for (Py_ssize_t pos = start; pos < end;)
        if (wire_varint(data, &pos, end, 10, &value, "truncated or overlong varint") < 0)
            return -1;
    return 0;
}

/* Walks data[start:end] as message `message` of the schema at nesting `depth` (0 at the top) and adds its items
   to *items. */
static int walk_message(const Validator *v, uint32_t message, Py_ssize_t start, Py_ssize_t end, int depth,
                        int64_t *items) {
    const unsigned char *data = v->data;
    if (message >= v->messages)
        return bad_schema();
    const unsigned char *header = v->schema + SCHEMA_HEADER + (Py_ssize_t)message * SCHEMA_MESSAGE;
    uint32_t table_at = le32(header), tags = le32(header + 4), slots = le32(header + 8);
    if (slots > ONEOF_SLOTS || table_at > (uint64_t)v->schema_size ||
        (uint64_t)tags * 4 > (uint64_t)v->schema_size - table_at)
        return bad_schema();
    const unsigned char *table = v->schema + table_at;
    /* Per tracked oneof: the member seen last and the items it holds (a parse keeps only that member). */
    uint32_t member[ONEOF_SLOTS];
    int64_t held[ONEOF_SLOTS];
    for (uint32_t s = 0; s < slots; s++) {
        member[s] = 0;
        held[s] = 0;
    }
    int64_t total = 0;
    Py_ssize_t pos = start;
    while (pos < end) {
        Py_ssize_t tag_at = pos;
        uint32_t tag;
        if (data[pos] < 0x80) {
            tag = data[pos++];
        } else if (wire_tag(data, &pos, end, &tag) < 0) {
            return -1;
        }
        if (tag < 8)
            return malformed("field number 0", tag_at);
        uint32_t entry = tag < tags ? le32(table + (Py_ssize_t)tag * 4) : ACT_UNKNOWN;
        int64_t found = 0;
        Py_ssize_t field_end;
        switch (entry & 0xFF) {
        case ACT_UNKNOWN:
            if (skip_unknown(data, &pos, end, tag & 7, tag >> 3, depth, tag_at) < 0)
                return -1;
            break;
        case ACT_VARINT: {
            uint64_t value;
            if (wire_varint(data, &pos, end, 10, &value, "truncated or overlong varint") < 0)
                return -1;
            break;
        }
        case ACT_FIXED64:
        case ACT_FIXED32: {
            Py_ssize_t size = (entry & 0xFF) == ACT_FIXED64 ? 8 : 4;
            if (end - pos < size)
                return malformed("fixed-size value past the end of its message", pos);
            pos += size;
            break;
        }
        case ACT_BYTES:
            if (wire_length(data, &pos, end, &field_end) < 0)
                return -1;
            pos = field_end;
            break;
        case ACT_STRING:
            if (wire_length(data, &pos, end, &field_end) < 0)
                return -1;
            if (!utf8_valid(data + pos, field_end - pos))
                return malformed("string field that is not valid UTF-8", pos);
            pos = field_end;
            break;
        case ACT_MESSAGE:
        case ACT_ITEM:
            if (wire_length(data, &pos, end, &field_end) < 0)
                return -1;
            if (depth >= WIRE_DEPTH_LIMIT)
                return malformed("groups and messages nested deeper than 100", pos);
            if (walk_message(v, entry >> 16, pos, field_end, depth + 1, &found) < 0)
                return -1;
            found += (entry & 0xFF) == ACT_ITEM;
            pos = field_end;
            break;
        case ACT_PACKED_VARINT:
            if (wire_length(data, &pos, end, &field_end) < 0 || check_packed_varints(data, pos, field_end) < 0)
                return -1;
            pos = field_end;
            break;
        case ACT_PACKED_FIXED64:
        case ACT_PACKED_FIXED32:
            if (wire_length(data, &pos, end, &field_end) < 0)
                return -1;
            if ((field_end - pos) % ((entry & 0xFF) == ACT_PACKED_FIXED64 ? 8 : 4))
                return malformed("packed fixed-size values of a length that is not a whole number of them", pos);
            pos = field_end;
            break;
        default:
            return bad_schema();
        }
        uint32_t slot = (entry >> 8) & 0xFF;
        if (slot == 0) {
            total += found;
        } else {
            if (slot > slots)
                return bad_schema();
            if (member[slot - 1] == tag >> 3) {
                held[slot - 1] += found;
            } else {
                member[slot - 1] = tag >> 3;
                held[slot - 1] = found;
            }
        }
    }
    for (uint32_t s = 0; s < slots; s++)
        total += held[s];
    *items += total;
    return 0;
}

/* validate(data, schema) -> items: see the method table. */
static PyObject *validate(PyObject *self, PyObject *args) {
    Py_buffer view, schema;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &schema))
        return NULL;
    PyObject *out = NULL;
    Validator v = {(const unsigned char *)view.buf, (const unsigned char *)schema.buf, schema.len, 0};
    if (schema.len < SCHEMA_HEADER || memcmp(schema.buf, "OTWS", 4) != 0) {
        bad_schema();
        goto done;
    }
    v.messages = le32(v.schema + 4);
    if (v.messages == 0 || (uint64_t)v.messages * SCHEMA_MESSAGE > (uint64_t)schema.len - SCHEMA_HEADER) {
        bad_schema();
        goto done;
    }
    int64_t items = 0;
    if (walk_message(&v, 0, 0, view.len, 0, &items) == 0)
        out = PyLong_FromLongLong(items);
done:
    PyBuffer_Release(&schema);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"split_request", split_request, METH_VARARGS,
     "split_request(data, want_times=False, want_root=False, want_status=False): see\n"
     "gateway.helpers.trace_runs.split_request."},
    {"span_groups", span_groups, METH_VARARGS,
     "span_groups(data, read_status=True): per resource, per scope, [(name, kind, code, durations)]."},
    {"ids_valid", ids_valid, METH_VARARGS,
     "ids_valid(data, logs=False): whether every span (log record) of the request has ids of the OTLP sizes."},
    {"fnv1a_64", fnv1a_64, METH_VARARGS, "fnv1a_64(data, state=offset basis): FNV-1a 64."},
    {"stamp", stamp, METH_VARARGS, "stamp(run, suffix): see gateway.helpers.trace_runs.stamp."},
    {"count_durations", count_durations, METH_VARARGS,
     "count_durations(counts, bounds, diffs, divider, total): the explicit-bucket count of span durations."},
    {"request_items", request_items, METH_VARARGS,
     "request_items(data) -> (items, envelope, scopes) of a serialized traces or logs request: items = [start, end,"
     " ...] of every item's payload in request order; envelope = [start, end, ...] of everything that is neither an"
     " item nor the framing (tag and length) of an item, scope or resource; scopes = [(first item index, resource"
     " index, scope index)] per scope in order."},
    {"splice_items", splice_items, METH_VARARGS,
     "splice_items(data, changes) -> bytes: the request data with the item at each flat index of changes (a"
     " sequence of (index, bytes) by ascending index) replaced, every enclosing length rewritten."},
    {"validate", validate, METH_VARARGS,
     "validate(data, schema) -> items: the items (spans, data points, log records) of data read as the message the"
     " schema (gateway.helpers.wireschema) describes; ValueError('malformed protobuf: ...') exactly where upb's"
     " FromString of the same bytes fails."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spanscan", NULL, -1, methods};

/* Raised whenever a function is added or changes what it takes or gives: gateway/helpers/native.py loads this
   module only when its VERSION is the one the Python code was written for, so a build left over from an older
   source is not used. */
#define SPANSCAN_VERSION 4

PyMODINIT_FUNC PyInit__spanscan(void) {
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && PyModule_AddIntConstant(created, "VERSION", SPANSCAN_VERSION) < 0)
        Py_CLEAR(created);
    return created;
}
