/*
 * history.h - every writer schema postdeploy has released, so that a value
 * written by an older CLI or reactor still decodes in a newer one.
 *
 * Each event type has versions 1, 2, ...: the newest is schemas/<type>.avsc,
 * the older ones are frozen copies under schemas/history/
 * (<type>.v<N>.avsc). A value whose fingerprint is an older version's is
 * read with that version's schema and resolved to the current one by
 * Avro's rules (docs/SCHEMAS.md says which changes that allows and how to
 * make one). A fingerprint that is none of them, e.g. of a newer schema
 * this build does not know, is refused naming the ones it knows.
 */
#ifndef PD_HISTORY_H
#define PD_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h"

/* One released writer schema. */
typedef struct pd_schema_version_s {
        pd_evtype_t type;
        int version;      /* 1, 2, ... within the type; the highest is the
                           * current schema */
        uint64_t fp;      /* CRC-64-AVRO fingerprint as registered (the
                           * tests check it is the text's) */
        const char *path; /* the .avsc in the source tree */
        const char *text; /* the .avsc, compiled in */
} pd_schema_version_t;

/* The table of every released schema (static storage, *cntp rows). */
const pd_schema_version_t *pd_history_versions(size_t *cntp);

/*
 * Writes the fingerprints the decoder accepts for `type`, newest first,
 * into buf: "0xe4956fa0dbdcfe76 (v2), 0x45a8c5b1072a2b29 (v1)". Returns buf.
 */
const char *pd_history_known(pd_evtype_t type, char *buf, size_t size);

/* 1 if a value of `type` may carry fingerprint fp (a released version of
 * its schema), else 0. */
int pd_history_accepts(pd_evtype_t type, uint64_t fp);

/*
 * Decodes an Avro datum (the bytes after the single-object header) written
 * with the writer schema `schema` (.avsc text) into ev, resolved to the
 * current schema of ev->type by the same rules as a registered older
 * version: what a schema change would do to old records, tried before it
 * is made (tests, docs/SCHEMAS.md). ev must be as pd_event_new made it.
 * Returns 0, or -1 with errstr (the writer schema cannot be resolved, or
 * the datum is bad); ev then holds whatever was decoded and is only fit
 * for pd_event_destroy.
 */
int pd_history_decode_with(pd_event_t *ev, const char *schema, const void *buf,
                           size_t len, char *errstr, size_t errstr_size);

#endif
