/*
 * pcf.c - the Parsing Canonical Form of an Avro schema and its CRC-64-AVRO
 * fingerprint, the 8 bytes after C3 01 in every single-object encoded
 * value: how a reader knows which schema wrote it.
 *
 * libavro-c 1.11 has no Parsing Canonical Form nor fingerprint, so both are
 * computed here from the Avro specification.
 */
#include "schemas/event.h"
#include "schemas/event_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"

/* CRC-64-AVRO's initial value, from the specification. */
#define PD_CRC64_EMPTY UINT64_C(0xc15d213aa4d7a795)

/*
 * CRC-64-AVRO and the Parsing Canonical Form.
 */

uint64_t pd_crc64_avro(const void *buf, size_t len) {
        const unsigned char *p = buf;
        uint64_t fp            = PD_CRC64_EMPTY;
        size_t i;
        int j;

        /* The specification's table-driven loop, one bit at a time: it only
         * ever runs over a few short schemas, so the table is not worth its
         * initialisation. */
        for (i = 0; i < len; i++) {
                fp ^= p[i];
                for (j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (PD_CRC64_EMPTY & (0 - (fp & 1)));
        }
        return fp;
}

static int avro_primitive(const char *name) {
        static const char *const prims[] = {"null",  "boolean", "int",
                                            "long",  "float",   "double",
                                            "bytes", "string"};
        size_t i;

        for (i = 0; i < PD_ARRAY_CNT(prims); i++)
                if (!strcmp(name, prims[i]))
                        return 1;
        return 0;
}

/* Writes ns.name (name alone if ns is "") into full. Returns 0, or -1 with
 * errstr if it does not fit: a truncated name would be another name. */
static int fullname_of(char *full, size_t size, const char *ns,
                       const char *name, char *errstr, size_t errstr_size) {
        int n = *ns ? snprintf(full, size, "%s.%s", ns, name)
                    : snprintf(full, size, "%s", name);

        if (n < 0 || (size_t)n >= size)
                return pd_errf(errstr, errstr_size,
                               "name '%.64s...' is too long", name);
        return 0;
}

/* The fullname of a reference to a named type written `name` inside
 * namespace ns ([FULLNAMES]): a dotted name is already full; otherwise the
 * enclosing namespace applies, unless only the bare name was defined. */
static json_t *pcf_ref(const char *name, const char *ns, json_t *seen,
                       char *errstr, size_t errstr_size) {
        char full[512];

        if (strchr(name, '.') || !*ns)
                return json_string(name);
        if (fullname_of(full, sizeof(full), ns, name, errstr, errstr_size))
                return NULL;
        if (!json_object_get(seen, full) && json_object_get(seen, name))
                return json_string(name);
        return json_string(full);
}

static json_t *pcf_of(const json_t *s, const char *ns, json_t *seen,
                      char *errstr, size_t errstr_size);

/* A union: the canonical form of each branch, in order. */
static json_t *pcf_union(const json_t *s, const char *ns, json_t *seen,
                         char *errstr, size_t errstr_size) {
        json_t *out = json_array(), *item, *sub;
        size_t i;

        json_array_foreach(s, i, item) {
                if (!(sub = pcf_of(item, ns, seen, errstr, errstr_size)))
                        goto fail;
                json_array_append_new(out, sub);
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/* A record's fields: [{"name": ..., "type": ...}, ...], nothing else. */
static json_t *pcf_fields(const json_t *fields, const char *full,
                          const char *ns, json_t *seen, char *errstr,
                          size_t errstr_size) {
        json_t *out = json_array(), *item, *f, *sub;
        size_t i;

        if (!json_is_array(fields)) {
                pd_errf(errstr, errstr_size,
                        "record %s has no \"fields\" array", full);
                goto fail;
        }
        json_array_foreach(fields, i, item) {
                if (!json_is_string(json_object_get(item, "name"))) {
                        pd_errf(errstr, errstr_size,
                                "a field of %s has no string \"name\"", full);
                        goto fail;
                }
                if (!(sub = pcf_of(json_object_get(item, "type"), ns, seen,
                                   errstr, errstr_size)))
                        goto fail;
                f = json_object();
                json_object_set(f, "name", json_object_get(item, "name"));
                json_object_set_new(f, "type", sub);
                json_array_append_new(out, f);
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/* A record, enum or fixed: {"name": fullname, "type": ..., then fields,
 * symbols or size}. A type already written is its fullname alone. */
static json_t *pcf_named(const json_t *s, const char *type, const char *ns,
                         json_t *seen, char *errstr, size_t errstr_size) {
        const json_t *size = json_object_get(s, "size");
        json_t *out        = NULL, *sub, *item;
        char full[512], nsbuf[512];
        const char *name, *dot;
        json_int_t n = -1;
        size_t i;
        char *end;

        if (!json_is_string(json_object_get(s, "name"))) {
                pd_errf(errstr, errstr_size, "a %s without a string \"name\"",
                        type);
                goto fail;
        }
        name = json_string_value(json_object_get(s, "name"));
        if ((dot = strrchr(name, '.'))) {
                /* A dotted name is full: its namespace is what precedes the
                 * last dot, whatever "namespace" says. */
                if (fullname_of(full, sizeof(full), "", name, errstr,
                                errstr_size))
                        goto fail;
                full[dot - name] = '\0';
                snprintf(nsbuf, sizeof(nsbuf), "%s", full);
                full[dot - name] = '.';
        } else {
                if (json_is_string(json_object_get(s, "namespace")))
                        ns = json_string_value(json_object_get(s, "namespace"));
                if (fullname_of(full, sizeof(full), ns, name, errstr,
                                errstr_size))
                        goto fail;
                snprintf(nsbuf, sizeof(nsbuf), "%s", ns);
        }
        if (json_object_get(seen, full))
                return json_string(full);
        json_object_set_new(seen, full, json_true());

        /* [ORDER]: name, type, then fields, symbols or size. */
        out = json_object();
        json_object_set_new(out, "name", json_string(full));
        json_object_set_new(out, "type", json_string(type));
        if (!strcmp(type, "record") || !strcmp(type, "error")) {
                if (!(sub = pcf_fields(json_object_get(s, "fields"), full,
                                       nsbuf, seen, errstr, errstr_size)))
                        goto fail;
                json_object_set_new(out, "fields", sub);
        } else if (!strcmp(type, "enum")) {
                sub = json_object_get(s, "symbols");
                if (!json_is_array(sub)) {
                        pd_errf(errstr, errstr_size,
                                "enum %s has no \"symbols\" array", full);
                        goto fail;
                }
                json_array_foreach(sub, i, item) {
                        if (!json_is_string(item)) {
                                pd_errf(errstr, errstr_size,
                                        "enum %s has a symbol that is not a "
                                        "string",
                                        full);
                                goto fail;
                        }
                }
                json_object_set(out, "symbols", sub);
        } else { /* fixed; [INTEGERS]: a quoted size is written as a number */
                if (json_is_integer(size)) {
                        n = json_integer_value(size);
                } else if (json_is_string(size)) {
                        errno = 0;
                        n     = strtoll(json_string_value(size), &end, 10);
                        if (errno || *end || end == json_string_value(size))
                                n = -1;
                }
                if (n < 0) {
                        pd_errf(errstr, errstr_size,
                                "fixed %s has no valid \"size\"", full);
                        goto fail;
                }
                json_object_set_new(out, "size", json_integer(n));
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/*
 * Returns the Parsing Canonical Form of schema s as a new JSON value, or NULL
 * with errstr. ns is the enclosing namespace ("" for none), seen the set of
 * named types already written: a second occurrence is written as its name
 * alone, as the Java reference implementation does.
 */
static json_t *pcf_of(const json_t *s, const char *ns, json_t *seen,
                      char *errstr, size_t errstr_size) {
        const char *type;
        json_t *out, *sub;

        if (json_is_string(s)) {
                type = json_string_value(s);
                if (avro_primitive(type))
                        return json_string(type);
                return pcf_ref(type, ns, seen, errstr, errstr_size);
        }
        if (json_is_array(s))
                return pcf_union(s, ns, seen, errstr, errstr_size);
        if (!json_is_object(s) || !json_is_string(json_object_get(s, "type"))) {
                pd_errf(errstr, errstr_size,
                        "a schema is a type name, a union or an object with "
                        "a string \"type\"");
                return NULL;
        }
        type = json_string_value(json_object_get(s, "type"));
        if (avro_primitive(type)) /* [PRIMITIVES], after [STRIP] */
                return json_string(type);
        if (!strcmp(type, "array") || !strcmp(type, "map")) {
                const char *key = type[0] == 'a' ? "items" : "values";

                if (!(sub = pcf_of(json_object_get(s, key), ns, seen, errstr,
                                   errstr_size)))
                        return NULL;
                out = json_object();
                json_object_set_new(out, "type", json_string(type));
                json_object_set_new(out, key, sub);
                return out;
        }
        if (strcmp(type, "record") && strcmp(type, "error") &&
            strcmp(type, "enum") && strcmp(type, "fixed"))
                return pcf_ref(type, ns, seen, errstr, /* {"type": "a.b"} */
                               errstr_size);
        return pcf_named(s, type, ns, seen, errstr, errstr_size);
}

char *pd_event_canonicalize(const char *schema, size_t len, char *errstr,
                            size_t errstr_size) {
        json_t *root = NULL, *seen = NULL, *pcf = NULL;
        json_error_t jerr;
        char *out = NULL;

        if (!(root = json_loadb(schema, len, JSON_DECODE_ANY, &jerr))) {
                pd_errf(errstr, errstr_size,
                        "schema is not JSON: line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
                goto out;
        }
        seen = json_object();
        if (!(pcf = pcf_of(root, "", seen, errstr, errstr_size)))
                goto out;
        /* [WHITESPACE] is JSON_COMPACT; [STRINGS] holds because jansson
         * writes UTF-8 as is and escapes only what JSON requires. */
        out = pd_xalloc(json_dumps(
            pcf, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER));
out:
        json_decref(pcf);
        json_decref(seen);
        json_decref(root);
        return out;
}
