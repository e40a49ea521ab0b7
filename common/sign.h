/*
 * sign.h - signed events: an HMAC-SHA256 over an event's value, its record
 * key and its CloudEvents headers, so that being able to write to the
 * events topic is not enough to make the reactor run actions.
 *
 * The signature travels as one more CloudEvents extension attribute in
 * binary mode, the header
 *     ce_signature: hmac-sha256=<64 lowercase hex digits>
 * The part before '=' names the scheme, so that the algorithm can change
 * without guessing. Verification accepts the hex digits in either case.
 *
 * What is signed is this byte string (docs/SIGNING.md shows how another
 * producer computes it):
 *     for each NAME of ce_specversion, ce_id, ce_source, ce_type, ce_time,
 *     ce_tenant, content-type, in that order:
 *         "NAME=" VALUE "\n"   if the header is present (an empty value
 *                              gives "NAME=\n")
 *         "NAME\n"             if it is absent
 *     then the record key:
 *         "key=" KEY "\n"      if the record has a key (an empty one gives
 *                              "key=\n")
 *         "key\n"              if it has none
 *     then the value's bytes, as they are, to the end.
 * Absent and empty are kept apart so that a signature over "no ce_tenant"
 * (the reactor's default tenant) cannot be reused with ce_tenant set. The
 * key is signed so that a signed event cannot be replayed under another
 * tenant's key. A signed header that appears twice, or whose value or the
 * key contains a newline, is refused by both sides: the first would let a
 * verifier and a consumer read different copies, the second would let two
 * different events share one signed string. Headers outside the list are
 * not signed, and the reactor reads none of them.
 *
 * The secret is the bytes of a key file (pd_sign_key_load). This module
 * keeps no state; every function may be called from any thread.
 */
#ifndef PD_SIGN_H
#define PD_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* The header that carries the signature, and its only scheme so far. */
#define PD_SIGN_HEADER "ce_signature"
#define PD_SIGN_SCHEME "hmac-sha256"

/* Bounds on the key (after its trailing newline is removed) and on the
 * key file: a shorter key is too easy to guess, a larger file is surely the
 * wrong one. */
#define PD_SIGN_KEY_MIN 16   /* bytes of key */
#define PD_SIGN_KEY_MAX 4096 /* bytes of file */

/*
 * Reads the signing key from the file at `path`. The key is the file's
 * bytes, used as they are (a base64 line is not decoded), minus any
 * trailing "\n" and "\r". The file must be a regular file of at most
 * PD_SIGN_KEY_MAX bytes that neither its group nor others can access
 * (mode & 077 == 0), and the key must be at least PD_SIGN_KEY_MIN bytes.
 * Returns 0 with a malloc'ed key in *keyp (owned by the caller, who frees
 * it with pd_sign_key_free) and its length in *lenp, or -1 with the reason
 * in errstr, e.g. "signing key PATH is readable by others (chmod 600)".
 */
int pd_sign_key_load(const char *path, unsigned char **keyp, size_t *lenp,
                     char *errstr, size_t errstr_size);

/* Wipes the len bytes of key, then frees it. NULL is fine. */
void pd_sign_key_free(unsigned char *key, size_t len);

/*
 * Signs an event about to be produced: hdrs must already hold the ce_*
 * headers and content-type (pd_event_headers() builds them); rkey is the
 * record key (NULL: none), value the record value. Adds the ce_signature
 * header, replacing any there was. Call it last: a signed header changed
 * afterwards breaks the signature.
 * Returns 0, or -1 with the reason in errstr (a signed header present
 * twice, a newline in a signed header or the key, OpenSSL failing); hdrs
 * is then left without a ce_signature.
 */
int pd_sign_headers(rd_kafka_headers_t *hdrs, const void *rkey, size_t rkey_len,
                    const void *value, size_t len, const unsigned char *secret,
                    size_t secret_len, char *errstr, size_t errstr_size);

/*
 * Checks the signature of a consumed record: hdrs are its headers (NULL:
 * none, which rd_kafka_message_headers() reports as
 * RD_KAFKA_RESP_ERR__NOENT), rkey its key (NULL: none), value its value.
 * The comparison takes the same time whatever the signature.
 * Returns 0 if the signature is valid, otherwise -1 with the reason in
 * errstr, which is what the dead-letter topic records:
 *   "unsigned event (no ce_signature header)"
 *   "duplicate header NAME" (ce_signature or a signed header)
 *   "unsupported signature scheme 'SCHEME'"
 *   "malformed signature (64 hex digits expected after 'hmac-sha256=')"
 *   "header NAME contains a newline", "record key contains a newline"
 *   "bad signature"
 */
int pd_sign_verify(const rd_kafka_headers_t *hdrs, const void *rkey,
                   size_t rkey_len, const void *value, size_t len,
                   const unsigned char *secret, size_t secret_len, char *errstr,
                   size_t errstr_size);

/* How far ahead of the verifier's clock a ce_time may be: producers'
 * clocks drift a little, a time further ahead is a forged or broken one. */
#define PD_SIGN_MAX_SKEW_MS (5 * 60 * 1000)

/*
 * Checks that a signed event is fresh. A signature proves who wrote an
 * event, not when it may be used: without this check a copy of a genuine
 * event from last month verifies, and a reactor started on an empty state
 * database would act on it. ce_time is in the signed string, so it cannot
 * be moved without breaking the signature; call this after
 * pd_sign_verify().
 * hdrs are the record's headers (NULL: none); ce_time must be an RFC 3339
 * time ("2026-11-25T14:00:00.123Z", or with an offset such as "+02:00") no
 * more than max_age_ms before now_ms and no more than PD_SIGN_MAX_SKEW_MS
 * after it. max_age_ms 0 turns the check off (returns 0).
 * Returns 0, or -1 with the reason in errstr, which is what the dead-letter
 * topic records:
 *   "no ce_time header (max_event_age needs one)"
 *   "unreadable ce_time 'VALUE' (RFC 3339 expected)"
 *   "event too old: ce_time VALUE is N s old, over max_event_age (M s)"
 *   "ce_time VALUE is N s in the future (over 300 s of clock skew)"
 */
int pd_sign_check_age(const rd_kafka_headers_t *hdrs, int64_t now_ms,
                      int64_t max_age_ms, char *errstr, size_t errstr_size);

#endif
