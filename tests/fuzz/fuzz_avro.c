/*
 * fuzz_avro.c - libFuzzer target for pd_event_decode() of Avro values, the
 * single-object encoding every postdeploy topic carries.
 *
 * The first byte picks what the rest is:
 *   bits 0-5  the event type, (b & 0x3f) % 5 + 1;
 *   bit 6     content type NULL (which means Avro) instead of
 *             "application/avro";
 *   bit 7     clear: the rest is a datum, and C3 01 + a fingerprint of the
 *             type is put in front of it, once for each released version of
 *             its schema (schemas/history.c), so mutations work on the datum
 *             (and on resolution from older writers) rather than on a header
 *             they would mostly break; set: the rest is the whole value,
 *             header included, and it is decoded as every type.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/event.h"
#include "schemas/history.h"
#include "tests/fuzz/fuzz.h"

#define PD_FUZZ_TYPE_CNT (PD_EVT__CNT - 1)
#define PD_FUZZ_SO_HDR   10 /* C3 01 and the 8-byte fingerprint */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        pd_fuzz_in_t in   = {data, data + size};
        uint8_t b         = pd_fuzz_byte(&in);
        pd_evtype_t type  = (pd_evtype_t)((b & 0x3f) % PD_FUZZ_TYPE_CNT + 1);
        const char *ctype = (b & 0x40) ? NULL : "application/avro";
        const uint8_t *rest;
        size_t len = pd_fuzz_take(&in, SIZE_MAX, &rest);
        const pd_schema_version_t *versions;
        size_t v, vcnt;
        uint64_t fp = 0;
        uint8_t *buf;
        int t, decoded = 0, i;

        if (!(b & 0x80)) {
                if (!(buf = malloc(PD_FUZZ_SO_HDR + len)))
                        return 0;
                buf[0] = 0xc3;
                buf[1] = 0x01;
                if (len) /* memcpy from NULL is undefined even for 0 */
                        memcpy(buf + PD_FUZZ_SO_HDR, rest, len);
                versions = pd_history_versions(&vcnt);
                for (v = 0; v < vcnt; v++) {
                        if (versions[v].type != type)
                                continue;
                        fp = versions[v].fp;
                        for (i = 0; i < 8; i++)
                                buf[2 + i] = (uint8_t)(fp >> (8 * i));
                        pd_fuzz_decode(type, ctype, buf, PD_FUZZ_SO_HDR + len);
                }
                free(buf);
                return 0;
        }

        /* The fingerprint names one schema, so at most one type decodes a
         * value, and it is the one whose fingerprint the value carries. */
        for (t = PD_EVT_UNKNOWN + 1; t < PD_EVT__CNT; t++) {
                if (!pd_fuzz_decode((pd_evtype_t)t, ctype, rest, len))
                        continue;
                if (decoded++)
                        pd_fuzz_fail("a value decoded as two types");
                if (len >= PD_FUZZ_SO_HDR)
                        for (fp = 0, i = 7; i >= 0; i--)
                                fp = (fp << 8) | rest[2 + i];
                if (len < PD_FUZZ_SO_HDR ||
                    !pd_history_accepts((pd_evtype_t)t, fp))
                        pd_fuzz_fail(
                            "%s decoded a value without one of its "
                            "fingerprints",
                            pd_evtype_name((pd_evtype_t)t));
        }
        return 0;
}
