/*
 * event.c - the event codec: CloudEvents headers, Avro single-object
 * encoding and JSON, each driven by one field table per event type.
 *
 * The Avro binary is written and read here rather than through libavro-c's
 * generic values because the input is hostile: a reader of our own bounds
 * every length and count before it allocates anything, refuses invalid
 * UTF-8 and NUL bytes (our strings are C strings), and names the field that
 * was wrong. The format we need is small (varints, strings, arrays, one kind
 * of union) and the unit tests hold it byte for byte against fastavro.
 * libavro-c parses every schema once and checks it against the field table,
 * so an .avsc edit that the tables do not follow fails every encode and
 * decode loudly instead of writing data nobody else can read.
 *
 * libavro-c 1.11 has no Parsing Canonical Form nor fingerprint, so both are
 * computed here from the Avro specification.
 *
 * The field tables are the current schemas. A value written with an older
 * released one is read by schemas/history.c, which resolves it field by
 * field through the readers exported in schemas/codec.h.
 */
#include "schemas/event.h"
#include "schemas/codec.h"
#include "schemas/history.h"

#include "common/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/random.h"
#include "common/utf8.h"

/* The schema texts, compiled in from schemas/<name>.avsc by
 * cmake/EmbedSchemas.cmake. */
extern const char pd_schema_release_deployed[];
extern const char pd_schema_deploy_planned[];
extern const char pd_schema_action_started[];
extern const char pd_schema_action_finished[];
extern const char pd_schema_registry_published[];
extern const char pd_schema_skip_requested[];
extern const char pd_schema_reset_requested[];

/* Bounds on hostile input. A header longer than an attribute can sensibly
 * be, a string longer than any message we write, or an array longer than
 * any registry is refused before it costs memory. */
#define PD_HDR_MAX        256
#define PD_STR_MAX        65536
#define PD_ARRAY_MAX      10000
#define PD_JSON_DEPTH_MAX 16

/* Avro single-object encoding: 2 magic bytes and an 8-byte fingerprint. */
#define PD_SO_HDR_LEN 10

/* CRC-64-AVRO's initial value, from the specification. */
#define PD_CRC64_EMPTY UINT64_C(0xc15d213aa4d7a795)

#define PD_F(name, kind, member)                                               \
        { name, kind, offsetof(pd_event_t, member), 0, 0 }

static const pd_field_t pd_fields_release_deployed[] = {
        PD_F("release", PD_FK_STRING, release),
        PD_F("environment", PD_FK_STRING, environment),
        PD_F("selection", PD_FK_SELECTION, selection),
        PD_F("actions", PD_FK_STRV, actions),
        PD_F("requested_by", PD_FK_STRING, requested_by),
        PD_F("deployed_at", PD_FK_LONG, deployed_at),
        {NULL, 0, 0, 0, 0},
};

static const pd_field_t pd_fields_deploy_planned[] = {
        PD_F("tenant", PD_FK_STRING, tenant),
        PD_F("release", PD_FK_STRING, release),
        PD_F("trigger_id", PD_FK_STRING, trigger_id),
        PD_F("actions", PD_FK_STRV, actions),
        PD_F("reactor", PD_FK_STRING, reactor),
        PD_F("planned_at", PD_FK_LONG, planned_at),
        {NULL, 0, 0, 0, 0},
};

static const pd_field_t pd_fields_action_started[] = {
        PD_F("action", PD_FK_STRING, action),
        PD_F("tenant", PD_FK_STRING, tenant),
        PD_F("release", PD_FK_STRING, release),
        PD_F("trigger_id", PD_FK_STRING, trigger_id),
        PD_F("attempt", PD_FK_INT, attempt),
        PD_F("started_at", PD_FK_LONG, started_at),
        PD_F("reactor", PD_FK_STRING, reactor),
        {NULL, 0, 0, 0, 0},
};

static const pd_field_t pd_fields_action_finished[] = {
        PD_F("action", PD_FK_STRING, action),
        PD_F("tenant", PD_FK_STRING, tenant),
        PD_F("release", PD_FK_STRING, release),
        PD_F("trigger_id", PD_FK_STRING, trigger_id),
        PD_F("attempt", PD_FK_INT, attempt),
        PD_F("started_at", PD_FK_LONG, started_at),
        PD_F("reactor", PD_FK_STRING, reactor),
        PD_F("status", PD_FK_STATUS, status),
        {"exit_code", PD_FK_NINT, offsetof(pd_event_t, exit_code),
         offsetof(pd_event_t, has_exit_code), 0},
        PD_F("duration_ms", PD_FK_LONG, duration_ms),
        PD_F("error", PD_FK_NSTRING, error),
        {"output_tail", PD_FK_STRING, offsetof(pd_event_t, output_tail), 0,
         PD_OUTPUT_TAIL_MAX},
        PD_F("finished_at", PD_FK_LONG, finished_at),
        PD_F("retrying", PD_FK_BOOL, retrying),
        {NULL, 0, 0, 0, 0},
};

static const pd_field_t pd_fields_registry_published[] = {
        PD_F("reactor", PD_FK_STRING, reactor),
        PD_F("published_at", PD_FK_LONG, published_at),
        {"actions", PD_FK_REGISTRY, offsetof(pd_event_t, registry),
         offsetof(pd_event_t, registry_cnt), 0},
        {NULL, 0, 0, 0, 0},
};

/* actions.skip_requested and actions.reset_requested: the same fields, since
 * both name the actions of one tenant (in ce_tenant) that they apply to. */
static const pd_field_t pd_fields_actions_requested[] = {
        PD_F("release", PD_FK_STRING, release),
        PD_F("actions", PD_FK_STRV, actions),
        PD_F("all_pending", PD_FK_BOOL, all_pending),
        PD_F("requested_by", PD_FK_STRING, requested_by),
        PD_F("requested_at", PD_FK_LONG, requested_at),
        {NULL, 0, 0, 0, 0},
};

/* The items of registry_published's "actions": record RegisteredAction. */
static const pd_field_t pd_fields_regentry[] = {
        {"id", PD_FK_STRING, offsetof(pd_regentry_t, id), 0, 0},
        {"auto", PD_FK_BOOL, offsetof(pd_regentry_t, is_auto), 0, 0},
        {"policy", PD_FK_STRING, offsetof(pd_regentry_t, policy), 0, 0},
        {"description", PD_FK_STRING, offsetof(pd_regentry_t, description),
         0, 0},
        {"after", PD_FK_STRV, offsetof(pd_regentry_t, after), 0, 0},
        {NULL, 0, 0, 0, 0},
};

static const struct pd_evtype_info_s {
        const char *name;         /* ce_type */
        const char *schema;       /* the .avsc text */
        const pd_field_t *fields; /* in schema order */
} pd_evtypes[PD_EVT__CNT] = {
        [PD_EVT_RELEASE_DEPLOYED]   = {"release.deployed",
                                       pd_schema_release_deployed,
                                       pd_fields_release_deployed},
        [PD_EVT_DEPLOY_PLANNED]     = {"deploy.planned",
                                       pd_schema_deploy_planned,
                                       pd_fields_deploy_planned},
        [PD_EVT_ACTION_STARTED]     = {"action.started",
                                       pd_schema_action_started,
                                       pd_fields_action_started},
        [PD_EVT_ACTION_FINISHED]    = {"action.finished",
                                       pd_schema_action_finished,
                                       pd_fields_action_finished},
        [PD_EVT_REGISTRY_PUBLISHED] = {"registry.published",
                                       pd_schema_registry_published,
                                       pd_fields_registry_published},
        [PD_EVT_SKIP_REQUESTED]     = {"actions.skip_requested",
                                       pd_schema_skip_requested,
                                       pd_fields_actions_requested},
        [PD_EVT_RESET_REQUESTED]    = {"actions.reset_requested",
                                       pd_schema_reset_requested,
                                       pd_fields_actions_requested},
};

static const char *const pd_selection_names[] = {"AUTO", "ALL", "ONE"};
static const char *const pd_status_names[] = {
        "SUCCEEDED", "FAILED", "TIMED_OUT", "INTERRUPTED",
        "SKIPPED", "REJECTED", "RESET"};

#define PD_ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

/* A status added to event.h without its name here would be a NULL symbol. */
_Static_assert(PD_ARRAY_CNT(pd_status_names) == PD_ST__CNT,
               "pd_status_names must name every pd_status_t");

/* What pthread_once computes from each schema; read-only afterwards, so
 * any thread may use it without a lock. */
static struct {
        json_t *root;    /* the parsed .avsc: the JSON decoder's defaults */
        char *canonical; /* Parsing Canonical Form */
        uint64_t fp;     /* CRC-64-AVRO of canonical */
} pd_schemas[PD_EVT__CNT];
static char pd_schemas_err[512]; /* non-empty if a schema is unusable */
static pthread_once_t pd_schemas_once = PTHREAD_ONCE_INIT;


/*
 * Small helpers.
 */

/* Reports a problem with field f (inside the current registry entry, if
 * any) as "field 'name': message". Returns -1. */
static int pd_field_err(pd_codec_t *cc, const pd_field_t *f, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
static int pd_field_err(pd_codec_t *cc, const pd_field_t *f, const char *fmt,
                        ...) {
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return pd_errf(cc->errstr, cc->errstr_size, "field '%s%s': %s",
                      cc->prefix, f->name, msg);
}

/* Copies at most 64 bytes of untrusted text into buf for an error message,
 * with every byte that is not printable ASCII shown as '?', so that what
 * goes to logs and dead-letter headers is always safe to print. */
static const char *pd_quote(const void *s, size_t len, char *buf,
                            size_t size) {
        const unsigned char *p = s;
        size_t i, n = len < size - 1 ? len : size - 1;

        if (n > 64)
                n = 64;
        for (i = 0; i < n; i++)
                buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
        buf[i] = '\0';
        return buf;
}

/* pd_event_new promises never to return NULL, and stamping has no error
 * path, so running out of memory there is fatal. */
static void *pd_xalloc(void *p) {
        if (!p) {
                pd_log(PD_LOG_ERROR, "event: out of memory");
                abort();
        }
        return p;
}

static char *pd_xstrdup(const char *s) {
        return pd_xalloc(strdup(s));
}

static int pd_evtype_valid(pd_evtype_t type) {
        return type > PD_EVT_UNKNOWN && type < PD_EVT__CNT;
}


/*
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF).
 */

static int pd_utf8_valid(const void *buf, size_t n) {
        const unsigned char *s = buf;
        size_t i = 0, k;

        while (i < n) {
                if (!(k = pd_utf8_seq(s + i, n - i)))
                        return 0;
                i += k;
        }
        return 1;
}

/* Replaces every byte that is not part of a valid sequence with '?'. */
static void pd_utf8_scrub(void *buf, size_t n) {
        unsigned char *s = buf;
        size_t i = 0, k;

        while (i < n) {
                if (!(k = pd_utf8_seq(s + i, n - i))) {
                        s[i] = '?';
                        k    = 1;
                }
                i += k;
        }
}


/*
 * Names.
 */

const char *pd_evtype_name(pd_evtype_t type) {
        return pd_evtype_valid(type) ? pd_evtypes[type].name : NULL;
}

pd_evtype_t pd_evtype_parse(const char *name) {
        int t;

        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                if (!strcmp(name, pd_evtypes[t].name))
                        return (pd_evtype_t)t;
        return PD_EVT_UNKNOWN;
}

const char *pd_selection_name(pd_selection_t sel) {
        return (unsigned)sel < PD_ARRAY_CNT(pd_selection_names)
                       ? pd_selection_names[sel]
                       : NULL;
}

const char *pd_status_name(pd_status_t st) {
        return (unsigned)st < PD_ST__CNT ? pd_status_names[st] : NULL;
}

int pd_status_parse(const char *s) {
        int i;

        for (i = 0; i < PD_ST__CNT; i++)
                if (!strcmp(s, pd_status_names[i]))
                        return i;
        return -1;
}

/* The symbols of an enum kind, in schema order. */
static const char *const *pd_enum_symbols(pd_fkind_t kind, size_t *cntp) {
        if (kind == PD_FK_SELECTION) {
                *cntp = PD_ARRAY_CNT(pd_selection_names);
                return pd_selection_names;
        }
        *cntp = PD_ARRAY_CNT(pd_status_names);
        return pd_status_names;
}

static int pd_enum_get(const pd_field_t *f, const void *p) {
        if (f->kind == PD_FK_SELECTION)
                return (int)*(const pd_selection_t *)p;
        return (int)*(const pd_status_t *)p;
}

static void pd_enum_set(const pd_field_t *f, void *p, int v) {
        if (f->kind == PD_FK_SELECTION)
                *(pd_selection_t *)p = (pd_selection_t)v;
        else
                *(pd_status_t *)p = (pd_status_t)v;
}


/*
 * Stamping.
 */

void pd_event_stamp(pd_event_t *ev, const char *source) {
        char buf[320];

        if (!ev->ce_id) {
                pd_uuid4(buf);
                ev->ce_id = pd_xstrdup(buf);
        }
        if (!ev->ce_time) {
                pd_time_format(pd_now_ms(), buf, sizeof(buf));
                ev->ce_time = pd_xstrdup(buf);
        }
        if (!ev->ce_source) {
                if (source) {
                        ev->ce_source = pd_xstrdup(source);
                } else {
                        char host[256];

                        if (gethostname(host, sizeof(host)))
                                snprintf(host, sizeof(host), "localhost");
                        host[sizeof(host) - 1] = '\0';
                        snprintf(buf, sizeof(buf), "postdeploy/%s", host);
                        ev->ce_source = pd_xstrdup(buf);
                }
        }
}


/*
 * CRC-64-AVRO and the Parsing Canonical Form.
 */

uint64_t pd_crc64_avro(const void *buf, size_t len) {
        const unsigned char *p = buf;
        uint64_t fp = PD_CRC64_EMPTY;
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

static int pd_avro_primitive(const char *name) {
        static const char *const prims[] = {"null", "boolean", "int",
                                            "long", "float", "double",
                                            "bytes", "string"};
        size_t i;

        for (i = 0; i < PD_ARRAY_CNT(prims); i++)
                if (!strcmp(name, prims[i]))
                        return 1;
        return 0;
}

/* Writes ns.name (name alone if ns is "") into full. Returns 0, or -1 with
 * errstr if it does not fit: a truncated name would be another name. */
static int pd_fullname(char *full, size_t size, const char *ns,
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
static json_t *pd_pcf_ref(const char *name, const char *ns, json_t *seen,
                          char *errstr, size_t errstr_size) {
        char full[512];

        if (strchr(name, '.') || !*ns)
                return json_string(name);
        if (pd_fullname(full, sizeof(full), ns, name, errstr, errstr_size))
                return NULL;
        if (!json_object_get(seen, full) && json_object_get(seen, name))
                return json_string(name);
        return json_string(full);
}

static json_t *pd_pcf(const json_t *s, const char *ns, json_t *seen,
                      char *errstr, size_t errstr_size);

/* A union: the canonical form of each branch, in order. */
static json_t *pd_pcf_union(const json_t *s, const char *ns, json_t *seen,
                            char *errstr, size_t errstr_size) {
        json_t *out = json_array(), *item, *sub;
        size_t i;

        json_array_foreach(s, i, item) {
                if (!(sub = pd_pcf(item, ns, seen, errstr, errstr_size)))
                        goto fail;
                json_array_append_new(out, sub);
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/* A record's fields: [{"name": ..., "type": ...}, ...], nothing else. */
static json_t *pd_pcf_fields(const json_t *fields, const char *full,
                             const char *ns, json_t *seen, char *errstr,
                             size_t errstr_size) {
        json_t *out = json_array(), *item, *f, *sub;
        size_t i;

        if (!json_is_array(fields)) {
                pd_errf(errstr, errstr_size, "record %s has no \"fields\" array",
                       full);
                goto fail;
        }
        json_array_foreach(fields, i, item) {
                if (!json_is_string(json_object_get(item, "name"))) {
                        pd_errf(errstr, errstr_size,
                               "a field of %s has no string \"name\"", full);
                        goto fail;
                }
                if (!(sub = pd_pcf(json_object_get(item, "type"), ns, seen,
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
static json_t *pd_pcf_named(const json_t *s, const char *type, const char *ns,
                            json_t *seen, char *errstr, size_t errstr_size) {
        const json_t *size = json_object_get(s, "size");
        json_t *out = NULL, *sub, *item;
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
                if (pd_fullname(full, sizeof(full), "", name, errstr,
                                errstr_size))
                        goto fail;
                full[dot - name] = '\0';
                snprintf(nsbuf, sizeof(nsbuf), "%s", full);
                full[dot - name] = '.';
        } else {
                if (json_is_string(json_object_get(s, "namespace")))
                        ns = json_string_value(
                                json_object_get(s, "namespace"));
                if (pd_fullname(full, sizeof(full), ns, name, errstr,
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
                if (!(sub = pd_pcf_fields(json_object_get(s, "fields"), full,
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
static json_t *pd_pcf(const json_t *s, const char *ns, json_t *seen,
                      char *errstr, size_t errstr_size) {
        const char *type;
        json_t *out, *sub;

        if (json_is_string(s)) {
                type = json_string_value(s);
                if (pd_avro_primitive(type))
                        return json_string(type);
                return pd_pcf_ref(type, ns, seen, errstr, errstr_size);
        }
        if (json_is_array(s))
                return pd_pcf_union(s, ns, seen, errstr, errstr_size);
        if (!json_is_object(s) ||
            !json_is_string(json_object_get(s, "type"))) {
                pd_errf(errstr, errstr_size,
                       "a schema is a type name, a union or an object with "
                       "a string \"type\"");
                return NULL;
        }
        type = json_string_value(json_object_get(s, "type"));
        if (pd_avro_primitive(type)) /* [PRIMITIVES], after [STRIP] */
                return json_string(type);
        if (!strcmp(type, "array") || !strcmp(type, "map")) {
                const char *key = type[0] == 'a' ? "items" : "values";

                if (!(sub = pd_pcf(json_object_get(s, key), ns, seen, errstr,
                                   errstr_size)))
                        return NULL;
                out = json_object();
                json_object_set_new(out, "type", json_string(type));
                json_object_set_new(out, key, sub);
                return out;
        }
        if (strcmp(type, "record") && strcmp(type, "error") &&
            strcmp(type, "enum") && strcmp(type, "fixed"))
                return pd_pcf_ref(type, ns, seen, errstr, /* {"type": "a.b"} */
                                  errstr_size);
        return pd_pcf_named(s, type, ns, seen, errstr, errstr_size);
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
        if (!(pcf = pd_pcf(root, "", seen, errstr, errstr_size)))
                goto out;
        /* [WHITESPACE] is JSON_COMPACT; [STRINGS] holds because jansson
         * writes UTF-8 as is and escapes only what JSON requires. */
        if (!(out = json_dumps(pcf, JSON_COMPACT | JSON_ENCODE_ANY |
                                            JSON_PRESERVE_ORDER)))
                pd_errf(errstr, errstr_size, "out of memory");
out:
        json_decref(pcf);
        json_decref(seen);
        json_decref(root);
        return out;
}


/*
 * Loading the schemas, once.
 */

/* Whether s is ["null", <type>]. */
static int pd_avro_nullable(avro_schema_t s, avro_type_t type) {
        return is_avro_union(s) && avro_schema_union_size(s) == 2 &&
               is_avro_null(avro_schema_union_branch(s, 0)) &&
               avro_typeof(avro_schema_union_branch(s, 1)) == type;
}

/*
 * Checks that record schema rec has exactly the fields of the table, in
 * order, with Avro types that match their kinds. Returns 0 or -1 with
 * errstr.
 */
static int pd_schema_check(avro_schema_t rec, const pd_field_t *fields,
                           char *errstr, size_t errstr_size) {
        const pd_field_t *f;
        avro_schema_t ft, items;
        const char *const *syms;
        size_t i, j, nsyms;
        int ok;

        if (!is_avro_record(rec))
                return pd_errf(errstr, errstr_size, "not a record");
        for (i = 0, f = fields; f->name; i++, f++) {
                if (i >= avro_schema_record_size(rec) ||
                    strcmp(avro_schema_record_field_name(rec, (int)i),
                           f->name))
                        return pd_errf(errstr, errstr_size,
                                      "field %zu should be '%s'", i + 1,
                                      f->name);
                ft = avro_schema_record_field_get_by_index(rec, (int)i);
                switch (f->kind) {
                case PD_FK_STRING:
                        ok = is_avro_string(ft);
                        break;
                case PD_FK_NSTRING:
                        ok = pd_avro_nullable(ft, AVRO_STRING);
                        break;
                case PD_FK_INT:
                        ok = is_avro_int32(ft);
                        break;
                case PD_FK_NINT:
                        ok = pd_avro_nullable(ft, AVRO_INT32);
                        break;
                case PD_FK_LONG:
                        ok = is_avro_int64(ft);
                        break;
                case PD_FK_BOOL:
                        ok = is_avro_boolean(ft);
                        break;
                case PD_FK_SELECTION:
                case PD_FK_STATUS:
                        syms = pd_enum_symbols(f->kind, &nsyms);
                        ok   = is_avro_enum(ft) &&
                             avro_schema_enum_number_of_symbols(ft) ==
                                     (int)nsyms;
                        for (j = 0; ok && j < nsyms; j++)
                                ok = !strcmp(avro_schema_enum_get(ft, (int)j),
                                             syms[j]);
                        break;
                case PD_FK_STRV:
                        ok = is_avro_array(ft) &&
                             is_avro_string(avro_schema_array_items(ft));
                        break;
                case PD_FK_REGISTRY:
                        ok = is_avro_array(ft);
                        if (ok) {
                                items = avro_schema_array_items(ft);
                                if (pd_schema_check(items, pd_fields_regentry,
                                                    errstr, errstr_size))
                                        return -1;
                        }
                        break;
                default:
                        ok = 0;
                }
                if (!ok)
                        return pd_errf(errstr, errstr_size,
                                      "field '%s' has the wrong type",
                                      f->name);
        }
        if (i != avro_schema_record_size(rec))
                return pd_errf(errstr, errstr_size,
                              "has %zu fields, the codec knows %zu",
                              avro_schema_record_size(rec), i);
        return 0;
}

static int pd_schema_load(pd_evtype_t type, char *errstr, size_t errstr_size) {
        const struct pd_evtype_info_s *ti = &pd_evtypes[type];
        size_t len                        = strlen(ti->schema);
        avro_schema_t schema              = NULL;
        json_t *root                      = NULL;
        char *canonical                   = NULL;
        json_error_t jerr;
        char why[256];
        int err = -1;

        if (avro_schema_from_json_length(ti->schema, len, &schema)) {
                pd_errf(errstr, errstr_size, "schema of %s: %s", ti->name,
                       avro_strerror());
                goto out;
        }
        if (pd_schema_check(schema, ti->fields, why, sizeof(why))) {
                pd_errf(errstr, errstr_size,
                       "schema of %s does not match the codec: %s", ti->name,
                       why);
                goto out;
        }
        if (!(root = json_loadb(ti->schema, len, 0, &jerr))) {
                pd_errf(errstr, errstr_size, "schema of %s: %s", ti->name,
                       jerr.text);
                goto out;
        }
        if (!(canonical = pd_event_canonicalize(ti->schema, len, why,
                                                sizeof(why)))) {
                pd_errf(errstr, errstr_size, "schema of %s: %s", ti->name,
                       why);
                goto out;
        }
        pd_schemas[type].fp = pd_crc64_avro(canonical, strlen(canonical));
        pd_schemas[type].canonical = canonical;
        pd_schemas[type].root      = root;
        canonical = NULL;
        root      = NULL;
        err       = 0;
out:
        free(canonical);
        json_decref(root);
        if (schema)
                avro_schema_decref(schema);
        return err;
}

/* Runs once (pthread_once). The results live as long as the process. */
static void pd_schemas_init(void) {
        int t, u;

        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                if (pd_schema_load((pd_evtype_t)t, pd_schemas_err,
                                   sizeof(pd_schemas_err)))
                        return;
        /* A decoder finds the type by fingerprint. */
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                for (u = t + 1; u < PD_EVT__CNT; u++)
                        if (pd_schemas[t].fp == pd_schemas[u].fp)
                                pd_errf(pd_schemas_err, sizeof(pd_schemas_err),
                                       "schemas of %s and %s have the same "
                                       "fingerprint",
                                       pd_evtypes[t].name, pd_evtypes[u].name);
        /* The older released schemas resolve against these. */
        if (!pd_schemas_err[0])
                pd_history_load(pd_schemas_err, sizeof(pd_schemas_err));
}

/* Returns 0 once the schemas are loaded, -1 with errstr if they cannot be. */
static int pd_schemas_ready(char *errstr, size_t errstr_size) {
        pthread_once(&pd_schemas_once, pd_schemas_init);
        if (pd_schemas_err[0])
                return pd_errf(errstr, errstr_size, "%s", pd_schemas_err);
        return 0;
}

uint64_t pd_event_fingerprint(pd_evtype_t type) {
        char errstr[8];

        if (!pd_evtype_valid(type) || pd_schemas_ready(errstr, sizeof(errstr)))
                return 0;
        return pd_schemas[type].fp;
}

const char *pd_event_schema_canonical(pd_evtype_t type) {
        char errstr[8];

        if (!pd_evtype_valid(type) || pd_schemas_ready(errstr, sizeof(errstr)))
                return NULL;
        return pd_schemas[type].canonical;
}


/*
 * Events.
 */

pd_event_t *pd_event_new(pd_evtype_t type) {
        pd_event_t *ev = pd_xalloc(calloc(1, sizeof(*ev)));

        ev->type = type;
        return ev;
}

/* Frees what the fields of a table own in the record at base and zeroes
 * them, so the record is empty and ready to be decoded into. */
static void pd_fields_clear(const pd_field_t *fields, void *base) {
        const pd_field_t *f;
        char *p;
        size_t i;

        for (f = fields; f->name; f++) {
                p = (char *)base + f->off;
                switch (f->kind) {
                case PD_FK_STRING:
                case PD_FK_NSTRING:
                        free(*(char **)p);
                        *(char **)p = NULL;
                        break;
                case PD_FK_INT:
                        *(int32_t *)p = 0;
                        break;
                case PD_FK_NINT:
                        *(int32_t *)p                 = 0;
                        *(int *)((char *)base + f->aux) = 0;
                        break;
                case PD_FK_LONG:
                        *(int64_t *)p = 0;
                        break;
                case PD_FK_BOOL:
                        *(int *)p = 0;
                        break;
                case PD_FK_SELECTION:
                case PD_FK_STATUS:
                        pd_enum_set(f, p, 0);
                        break;
                case PD_FK_STRV:
                        pd_strv_clear((pd_strv_t *)p);
                        break;
                case PD_FK_REGISTRY: {
                        pd_regentry_t **regp = (pd_regentry_t **)p;
                        size_t *cntp = (size_t *)((char *)base + f->aux);

                        for (i = 0; i < *cntp; i++)
                                pd_fields_clear(pd_fields_regentry,
                                                &(*regp)[i]);
                        free(*regp);
                        *regp = NULL;
                        *cntp = 0;
                        break;
                }
                }
        }
}

void pd_event_destroy(pd_event_t *ev) {
        int t;

        if (!ev)
                return;
        /* Members shared by several types are freed by the first table and
         * NULL for the others, and a member set on an event of a type that
         * lacks it is still freed. */
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                pd_fields_clear(pd_evtypes[t].fields, ev);
        free(ev->ce_id);
        free(ev->ce_source);
        free(ev->ce_time);
        free(ev->tenant);
        free(ev);
}


/*
 * Avro binary: writing.
 */

static int pd_w_bytes(pd_codec_t *cc, const void *p, size_t n) {
        if (cc->wcap - cc->wlen < n) {
                size_t cap = cc->wcap ? cc->wcap : 256;
                uint8_t *nbuf;

                while (cap - cc->wlen < n)
                        cap *= 2;
                if (!(nbuf = realloc(cc->wbuf, cap)))
                        return pd_errf(cc->errstr, cc->errstr_size,
                                      "out of memory");
                cc->wbuf = nbuf;
                cc->wcap = cap;
        }
        memcpy(cc->wbuf + cc->wlen, p, n);
        cc->wlen += n;
        return 0;
}

/* A long: zigzag, then a little-endian base-128 varint. An int is written
 * the same way, since zigzag keeps an int's value within 32 bits. */
static int pd_w_long(pd_codec_t *cc, int64_t v) {
        uint64_t u = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
        uint8_t b[10];
        size_t n = 0;

        while (u >= 0x80) {
                b[n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        b[n++] = (uint8_t)u;
        return pd_w_bytes(cc, b, n);
}

static int pd_w_string(pd_codec_t *cc, const pd_field_t *f, const char *s) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        size_t n;

        if (!s)
                s = "";
        if ((n = strlen(s)) > max)
                return pd_field_err(cc, f, "%zu bytes, longer than %zu", n,
                                    max);
        if (pd_w_long(cc, (int64_t)n) || pd_w_bytes(cc, s, n))
                return -1;
        pd_utf8_scrub(cc->wbuf + cc->wlen - n, n);
        return 0;
}

static int pd_avro_write_record(pd_codec_t *cc, const pd_field_t *fields,
                                const void *base);

static int pd_avro_write_field(pd_codec_t *cc, const pd_field_t *f,
                               const void *base) {
        const char *p = (const char *)base + f->off;
        size_t i, cnt, nsyms;
        uint8_t b;
        int v;

        switch (f->kind) {
        case PD_FK_STRING:
                return pd_w_string(cc, f, *(char *const *)p);
        case PD_FK_NSTRING: /* union branch 0 is null, 1 the string */
                if (!*(char *const *)p)
                        return pd_w_long(cc, 0);
                return pd_w_long(cc, 1) ||
                       pd_w_string(cc, f, *(char *const *)p);
        case PD_FK_INT:
                return pd_w_long(cc, *(const int32_t *)p);
        case PD_FK_NINT:
                if (!*(const int *)((const char *)base + f->aux))
                        return pd_w_long(cc, 0);
                return pd_w_long(cc, 1) || pd_w_long(cc, *(const int32_t *)p);
        case PD_FK_LONG:
                return pd_w_long(cc, *(const int64_t *)p);
        case PD_FK_BOOL:
                b = *(const int *)p ? 1 : 0;
                return pd_w_bytes(cc, &b, 1);
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                pd_enum_symbols(f->kind, &nsyms);
                v = pd_enum_get(f, p);
                if (v < 0 || (size_t)v >= nsyms)
                        return pd_field_err(cc, f, "%d is not a symbol", v);
                return pd_w_long(cc, v);
        case PD_FK_STRV: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                /* One block with every item, then the empty block; an empty
                 * array is the empty block alone. */
                if (sv->cnt > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (sv->cnt && pd_w_long(cc, (int64_t)sv->cnt))
                        return -1;
                for (i = 0; i < sv->cnt; i++)
                        if (pd_w_string(cc, f, sv->v[i]))
                                return -1;
                return pd_w_long(cc, 0);
        }
        case PD_FK_REGISTRY: {
                const pd_regentry_t *reg = *(pd_regentry_t *const *)p;
                int err                  = 0;

                cnt = *(const size_t *)((const char *)base + f->aux);
                if (cnt > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (cnt && pd_w_long(cc, (int64_t)cnt))
                        return -1;
                for (i = 0; !err && i < cnt; i++) {
                        snprintf(cc->prefix, sizeof(cc->prefix), "%s[%zu].",
                                 f->name, i);
                        err = pd_avro_write_record(cc, pd_fields_regentry,
                                                   &reg[i]);
                }
                cc->prefix[0] = '\0';
                return err ? -1 : pd_w_long(cc, 0);
        }
        }
        return pd_field_err(cc, f, "unknown kind");
}

static int pd_avro_write_record(pd_codec_t *cc, const pd_field_t *fields,
                                const void *base) {
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                if (pd_avro_write_field(cc, f, base))
                        return -1;
        return 0;
}

int pd_event_encode(const pd_event_t *ev, void **bufp, size_t *lenp,
                    char *errstr, size_t errstr_size) {
        pd_codec_t cc = {.errstr = errstr, .errstr_size = errstr_size};
        uint8_t hdr[PD_SO_HDR_LEN] = {0xc3, 0x01};
        uint64_t fp;
        int i, err = -1;

        *bufp = NULL;
        *lenp = 0;
        if (pd_schemas_ready(errstr, errstr_size))
                goto out;
        if (!pd_evtype_valid(ev->type)) {
                pd_errf(errstr, errstr_size, "cannot encode an event of type %d",
                       (int)ev->type);
                goto out;
        }
        fp = pd_schemas[ev->type].fp;
        for (i = 0; i < 8; i++) /* the fingerprint is little-endian */
                hdr[2 + i] = (uint8_t)(fp >> (8 * i));
        if (pd_w_bytes(&cc, hdr, sizeof(hdr)) ||
            pd_avro_write_record(&cc, pd_evtypes[ev->type].fields, ev))
                goto out;
        if (cc.wlen > PD_EVENT_VALUE_MAX) {
                pd_errf(errstr, errstr_size,
                       "%s is %zu bytes encoded, more than the %d accepted",
                       pd_evtypes[ev->type].name, cc.wlen, PD_EVENT_VALUE_MAX);
                goto out;
        }
        *bufp   = cc.wbuf;
        *lenp   = cc.wlen;
        cc.wbuf = NULL;
        err     = 0;
out:
        free(cc.wbuf);
        return err;
}


/*
 * Avro binary: reading. Every length and count is checked against what is
 * left of the input before anything is allocated.
 */

static int pd_r_long(pd_codec_t *cc, const pd_field_t *f, int64_t *vp) {
        uint64_t u = 0;
        int shift;
        uint8_t b;

        for (shift = 0; shift < 70; shift += 7) {
                if (cc->rp == cc->rend)
                        return pd_field_err(cc, f, "truncated datum");
                b = *cc->rp++;
                /* The tenth byte holds bit 63 and nothing else. */
                if (shift == 63 && b > 1)
                        return pd_field_err(cc, f, "varint overflows a long");
                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *vp = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
        }
        return pd_field_err(cc, f, "varint longer than 10 bytes");
}

static int pd_r_int(pd_codec_t *cc, const pd_field_t *f, int32_t *vp) {
        int64_t v;

        if (pd_r_long(cc, f, &v))
                return -1;
        if (v < INT32_MIN || v > INT32_MAX)
                return pd_field_err(cc, f, "%" PRId64 " does not fit an int",
                                    v);
        *vp = (int32_t)v;
        return 0;
}

/* A union index: 0 (null) or 1 (the value). */
static int pd_r_branch(pd_codec_t *cc, const pd_field_t *f, int *valuep) {
        int64_t v;

        if (pd_r_long(cc, f, &v))
                return -1;
        if (v != 0 && v != 1)
                return pd_field_err(cc, f, "union branch %" PRId64
                                           " does not exist", v);
        *valuep = (int)v;
        return 0;
}

/* Reads a string into *sp (malloc'ed). */
static int pd_r_string(pd_codec_t *cc, const pd_field_t *f, char **sp) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        int64_t len;
        char *s;

        if (pd_r_long(cc, f, &len))
                return -1;
        if (len < 0)
                return pd_field_err(cc, f, "negative string length");
        if ((uint64_t)len > (uint64_t)(cc->rend - cc->rp))
                return pd_field_err(cc, f, "truncated datum");
        if ((uint64_t)len > max)
                return pd_field_err(cc, f, "%" PRId64 " bytes, longer than %zu",
                                    len, max);
        if (memchr(cc->rp, '\0', (size_t)len))
                return pd_field_err(cc, f, "contains a NUL byte");
        if (!pd_utf8_valid(cc->rp, (size_t)len))
                return pd_field_err(cc, f, "not valid UTF-8");
        if (!(s = malloc((size_t)len + 1)))
                return pd_field_err(cc, f, "out of memory");
        memcpy(s, cc->rp, (size_t)len);
        s[len]  = '\0';
        cc->rp += len;
        *sp     = s;
        return 0;
}

/*
 * Reads the item count of the next array block into *cntp (0: the array
 * ended); *totalp counts the items so far. A negative count is followed by
 * the block's size in bytes (the specification allows it so a reader can
 * skip the block). Every item takes at least one byte, which bounds a count
 * by the input left.
 */
static int pd_r_block(pd_codec_t *cc, const pd_field_t *f, size_t *totalp,
                      size_t *cntp) {
        int64_t cnt, size;

        if (pd_r_long(cc, f, &cnt))
                return -1;
        if (cnt < 0) {
                if (cnt == INT64_MIN)
                        return pd_field_err(cc, f, "bad block count");
                cnt = -cnt;
                if (pd_r_long(cc, f, &size))
                        return -1;
                if (size < 0)
                        return pd_field_err(cc, f, "negative block size");
        }
        if ((uint64_t)cnt > (uint64_t)(cc->rend - cc->rp))
                return pd_field_err(cc, f, "truncated datum");
        if ((uint64_t)cnt > PD_ARRAY_MAX - *totalp)
                return pd_field_err(cc, f, "more than %d items", PD_ARRAY_MAX);
        *cntp = (size_t)cnt;
        *totalp += (size_t)cnt;
        return 0;
}

static int pd_avro_read_record(pd_codec_t *cc, const pd_field_t *fields,
                               void *base);

static int pd_avro_read_field(pd_codec_t *cc, const pd_field_t *f,
                              void *base) {
        char *p = (char *)base + f->off;
        size_t i, cnt, nsyms, total = 0;
        int64_t v;
        int present = 0;
        char *s;

        switch (f->kind) {
        case PD_FK_STRING:
                return pd_r_string(cc, f, (char **)p);
        case PD_FK_NSTRING:
                if (pd_r_branch(cc, f, &present))
                        return -1;
                return present ? pd_r_string(cc, f, (char **)p) : 0;
        case PD_FK_INT:
                return pd_r_int(cc, f, (int32_t *)p);
        case PD_FK_NINT:
                if (pd_r_branch(cc, f, &present))
                        return -1;
                *(int *)((char *)base + f->aux) = present;
                return present ? pd_r_int(cc, f, (int32_t *)p) : 0;
        case PD_FK_LONG:
                return pd_r_long(cc, f, (int64_t *)p);
        case PD_FK_BOOL:
                if (cc->rp == cc->rend)
                        return pd_field_err(cc, f, "truncated datum");
                if (*cc->rp > 1)
                        return pd_field_err(cc, f, "boolean byte %d is not 0 "
                                                   "or 1", *cc->rp);
                *(int *)p = *cc->rp++;
                return 0;
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                pd_enum_symbols(f->kind, &nsyms);
                if (pd_r_long(cc, f, &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= nsyms)
                        return pd_field_err(cc, f, "symbol %" PRId64
                                                   " does not exist", v);
                pd_enum_set(f, p, (int)v);
                return 0;
        case PD_FK_STRV:
                for (;;) {
                        if (pd_r_block(cc, f, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        for (i = 0; i < cnt; i++) {
                                if (pd_r_string(cc, f, &s))
                                        return -1;
                                if (pd_strv_add((pd_strv_t *)p, s)) {
                                        free(s);
                                        return pd_field_err(cc, f,
                                                            "out of memory");
                                }
                                free(s);
                        }
                }
        case PD_FK_REGISTRY: {
                pd_regentry_t **regp = (pd_regentry_t **)p;
                size_t *cntp         = (size_t *)((char *)base + f->aux);
                pd_regentry_t *nreg;
                int err = 0;

                for (;;) {
                        if (pd_r_block(cc, f, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        if (!(nreg = realloc(*regp,
                                             (*cntp + cnt) * sizeof(*nreg))))
                                return pd_field_err(cc, f, "out of memory");
                        memset(nreg + *cntp, 0, cnt * sizeof(*nreg));
                        *regp = nreg;
                        /* Count each entry before filling it, so that a
                         * failure frees what it got. */
                        for (i = 0; !err && i < cnt; i++) {
                                snprintf(cc->prefix, sizeof(cc->prefix),
                                         "%s[%zu].", f->name, *cntp);
                                err = pd_avro_read_record(
                                        cc, pd_fields_regentry,
                                        &(*regp)[(*cntp)++]);
                        }
                        cc->prefix[0] = '\0';
                        if (err)
                                return -1;
                }
        }
        }
        return pd_field_err(cc, f, "unknown kind");
}

static int pd_avro_read_record(pd_codec_t *cc, const pd_field_t *fields,
                               void *base) {
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                if (pd_avro_read_field(cc, f, base))
                        return -1;
        return 0;
}

static int pd_event_decode_avro(pd_event_t *ev, const uint8_t *buf,
                                size_t len, pd_codec_t *cc) {
        const pd_history_t *old = NULL;
        pd_evtype_t otype;
        uint64_t fp = 0;
        char known[256];
        int i, t;

        if ((len >= 1 && buf[0] != 0xc3) || (len >= 2 && buf[1] != 0x01))
                return pd_errf(cc->errstr, cc->errstr_size,
                              "bad magic %02x %02x: not Avro single-object "
                              "encoding (C3 01)",
                              buf[0], len >= 2 ? buf[1] : 0);
        if (len < PD_SO_HDR_LEN)
                return pd_errf(cc->errstr, cc->errstr_size,
                              "truncated: %zu bytes, less than the %d of the "
                              "single-object header",
                              len, PD_SO_HDR_LEN);
        for (i = 7; i >= 0; i--)
                fp = (fp << 8) | buf[2 + i];
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                if (pd_schemas[t].fp == fp)
                        break;
        /* Not the current schema: perhaps an older one still on a topic. */
        if (t == PD_EVT__CNT && (old = pd_history_find(fp, &otype)))
                t = (int)otype;
        if (t == PD_EVT__CNT)
                return pd_errf(cc->errstr, cc->errstr_size,
                              "unknown writer schema fingerprint 0x%016" PRIx64
                              "; known for %s: %s",
                              fp, pd_evtypes[ev->type].name,
                              pd_history_known(ev->type, known,
                                               sizeof(known)));
        if (t != (int)ev->type)
                return pd_errf(cc->errstr, cc->errstr_size,
                              "fingerprint is of %s, ce_type says %s",
                              pd_evtypes[t].name, pd_evtypes[ev->type].name);
        cc->rp   = buf + PD_SO_HDR_LEN;
        cc->rend = buf + len;
        if (old ? pd_history_read(cc, old, ev)
                : pd_avro_read_record(cc, pd_evtypes[t].fields, ev))
                return -1;
        if (cc->rp != cc->rend)
                return pd_errf(cc->errstr, cc->errstr_size,
                              "%zu trailing bytes after the %s datum",
                              (size_t)(cc->rend - cc->rp), pd_evtypes[t].name);
        return 0;
}


/*
 * JSON.
 */

static const char *pd_json_typename(const json_t *v) {
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

static int pd_json_type_err(pd_codec_t *cc, const pd_field_t *f,
                            const char *want, const json_t *v) {
        return pd_field_err(cc, f, "must be %s, not %s", want,
                            pd_json_typename(v));
}

static int pd_json_string(pd_codec_t *cc, const pd_field_t *f,
                          const json_t *v, char **sp) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        size_t len;

        if (!json_is_string(v))
                return pd_json_type_err(cc, f, "a string", v);
        /* jansson has checked the UTF-8 and, without JSON_ALLOW_NUL,
         * refused \u0000; the length check covers a schema default. */
        len = json_string_length(v);
        if (len > max)
                return pd_field_err(cc, f, "%zu bytes, longer than %zu", len,
                                    max);
        if (strlen(json_string_value(v)) != len)
                return pd_field_err(cc, f, "contains a NUL byte");
        if (!(*sp = strdup(json_string_value(v))))
                return pd_field_err(cc, f, "out of memory");
        return 0;
}

static int pd_json_int(pd_codec_t *cc, const pd_field_t *f, const json_t *v,
                       int32_t *vp) {
        json_int_t n;

        if (!json_is_integer(v))
                return pd_json_type_err(cc, f, "an integer", v);
        n = json_integer_value(v);
        if (n < INT32_MIN || n > INT32_MAX)
                return pd_field_err(cc, f, "%lld does not fit an int",
                                    (long long)n);
        *vp = (int32_t)n;
        return 0;
}

static int pd_json_read_record(pd_codec_t *cc, const pd_field_t *fields,
                               const json_t *sfields, const json_t *obj,
                               void *base);

/*
 * Reads JSON value v into field f of the record at base. sfield is the
 * field's definition in the .avsc (for a registry, its items' fields).
 */
static int pd_json_read_field(pd_codec_t *cc, const pd_field_t *f,
                              const json_t *sfield, const json_t *v,
                              void *base) {
        char *p = (char *)base + f->off;
        const char *const *syms;
        size_t i, nsyms;
        json_t *item;
        char *s;
        char q[80];

        switch (f->kind) {
        case PD_FK_STRING:
                return pd_json_string(cc, f, v, (char **)p);
        case PD_FK_NSTRING:
                return json_is_null(v) ? 0 : pd_json_string(cc, f, v,
                                                            (char **)p);
        case PD_FK_INT:
                return pd_json_int(cc, f, v, (int32_t *)p);
        case PD_FK_NINT:
                if (json_is_null(v))
                        return 0;
                *(int *)((char *)base + f->aux) = 1;
                return pd_json_int(cc, f, v, (int32_t *)p);
        case PD_FK_LONG:
                if (!json_is_integer(v))
                        return pd_json_type_err(cc, f, "an integer", v);
                *(int64_t *)p = json_integer_value(v);
                return 0;
        case PD_FK_BOOL:
                if (!json_is_boolean(v))
                        return pd_json_type_err(cc, f, "a boolean", v);
                *(int *)p = json_is_true(v);
                return 0;
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                if (!json_is_string(v))
                        return pd_json_type_err(cc, f, "a string", v);
                syms = pd_enum_symbols(f->kind, &nsyms);
                for (i = 0; i < nsyms; i++) {
                        if (!strcmp(json_string_value(v), syms[i])) {
                                pd_enum_set(f, p, (int)i);
                                return 0;
                        }
                }
                return pd_field_err(cc, f, "'%s' is not a %s symbol",
                                    pd_quote(json_string_value(v),
                                             json_string_length(v), q,
                                             sizeof(q)),
                                    f->kind == PD_FK_SELECTION ? "Selection"
                                                               : "Status");
        case PD_FK_STRV:
                if (!json_is_array(v))
                        return pd_json_type_err(cc, f, "an array", v);
                if (json_array_size(v) > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                json_array_foreach(v, i, item) {
                        if (!json_is_string(item))
                                return pd_field_err(
                                        cc, f, "item %zu must be a string, "
                                               "not %s",
                                        i, pd_json_typename(item));
                        if (pd_json_string(cc, f, item, &s))
                                return -1;
                        if (pd_strv_add((pd_strv_t *)p, s)) {
                                free(s);
                                return pd_field_err(cc, f, "out of memory");
                        }
                        free(s);
                }
                return 0;
        case PD_FK_REGISTRY: {
                pd_regentry_t **regp = (pd_regentry_t **)p;
                size_t *cntp         = (size_t *)((char *)base + f->aux);
                const json_t *sub    = json_object_get(
                        json_object_get(json_object_get(sfield, "type"),
                                        "items"),
                        "fields");
                int err = 0;

                if (!json_is_array(v))
                        return pd_json_type_err(cc, f, "an array", v);
                if (json_array_size(v) > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (!json_array_size(v))
                        return 0;
                if (!(*regp = calloc(json_array_size(v), sizeof(**regp))))
                        return pd_field_err(cc, f, "out of memory");
                json_array_foreach(v, i, item) {
                        snprintf(cc->prefix, sizeof(cc->prefix), "%s[%zu].",
                                 f->name, i);
                        (*cntp)++;
                        if (!json_is_object(item))
                                err = pd_errf(cc->errstr, cc->errstr_size,
                                             "field '%s[%zu]': must be an "
                                             "object, not %s",
                                             f->name, i,
                                             pd_json_typename(item));
                        else
                                err = pd_json_read_record(
                                        cc, pd_fields_regentry, sub, item,
                                        &(*regp)[i]);
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
static int pd_json_read_record(pd_codec_t *cc, const pd_field_t *fields,
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
                if (pd_json_read_field(cc, f, sfield, v, base))
                        return -1;
        }
        return 0;
}

/* Whether JSON text nests objects and arrays at most max deep; checked
 * before parsing so that a hostile value cannot make the parser recurse. */
static int pd_json_depth_ok(const char *s, size_t len, int max) {
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

static int pd_event_decode_json(pd_event_t *ev, const char *buf, size_t len,
                                pd_codec_t *cc) {
        json_t *root = NULL;
        json_error_t jerr;
        char q[80];
        int err = -1;

        if (!pd_json_depth_ok(buf, len, PD_JSON_DEPTH_MAX)) {
                pd_errf(cc->errstr, cc->errstr_size,
                       "JSON nested more than %d deep", PD_JSON_DEPTH_MAX);
                goto out;
        }
        if (!(root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr))) {
                pd_errf(cc->errstr, cc->errstr_size,
                       "invalid JSON at line %d column %d: %s", jerr.line,
                       jerr.column,
                       pd_quote(jerr.text, strlen(jerr.text), q, sizeof(q)));
                goto out;
        }
        if (!json_is_object(root)) {
                pd_errf(cc->errstr, cc->errstr_size,
                       "the JSON value is %s, not an object",
                       pd_json_typename(root));
                goto out;
        }
        err = pd_json_read_record(
                cc, pd_evtypes[ev->type].fields,
                json_object_get(pd_schemas[ev->type].root, "fields"), root, ev);
out:
        json_decref(root);
        return err;
}

/* A JSON string for s, with bytes that are not UTF-8 shown as '?': jansson
 * refuses invalid UTF-8, and output_tail is whatever a program printed. */
static json_t *pd_json_str(const char *s) {
        json_t *j;
        char *copy;

        if (!s)
                s = "";
        if ((j = json_string(s)) || !(copy = strdup(s)))
                return j;
        pd_utf8_scrub(copy, strlen(copy));
        j = json_string(copy);
        free(copy);
        return j;
}

static json_t *pd_json_write_record(const pd_field_t *fields,
                                    const void *base);

static json_t *pd_json_write_field(const pd_field_t *f, const void *base) {
        const char *p = (const char *)base + f->off;
        const char *const *syms;
        size_t i, nsyms;
        json_t *a;
        int v;

        switch (f->kind) {
        case PD_FK_STRING:
                return pd_json_str(*(char *const *)p);
        case PD_FK_NSTRING:
                return *(char *const *)p ? pd_json_str(*(char *const *)p)
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
                syms = pd_enum_symbols(f->kind, &nsyms);
                v    = pd_enum_get(f, p);
                return v >= 0 && (size_t)v < nsyms ? json_string(syms[v])
                                                   : json_null();
        case PD_FK_STRV: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                a = json_array();
                for (i = 0; i < sv->cnt; i++)
                        json_array_append_new(a, pd_json_str(sv->v[i]));
                return a;
        }
        case PD_FK_REGISTRY: {
                const pd_regentry_t *reg = *(pd_regentry_t *const *)p;
                size_t cnt = *(const size_t *)((const char *)base + f->aux);

                a = json_array();
                for (i = 0; i < cnt; i++)
                        json_array_append_new(
                                a, pd_json_write_record(pd_fields_regentry,
                                                        &reg[i]));
                return a;
        }
        }
        return json_null();
}

static json_t *pd_json_write_record(const pd_field_t *fields,
                                    const void *base) {
        json_t *obj = json_object();
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                json_object_set_new(obj, f->name, pd_json_write_field(f, base));
        return obj;
}

char *pd_event_to_json(const pd_event_t *ev) {
        json_t *obj = json_object(), *data;
        const char *key;
        json_t *v;
        char *out;

        json_object_set_new(obj, "type", pd_evtype_valid(ev->type)
                                                 ? json_string(pd_evtype_name(
                                                           ev->type))
                                                 : json_null());
        if (ev->ce_id)
                json_object_set_new(obj, "ce_id", pd_json_str(ev->ce_id));
        if (ev->ce_source)
                json_object_set_new(obj, "ce_source",
                                    pd_json_str(ev->ce_source));
        if (ev->ce_time)
                json_object_set_new(obj, "ce_time", pd_json_str(ev->ce_time));
        if (ev->tenant)
                json_object_set_new(obj, "ce_tenant", pd_json_str(ev->tenant));
        if (pd_evtype_valid(ev->type)) {
                data = pd_json_write_record(pd_evtypes[ev->type].fields, ev);
                json_object_foreach(data, key, v)
                        json_object_set(obj, key, v);
                json_decref(data);
        }
        out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        return out;
}


/*
 * The value, whatever its content type.
 */

/* Sets *is_jsonp from a content-type header: its media type, without
 * parameters such as "; charset=utf-8", case-insensitively. */
static int pd_content_type_parse(const char *ct, int *is_jsonp, char *errstr,
                                 size_t errstr_size) {
        size_t n;
        char q[80];

        *is_jsonp = 0;
        if (!ct)
                return 0;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
                n--;
        if (n == strlen("application/avro") &&
            !strncasecmp(ct, "application/avro", n))
                return 0;
        if (n == strlen("application/json") &&
            !strncasecmp(ct, "application/json", n)) {
                *is_jsonp = 1;
                return 0;
        }
        return pd_errf(errstr, errstr_size,
                      "unsupported content-type '%s' (application/avro or "
                      "application/json)",
                      pd_quote(ct, strlen(ct), q, sizeof(q)));
}

int pd_event_decode(pd_event_t *ev, const char *content_type, const void *buf,
                    size_t len, char *errstr, size_t errstr_size) {
        pd_codec_t cc = {.errstr = errstr, .errstr_size = errstr_size};
        int is_json, err = -1;

        if (pd_schemas_ready(errstr, errstr_size))
                return -1;
        if (!pd_evtype_valid(ev->type))
                return pd_errf(errstr, errstr_size,
                              "cannot decode an event of type %d",
                              (int)ev->type);
        /* Whatever ev held before is replaced, not merged. */
        pd_fields_clear(pd_evtypes[ev->type].fields, ev);
        if (pd_content_type_parse(content_type, &is_json, errstr, errstr_size))
                goto out;
        if (!buf) {
                pd_errf(errstr, errstr_size, "no value");
                goto out;
        }
        if (len > PD_EVENT_VALUE_MAX) {
                pd_errf(errstr, errstr_size,
                       "value is %zu bytes, more than the %d accepted", len,
                       PD_EVENT_VALUE_MAX);
                goto out;
        }
        if (is_json)
                err = pd_event_decode_json(ev, buf, len, &cc);
        else
                err = pd_event_decode_avro(ev, buf, len, &cc);
out:
        /* A half-decoded event must not look like a whole one. */
        if (err)
                pd_fields_clear(pd_evtypes[ev->type].fields, ev);
        return err;
}


/*
 * Kafka messages.
 */

/*
 * Copies header `name` into buf (PD_HDR_MAX + 1 bytes). Sets *presentp; an
 * absent header is an error if required. A present one must be 1 to
 * PD_HDR_MAX bytes of printable ASCII, which also keeps NULs, control
 * characters and UTF-8 out of ids, logs and the dead-letter topic.
 */
static int pd_hdr_get(const rd_kafka_headers_t *hdrs, const char *name,
                      int required, char *buf, int *presentp, char *errstr,
                      size_t errstr_size) {
        const void *val = NULL;
        const unsigned char *p;
        size_t size = 0, i;

        buf[0]    = '\0';
        *presentp = 0;
        if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &size)) {
                if (required)
                        return pd_errf(errstr, errstr_size, "missing header %s",
                                      name);
                return 0;
        }
        if (!val || !size)
                return pd_errf(errstr, errstr_size, "header %s is empty", name);
        if (size > PD_HDR_MAX)
                return pd_errf(errstr, errstr_size,
                              "header %s is %zu bytes, longer than %d", name,
                              size, PD_HDR_MAX);
        for (p = val, i = 0; i < size; i++)
                if (p[i] < 0x20 || p[i] >= 0x7f)
                        return pd_errf(errstr, errstr_size,
                                      "header %s is not printable ASCII",
                                      name);
        memcpy(buf, val, size);
        buf[size] = '\0';
        *presentp = 1;
        return 0;
}

pd_event_t *pd_event_from_parts(const rd_kafka_headers_t *hdrs,
                                const void *value, size_t len, char *errstr,
                                size_t errstr_size) {
        char specversion[PD_HDR_MAX + 1], id[PD_HDR_MAX + 1],
                source[PD_HDR_MAX + 1], type[PD_HDR_MAX + 1],
                time[PD_HDR_MAX + 1], tenant[PD_HDR_MAX + 1],
                ctype[PD_HDR_MAX + 1];
        int present, has_time, has_tenant, has_ctype;
        pd_evtype_t evtype;
        pd_event_t *ev = NULL;

        if (pd_hdr_get(hdrs, "ce_specversion", 1, specversion, &present,
                       errstr, errstr_size) ||
            pd_hdr_get(hdrs, "ce_id", 1, id, &present, errstr, errstr_size) ||
            pd_hdr_get(hdrs, "ce_source", 1, source, &present, errstr,
                       errstr_size) ||
            pd_hdr_get(hdrs, "ce_type", 1, type, &present, errstr,
                       errstr_size) ||
            pd_hdr_get(hdrs, "ce_time", 0, time, &has_time, errstr,
                       errstr_size) ||
            pd_hdr_get(hdrs, "ce_tenant", 0, tenant, &has_tenant, errstr,
                       errstr_size) ||
            pd_hdr_get(hdrs, "content-type", 0, ctype, &has_ctype, errstr,
                       errstr_size))
                goto fail;
        if (strcmp(specversion, "1.0")) {
                pd_errf(errstr, errstr_size,
                       "unsupported ce_specversion '%s' (1.0 expected)",
                       specversion);
                goto fail;
        }
        if ((evtype = pd_evtype_parse(type)) == PD_EVT_UNKNOWN) {
                pd_errf(errstr, errstr_size, "unknown ce_type '%s'", type);
                goto fail;
        }
        if (has_tenant && !pd_tenant_valid(tenant)) {
                pd_errf(errstr, errstr_size, "invalid tenant '%s' in ce_tenant",
                       tenant);
                goto fail;
        }
        if (!value) {
                pd_errf(errstr, errstr_size, "message has no value");
                goto fail;
        }

        ev = pd_event_new(evtype);
        if (pd_event_decode(ev, has_ctype ? ctype : NULL, value, len, errstr,
                            errstr_size))
                goto fail;

        /* A release becomes a word of an action's argv: one that is no
         * version (`--delete`) is refused here, before anything runs. The
         * requests on the events topic are checked; skip and reset may
         * leave it empty. Results only repeat a checked trigger's release,
         * and a report must still read those written before the rule. */
        if ((evtype == PD_EVT_RELEASE_DEPLOYED ||
             ((evtype == PD_EVT_SKIP_REQUESTED ||
               evtype == PD_EVT_RESET_REQUESTED) &&
              ev->release && *ev->release)) &&
            !pd_release_valid(ev->release)) {
                char q[80];

                pd_errf(errstr, errstr_size,
                        "invalid release '%s': a release is " PD_RELEASE_RULE,
                        ev->release ? pd_quote(ev->release,
                                               strlen(ev->release), q,
                                               sizeof(q))
                                    : "");
                goto fail;
        }

        /* The results types carry the tenant in their data too; the two
         * must not tell different stories. */
        if (ev->tenant) {
                if (!pd_tenant_valid(ev->tenant)) {
                        char q[80];

                        pd_errf(errstr, errstr_size,
                               "invalid tenant '%s' in the data",
                               pd_quote(ev->tenant, strlen(ev->tenant), q,
                                        sizeof(q)));
                        goto fail;
                }
                if (has_tenant && strcmp(ev->tenant, tenant)) {
                        pd_errf(errstr, errstr_size,
                               "tenant '%s' in the data, '%s' in ce_tenant",
                               ev->tenant, tenant);
                        goto fail;
                }
        } else if (has_tenant) {
                ev->tenant = pd_xstrdup(tenant);
        }
        ev->ce_id     = pd_xstrdup(id);
        ev->ce_source = pd_xstrdup(source);
        if (has_time)
                ev->ce_time = pd_xstrdup(time);
        return ev;

fail:
        pd_event_destroy(ev);
        return NULL;
}

pd_event_t *pd_event_from_message(const rd_kafka_message_t *rkm, char *errstr,
                                  size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;

        if (rkm->err) {
                pd_errf(errstr, errstr_size, "consume error: %s",
                       rd_kafka_message_errstr(rkm));
                return NULL;
        }
        err = rd_kafka_message_headers(rkm, &hdrs);
        if (err == RD_KAFKA_RESP_ERR__NOENT) {
                hdrs = NULL;
        } else if (err) {
                pd_errf(errstr, errstr_size, "cannot read the headers: %s",
                       rd_kafka_err2str(err));
                return NULL;
        }
        return pd_event_from_parts(hdrs, rkm->payload, rkm->len, errstr,
                                   errstr_size);
}

rd_kafka_headers_t *pd_event_headers(const pd_event_t *ev) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);

        rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
        if (ev->ce_id)
                rd_kafka_header_add(hdrs, "ce_id", -1, ev->ce_id, -1);
        if (ev->ce_source)
                rd_kafka_header_add(hdrs, "ce_source", -1, ev->ce_source, -1);
        if (pd_evtype_valid(ev->type))
                rd_kafka_header_add(hdrs, "ce_type", -1,
                                    pd_evtypes[ev->type].name, -1);
        if (ev->ce_time)
                rd_kafka_header_add(hdrs, "ce_time", -1, ev->ce_time, -1);
        if (ev->tenant)
                rd_kafka_header_add(hdrs, "ce_tenant", -1, ev->tenant, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/avro", -1);
        return hdrs;
}

rd_kafka_resp_err_t pd_event_produce(rd_kafka_t *rk, const char *topic,
                                     const char *key, pd_event_t *ev,
                                     void *opaque, char *errstr,
                                     size_t errstr_size) {
        return pd_event_produce_signed(rk, topic, key, ev, NULL, 0, opaque,
                                       errstr, errstr_size);
}

rd_kafka_resp_err_t pd_event_produce_signed(rd_kafka_t *rk, const char *topic,
                                            const char *key, pd_event_t *ev,
                                            const unsigned char *secret,
                                            size_t secret_len, void *opaque,
                                            char *errstr,
                                            size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;
        void *buf = NULL;
        size_t len;

        pd_event_stamp(ev, NULL);
        if (pd_event_encode(ev, &buf, &len, errstr, errstr_size)) {
                err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                goto out;
        }
        hdrs = pd_event_headers(ev);
        if (!key)
                key = ev->tenant;
        if (secret && pd_sign_headers(hdrs, key, key ? strlen(key) : 0, buf,
                                      len, secret, secret_len, errstr,
                                      errstr_size)) {
                err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                goto out;
        }
        err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque),
                RD_KAFKA_V_END);
        if (err) {
                pd_errf(errstr, errstr_size, "cannot produce %s to %s: %s",
                       pd_evtypes[ev->type].name, topic, rd_kafka_err2str(err));
                goto out;
        }
        /* librdkafka owns the value and the headers once producev succeeds,
         * and only then. */
        buf  = NULL;
        hdrs = NULL;
out:
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        free(buf);
        return err;
}


/*
 * What schemas/history.c reads with (schemas/codec.h).
 */

const pd_field_t *pd_codec_fields(pd_evtype_t type) {
        return pd_evtype_valid(type) ? pd_evtypes[type].fields : NULL;
}

const pd_field_t *pd_codec_regentry_fields(void) {
        return pd_fields_regentry;
}

const char *pd_codec_schema_text(pd_evtype_t type) {
        return pd_evtype_valid(type) ? pd_evtypes[type].schema : NULL;
}

const json_t *pd_codec_schema_json(pd_evtype_t type) {
        return pd_evtype_valid(type) ? pd_schemas[type].root : NULL;
}

const char *const *pd_codec_enum_symbols(pd_fkind_t kind, size_t *cntp) {
        return pd_enum_symbols(kind, cntp);
}

void pd_codec_enum_set(const pd_field_t *f, void *p, int v) {
        pd_enum_set(f, p, v);
}

int pd_codec_read_field(pd_codec_t *cc, const pd_field_t *f, void *base) {
        return pd_avro_read_field(cc, f, base);
}

int pd_codec_read_long(pd_codec_t *cc, const pd_field_t *f, int64_t *vp) {
        return pd_r_long(cc, f, vp);
}

int pd_codec_read_block(pd_codec_t *cc, const pd_field_t *f, size_t *totalp,
                        size_t *cntp) {
        return pd_r_block(cc, f, totalp, cntp);
}

int pd_codec_json_read_field(pd_codec_t *cc, const pd_field_t *f,
                             const json_t *sfield, const json_t *v,
                             void *base) {
        return pd_json_read_field(cc, f, sfield, v, base);
}
