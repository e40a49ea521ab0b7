/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: a reader that
 * takes bytes off the front of an input, the codec's round-trip invariant,
 * and a way to fail loudly.
 *
 * A target that only waits for crashes misses every input the codec gets
 * quietly wrong, so each event target checks that a decoded event survives
 * encoding and decoding unchanged. fuzz.c also defines LLVMFuzzerInitialize
 * for every target.
 */
#ifndef PD_FUZZ_H
#define PD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "schemas/cloudevents.h"
#include "schemas/event.h"

/* libFuzzer's entry points; C has no header for them. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The unread part of an input. Reading past its end yields zeros, so that
 * a short input still means something (and zeros mean "valid" wherever a
 * target can arrange it). */
typedef struct pd_fuzz_in_s {
        const uint8_t *p, *end;
} pd_fuzz_in_t;

/* The next byte, or 0 when the input is used up. */
uint8_t pd_fuzz_byte(pd_fuzz_in_t *in);

/* Takes up to n bytes; sets *bufp to them and returns how many there were. */
size_t pd_fuzz_take(pd_fuzz_in_t *in, size_t n, const uint8_t **bufp);

/* Prints "fuzz invariant broken: ..." to stderr and aborts, which libFuzzer
 * records as a crash with the input that caused it. */
void pd_fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Checks that a decoder's reason for refusing an input is there and is
 * printable ASCII: it goes to logs and to the dead-letter topic's
 * postdeploy_error header, and event.c promises to quote hostile bytes. */
void pd_fuzz_check_errstr(const char *errstr, const char *who);

/*
 * Checks that ev, which a decoder has just accepted, round-trips:
 *   - pd_event_encode accepts it;
 *   - decoding that Avro gives the same event (same pd_event_to_json);
 *   - encoding the result again gives the same bytes (one canonical form);
 *   - the JSON of pd_event_to_json decodes as application/json to an event
 *     with the same Avro encoding;
 *   - if ev has the attributes a message needs (ce_id, ce_source),
 *     pd_event_from_parts(pd_event_headers(ev), encoding) gives it back.
 * Aborts through pd_fuzz_fail when one does not hold.
 */
void pd_fuzz_roundtrip(const pd_event_t *ev);

/*
 * Decodes the value buf as `type` with content type ctype. If the decoder
 * refuses it, checks its reason (pd_fuzz_check_errstr); if it takes it,
 * checks that decoding the same bytes into the now full event gives the same
 * event (decoding replaces, never merges), then pd_fuzz_roundtrip. Returns
 * whether it decoded.
 */
int pd_fuzz_decode(pd_evtype_t type, const char *ctype, const void *buf,
                   size_t len);

#endif
