/*
 * history.c - the released writer schemas, and reading a value written
 * with an older one as the current schema (Avro schema resolution).
 *
 * A fleet is never upgraded at once: an older CLI publishes to a newer
 * reactor, a newer report reads results an older reactor wrote, and a
 * compacted results topic keeps old records for ever. So every schema
 * version that ever went out stays decodable: the table below lists them,
 * the older texts are frozen in schemas/history/, and a test fails when a
 * schemas/<type>.avsc changes without the table following (docs/SCHEMAS.md).
 *
 * Resolution is done here rather than with libavro-c's resolved readers so
 * that an old value is read by the same bounded readers as a current one
 * (avro.c: hostile input). At load, each older writer schema is matched
 * field by field, by name, against the current (reader's) field table,
 * giving a plan: in the writer's order, which reader field each writer
 * field fills, how its enum symbols map by name, or that it is skipped;
 * then the reader fields the writer lacks, which take the reader's
 * default. The Avro rules for what can be resolved are checked then, so a
 * history schema the current reader cannot read stops every encode and
 * decode at once (as a schema that the field tables do not match does),
 * not one record in production. Allowed: fields added with a default,
 * fields removed, fields reordered, enum symbols added (a symbol the reader
 * lacks is its enum "default", or an error for the record that uses it),
 * int read as long.
 */
#include "schemas/history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "schemas/codec.h"

/* The schema texts, compiled in by cmake/EmbedSchemas.cmake: the current
 * ones from schemas/<name>.avsc, the older ones from
 * schemas/history/<name>.v<N>.avsc. */
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
extern const char pd_schema_history_action_finished_v1[];
extern const char pd_schema_history_release_deployed_v1[];
extern const char pd_schema_history_deploy_planned_v1[];
extern const char pd_schema_history_registry_published_v1[];
extern const char pd_schema_history_action_started_v1[];
extern const char pd_schema_history_action_finished_v2[];

/*
 * Every released schema, by type and version. Changing a schema means
 * adding a row (docs/SCHEMAS.md): the old text goes to schemas/history/
 * and its row points there, the new text gets the next version and its
 * own fingerprint. Rows are never removed: a record written with any of
 * them may still be on a topic.
 */
static const pd_schema_version_t versions[] = {
    /* v2 added dry_run (deploy --dry-run). */
    {PD_EVT_RELEASE_DEPLOYED, 1, UINT64_C(0xf4dc7fa8e4886444),
     "schemas/history/release_deployed.v1.avsc",
     pd_schema_history_release_deployed_v1},
    {PD_EVT_RELEASE_DEPLOYED, 2, UINT64_C(0x53ceffd728efb991),
     "schemas/release_deployed.avsc", pd_schema_release_deployed},
    /* v2 added dry_run, skipped and skipped_why (a dry run's answer). */
    {PD_EVT_DEPLOY_PLANNED, 1, UINT64_C(0xf4a3570ed57adfb4),
     "schemas/history/deploy_planned.v1.avsc",
     pd_schema_history_deploy_planned_v1},
    {PD_EVT_DEPLOY_PLANNED, 2, UINT64_C(0xa361d87e99ca77de),
     "schemas/deploy_planned.avsc", pd_schema_deploy_planned},
    /* v2 added queued (a run waiting for its action's concurrency). */
    {PD_EVT_ACTION_STARTED, 1, UINT64_C(0x8fc98c2e2ae22142),
     "schemas/history/action_started.v1.avsc",
     pd_schema_history_action_started_v1},
    {PD_EVT_ACTION_STARTED, 2, UINT64_C(0xd643fa1af09b4619),
     "schemas/action_started.avsc", pd_schema_action_started},
    /* v2 added status RESET (postdeploy reset). */
    {PD_EVT_ACTION_FINISHED, 1, UINT64_C(0x45a8c5b1072a2b29),
     "schemas/history/action_finished.v1.avsc",
     pd_schema_history_action_finished_v1},
    /* v3 added status CANCELLED (postdeploy cancel). */
    {PD_EVT_ACTION_FINISHED, 2, UINT64_C(0xe4956fa0dbdcfe76),
     "schemas/history/action_finished.v2.avsc",
     pd_schema_history_action_finished_v2},
    {PD_EVT_ACTION_FINISHED, 3, UINT64_C(0xac472f56e9c79efb),
     "schemas/action_finished.avsc", pd_schema_action_finished},
    /* v2 added params to each action (deploy --one --param checks). */
    {PD_EVT_REGISTRY_PUBLISHED, 1, UINT64_C(0xff642dcd3020922e),
     "schemas/history/registry_published.v1.avsc",
     pd_schema_history_registry_published_v1},
    {PD_EVT_REGISTRY_PUBLISHED, 2, UINT64_C(0x6df1f7d020bb0b32),
     "schemas/registry_published.avsc", pd_schema_registry_published},
    {PD_EVT_SKIP_REQUESTED, 1, UINT64_C(0x76f74d34b379f952),
     "schemas/skip_requested.avsc", pd_schema_skip_requested},
    {PD_EVT_RESET_REQUESTED, 1, UINT64_C(0xda26e963b3d94eff),
     "schemas/reset_requested.avsc", pd_schema_reset_requested},
    {PD_EVT_CANCEL_REQUESTED, 1, UINT64_C(0x016f5dac500a62a0),
     "schemas/cancel_requested.avsc", pd_schema_cancel_requested},
    {PD_EVT_CANCEL_ANSWERED, 1, UINT64_C(0xfde72c40d6107b58),
     "schemas/cancel_answered.avsc", pd_schema_cancel_answered},
    {PD_EVT_PAUSE_REQUESTED, 1, UINT64_C(0xa4cfba3863695118),
     "schemas/pause_requested.avsc", pd_schema_pause_requested},
    {PD_EVT_RESUME_REQUESTED, 1, UINT64_C(0xdff142be8e2a8ff4),
     "schemas/resume_requested.avsc", pd_schema_resume_requested},
    {PD_EVT_ACTION_PROGRESS, 1, UINT64_C(0x526fbe31b62162e3),
     "schemas/action_progress.avsc", pd_schema_action_progress},
};

#define PD_VERSIONS_CNT (sizeof(versions) / sizeof(versions[0]))

/* Deepest nesting of writer types a skipped field may have: a recursive
 * record in a removed field must not let a hostile value recurse without
 * end. */
#define PD_SKIP_DEPTH_MAX 32

typedef struct pd_rplan_s pd_rplan_t;

/* How one field of the writer's record is read. */
typedef struct pd_rstep_s {
        pd_field_t wf;       /* the writer's field (its name, for errors) */
        const pd_field_t *f; /* the reader's field it fills; NULL: skip */
        avro_schema_t ws;    /* the writer's type */
        int *symmap;         /* enum: the writer's symbol -> the reader's
                              * index, -1: not in the reader's */
        size_t sym_cnt;      /* the writer's symbols */
        pd_rplan_t *items;   /* PD_FK_REGISTRY: each item's plan */
} pd_rstep_t;

/* How a record written with one schema is read as the reader's. */
struct pd_rplan_s {
        pd_rstep_t *steps; /* in the writer's field order */
        size_t step_cnt;
        const pd_field_t **fill;    /* reader fields the writer lacks */
        const json_t **fill_sfield; /* their definitions (with "default") */
        size_t fill_cnt;
};

/* An older released schema, ready to read; built once by
 * pd_history_load and read-only afterwards, so any thread may use it. */
struct pd_history_s {
        const pd_schema_version_t *v;
        uint64_t fp;          /* computed from the text */
        avro_schema_t schema; /* the writer's, parsed */
        pd_rplan_t *plan;     /* NULL: v is the current schema */
};

static pd_history_t history_table[PD_VERSIONS_CNT];

const pd_schema_version_t *pd_history_versions(size_t *cntp) {
        *cntp = PD_VERSIONS_CNT;
        return versions;
}

const char *pd_history_known(pd_evtype_t type, char *buf, size_t size) {
        size_t i, n = 0;
        int w;

        buf[0] = '\0';
        pd_event_fingerprint(type); /* loads the schemas, once */
        for (i = PD_VERSIONS_CNT; i-- > 0 && n < size;) {
                if (versions[i].type != type)
                        continue;
                w = snprintf(buf + n, size - n, "%s0x%016" PRIx64 " (v%d)",
                             n ? ", " : "", history_table[i].fp,
                             versions[i].version);
                if (w < 0)
                        break;
                n += (size_t)w;
        }
        return buf;
}

int pd_history_accepts(pd_evtype_t type, uint64_t fp) {
        size_t i;

        pd_event_fingerprint(type); /* loads the schemas, once */
        for (i = 0; i < PD_VERSIONS_CNT; i++)
                if (versions[i].type == type && history_table[i].fp == fp)
                        return 1;
        return 0;
}


/*
 * Building the plans.
 */

static void rplan_free(pd_rplan_t *plan) {
        size_t i;

        if (!plan)
                return;
        for (i = 0; i < plan->step_cnt; i++) {
                free(plan->steps[i].symmap);
                rplan_free(plan->steps[i].items);
        }
        free(plan->steps);
        free(plan->fill);
        free(plan->fill_sfield);
        free(plan);
}

/* A name without its namespace: Avro matches records and enums by that. */
static const char *unqualified(const char *name) {
        const char *dot = name ? strrchr(name, '.') : NULL;

        return dot ? dot + 1 : name ? name : "";
}

static pd_rplan_t *rplan_build(avro_schema_t wrec, const pd_field_t *rfields,
                               const json_t *rtype, char *errstr,
                               size_t errstr_size);

/*
 * The writer's enum ws read as the reader's enum of field f (whose type is
 * rtype in the reader's .avsc): each writer symbol maps to the reader's
 * symbol of the same name, else to the reader's "default", else to -1 (an
 * error for a record that has it).
 */
static int rstep_enum(pd_rstep_t *st, const json_t *rtype, char *errstr,
                      size_t errstr_size) {
        const char *const *syms;
        const char *dflt = json_string_value(json_object_get(rtype, "default"));
        size_t nsyms, i, j;
        int to_default = -1;

        syms = pd_codec_enum_symbols(st->f->kind, &nsyms);
        if (strcmp(
                unqualified(avro_schema_name(st->ws)),
                unqualified(json_string_value(json_object_get(rtype, "name")))))
                return pd_errf(
                    errstr, errstr_size,
                    "field '%s': enum %s is not the reader's %s", st->wf.name,
                    avro_schema_name(st->ws),
                    json_string_value(json_object_get(rtype, "name")));
        for (j = 0; dflt && j < nsyms; j++)
                if (!strcmp(dflt, syms[j]))
                        to_default = (int)j;
        st->sym_cnt = (size_t)avro_schema_enum_number_of_symbols(st->ws);
        st->symmap  = pd_xcalloc(st->sym_cnt, sizeof(int));
        for (i = 0; i < st->sym_cnt; i++) {
                st->symmap[i] = to_default;
                for (j = 0; j < nsyms; j++)
                        if (!strcmp(avro_schema_enum_get(st->ws, (int)i),
                                    syms[j]))
                                st->symmap[i] = (int)j;
        }
        return 0;
}

/*
 * Checks that the writer's type of a step can be read as its reader field
 * (with the field's definition sfield) and fills in what reading needs.
 * Returns 0 or -1 with errstr.
 */
static int rstep_match(pd_rstep_t *st, const json_t *sfield, char *errstr,
                       size_t errstr_size) {
        const json_t *rtype = json_object_get(sfield, "type");
        avro_schema_t ws    = st->ws, items;
        int ok              = 0;

        switch (st->f->kind) {
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                if (!is_avro_enum(ws))
                        break;
                return rstep_enum(st, rtype, errstr, errstr_size);
        case PD_FK_REGISTRY:
                if (!is_avro_array(ws))
                        break;
                items     = avro_schema_array_items(ws);
                rtype     = json_object_get(rtype, "items");
                st->items = rplan_build(items, pd_codec_regentry_fields(),
                                        rtype, errstr, errstr_size);
                return st->items ? 0 : -1;
        default:
                /* Avro promotes int to long: the same zig-zag varint on
                 * the wire. */
                ok = pd_codec_type_fits(ws, st->f->kind, 1) == 1;
        }
        if (!ok)
                return pd_errf(errstr, errstr_size,
                               "field '%s': the writer's type cannot be read "
                               "as the reader's",
                               st->wf.name);
        return 0;
}

/*
 * The plan that reads a record written with wrec as the reader's record
 * rtype (its .avsc JSON), whose fields are rfields. Returns a new plan
 * (rplan_free) or NULL with errstr.
 */
static pd_rplan_t *rplan_build(avro_schema_t wrec, const pd_field_t *rfields,
                               const json_t *rtype, char *errstr,
                               size_t errstr_size) {
        const json_t *rsfields = json_object_get(rtype, "fields");
        const char *rname = json_string_value(json_object_get(rtype, "name"));
        pd_rplan_t *plan;
        pd_rstep_t *st;
        const pd_field_t *f;
        const json_t *sfield;
        size_t i, j, wcnt, rcnt = 0;

        if (!is_avro_record(wrec) ||
            strcmp(unqualified(avro_schema_name(wrec)), unqualified(rname))) {
                pd_errf(errstr, errstr_size, "not a record %s",
                        unqualified(rname));
                return NULL;
        }
        for (f = rfields; f->name; f++)
                rcnt++;
        wcnt              = avro_schema_record_size(wrec);
        plan              = pd_xcalloc(1, sizeof(*plan));
        plan->steps       = pd_xcalloc(wcnt, sizeof(*plan->steps));
        plan->fill        = pd_xcalloc(rcnt, sizeof(*plan->fill));
        plan->fill_sfield = pd_xcalloc(rcnt, sizeof(*plan->fill_sfield));
        for (i = 0; i < wcnt; i++) {
                st          = &plan->steps[plan->step_cnt++];
                st->wf.name = avro_schema_record_field_name(wrec, (int)i);
                st->ws = avro_schema_record_field_get_by_index(wrec, (int)i);
                for (j = 0; j < rcnt; j++)
                        if (!strcmp(rfields[j].name, st->wf.name))
                                st->f = &rfields[j];
                if (st->f &&
                    rstep_match(
                        st, json_array_get(rsfields, (size_t)(st->f - rfields)),
                        errstr, errstr_size))
                        goto fail;
        }
        for (j = 0; j < rcnt; j++) {
                for (i = 0; i < wcnt; i++)
                        if (plan->steps[i].f == &rfields[j])
                                break;
                if (i < wcnt)
                        continue;
                sfield = json_array_get(rsfields, j);
                if (!json_object_get(sfield, "default")) {
                        pd_errf(errstr, errstr_size,
                                "field '%s' is not in the writer's schema "
                                "and has no default",
                                rfields[j].name);
                        goto fail;
                }
                plan->fill[plan->fill_cnt]          = &rfields[j];
                plan->fill_sfield[plan->fill_cnt++] = sfield;
        }
        return plan;
fail:
        rplan_free(plan);
        return NULL;
}

static void history_unload(void) {
        size_t i;

        for (i = 0; i < PD_VERSIONS_CNT; i++) {
                rplan_free(history_table[i].plan);
                if (history_table[i].schema)
                        avro_schema_decref(history_table[i].schema);
        }
        memset(history_table, 0, sizeof(history_table));
}

/* Loads one row: its fingerprint, and for an older schema its plan. */
static int history_load_one(pd_history_t *h, char *errstr, size_t errstr_size) {
        const pd_schema_version_t *v = h->v;
        size_t len                   = strlen(v->text);
        char *canonical;
        char why[256];

        if (!(canonical =
                  pd_event_canonicalize(v->text, len, why, sizeof(why))))
                return pd_errf(errstr, errstr_size, "%s: %s", v->path, why);
        h->fp = pd_crc64_avro(canonical, strlen(canonical));
        free(canonical);
        if (v->text == pd_codec_schema_text(v->type))
                return 0;
        if (avro_schema_from_json_length(v->text, len, &h->schema)) {
                h->schema = NULL;
                return pd_errf(errstr, errstr_size, "%s: %s", v->path,
                               avro_strerror());
        }
        if (!(h->plan =
                  rplan_build(h->schema, pd_codec_fields(v->type),
                              pd_codec_schema_json(v->type), why, sizeof(why))))
                return pd_errf(errstr, errstr_size,
                               "%s cannot be read as the current %s schema: "
                               "%s",
                               v->path, pd_evtype_name(v->type), why);
        return 0;
}

int pd_history_load(char *errstr, size_t errstr_size) {
        size_t i, j;

        for (i = 0; i < PD_VERSIONS_CNT; i++) {
                history_table[i].v = &versions[i];
                if (history_load_one(&history_table[i], errstr, errstr_size))
                        goto fail;
        }
        /* A decoder finds the schema by fingerprint. */
        for (i = 0; i < PD_VERSIONS_CNT; i++)
                for (j = i + 1; j < PD_VERSIONS_CNT; j++)
                        if (history_table[i].fp == history_table[j].fp) {
                                pd_errf(errstr, errstr_size,
                                        "%s and %s have the same fingerprint",
                                        versions[i].path, versions[j].path);
                                goto fail;
                        }
        return 0;
fail:
        history_unload();
        return -1;
}

const pd_history_t *pd_history_find(uint64_t fp, pd_evtype_t *typep) {
        size_t i;

        for (i = 0; i < PD_VERSIONS_CNT; i++) {
                if (history_table[i].plan && history_table[i].fp == fp) {
                        *typep = versions[i].type;
                        return &history_table[i];
                }
        }
        return NULL;
}


/*
 * Reading with a plan.
 */

static int skip_bytes(pd_codec_t *cc, const pd_field_t *wf, int64_t n) {
        if (n < 0)
                return pd_field_err(cc, wf, "negative length");
        if ((uint64_t)n > (uint64_t)(cc->rend - cc->rp))
                return pd_field_err(cc, wf, "truncated datum");
        cc->rp += n;
        return 0;
}

/* Steps over a value of writer type ws (a field the reader no longer
 * has), bounded like every read. */
static int skip_value(pd_codec_t *cc, const pd_field_t *wf, avro_schema_t ws,
                      int depth) {
        size_t i, cnt, total = 0;
        int64_t v;

        if (depth > PD_SKIP_DEPTH_MAX)
                return pd_field_err(cc, wf, "nested more than %d deep",
                                    PD_SKIP_DEPTH_MAX);
        switch (avro_typeof(ws)) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                return skip_bytes(cc, wf, 1);
        case AVRO_INT32:
        case AVRO_INT64:
                return pd_codec_read_long(cc, wf, &v);
        case AVRO_ENUM:
                if (pd_codec_read_long(cc, wf, &v))
                        return -1;
                if (v < 0 || v >= avro_schema_enum_number_of_symbols(ws))
                        return pd_field_err(
                            cc, wf, "symbol %" PRId64 " does not exist", v);
                return 0;
        case AVRO_FLOAT:
                return skip_bytes(cc, wf, 4);
        case AVRO_DOUBLE:
                return skip_bytes(cc, wf, 8);
        case AVRO_FIXED:
                return skip_bytes(cc, wf, avro_schema_fixed_size(ws));
        case AVRO_STRING:
        case AVRO_BYTES:
                if (pd_codec_read_long(cc, wf, &v))
                        return -1;
                return skip_bytes(cc, wf, v);
        case AVRO_ARRAY:
        case AVRO_MAP:
                for (;;) {
                        if (pd_codec_read_block(cc, wf, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        for (i = 0; i < cnt; i++) {
                                if (is_avro_map(ws) &&
                                    (pd_codec_read_long(cc, wf, &v) ||
                                     skip_bytes(cc, wf, v)))
                                        return -1;
                                if (skip_value(
                                        cc, wf,
                                        is_avro_map(ws)
                                            ? avro_schema_map_values(ws)
                                            : avro_schema_array_items(ws),
                                        depth + 1))
                                        return -1;
                        }
                }
        case AVRO_UNION:
                if (pd_codec_read_long(cc, wf, &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= avro_schema_union_size(ws))
                        return pd_field_err(
                            cc, wf, "union branch %" PRId64 " does not exist",
                            v);
                return skip_value(cc, wf, avro_schema_union_branch(ws, (int)v),
                                  depth + 1);
        case AVRO_RECORD:
                for (i = 0; i < avro_schema_record_size(ws); i++)
                        if (skip_value(cc, wf,
                                       avro_schema_record_field_get_by_index(
                                           ws, (int)i),
                                       depth + 1))
                                return -1;
                return 0;
        case AVRO_LINK:
                return skip_value(cc, wf, avro_schema_link_target(ws),
                                  depth + 1);
        default:
                return pd_field_err(cc, wf, "cannot skip a value of this type");
        }
}

static int rplan_read(pd_codec_t *cc, const pd_rplan_t *plan, void *base);

/* registry.published's actions, each item read with its own plan; as in
 * avro.c, each entry is counted before it is filled so that a failure
 * frees what it got. */
static int rstep_read_registry(pd_codec_t *cc, const pd_rstep_t *st,
                               void *base) {
        const pd_field_t *f  = st->f;
        pd_regentry_t **regp = (pd_regentry_t **)((char *)base + f->off);
        size_t *cntp         = (size_t *)((char *)base + f->aux);
        size_t i, cnt, total = 0;
        pd_regentry_t *nreg;
        int err = 0;

        for (;;) {
                if (pd_codec_read_block(cc, f, &total, &cnt))
                        return -1;
                if (!cnt)
                        return 0;
                nreg = pd_xrealloc(*regp, (*cntp + cnt) * sizeof(*nreg));
                memset(nreg + *cntp, 0, cnt * sizeof(*nreg));
                *regp = nreg;
                for (i = 0; !err && i < cnt; i++) {
                        snprintf(cc->prefix, sizeof(cc->prefix), "%s[%zu].",
                                 f->name, *cntp);
                        err = rplan_read(cc, st->items, &(*regp)[(*cntp)++]);
                }
                cc->prefix[0] = '\0';
                if (err)
                        return -1;
        }
}

static int rstep_read(pd_codec_t *cc, const pd_rstep_t *st, void *base) {
        int64_t v;

        if (!st->f)
                return skip_value(cc, &st->wf, st->ws, 0);
        if (st->symmap) {
                if (pd_codec_read_long(cc, st->f, &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= st->sym_cnt)
                        return pd_field_err(
                            cc, st->f, "symbol %" PRId64 " does not exist", v);
                if (st->symmap[v] < 0)
                        return pd_field_err(
                            cc, st->f,
                            "symbol '%s' of the writer's schema is "
                            "not in the reader's",
                            avro_schema_enum_get(st->ws, (int)v));
                pd_codec_enum_set(st->f, (char *)base + st->f->off,
                                  st->symmap[v]);
                return 0;
        }
        if (st->items)
                return rstep_read_registry(cc, st, base);
        return pd_codec_read_field(cc, st->f, base);
}

static int rplan_read(pd_codec_t *cc, const pd_rplan_t *plan, void *base) {
        size_t i;

        for (i = 0; i < plan->step_cnt; i++)
                if (rstep_read(cc, &plan->steps[i], base))
                        return -1;
        for (i = 0; i < plan->fill_cnt; i++)
                if (pd_codec_json_read_field(
                        cc, plan->fill[i], plan->fill_sfield[i],
                        json_object_get(plan->fill_sfield[i], "default"), base))
                        return -1;
        return 0;
}

int pd_history_read(pd_codec_t *cc, const pd_history_t *h, pd_event_t *ev) {
        return rplan_read(cc, h->plan, ev);
}

int pd_history_decode_with(pd_event_t *ev, const char *schema, const void *buf,
                           size_t len, char *errstr, size_t errstr_size) {
        pd_codec_t cc    = {.errstr = errstr, .errstr_size = errstr_size};
        avro_schema_t ws = NULL;
        pd_rplan_t *plan = NULL;
        char why[256];
        int err = -1;

        /* Loads the current schemas, whose JSON the plan takes defaults
         * from. */
        if (!pd_event_schema_canonical(ev->type))
                return pd_errf(errstr, errstr_size,
                               "no current schema for type %d", (int)ev->type);
        if (avro_schema_from_json_length(schema, strlen(schema), &ws)) {
                pd_errf(errstr, errstr_size, "writer schema: %s",
                        avro_strerror());
                ws = NULL;
                goto out;
        }
        if (!(plan = rplan_build(ws, pd_codec_fields(ev->type),
                                 pd_codec_schema_json(ev->type), why,
                                 sizeof(why)))) {
                pd_errf(errstr, errstr_size,
                        "cannot be read as the current %s schema: %s",
                        pd_evtype_name(ev->type), why);
                goto out;
        }
        cc.rp   = buf;
        cc.rend = cc.rp + len;
        if (rplan_read(&cc, plan, ev))
                goto out;
        if (cc.rp != cc.rend) {
                pd_errf(errstr, errstr_size, "%zu trailing bytes",
                        (size_t)(cc.rend - cc.rp));
                goto out;
        }
        err = 0;
out:
        rplan_free(plan);
        if (ws)
                avro_schema_decref(ws);
        return err;
}
