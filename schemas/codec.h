/*
 * codec.h - what the event codec (schemas/event.c, avro.c, json.c) shares
 * with schemas/history.c, and nobody else: the field tables that drive the Avro
 * and JSON codecs, the state of one decode, and the readers history.c builds
 * schema resolution from. Not part of the event API (schemas/event.h is); its
 * layouts may change whenever the codec does.
 */
#ifndef PD_CODEC_H
#define PD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "schemas/event.h"

typedef enum pd_fkind_e {
        PD_FK_STRING,    /* char *, never null on the wire */
        PD_FK_NSTRING,   /* char *, ["null","string"]: NULL is null */
        PD_FK_INT,       /* int32_t */
        PD_FK_NINT,      /* int32_t, ["null","int"], presence flag at aux */
        PD_FK_LONG,      /* int64_t */
        PD_FK_BOOL,      /* int */
        PD_FK_SELECTION, /* pd_selection_t, enum Selection */
        PD_FK_STATUS,    /* pd_status_t, enum Status */
        PD_FK_STRV,      /* pd_strv_t, array<string> */
        PD_FK_SMAP,      /* pd_strv_t of name, value, name, value ...:
                          * map<string>, each name once */
        PD_FK_REGISTRY,  /* pd_regentry_t *, count at aux,
                          * array<RegisteredAction> */
} pd_fkind_t;

/* One field of a record, in schema order. */
typedef struct pd_field_s {
        const char *name; /* as in the .avsc and the JSON */
        pd_fkind_t kind;
        size_t off; /* the member */
        size_t aux; /* PD_FK_NINT: the int presence flag;
                     * PD_FK_REGISTRY: the size_t count */
        size_t max; /* strings: the longest accepted, 0: PD_STR_MAX */
} pd_field_t;

/* The state of one encode or decode. */
typedef struct pd_codec_s {
        const uint8_t *rp, *rend; /* Avro reader */
        uint8_t *wbuf;            /* Avro writer, malloc'ed */
        size_t wlen, wcap;
        char prefix[48]; /* "actions[3]." inside a registry entry */
        char *errstr;
        size_t errstr_size;
} pd_codec_t;

/* The current (reader's) field table of a type, NULL-name ended, and that
 * of registry.published's items (record RegisteredAction). */
const pd_field_t *pd_codec_fields(pd_evtype_t type);
const pd_field_t *pd_codec_regentry_fields(void);

/* Reports a problem with field f (inside the current registry entry, if
 * any) as "field 'name': message". Returns -1. */
int pd_field_err(pd_codec_t *cc, const pd_field_t *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether an Avro type s carries values of a scalar kind or array<string>:
 * 1 or 0; -1 for the kinds whose match needs more than the type (the
 * enums' symbols, the registry's items). With promote, an int is also read
 * as a long (Avro's promotion, as schema resolution allows). */
int pd_codec_type_fits(avro_schema_t s, pd_fkind_t kind, int promote);

/* The current .avsc text of a type, and its parsed JSON (static storage;
 * the JSON is only valid once the schemas are loaded). */
const char *pd_codec_schema_text(pd_evtype_t type);
const json_t *pd_codec_schema_json(pd_evtype_t type);

/* The symbols of an enum kind, in the current schema's order, and setting
 * the member of field f at p to symbol v. */
const char *const *pd_codec_enum_symbols(pd_fkind_t kind, size_t *cntp);
void pd_codec_enum_set(const pd_field_t *f, void *p, int v);

/*
 * Avro readers of the current codec, bounded as it bounds them; each
 * returns 0 or -1 with "field 'NAME': why" in cc->errstr.
 *   read_field: the Avro value of field f into the record at base.
 *   read_long:  a zig-zag varint (int, long, enum index, union branch,
 *               lengths).
 *   read_block: the item count of an array or map block (0: the end), as
 *               pd_r_block in avro.c; *totalp counts the items so far.
 */
int pd_codec_read_field(pd_codec_t *cc, const pd_field_t *f, void *base);
int pd_codec_read_long(pd_codec_t *cc, const pd_field_t *f, int64_t *vp);
int pd_codec_read_block(pd_codec_t *cc, const pd_field_t *f, size_t *totalp,
                        size_t *cntp);

/* Reads JSON value v, in the Avro JSON encoding of field f's type, into the
 * record at base: how a field the writer's schema lacks takes its default.
 * sfield is the field's definition in the reader's .avsc. */
int pd_codec_json_read_field(pd_codec_t *cc, const pd_field_t *f,
                             const json_t *sfield, const json_t *v, void *base);

/*
 * Schema resolution (schemas/history.c), for avro.c's decoder.
 *   load: builds the resolution of every older released schema against
 *         the current ones; runs once, after event.c has loaded those.
 *         Returns 0 or -1 with errstr (a history schema the current one
 *         cannot read is as fatal as a current schema the tables do not
 *         match).
 *   find: the older schema whose fingerprint is fp and its type, or NULL.
 *   read: reads the datum at cc->rp written with older schema h into ev,
 *         resolved to the current schema of ev->type; 0 or -1 with errstr.
 */
typedef struct pd_history_s pd_history_t;

int pd_history_load(char *errstr, size_t errstr_size);
const pd_history_t *pd_history_find(uint64_t fp, pd_evtype_t *typep);
int pd_history_read(pd_codec_t *cc, const pd_history_t *h, pd_event_t *ev);

#endif
