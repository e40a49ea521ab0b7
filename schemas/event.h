/*
 * event.h - postdeploy's events and their wire format.
 *
 * Every record on postdeploy's topics is a CloudEvents 1.0 event in Kafka
 * binary mode: the attributes are headers (ce_specversion, ce_id, ce_source,
 * ce_type, ce_time, the extension ce_tenant) and the value is the data, with
 * its format in the plain `content-type` header:
 *   application/avro  Avro single-object encoding: C3 01, the 8-byte
 *                     little-endian CRC-64-AVRO fingerprint of the schema's
 *                     Parsing Canonical Form, then the Avro binary datum.
 *   application/json  a JSON object with the same field names (accepted on
 *                     input so that any Kafka client can trigger a deploy).
 * The schemas are schemas/<type>.avsc; they are compiled into the binary.
 *
 * One struct, pd_event_t, carries every type: the fields a type does not
 * have stay zero/NULL. The codec is driven by a table of (field name, kind,
 * offset) so that Avro, JSON and the struct cannot drift apart.
 *
 * Reading events from and producing them to Kafka is schemas/cloudevents.h;
 * this header does not include librdkafka's.
 */
#ifndef PD_EVENT_H
#define PD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/strv.h"

typedef enum pd_evtype_e {
        PD_EVT_UNKNOWN = 0,
        PD_EVT_RELEASE_DEPLOYED,   /* in:  "release.deployed" */
        PD_EVT_DEPLOY_PLANNED,     /* out: "deploy.planned" */
        PD_EVT_ACTION_STARTED,     /* out: "action.started" */
        PD_EVT_ACTION_FINISHED,    /* out: "action.finished" */
        PD_EVT_REGISTRY_PUBLISHED, /* out: "registry.published" */
        PD_EVT_SKIP_REQUESTED,     /* in:  "actions.skip_requested" */
        PD_EVT_RESET_REQUESTED,    /* in:  "actions.reset_requested" */
        PD_EVT_CANCEL_REQUESTED,   /* in:  "actions.cancel_requested" */
        PD_EVT_CANCEL_ANSWERED,    /* out: "actions.cancel_answered" */
        PD_EVT_PAUSE_REQUESTED,    /* in and out: "actions.pause_requested" */
        PD_EVT_RESUME_REQUESTED,   /* in and out: "actions.resume_requested" */
        PD_EVT_ACTION_PROGRESS,    /* out: "action.progress" */
        PD_EVT__CNT
} pd_evtype_t;

/* "release.deployed" ... ; NULL for PD_EVT_UNKNOWN. */
const char *pd_evtype_name(pd_evtype_t type);
/* The type named by a ce_type value, PD_EVT_UNKNOWN if none. */
pd_evtype_t pd_evtype_parse(const char *name);

typedef enum pd_selection_e {
        PD_SEL_AUTO = 0, /* pending auto actions */
        PD_SEL_ALL,      /* pending auto and manual actions */
        PD_SEL_ONE,      /* the named actions, whatever their state */
} pd_selection_t;

const char *pd_selection_name(pd_selection_t sel); /* "AUTO" ... */

typedef enum pd_status_e {
        PD_ST_SUCCEEDED = 0,
        PD_ST_FAILED,
        PD_ST_TIMED_OUT,
        PD_ST_INTERRUPTED,
        PD_ST_SKIPPED,
        PD_ST_REJECTED,
        PD_ST_RESET,     /* history forgotten on request: pending again */
        PD_ST_CANCELLED, /* stopped while running on request: pending */
        PD_ST__CNT
} pd_status_t;

const char *pd_status_name(pd_status_t st); /* "SUCCEEDED" ... */
/* Returns the status named s, or -1. */
int pd_status_parse(const char *s);

/* One entry of registry.published. */
typedef struct pd_regentry_s {
        char *id; /* action name */
        int is_auto;
        char *policy; /* "once" | "always" */
        char *description;
        pd_strv_t after;
        pd_strv_t params; /* declared: "name" required, "name?" optional */
} pd_regentry_t;

/* The key of registry.published on the results topic; it always goes to
 * partition 0. No tenant/action key can equal it (it has no '/'). */
#define PD_REGISTRY_KEY "registry"

/* The header every record of a co-partitioning reactor carries (value "1"):
 * its tenant's records go to the results partition numbered as the events
 * partition they answer. A record without it was published before
 * (keyed "tenant/action", the partitioner chose): a reader of one tenant
 * reads such a prefix of every partition (producer/results.c). */
#define PD_COPART_HEADER "pd_cp"

/* Largest output_tail carried by action.finished. */
#define PD_OUTPUT_TAIL_MAX 4096

/* Largest record value accepted or written (Avro or JSON). */
#define PD_EVENT_VALUE_MAX (1024 * 1024)

typedef struct pd_event_s {
        pd_evtype_t type;

        /* CloudEvents attributes (headers). Owned. */
        char *ce_id;     /* unique per source */
        char *ce_source; /* e.g. "postdeploy-cli/HOST" */
        char *ce_time;   /* RFC 3339, e.g. "2026-11-25T14:00:00.123Z" */
        char *tenant;    /* ce_tenant; NULL if the header was absent */

        /* release.deployed */
        char *release;
        char *environment;
        pd_selection_t selection;
        pd_strv_t actions; /* the names, for ONE; also deploy.planned */
        char *requested_by;
        int64_t deployed_at; /* ms since the epoch */
        pd_strv_t params;    /* name, value, name, value ... (a map) */
        int dry_run; /* plan only; also deploy.planned: the answer to one */

        /* action.started / action.finished (tenant is in the data too) */
        char *action;
        char *trigger_id; /* ce_id of the event that caused the run */
        int32_t attempt;  /* 1, 2, ... */
        int64_t started_at;
        char *reactor; /* who ran it */
        int queued;    /* action.started: waits for a slot (concurrency),
                        * not started yet */

        /* action.finished */
        pd_status_t status;
        int has_exit_code; /* exit_code is ["null","int"] */
        int32_t exit_code;
        int64_t duration_ms;
        char *error;       /* NULL = null */
        char *output_tail; /* at most PD_OUTPUT_TAIL_MAX bytes; "" if none */
        int64_t finished_at;
        int retrying; /* another attempt follows */

        /* actions.skip_requested / actions.reset_requested: release,
         * actions (the names), requested_by, and: */
        int all_pending;      /* every pending action instead of names
                               * (actions.cancel_requested: all_running,
                               * every running one) */
        int64_t requested_at; /* ms since the epoch */

        /* actions.cancel_answered: tenant, trigger_id, reactor, actions
         * (those stopped), requested_by, and the names not running: */
        pd_strv_t not_running;

        /* actions.pause_requested / actions.resume_requested:
         * requested_by, requested_at, and: */
        int all_tenants; /* every tenant, not ce_tenant's */

        /* action.progress: tenant, action, release, trigger_id, attempt,
         * reactor, and how far the run has got, as it said, and when: */
        int64_t done;
        int64_t total; /* 0: not known */
        int64_t at;

        /* deploy.planned: tenant, release, trigger_id, reactor, actions,
         * dry_run, and: */
        int64_t planned_at;
        pd_strv_t skipped;     /* a dry run: what would not run, */
        pd_strv_t skipped_why; /* and why, one per name */

        /* registry.published */
        pd_regentry_t *registry;
        size_t registry_cnt;
        int64_t published_at;
} pd_event_t;

/* Allocates a zeroed event of `type`. Never NULL (aborts on OOM). */
pd_event_t *pd_event_new(pd_evtype_t type);
/* Frees ev and every string it owns. NULL is fine. */
void pd_event_destroy(pd_event_t *ev);

/* Fills ce_id (random UUID v4), ce_time (now) and ce_source if they are
 * NULL. */
void pd_event_stamp(pd_event_t *ev, const char *source);

/*
 * Encodes ev's data as Avro single-object encoding into a malloc'ed buffer
 * (*bufp, owned by the caller). Returns 0 or -1 with errstr.
 * Avro strings are never null except exit_code/error's unions, so a NULL
 * string member is written as "". Strings must be UTF-8 on the wire but
 * program output need not be: a byte that is not part of a valid UTF-8
 * sequence is written as '?'. A string longer than its bound (output_tail:
 * PD_OUTPUT_TAIL_MAX) or a value over PD_EVENT_VALUE_MAX is an error.
 */
int pd_event_encode(const pd_event_t *ev, void **bufp, size_t *lenp,
                    char *errstr, size_t errstr_size);

/*
 * Decodes a value of the given type and content type ("application/avro" or
 * "application/json"; NULL means Avro) into ev's data fields (ev->type must
 * be set). An Avro value written with an older released schema of the type
 * (schemas/history.h) is resolved to the current one. Returns 0 or -1 with
 * a reason in errstr (bad magic, "unknown writer schema fingerprint 0x...;
 * known for TYPE: ...", a fingerprint of another type, truncated datum,
 * missing JSON field, bad enum symbol, ...).
 */
int pd_event_decode(pd_event_t *ev, const char *content_type, const void *buf,
                    size_t len, char *errstr, size_t errstr_size);

/*
 * Writes ev's data as one JSON object (the same field names as the Avro
 * schema, plus "type" and the ce attributes). Returns a malloc'ed string.
 */
char *pd_event_to_json(const pd_event_t *ev);

/*
 * The CRC-64-AVRO fingerprint of the Parsing Canonical Form of the schema of
 * `type`, and that canonical form (static storage).
 */
uint64_t pd_event_fingerprint(pd_evtype_t type);
const char *pd_event_schema_canonical(pd_evtype_t type);

/*
 * The Parsing Canonical Form of any Avro schema text (exposed for tests).
 * Returns a malloc'ed string, or NULL with errstr if the text is not a
 * schema this implementation understands.
 */
char *pd_event_canonicalize(const char *schema, size_t len, char *errstr,
                            size_t errstr_size);

/* CRC-64-AVRO of any bytes (exposed for tests). */
uint64_t pd_crc64_avro(const void *buf, size_t len);

#endif
