/*
 * json.c - the JSON codec: pd__event_decode_json reads an event's value
 * from JSON (accepted on input so that any Kafka client can trigger a
 * deploy), with a missing field taking its default from the .avsc, and
 * pd_event_to_json writes an event, attributes and fields, as one JSON
 * object for the CLI and the logs. Both walk the type's field table.
 */
#include "schemas/event.h"
#include "schemas/event_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"

/*
 * JSON.
 */

static const char *json_typename(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a real number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        case JSON_NULL:
                return "null";
        }
        return "?";
}

static int json_type_err(pd_codec_t *cc, const pd_field_t *f, const char *want,
                         const json_t *v) {
        return pd_field_err(cc, f, "must be %s, not %s", want,
                            json_typename(v));
}

static int json_read_string(pd_codec_t *cc, const pd_field_t *f,
                            const json_t *v, char **sp) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        size_t len;

        if (!json_is_string(v))
                return json_type_err(cc, f, "a string", v);
        /* jansson has checked the UTF-8 and, without JSON_ALLOW_NUL,
         * refused \u0000; the length check covers a schema default. */
        len = json_string_length(v);
        if (len > max)
                return pd_field_err(cc, f, "%zu bytes, longer than %zu", len,
                                    max);
        if (strlen(json_string_value(v)) != len)
                return pd_field_err(cc, f, "contains a NUL byte");
        *sp = pd_xstrdup(json_string_value(v));
        return 0;
}

static int json_int(pd_codec_t *cc, const pd_field_t *f, const json_t *v,
                    int32_t *vp) {
        json_int_t n;

        if (!json_is_integer(v))
                return json_type_err(cc, f, "an integer", v);
        n = json_integer_value(v);
        if (n < INT32_MIN || n > INT32_MAX)
                return pd_field_err(cc, f, "%lld does not fit an int",
                                    (long long)n);
        *vp = (int32_t)n;
        return 0;
}

static int json_read_record(pd_codec_t *cc, const pd_field_t *fields,
                            const json_t *sfields, const json_t *obj,
                            void *base);

/*
 * Reads JSON value v into field f of the record at base. sfield is the
 * field's definition in the .avsc (for a registry, its items' fields).
 */
static int json_read_field(pd_codec_t *cc, const pd_field_t *f,
                           const json_t *sfield, const json_t *v, void *base) {
        char *p = (char *)base + f->off;
        const char *const *syms;
        size_t i, nsyms;
        json_t *item;
        char *s;
        char q[80];

        switch (f->kind) {
        case PD_FK_STRING:
                return json_read_string(cc, f, v, (char **)p);
        case PD_FK_NSTRING:
                return json_is_null(v) ? 0
                                       : json_read_string(cc, f, v, (char **)p);
        case PD_FK_INT:
                return json_int(cc, f, v, (int32_t *)p);
        case PD_FK_NINT:
                if (json_is_null(v))
                        return 0;
                *(int *)((char *)base + f->aux) = 1;
                return json_int(cc, f, v, (int32_t *)p);
        case PD_FK_LONG:
                if (!json_is_integer(v))
                        return json_type_err(cc, f, "an integer", v);
                *(int64_t *)p = json_integer_value(v);
                return 0;
        case PD_FK_BOOL:
                if (!json_is_boolean(v))
                        return json_type_err(cc, f, "a boolean", v);
                *(int *)p = json_is_true(v);
                return 0;
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                if (!json_is_string(v))
                        return json_type_err(cc, f, "a string", v);
                syms = pd__enum_symbols(f->kind, &nsyms);
                for (i = 0; i < nsyms; i++) {
                        if (!strcmp(json_string_value(v), syms[i])) {
                                pd__enum_set(f, p, (int)i);
                                return 0;
                        }
                }
                return pd_field_err(
                    cc, f, "'%s' is not a %s symbol",
                    pd__quote(json_string_value(v), json_string_length(v), q,
                              sizeof(q)),
                    f->kind == PD_FK_SELECTION ? "Selection" : "Status");
        case PD_FK_STRV:
                if (!json_is_array(v))
                        return json_type_err(cc, f, "an array", v);
                if (json_array_size(v) > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                json_array_foreach(v, i, item) {
                        if (!json_is_string(item))
                                return pd_field_err(
                                    cc, f,
                                    "item %zu must be a string, "
                                    "not %s",
                                    i, json_typename(item));
                        if (json_read_string(cc, f, item, &s))
                                return -1;
                        pd_strv_add((pd_strv_t *)p, s);
                        free(s);
                }
                return 0;
        case PD_FK_SMAP: {
                const char *key;

                if (!json_is_object(v))
                        return json_type_err(cc, f, "an object", v);
                if (json_object_size(v) > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                json_object_foreach((json_t *)v, key, item) {
                        if (!json_is_string(item))
                                return pd_field_err(cc, f,
                                                    "value of '%s' must be a "
                                                    "string, not %s",
                                                    key, json_typename(item));
                        if (json_read_string(cc, f, item, &s))
                                return -1;
                        pd_strv_add((pd_strv_t *)p, key);
                        pd_strv_add((pd_strv_t *)p, s);
                        free(s);
                }
                return 0;
        }
        case PD_FK_REGISTRY: {
                pd_regentry_t **regp = (pd_regentry_t **)p;
                size_t *cntp         = (size_t *)((char *)base + f->aux);
                const json_t *sub    = json_object_get(
                       json_object_get(json_object_get(sfield, "type"), "items"),
                       "fields");
                int err = 0;

                if (!json_is_array(v))
                        return json_type_err(cc, f, "an array", v);
                if (json_array_size(v) > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (!json_array_size(v))
                        return 0;
                *regp = pd_xcalloc(json_array_size(v), sizeof(**regp));
                json_array_foreach(v, i, item) {
                        snprintf(cc->prefix, sizeof(cc->prefix), "%s[%zu].",
                                 f->name, i);
                        (*cntp)++;
                        if (!json_is_object(item))
                                err = pd_errf(cc->errstr, cc->errstr_size,
                                              "field '%s[%zu]': must be an "
                                              "object, not %s",
                                              f->name, i, json_typename(item));
                        else
                                err = json_read_record(cc, pd_fields_regentry,
                                                       sub, item, &(*regp)[i]);
                        if (err)
                                break;
                }
                cc->prefix[0] = '\0';
                return err;
        }
        }
        return pd_field_err(cc, f, "unknown kind");
}

/* A field missing from the JSON takes its "default" from the .avsc, which
 * is also the Avro JSON encoding of the value; without one it is an error. */
static int json_read_record(pd_codec_t *cc, const pd_field_t *fields,
                            const json_t *sfields, const json_t *obj,
                            void *base) {
        const pd_field_t *f;
        const json_t *v, *sfield;
        size_t i;

        for (i = 0, f = fields; f->name; i++, f++) {
                sfield = json_array_get(sfields, i);
                if (!(v = json_object_get(obj, f->name)) &&
                    !(v = json_object_get(sfield, "default")))
                        return pd_field_err(cc, f, "missing");
                if (json_read_field(cc, f, sfield, v, base))
                        return -1;
        }
        return 0;
}

/* Whether JSON text nests objects and arrays at most max deep; checked
 * before parsing so that a hostile value cannot make the parser recurse. */
static int json_depth_ok(const char *s, size_t len, int max) {
        int depth = 0, in_str = 0;
        size_t i;

        for (i = 0; i < len; i++) {
                if (in_str) {
                        if (s[i] == '\\')
                                i++;
                        else if (s[i] == '"')
                                in_str = 0;
                } else if (s[i] == '"') {
                        in_str = 1;
                } else if (s[i] == '{' || s[i] == '[') {
                        if (++depth > max)
                                return 0;
                } else if (s[i] == '}' || s[i] == ']') {
                        depth--;
                }
        }
        return 1;
}

int pd__event_decode_json(pd_event_t *ev, const char *buf, size_t len,
                          pd_codec_t *cc) {
        json_t *root = NULL;
        json_error_t jerr;
        char q[80];
        int err = -1;

        if (!json_depth_ok(buf, len, PD_JSON_DEPTH_MAX)) {
                pd_errf(cc->errstr, cc->errstr_size,
                        "JSON nested more than %d deep", PD_JSON_DEPTH_MAX);
                goto out;
        }
        if (!(root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr))) {
                pd_errf(cc->errstr, cc->errstr_size,
                        "invalid JSON at line %d column %d: %s", jerr.line,
                        jerr.column,
                        pd__quote(jerr.text, strlen(jerr.text), q, sizeof(q)));
                goto out;
        }
        if (!json_is_object(root)) {
                pd_errf(cc->errstr, cc->errstr_size,
                        "the JSON value is %s, not an object",
                        json_typename(root));
                goto out;
        }
        err = json_read_record(
            cc, pd_evtypes[ev->type].fields,
            json_object_get(pd_schemas[ev->type].root, "fields"), root, ev);
out:
        json_decref(root);
        return err;
}

/* A JSON string for s, with bytes that are not UTF-8 shown as '?': jansson
 * refuses invalid UTF-8, and output_tail is whatever a program printed. */
static json_t *json_str(const char *s) {
        json_t *j;
        char *copy;

        if (!s)
                s = "";
        if ((j = json_string(s)))
                return j;
        copy = pd_xstrdup(s);
        pd__utf8_scrub(copy, strlen(copy));
        j = json_string(copy);
        free(copy);
        return j;
}

static json_t *json_write_record(const pd_field_t *fields, const void *base);

static json_t *json_write_field(const pd_field_t *f, const void *base) {
        const char *p = (const char *)base + f->off;
        const char *const *syms;
        size_t i, nsyms;
        json_t *a;
        int v;

        switch (f->kind) {
        case PD_FK_STRING:
                return json_str(*(char *const *)p);
        case PD_FK_NSTRING:
                return *(char *const *)p ? json_str(*(char *const *)p)
                                         : json_null();
        case PD_FK_INT:
                return json_integer(*(const int32_t *)p);
        case PD_FK_NINT:
                return *(const int *)((const char *)base + f->aux)
                           ? json_integer(*(const int32_t *)p)
                           : json_null();
        case PD_FK_LONG:
                return json_integer(*(const int64_t *)p);
        case PD_FK_BOOL:
                return json_boolean(*(const int *)p);
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                syms = pd__enum_symbols(f->kind, &nsyms);
                v    = pd__enum_get(f, p);
                return v >= 0 && (size_t)v < nsyms ? json_string(syms[v])
                                                   : json_null();
        case PD_FK_STRV: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                a = json_array();
                for (i = 0; i < sv->cnt; i++)
                        json_array_append_new(a, json_str(sv->v[i]));
                return a;
        }
        case PD_FK_SMAP: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                a = json_object();
                for (i = 0; i + 1 < sv->cnt; i += 2)
                        json_object_set_new(a, sv->v[i],
                                            json_str(sv->v[i + 1]));
                return a;
        }
        case PD_FK_REGISTRY: {
                const pd_regentry_t *reg = *(pd_regentry_t *const *)p;
                size_t cnt = *(const size_t *)((const char *)base + f->aux);

                a = json_array();
                for (i = 0; i < cnt; i++)
                        json_array_append_new(
                            a, json_write_record(pd_fields_regentry, &reg[i]));
                return a;
        }
        }
        return json_null();
}

static json_t *json_write_record(const pd_field_t *fields, const void *base) {
        json_t *obj = json_object();
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                json_object_set_new(obj, f->name, json_write_field(f, base));
        return obj;
}

char *pd_event_to_json(const pd_event_t *ev) {
        json_t *obj = json_object(), *data;
        const char *key;
        json_t *v;
        char *out;

        json_object_set_new(obj, "type",
                            pd__evtype_valid(ev->type)
                                ? json_string(pd_evtype_name(ev->type))
                                : json_null());
        if (ev->ce_id)
                json_object_set_new(obj, "ce_id", json_str(ev->ce_id));
        if (ev->ce_source)
                json_object_set_new(obj, "ce_source", json_str(ev->ce_source));
        if (ev->ce_time)
                json_object_set_new(obj, "ce_time", json_str(ev->ce_time));
        if (ev->tenant)
                json_object_set_new(obj, "ce_tenant", json_str(ev->tenant));
        if (pd__evtype_valid(ev->type)) {
                data = json_write_record(pd_evtypes[ev->type].fields, ev);
                json_object_foreach(data, key, v) json_object_set(obj, key, v);
                json_decref(data);
        }
        out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        return out;
}


int pd_codec_json_read_field(pd_codec_t *cc, const pd_field_t *f,
                             const json_t *sfield, const json_t *v,
                             void *base) {
        return json_read_field(cc, f, sfield, v, base);
}
