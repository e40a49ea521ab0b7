/*
 * event.c - the event type itself: one field table per event type (the
 * design every codec in schemas/ is driven by), the names of types and
 * enums, stamping the CloudEvents attributes, loading and checking the
 * schemas once, new/destroy, and pd_event_decode, which picks the codec
 * from the content type.
 *
 * The codecs are beside it: schemas/avro.c (the binary encoding),
 * schemas/json.c (JSON in and out), schemas/pcf.c (Parsing Canonical Form
 * and fingerprints) and schemas/cloudevents.c (Kafka headers and
 * producing, the only part that needs librdkafka). What they share with
 * this file is in schemas/event_int.h.
 *
 * libavro-c parses every schema once and checks it against the field table,
 * so an .avsc edit that the tables do not follow fails every encode and
 * decode loudly instead of writing data nobody else can read.
 *
 * The field tables are the current schemas. A value written with an older
 * released one is read by schemas/history.c, which resolves it field by
 * field through the readers exported in schemas/codec.h.
 */
#include "schemas/event.h"
#include "schemas/event_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
extern const char pd_schema_cancel_requested[];
extern const char pd_schema_cancel_answered[];
extern const char pd_schema_pause_requested[];
extern const char pd_schema_resume_requested[];
extern const char pd_schema_action_progress[];

#define PD_F(name, kind, member)                                               \
        { name, kind, offsetof(pd_event_t, member), 0, 0 }

static const pd_field_t fields_release_deployed[] = {
    PD_F("release", PD_FK_STRING, release),
    PD_F("environment", PD_FK_STRING, environment),
    PD_F("selection", PD_FK_SELECTION, selection),
    PD_F("actions", PD_FK_STRV, actions),
    PD_F("requested_by", PD_FK_STRING, requested_by),
    PD_F("deployed_at", PD_FK_LONG, deployed_at),
    PD_F("params", PD_FK_SMAP, params),
    PD_F("dry_run", PD_FK_BOOL, dry_run),
    {NULL, 0, 0, 0, 0},
};

static const pd_field_t fields_deploy_planned[] = {
    PD_F("tenant", PD_FK_STRING, tenant),
    PD_F("release", PD_FK_STRING, release),
    PD_F("trigger_id", PD_FK_STRING, trigger_id),
    PD_F("actions", PD_FK_STRV, actions),
    PD_F("reactor", PD_FK_STRING, reactor),
    PD_F("planned_at", PD_FK_LONG, planned_at),
    PD_F("dry_run", PD_FK_BOOL, dry_run),
    PD_F("skipped", PD_FK_STRV, skipped),
    PD_F("skipped_why", PD_FK_STRV, skipped_why),
    {NULL, 0, 0, 0, 0},
};

static const pd_field_t fields_action_started[] = {
    PD_F("action", PD_FK_STRING, action),
    PD_F("tenant", PD_FK_STRING, tenant),
    PD_F("release", PD_FK_STRING, release),
    PD_F("trigger_id", PD_FK_STRING, trigger_id),
    PD_F("attempt", PD_FK_INT, attempt),
    PD_F("started_at", PD_FK_LONG, started_at),
    PD_F("reactor", PD_FK_STRING, reactor),
    PD_F("queued", PD_FK_BOOL, queued),
    {NULL, 0, 0, 0, 0},
};

static const pd_field_t fields_action_finished[] = {
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

static const pd_field_t fields_registry_published[] = {
    PD_F("reactor", PD_FK_STRING, reactor),
    PD_F("published_at", PD_FK_LONG, published_at),
    {"actions", PD_FK_REGISTRY, offsetof(pd_event_t, registry),
     offsetof(pd_event_t, registry_cnt), 0},
    {NULL, 0, 0, 0, 0},
};

/* actions.skip_requested and actions.reset_requested: the same fields, since
 * both name the actions of one tenant (in ce_tenant) that they apply to. */
static const pd_field_t fields_actions_requested[] = {
    PD_F("release", PD_FK_STRING, release),
    PD_F("actions", PD_FK_STRV, actions),
    PD_F("all_pending", PD_FK_BOOL, all_pending),
    PD_F("requested_by", PD_FK_STRING, requested_by),
    PD_F("requested_at", PD_FK_LONG, requested_at),
    {NULL, 0, 0, 0, 0},
};

/* actions.cancel_requested: all_running is all_pending's member, since
 * both mean "not by name". */
static const pd_field_t fields_cancel_requested[] = {
    PD_F("actions", PD_FK_STRV, actions),
    PD_F("all_running", PD_FK_BOOL, all_pending),
    PD_F("requested_by", PD_FK_STRING, requested_by),
    PD_F("requested_at", PD_FK_LONG, requested_at),
    {NULL, 0, 0, 0, 0},
};

static const pd_field_t fields_cancel_answered[] = {
    PD_F("tenant", PD_FK_STRING, tenant),
    PD_F("trigger_id", PD_FK_STRING, trigger_id),
    PD_F("reactor", PD_FK_STRING, reactor),
    PD_F("actions", PD_FK_STRV, actions),
    PD_F("not_running", PD_FK_STRV, not_running),
    PD_F("requested_by", PD_FK_STRING, requested_by),
    {NULL, 0, 0, 0, 0},
};

/* actions.pause_requested and actions.resume_requested: the same fields. */
static const pd_field_t fields_pause_requested[] = {
    PD_F("all_tenants", PD_FK_BOOL, all_tenants),
    PD_F("requested_by", PD_FK_STRING, requested_by),
    PD_F("requested_at", PD_FK_LONG, requested_at),
    {NULL, 0, 0, 0, 0},
};

static const pd_field_t fields_action_progress[] = {
    PD_F("tenant", PD_FK_STRING, tenant),
    PD_F("action", PD_FK_STRING, action),
    PD_F("release", PD_FK_STRING, release),
    PD_F("trigger_id", PD_FK_STRING, trigger_id),
    PD_F("attempt", PD_FK_INT, attempt),
    PD_F("reactor", PD_FK_STRING, reactor),
    PD_F("done", PD_FK_LONG, done),
    PD_F("total", PD_FK_LONG, total),
    PD_F("at", PD_FK_LONG, at),
    {NULL, 0, 0, 0, 0},
};

/* The items of registry_published's "actions": record RegisteredAction. */
const pd_field_t pd_fields_regentry[] = {
    {"id", PD_FK_STRING, offsetof(pd_regentry_t, id), 0, 0},
    {"auto", PD_FK_BOOL, offsetof(pd_regentry_t, is_auto), 0, 0},
    {"policy", PD_FK_STRING, offsetof(pd_regentry_t, policy), 0, 0},
    {"description", PD_FK_STRING, offsetof(pd_regentry_t, description), 0, 0},
    {"after", PD_FK_STRV, offsetof(pd_regentry_t, after), 0, 0},
    {"params", PD_FK_STRV, offsetof(pd_regentry_t, params), 0, 0},
    {NULL, 0, 0, 0, 0},
};

const struct pd_evtype_info_s pd_evtypes[PD_EVT__CNT] = {
    [PD_EVT_RELEASE_DEPLOYED] = {"release.deployed", pd_schema_release_deployed,
                                 fields_release_deployed},
    [PD_EVT_DEPLOY_PLANNED]   = {"deploy.planned", pd_schema_deploy_planned,
                                 fields_deploy_planned},
    [PD_EVT_ACTION_STARTED]   = {"action.started", pd_schema_action_started,
                                 fields_action_started},
    [PD_EVT_ACTION_FINISHED]  = {"action.finished", pd_schema_action_finished,
                                 fields_action_finished},
    [PD_EVT_REGISTRY_PUBLISHED] = {"registry.published",
                                   pd_schema_registry_published,
                                   fields_registry_published},
    [PD_EVT_SKIP_REQUESTED]     = {"actions.skip_requested",
                                   pd_schema_skip_requested,
                                   fields_actions_requested},
    [PD_EVT_RESET_REQUESTED]    = {"actions.reset_requested",
                                   pd_schema_reset_requested,
                                   fields_actions_requested},
    [PD_EVT_CANCEL_REQUESTED]   = {"actions.cancel_requested",
                                   pd_schema_cancel_requested,
                                   fields_cancel_requested},
    [PD_EVT_CANCEL_ANSWERED]    = {"actions.cancel_answered",
                                   pd_schema_cancel_answered,
                                   fields_cancel_answered},
    [PD_EVT_PAUSE_REQUESTED]    = {"actions.pause_requested",
                                   pd_schema_pause_requested,
                                   fields_pause_requested},
    [PD_EVT_RESUME_REQUESTED]   = {"actions.resume_requested",
                                   pd_schema_resume_requested,
                                   fields_pause_requested},
    [PD_EVT_ACTION_PROGRESS]    = {"action.progress", pd_schema_action_progress,
                                   fields_action_progress},
};

static const char *const selection_names[] = {"AUTO", "ALL", "ONE"};
static const char *const status_names[]    = {
       "SUCCEEDED", "FAILED",   "TIMED_OUT", "INTERRUPTED",
       "SKIPPED",   "REJECTED", "RESET",     "CANCELLED"};

/* A status added to event.h without its name here would be a NULL symbol. */
_Static_assert(PD_ARRAY_CNT(status_names) == PD_ST__CNT,
               "status_names must name every pd_status_t");

struct pd_schema_s pd_schemas[PD_EVT__CNT];
static char schemas_err[512]; /* non-empty if a schema is unusable */
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

/*
 * Small helpers.
 */

/* Reports a problem with field f (inside the current registry entry, if
 * any) as "field 'name': message". Returns -1. */
int pd_field_err(pd_codec_t *cc, const pd_field_t *f, const char *fmt, ...) {
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
const char *pd__quote(const void *s, size_t len, char *buf, size_t size) {
        const unsigned char *p = s;
        size_t i, n = len < size - 1 ? len : size - 1;

        if (n > 64)
                n = 64;
        for (i = 0; i < n; i++)
                buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
        buf[i] = '\0';
        return buf;
}

int pd__evtype_valid(pd_evtype_t type) {
        return type > PD_EVT_UNKNOWN && type < PD_EVT__CNT;
}


/*
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF).
 */

int pd__utf8_valid(const void *buf, size_t n) {
        const unsigned char *s = buf;
        size_t i               = 0, k;

        while (i < n) {
                if (!(k = pd_utf8_seq(s + i, n - i)))
                        return 0;
                i += k;
        }
        return 1;
}

/* Replaces every byte that is not part of a valid sequence with '?'. */
void pd__utf8_scrub(void *buf, size_t n) {
        unsigned char *s = buf;
        size_t i         = 0, k;

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
        return pd__evtype_valid(type) ? pd_evtypes[type].name : NULL;
}

pd_evtype_t pd_evtype_parse(const char *name) {
        int t;

        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                if (!strcmp(name, pd_evtypes[t].name))
                        return (pd_evtype_t)t;
        return PD_EVT_UNKNOWN;
}

const char *pd_selection_name(pd_selection_t sel) {
        return (unsigned)sel < PD_ARRAY_CNT(selection_names)
                   ? selection_names[sel]
                   : NULL;
}

const char *pd_status_name(pd_status_t st) {
        return (unsigned)st < PD_ST__CNT ? status_names[st] : NULL;
}

int pd_status_parse(const char *s) {
        int i;

        for (i = 0; i < PD_ST__CNT; i++)
                if (!strcmp(s, status_names[i]))
                        return i;
        return -1;
}

/* The symbols of an enum kind, in schema order. */
const char *const *pd__enum_symbols(pd_fkind_t kind, size_t *cntp) {
        if (kind == PD_FK_SELECTION) {
                *cntp = PD_ARRAY_CNT(selection_names);
                return selection_names;
        }
        *cntp = PD_ARRAY_CNT(status_names);
        return status_names;
}

int pd__enum_get(const pd_field_t *f, const void *p) {
        if (f->kind == PD_FK_SELECTION)
                return (int)*(const pd_selection_t *)p;
        return (int)*(const pd_status_t *)p;
}

void pd__enum_set(const pd_field_t *f, void *p, int v) {
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
 * Loading the schemas, once.
 */

/* Whether s is ["null", <type>]. */
static int avro_nullable(avro_schema_t s, avro_type_t type) {
        return is_avro_union(s) && avro_schema_union_size(s) == 2 &&
               is_avro_null(avro_schema_union_branch(s, 0)) &&
               avro_typeof(avro_schema_union_branch(s, 1)) == type;
}

int pd_codec_type_fits(avro_schema_t s, pd_fkind_t kind, int promote) {
        switch (kind) {
        case PD_FK_STRING:
                return is_avro_string(s);
        case PD_FK_NSTRING:
                return avro_nullable(s, AVRO_STRING);
        case PD_FK_INT:
                return is_avro_int32(s);
        case PD_FK_NINT:
                return avro_nullable(s, AVRO_INT32);
        case PD_FK_LONG:
                return is_avro_int64(s) || (promote && is_avro_int32(s));
        case PD_FK_BOOL:
                return is_avro_boolean(s);
        case PD_FK_STRV:
                return is_avro_array(s) &&
                       is_avro_string(avro_schema_array_items(s));
        case PD_FK_SMAP:
                return is_avro_map(s) &&
                       is_avro_string(avro_schema_map_values(s));
        default:
                return -1;
        }
}

/*
 * Checks that record schema rec has exactly the fields of the table, in
 * order, with Avro types that match their kinds. Returns 0 or -1 with
 * errstr.
 */
static int schema_check(avro_schema_t rec, const pd_field_t *fields,
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
                    strcmp(avro_schema_record_field_name(rec, (int)i), f->name))
                        return pd_errf(errstr, errstr_size,
                                       "field %zu should be '%s'", i + 1,
                                       f->name);
                ft = avro_schema_record_field_get_by_index(rec, (int)i);
                switch (f->kind) {
                case PD_FK_SELECTION:
                case PD_FK_STATUS:
                        syms = pd__enum_symbols(f->kind, &nsyms);
                        ok   = is_avro_enum(ft) &&
                             avro_schema_enum_number_of_symbols(ft) ==
                                 (int)nsyms;
                        for (j = 0; ok && j < nsyms; j++)
                                ok = !strcmp(avro_schema_enum_get(ft, (int)j),
                                             syms[j]);
                        break;
                case PD_FK_REGISTRY:
                        ok = is_avro_array(ft);
                        if (ok) {
                                items = avro_schema_array_items(ft);
                                if (schema_check(items, pd_fields_regentry,
                                                 errstr, errstr_size))
                                        return -1;
                        }
                        break;
                default:
                        ok = pd_codec_type_fits(ft, f->kind, 0) == 1;
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

static int schema_load(pd_evtype_t type, char *errstr, size_t errstr_size) {
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
        if (schema_check(schema, ti->fields, why, sizeof(why))) {
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
        if (!(canonical =
                  pd_event_canonicalize(ti->schema, len, why, sizeof(why)))) {
                pd_errf(errstr, errstr_size, "schema of %s: %s", ti->name, why);
                goto out;
        }
        pd_schemas[type].fp = pd_crc64_avro(canonical, strlen(canonical));
        pd_schemas[type].canonical = canonical;
        pd_schemas[type].root      = root;
        canonical                  = NULL;
        root                       = NULL;
        err                        = 0;
out:
        free(canonical);
        json_decref(root);
        if (schema)
                avro_schema_decref(schema);
        return err;
}

/* Runs once (pthread_once). The results live as long as the process. */
static void schemas_init(void) {
        int t, u;

        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                if (schema_load((pd_evtype_t)t, schemas_err,
                                sizeof(schemas_err)))
                        return;
        /* A decoder finds the type by fingerprint. */
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++)
                for (u = t + 1; u < PD_EVT__CNT; u++)
                        if (pd_schemas[t].fp == pd_schemas[u].fp)
                                pd_errf(schemas_err, sizeof(schemas_err),
                                        "schemas of %s and %s have the same "
                                        "fingerprint",
                                        pd_evtypes[t].name, pd_evtypes[u].name);
        /* The older released schemas resolve against these. */
        if (!schemas_err[0])
                pd_history_load(schemas_err, sizeof(schemas_err));
}

/* Returns 0 once the schemas are loaded, -1 with errstr if they cannot be. */
int pd__schemas_ready(char *errstr, size_t errstr_size) {
        pthread_once(&schemas_once, schemas_init);
        if (schemas_err[0])
                return pd_errf(errstr, errstr_size, "%s", schemas_err);
        return 0;
}

uint64_t pd_event_fingerprint(pd_evtype_t type) {
        char errstr[8];

        if (!pd__evtype_valid(type) ||
            pd__schemas_ready(errstr, sizeof(errstr)))
                return 0;
        return pd_schemas[type].fp;
}

const char *pd_event_schema_canonical(pd_evtype_t type) {
        char errstr[8];

        if (!pd__evtype_valid(type) ||
            pd__schemas_ready(errstr, sizeof(errstr)))
                return NULL;
        return pd_schemas[type].canonical;
}


/*
 * Events.
 */

pd_event_t *pd_event_new(pd_evtype_t type) {
        pd_event_t *ev = pd_xcalloc(1, sizeof(*ev));

        ev->type = type;
        return ev;
}

/* Frees what the fields of a table own in the record at base and zeroes
 * them, so the record is empty and ready to be decoded into. */
static void fields_clear(const pd_field_t *fields, void *base) {
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
                        *(int32_t *)p                   = 0;
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
                        pd__enum_set(f, p, 0);
                        break;
                case PD_FK_STRV:
                case PD_FK_SMAP:
                        pd_strv_clear((pd_strv_t *)p);
                        break;
                case PD_FK_REGISTRY: {
                        pd_regentry_t **regp = (pd_regentry_t **)p;
                        size_t *cntp = (size_t *)((char *)base + f->aux);

                        for (i = 0; i < *cntp; i++)
                                fields_clear(pd_fields_regentry, &(*regp)[i]);
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
                fields_clear(pd_evtypes[t].fields, ev);
        free(ev->ce_id);
        free(ev->ce_source);
        free(ev->ce_time);
        free(ev->tenant);
        free(ev);
}


/*
 * The value, whatever its content type.
 */

/* Sets *is_jsonp from a content-type header: its media type, without
 * parameters such as "; charset=utf-8", case-insensitively. */
static int content_type_parse(const char *ct, int *is_jsonp, char *errstr,
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
                       pd__quote(ct, strlen(ct), q, sizeof(q)));
}

int pd_event_decode(pd_event_t *ev, const char *content_type, const void *buf,
                    size_t len, char *errstr, size_t errstr_size) {
        pd_codec_t cc = {.errstr = errstr, .errstr_size = errstr_size};
        int is_json, err = -1;

        if (pd__schemas_ready(errstr, errstr_size))
                return -1;
        if (!pd__evtype_valid(ev->type))
                return pd_errf(errstr, errstr_size,
                               "cannot decode an event of type %d",
                               (int)ev->type);
        /* Whatever ev held before is replaced, not merged. */
        fields_clear(pd_evtypes[ev->type].fields, ev);
        if (content_type_parse(content_type, &is_json, errstr, errstr_size))
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
                err = pd__event_decode_json(ev, buf, len, &cc);
        else
                err = pd__event_decode_avro(ev, buf, len, &cc);
out:
        /* A half-decoded event must not look like a whole one. */
        if (err)
                fields_clear(pd_evtypes[ev->type].fields, ev);
        return err;
}


/*
 * What schemas/history.c reads with (schemas/codec.h).
 */

const pd_field_t *pd_codec_fields(pd_evtype_t type) {
        return pd__evtype_valid(type) ? pd_evtypes[type].fields : NULL;
}

const pd_field_t *pd_codec_regentry_fields(void) {
        return pd_fields_regentry;
}

const char *pd_codec_schema_text(pd_evtype_t type) {
        return pd__evtype_valid(type) ? pd_evtypes[type].schema : NULL;
}

const json_t *pd_codec_schema_json(pd_evtype_t type) {
        return pd__evtype_valid(type) ? pd_schemas[type].root : NULL;
}

const char *const *pd_codec_enum_symbols(pd_fkind_t kind, size_t *cntp) {
        return pd__enum_symbols(kind, cntp);
}

void pd_codec_enum_set(const pd_field_t *f, void *p, int v) {
        pd__enum_set(f, p, v);
}
