/*
 * fuzz_json.c - libFuzzer target for pd_event_decode() of JSON values, the
 * form any Kafka client (kcat, a script) may use to trigger a deploy.
 *
 * The first byte picks the event type, (b & 0x3f) % 5 + 1, and with bit 7
 * the content type "application/json; charset=utf-8" instead of
 * "application/json"; the rest is the value. release.deployed is the type
 * that really arrives as JSON, but the decoder serves every type through the
 * same field table, so all of them are fuzzed.
 */
#include <stdint.h>

#include "schemas/event.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        pd_fuzz_in_t in  = {data, data + size};
        uint8_t b        = pd_fuzz_byte(&in);
        pd_evtype_t type = (pd_evtype_t)((b & 0x3f) % (PD_EVT__CNT - 1) + 1);
        const char *ctype =
            (b & 0x80) ? "application/json; charset=utf-8" : "application/json";
        const uint8_t *value;
        size_t len = pd_fuzz_take(&in, SIZE_MAX, &value);

        pd_fuzz_decode(type, ctype, value, len);
        return 0;
}
