/*
 * avro.c - the Avro binary codec: pd_event_encode writes an event as Avro
 * single-object encoding (C3 01, the schema's fingerprint, the datum) and
 * pd__event_decode_avro reads one, both walking the type's field table.
 *
 * The Avro binary is written and read here rather than through libavro-c's
 * generic values because the input is hostile: a reader of our own bounds
 * every length and count before it allocates anything, refuses invalid
 * UTF-8 and NUL bytes (our strings are C strings), and names the field that
 * was wrong. The format we need is small (varints, strings, arrays, one kind
 * of union) and the unit tests hold it byte for byte against fastavro.
 *
 * A value written with an older released schema is handed to
 * schemas/history.c, which reads it with the readers this file exports
 * through schemas/codec.h.
 */
#include "schemas/event.h"
#include "schemas/event_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "schemas/history.h"

/* Avro single-object encoding: 2 magic bytes and an 8-byte fingerprint. */
#define PD_SO_HDR_LEN 10

/*
 * Avro binary: writing.
 */

static int w_bytes(pd_codec_t *cc, const void *p, size_t n) {
        cc->wbuf = pd_xgrow(cc->wbuf, &cc->wcap, cc->wlen + n, 1);
        memcpy(cc->wbuf + cc->wlen, p, n);
        cc->wlen += n;
        return 0;
}

/* A long: zigzag, then a little-endian base-128 varint. An int is written
 * the same way, since zigzag keeps an int's value within 32 bits. */
static int w_long(pd_codec_t *cc, int64_t v) {
        uint64_t u = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
        uint8_t b[10];
        size_t n = 0;

        while (u >= 0x80) {
                b[n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        b[n++] = (uint8_t)u;
        return w_bytes(cc, b, n);
}

static int w_string(pd_codec_t *cc, const pd_field_t *f, const char *s) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        size_t n;

        if (!s)
                s = "";
        if ((n = strlen(s)) > max)
                return pd_field_err(cc, f, "%zu bytes, longer than %zu", n,
                                    max);
        if (w_long(cc, (int64_t)n) || w_bytes(cc, s, n))
                return -1;
        pd__utf8_scrub(cc->wbuf + cc->wlen - n, n);
        return 0;
}

static int avro_write_record(pd_codec_t *cc, const pd_field_t *fields,
                             const void *base);

static int avro_write_field(pd_codec_t *cc, const pd_field_t *f,
                            const void *base) {
        const char *p = (const char *)base + f->off;
        size_t i, cnt, nsyms;
        uint8_t b;
        int v;

        switch (f->kind) {
        case PD_FK_STRING:
                return w_string(cc, f, *(char *const *)p);
        case PD_FK_NSTRING: /* union branch 0 is null, 1 the string */
                if (!*(char *const *)p)
                        return w_long(cc, 0);
                return w_long(cc, 1) || w_string(cc, f, *(char *const *)p);
        case PD_FK_INT:
                return w_long(cc, *(const int32_t *)p);
        case PD_FK_NINT:
                if (!*(const int *)((const char *)base + f->aux))
                        return w_long(cc, 0);
                return w_long(cc, 1) || w_long(cc, *(const int32_t *)p);
        case PD_FK_LONG:
                return w_long(cc, *(const int64_t *)p);
        case PD_FK_BOOL:
                b = *(const int *)p ? 1 : 0;
                return w_bytes(cc, &b, 1);
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                pd__enum_symbols(f->kind, &nsyms);
                v = pd__enum_get(f, p);
                if (v < 0 || (size_t)v >= nsyms)
                        return pd_field_err(cc, f, "%d is not a symbol", v);
                return w_long(cc, v);
        case PD_FK_STRV: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                /* One block with every item, then the empty block; an empty
                 * array is the empty block alone. */
                if (sv->cnt > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (sv->cnt && w_long(cc, (int64_t)sv->cnt))
                        return -1;
                for (i = 0; i < sv->cnt; i++)
                        if (w_string(cc, f, sv->v[i]))
                                return -1;
                return w_long(cc, 0);
        }
        case PD_FK_SMAP: {
                const pd_strv_t *sv = (const pd_strv_t *)p;

                /* Like an array: one block of every entry (a key, then its
                 * value), then the empty block. */
                if (sv->cnt / 2 > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (sv->cnt / 2 && w_long(cc, (int64_t)(sv->cnt / 2)))
                        return -1;
                for (i = 0; i < sv->cnt / 2 * 2; i++)
                        if (w_string(cc, f, sv->v[i]))
                                return -1;
                return w_long(cc, 0);
        }
        case PD_FK_REGISTRY: {
                const pd_regentry_t *reg = *(pd_regentry_t *const *)p;
                int err                  = 0;

                cnt = *(const size_t *)((const char *)base + f->aux);
                if (cnt > PD_ARRAY_MAX)
                        return pd_field_err(cc, f, "more than %d items",
                                            PD_ARRAY_MAX);
                if (cnt && w_long(cc, (int64_t)cnt))
                        return -1;
                for (i = 0; !err && i < cnt; i++) {
                        snprintf(cc->prefix, sizeof(cc->prefix), "%s[%zu].",
                                 f->name, i);
                        err =
                            avro_write_record(cc, pd_fields_regentry, &reg[i]);
                }
                cc->prefix[0] = '\0';
                return err ? -1 : w_long(cc, 0);
        }
        }
        return pd_field_err(cc, f, "unknown kind");
}

static int avro_write_record(pd_codec_t *cc, const pd_field_t *fields,
                             const void *base) {
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                if (avro_write_field(cc, f, base))
                        return -1;
        return 0;
}

/* The encoder's first buffer: an action.finished with a short output is
 * about 300 bytes. */
#define PD_ENCODE_START 512

int pd_event_encode(const pd_event_t *ev, void **bufp, size_t *lenp,
                    char *errstr, size_t errstr_size) {
        pd_codec_t cc = {.errstr = errstr, .errstr_size = errstr_size};
        uint8_t hdr[PD_SO_HDR_LEN] = {0xc3, 0x01};
        uint64_t fp;
        int i, err = -1;

        *bufp = NULL;
        *lenp = 0;
        if (pd__schemas_ready(errstr, errstr_size))
                goto out;
        if (!pd__evtype_valid(ev->type)) {
                pd_errf(errstr, errstr_size,
                        "cannot encode an event of type %d", (int)ev->type);
                goto out;
        }
        /* Room for a usual record at once: grown from 8 bytes, the buffer
         * was six reallocs per record, 3% of the reactor's CPU per
         * in-process action (two records each). */
        cc.wbuf = pd_xgrow(NULL, &cc.wcap, PD_ENCODE_START, 1);
        fp      = pd_schemas[ev->type].fp;
        for (i = 0; i < 8; i++) /* the fingerprint is little-endian */
                hdr[2 + i] = (uint8_t)(fp >> (8 * i));
        if (w_bytes(&cc, hdr, sizeof(hdr)) ||
            avro_write_record(&cc, pd_evtypes[ev->type].fields, ev))
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

static int r_long(pd_codec_t *cc, const pd_field_t *f, int64_t *vp) {
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

static int r_int(pd_codec_t *cc, const pd_field_t *f, int32_t *vp) {
        int64_t v;

        if (r_long(cc, f, &v))
                return -1;
        if (v < INT32_MIN || v > INT32_MAX)
                return pd_field_err(cc, f, "%" PRId64 " does not fit an int",
                                    v);
        *vp = (int32_t)v;
        return 0;
}

/* A union index: 0 (null) or 1 (the value). */
static int r_branch(pd_codec_t *cc, const pd_field_t *f, int *valuep) {
        int64_t v;

        if (r_long(cc, f, &v))
                return -1;
        if (v != 0 && v != 1)
                return pd_field_err(
                    cc, f, "union branch %" PRId64 " does not exist", v);
        *valuep = (int)v;
        return 0;
}

/* Reads a string into *sp (malloc'ed). */
static int r_string(pd_codec_t *cc, const pd_field_t *f, char **sp) {
        size_t max = f->max ? f->max : PD_STR_MAX;
        int64_t len;
        char *s;

        if (r_long(cc, f, &len))
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
        if (!pd__utf8_valid(cc->rp, (size_t)len))
                return pd_field_err(cc, f, "not valid UTF-8");
        s = pd_xmalloc((size_t)len + 1);
        memcpy(s, cc->rp, (size_t)len);
        s[len] = '\0';
        cc->rp += len;
        *sp = s;
        return 0;
}

/*
 * Reads the item count of the next array block into *cntp (0: the array
 * ended); *totalp counts the items so far. A negative count is followed by
 * the block's size in bytes (the specification allows it so a reader can
 * skip the block). Every item takes at least one byte, which bounds a count
 * by the input left.
 */
static int r_block(pd_codec_t *cc, const pd_field_t *f, size_t *totalp,
                   size_t *cntp) {
        int64_t cnt, size;

        if (r_long(cc, f, &cnt))
                return -1;
        if (cnt < 0) {
                if (cnt == INT64_MIN)
                        return pd_field_err(cc, f, "bad block count");
                cnt = -cnt;
                if (r_long(cc, f, &size))
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

static int avro_read_record(pd_codec_t *cc, const pd_field_t *fields,
                            void *base);

static int avro_read_field(pd_codec_t *cc, const pd_field_t *f, void *base) {
        char *p = (char *)base + f->off;
        size_t i, cnt, nsyms, total = 0;
        int64_t v;
        int present = 0;
        char *s;

        switch (f->kind) {
        case PD_FK_STRING:
                return r_string(cc, f, (char **)p);
        case PD_FK_NSTRING:
                if (r_branch(cc, f, &present))
                        return -1;
                return present ? r_string(cc, f, (char **)p) : 0;
        case PD_FK_INT:
                return r_int(cc, f, (int32_t *)p);
        case PD_FK_NINT:
                if (r_branch(cc, f, &present))
                        return -1;
                *(int *)((char *)base + f->aux) = present;
                return present ? r_int(cc, f, (int32_t *)p) : 0;
        case PD_FK_LONG:
                return r_long(cc, f, (int64_t *)p);
        case PD_FK_BOOL:
                if (cc->rp == cc->rend)
                        return pd_field_err(cc, f, "truncated datum");
                if (*cc->rp > 1)
                        return pd_field_err(cc, f,
                                            "boolean byte %d is not 0 "
                                            "or 1",
                                            *cc->rp);
                *(int *)p = *cc->rp++;
                return 0;
        case PD_FK_SELECTION:
        case PD_FK_STATUS:
                pd__enum_symbols(f->kind, &nsyms);
                if (r_long(cc, f, &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= nsyms)
                        return pd_field_err(
                            cc, f, "symbol %" PRId64 " does not exist", v);
                pd__enum_set(f, p, (int)v);
                return 0;
        case PD_FK_STRV:
                for (;;) {
                        if (r_block(cc, f, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        for (i = 0; i < cnt; i++) {
                                if (r_string(cc, f, &s))
                                        return -1;
                                pd_strv_add((pd_strv_t *)p, s);
                                free(s);
                        }
                }
        case PD_FK_SMAP:
                for (;;) {
                        pd_strv_t *sv = (pd_strv_t *)p;

                        if (r_block(cc, f, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        for (i = 0; i < cnt; i++) {
                                if (r_string(cc, f, &s))
                                        return -1;
                                /* A map's keys are unique; a value that
                                 * repeats one is not guessed at. */
                                for (size_t j = 0; j < sv->cnt; j += 2)
                                        if (!strcmp(sv->v[j], s)) {
                                                free(s);
                                                return pd_field_err(
                                                    cc, f, "a key twice");
                                        }
                                pd_strv_add(sv, s);
                                free(s);
                                if (r_string(cc, f, &s))
                                        return -1;
                                pd_strv_add(sv, s);
                                free(s);
                        }
                }
        case PD_FK_REGISTRY: {
                pd_regentry_t **regp = (pd_regentry_t **)p;
                size_t *cntp         = (size_t *)((char *)base + f->aux);
                pd_regentry_t *nreg;
                int err = 0;

                for (;;) {
                        if (r_block(cc, f, &total, &cnt))
                                return -1;
                        if (!cnt)
                                return 0;
                        nreg =
                            pd_xrealloc(*regp, (*cntp + cnt) * sizeof(*nreg));
                        memset(nreg + *cntp, 0, cnt * sizeof(*nreg));
                        *regp = nreg;
                        /* Count each entry before filling it, so that a
                         * failure frees what it got. */
                        for (i = 0; !err && i < cnt; i++) {
                                snprintf(cc->prefix, sizeof(cc->prefix),
                                         "%s[%zu].", f->name, *cntp);
                                err = avro_read_record(cc, pd_fields_regentry,
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

static int avro_read_record(pd_codec_t *cc, const pd_field_t *fields,
                            void *base) {
        const pd_field_t *f;

        for (f = fields; f->name; f++)
                if (avro_read_field(cc, f, base))
                        return -1;
        return 0;
}

int pd__event_decode_avro(pd_event_t *ev, const uint8_t *buf, size_t len,
                          pd_codec_t *cc) {
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
                return pd_errf(
                    cc->errstr, cc->errstr_size,
                    "unknown writer schema fingerprint 0x%016" PRIx64
                    "; known for %s: %s",
                    fp, pd_evtypes[ev->type].name,
                    pd_history_known(ev->type, known, sizeof(known)));
        if (t != (int)ev->type)
                return pd_errf(cc->errstr, cc->errstr_size,
                               "fingerprint is of %s, ce_type says %s",
                               pd_evtypes[t].name, pd_evtypes[ev->type].name);
        cc->rp   = buf + PD_SO_HDR_LEN;
        cc->rend = buf + len;
        if (old ? pd_history_read(cc, old, ev)
                : avro_read_record(cc, pd_evtypes[t].fields, ev))
                return -1;
        if (cc->rp != cc->rend)
                return pd_errf(cc->errstr, cc->errstr_size,
                               "%zu trailing bytes after the %s datum",
                               (size_t)(cc->rend - cc->rp), pd_evtypes[t].name);
        return 0;
}


int pd_codec_read_field(pd_codec_t *cc, const pd_field_t *f, void *base) {
        return avro_read_field(cc, f, base);
}

int pd_codec_read_long(pd_codec_t *cc, const pd_field_t *f, int64_t *vp) {
        return r_long(cc, f, vp);
}

int pd_codec_read_block(pd_codec_t *cc, const pd_field_t *f, size_t *totalp,
                        size_t *cntp) {
        return r_block(cc, f, totalp, cntp);
}
