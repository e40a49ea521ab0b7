/*
 * event_int.h - what the files of the event codec share among themselves
 * (schemas/event.c, avro.c, json.c, pcf.c, cloudevents.c), and nobody
 * else: the bounds on hostile input, the per-type table and the loaded
 * schemas, and the small helpers every codec uses. Not an API; callers use
 * schemas/event.h and schemas/cloudevents.h, and schemas/history.c uses
 * schemas/codec.h.
 */
#ifndef PD_EVENT_INT_H
#define PD_EVENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "schemas/codec.h"
#include "schemas/event.h"
#include "common/xalloc.h"

/* Bounds on hostile input. A header longer than an attribute can sensibly
 * be, a string longer than any message we write, or an array longer than
 * any registry is refused before it costs memory. */
#define PD_HDR_MAX        256
#define PD_STR_MAX        65536
#define PD_ARRAY_MAX      10000
#define PD_JSON_DEPTH_MAX 16

#define PD_ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

/* One event type: its ce_type, its .avsc text and its field table
 * (event.c). */
struct pd_evtype_info_s {
        const char *name;         /* ce_type */
        const char *schema;       /* the .avsc text */
        const pd_field_t *fields; /* in schema order */
};
extern const struct pd_evtype_info_s pd_evtypes[PD_EVT__CNT];

/* The items of registry_published's "actions": record RegisteredAction. */
extern const pd_field_t pd_fields_regentry[];

/* What pthread_once computes from each schema; read-only afterwards, so
 * any thread may use it without a lock. Only valid once pd__schemas_ready
 * has returned 0. */
struct pd_schema_s {
        json_t *root;    /* the parsed .avsc: the JSON decoder's defaults */
        char *canonical; /* Parsing Canonical Form */
        uint64_t fp;     /* CRC-64-AVRO of canonical */
};
extern struct pd_schema_s pd_schemas[PD_EVT__CNT];

/* Returns 0 once the schemas are loaded, -1 with errstr if they cannot be. */
int pd__schemas_ready(char *errstr, size_t errstr_size);

/* At most 64 bytes of untrusted text, non-printable bytes as '?', into buf
 * for an error message; returns buf. */
const char *pd__quote(const void *s, size_t len, char *buf, size_t size);


/* Whether type is a real event type (not UNKNOWN, not past the end). */
int pd__evtype_valid(pd_evtype_t type);

/* Whether n bytes are valid UTF-8 (RFC 3629), and replacing every byte
 * that is not part of a valid sequence with '?'. */
int pd__utf8_valid(const void *buf, size_t n);
void pd__utf8_scrub(void *buf, size_t n);

/* The symbols of an enum kind in schema order, and getting and setting the
 * enum member of field f at p as a symbol index. */
const char *const *pd__enum_symbols(pd_fkind_t kind, size_t *cntp);
int pd__enum_get(const pd_field_t *f, const void *p);
void pd__enum_set(const pd_field_t *f, void *p, int v);

/* The decoders pd_event_decode picks by content type: they read buf into
 * ev (whose type is set and whose fields are empty). 0 or -1 with
 * cc->errstr. avro.c and json.c. */
int pd__event_decode_avro(pd_event_t *ev, const uint8_t *buf, size_t len,
                          pd_codec_t *cc);
int pd__event_decode_json(pd_event_t *ev, const char *buf, size_t len,
                          pd_codec_t *cc);

#endif
