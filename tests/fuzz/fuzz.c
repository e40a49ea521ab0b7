/*
 * fuzz.c - see fuzz.h. Linked into every target of tests/fuzz.
 */
#include "tests/fuzz/fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "schemas/cloudevents.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        /* Millions of rejected inputs must not mean millions of log lines;
         * errors reach the targets through errstr anyway. */
        pd_log_level = 0;
        return 0;
}

uint8_t pd_fuzz_byte(pd_fuzz_in_t *in) {
        return in->p < in->end ? *in->p++ : 0;
}

size_t pd_fuzz_take(pd_fuzz_in_t *in, size_t n, const uint8_t **bufp) {
        size_t left = (size_t)(in->end - in->p);

        if (n > left)
                n = left;
        *bufp = in->p;
        in->p += n;
        return n;
}

void pd_fuzz_fail(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "fuzz invariant broken: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n");
        abort();
}

void pd_fuzz_check_errstr(const char *errstr, const char *who) {
        const unsigned char *p;

        if (!errstr[0])
                pd_fuzz_fail("%s refused an input without a reason", who);
        for (p = (const unsigned char *)errstr; *p; p++)
                if (*p < 0x20 || *p >= 0x7f)
                        pd_fuzz_fail("%s's reason has byte 0x%02x: %s", who, *p,
                                     errstr);
}

static char *fuzz_strdup(const char *s) {
        char *copy;

        if (!s)
                return NULL;
        if (!(copy = strdup(s)))
                abort();
        return copy;
}

/* Encodes ev, which must succeed: anything a decoder accepts is within the
 * bounds the encoder checks (string lengths, array counts, enum symbols),
 * and the strings it holds are valid UTF-8, so none gets scrubbed. */
static void fuzz_encode(const pd_event_t *ev, const char *what, void **bufp,
                        size_t *lenp) {
        char errstr[512];

        if (pd_event_encode(ev, bufp, lenp, errstr, sizeof(errstr)))
                pd_fuzz_fail("%s %s does not encode: %s", what,
                             pd_evtype_name(ev->type), errstr);
}

static void fuzz_same_bytes(const void *a, size_t alen, const void *b,
                            size_t blen, const char *what) {
        if (alen != blen || memcmp(a, b, alen))
                pd_fuzz_fail("%s: %zu bytes, then %zu different ones", what,
                             alen, blen);
}

static void fuzz_same_json(const pd_event_t *ev, const pd_event_t *ev2,
                           const char *what) {
        char *json = pd_event_to_json(ev), *json2 = pd_event_to_json(ev2);

        if (!json || !json2 || strcmp(json, json2))
                pd_fuzz_fail("%s:\n  before %s\n  after  %s", what,
                             json ? json : "(null)", json2 ? json2 : "(null)");
        free(json);
        free(json2);
}

void pd_fuzz_roundtrip(const pd_event_t *ev) {
        rd_kafka_headers_t *hdrs = NULL;
        pd_event_t *ev2 = NULL, *ev3 = NULL, *ev4 = NULL;
        void *buf = NULL, *buf2 = NULL, *buf3 = NULL, *buf4 = NULL;
        size_t len, len2, len3, len4;
        char errstr[512];
        char *json = NULL;

        fuzz_encode(ev, "decoded", &buf, &len);

        /* Avro: decode what we wrote, give it ev's attributes (which live
         * in headers, not in the value), and compare. */
        ev2 = pd_event_new(ev->type);
        if (pd_event_decode(ev2, "application/avro", buf, len, errstr,
                            sizeof(errstr)))
                pd_fuzz_fail("re-encoded %s does not decode: %s",
                             pd_evtype_name(ev->type), errstr);
        ev2->ce_id     = fuzz_strdup(ev->ce_id);
        ev2->ce_source = fuzz_strdup(ev->ce_source);
        ev2->ce_time   = fuzz_strdup(ev->ce_time);
        if (!ev2->tenant) /* the types whose data has no tenant */
                ev2->tenant = fuzz_strdup(ev->tenant);
        fuzz_same_json(ev, ev2, "Avro round trip changed the event");
        fuzz_encode(ev2, "round-tripped", &buf2, &len2);
        fuzz_same_bytes(buf, len, buf2, len2, "encoding is not canonical");

        /* JSON: pd_event_to_json's output is a JSON value the decoder takes
         * (it ignores the "type" and ce_* members). */
        if (!(json = pd_event_to_json(ev)))
                pd_fuzz_fail("pd_event_to_json returned NULL");
        if (strlen(json) <= PD_EVENT_VALUE_MAX) {
                ev3 = pd_event_new(ev->type);
                if (pd_event_decode(ev3, "application/json", json, strlen(json),
                                    errstr, sizeof(errstr)))
                        pd_fuzz_fail(
                            "pd_event_to_json's output does not "
                            "decode: %s\n  %s",
                            errstr, json);
                fuzz_encode(ev3, "JSON round-tripped", &buf3, &len3);
                fuzz_same_bytes(buf, len, buf3, len3,
                                "JSON round trip changed the event");
        }

        /* The whole message, headers included, when ev came with them. */
        if (ev->ce_id && ev->ce_source) {
                hdrs = pd_event_headers(ev);
                if (!(ev4 = pd_event_from_parts(hdrs, buf, len, errstr,
                                                sizeof(errstr))))
                        pd_fuzz_fail(
                            "pd_event_headers + encoding of %s is "
                            "refused: %s",
                            pd_evtype_name(ev->type), errstr);
                if (ev4->type != ev->type)
                        pd_fuzz_fail("message round trip turned %s into %s",
                                     pd_evtype_name(ev->type),
                                     pd_evtype_name(ev4->type));
                fuzz_same_json(ev, ev4, "message round trip changed the event");
                fuzz_encode(ev4, "message round-tripped", &buf4, &len4);
                fuzz_same_bytes(buf, len, buf4, len4,
                                "message round trip changed the value");
        }

        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        free(json);
        free(buf4);
        free(buf3);
        free(buf2);
        free(buf);
        pd_event_destroy(ev4);
        pd_event_destroy(ev3);
        pd_event_destroy(ev2);
}

int pd_fuzz_decode(pd_evtype_t type, const char *ctype, const void *buf,
                   size_t len) {
        pd_event_t *ev = pd_event_new(type);
        char errstr[512], *json, *json2;
        int ok;

        errstr[0] = '\0';
        ok = !pd_event_decode(ev, ctype, buf, len, errstr, sizeof(errstr));
        if (!ok) {
                pd_fuzz_check_errstr(errstr, "pd_event_decode");
                pd_event_destroy(ev);
                return 0;
        }
        json = pd_event_to_json(ev);
        if (pd_event_decode(ev, ctype, buf, len, errstr, sizeof(errstr)))
                pd_fuzz_fail("decoded once, not twice: %s", errstr);
        json2 = pd_event_to_json(ev);
        if (strcmp(json, json2))
                pd_fuzz_fail("decoding into a full event merged: %s, then %s",
                             json, json2);
        free(json2);
        free(json);
        pd_fuzz_roundtrip(ev);
        pd_event_destroy(ev);
        return 1;
}
