/*
 * fuzz_event.c - libFuzzer target for pd_event_from_parts(): a whole Kafka
 * record as the reactor sees it, CloudEvents headers and value.
 *
 * The input is read as
 *   one selector byte per header, in the order of pd_fuzz_hdrs[] below
 *     (plus, when it asks for input bytes, a length byte and the bytes),
 *   one byte that makes the value NULL (a tombstone) when its low four
 *     bits are all set,
 *   the value: everything that is left.
 * A selector's low three bits say what the header is: 1 absent, 2 empty,
 * 3 bytes from the input, anything else one of the header's canned values,
 * the (selector >> 4)th modulo their count. For ce_type those are the names
 * of every event type the library knows. Bit 3 first adds a bad value under
 * the same name, which must lose to the last one. Canned value 0 is valid
 * for every header, so eight zero bytes and an Avro value of
 * release.deployed make an event the decoder accepts, and (t - 1) << 4 as
 * the ce_type selector makes it type t; tests/fuzz/make_corpus.py writes
 * the corpus that way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/cloudevents.h"
#include "schemas/event.h"
#include "tests/fuzz/fuzz.h"

#define PD_ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const fuzz_specversions[] = {"1.0", "0.3", "1.0 ", "1"};
static const char *const fuzz_ids[] = {"6f9b2c1e-3d4a-4b5c-8d6e-7f8091a2b3c4",
                                       "1", "id with spaces and ~!@#$%^&*()"};
static const char *const fuzz_sources[] = {"postdeploy-cli/host", "kcat", "/"};
static const char *const fuzz_times[]   = {"2026-11-25T14:00:00.123Z",
                                           "yesterday"};
static const char *const fuzz_tenants[] = {"acme", "globex", "T_1.a-b",
                                           "-bad", "a b",    ".x"};
static const char *const fuzz_ctypes[]  = {
     "application/avro",      "APPLICATION/AVRO",
     "application/json",      "Application/JSON ; charset=utf-8",
     " application/avro\t;x", "text/plain",
     "application/avro+json"};

/* values NULL: the event type names. */
static const struct {
        const char *name;
        const char *const *values;
        size_t cnt;
} pd_fuzz_hdrs[] = {
    {"ce_specversion", fuzz_specversions, PD_ARRAY_CNT(fuzz_specversions)},
    {"ce_id", fuzz_ids, PD_ARRAY_CNT(fuzz_ids)},
    {"ce_source", fuzz_sources, PD_ARRAY_CNT(fuzz_sources)},
    {"ce_type", NULL, PD_EVT__CNT - 1},
    {"ce_time", fuzz_times, PD_ARRAY_CNT(fuzz_times)},
    {"ce_tenant", fuzz_tenants, PD_ARRAY_CNT(fuzz_tenants)},
    {"content-type", fuzz_ctypes, PD_ARRAY_CNT(fuzz_ctypes)},
};

/* Adds header i to hdrs as the input's next selector says. */
static void fuzz_add_header(rd_kafka_headers_t *hdrs, size_t i,
                            pd_fuzz_in_t *in) {
        const char *name = pd_fuzz_hdrs[i].name;
        uint8_t sel      = pd_fuzz_byte(in);
        size_t k         = (size_t)(sel >> 4) % pd_fuzz_hdrs[i].cnt;
        const uint8_t *val;
        size_t len;

        if (sel & 0x08) /* not printable: it fails if it is the one read */
                rd_kafka_header_add(hdrs, name, -1,
                                    "\x01"
                                    "decoy",
                                    -1);
        switch (sel & 0x07) {
        case 1:
                break;
        case 2:
                rd_kafka_header_add(hdrs, name, -1, "", 0);
                break;
        case 3:
                /* 0xff takes a second length byte, so that lengths around
                 * the 256-byte limit can be reached. */
                len = pd_fuzz_byte(in);
                if (len == 0xff)
                        len += pd_fuzz_byte(in);
                len = pd_fuzz_take(in, len, &val);
                rd_kafka_header_add(hdrs, name, -1, val, (ssize_t)len);
                break;
        default:
                rd_kafka_header_add(hdrs, name, -1,
                                    pd_fuzz_hdrs[i].values
                                        ? pd_fuzz_hdrs[i].values[k]
                                        : pd_evtype_name((pd_evtype_t)(k + 1)),
                                    -1);
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        pd_fuzz_in_t in          = {data, data + size};
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
        const uint8_t *value;
        char errstr[512];
        pd_event_t *ev;
        size_t i, len;
        int tombstone;

        for (i = 0; i < PD_ARRAY_CNT(pd_fuzz_hdrs); i++)
                fuzz_add_header(hdrs, i, &in);
        tombstone = (pd_fuzz_byte(&in) & 0x0f) == 0x0f;
        len       = pd_fuzz_take(&in, SIZE_MAX, &value);

        errstr[0] = '\0';
        ev = pd_event_from_parts(hdrs, tombstone ? NULL : value, len, errstr,
                                 sizeof(errstr));
        if (ev) {
                /* What was accepted is what the reactor would act on: it
                 * must carry the attributes the headers checks promise. */
                if (!ev->ce_id || !ev->ce_source || !pd_evtype_name(ev->type))
                        pd_fuzz_fail(
                            "accepted event lacks ce_id, ce_source "
                            "or a type");
                if (ev->tenant && !pd_tenant_valid(ev->tenant))
                        pd_fuzz_fail("accepted event has tenant '%s'",
                                     ev->tenant);
                pd_fuzz_roundtrip(ev);
                pd_event_destroy(ev);
        } else {
                pd_fuzz_check_errstr(errstr, "pd_event_from_parts");
        }
        rd_kafka_headers_destroy(hdrs);
        return 0;
}
