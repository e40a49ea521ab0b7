/*
 * sign.c - see sign.h. The signed string is never built in memory: it is
 * fed piece by piece to one OpenSSL HMAC context, so that a 1 MiB value is
 * not copied to be signed. Everything read from a consumed record is
 * hostile, so the verifier checks the shape of the headers (no duplicate,
 * no newline) before it trusts the signed string to mean one event only.
 */
#include "common/sign.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/strerror.h"
#include "common/xalloc.h"

#define PD_SIGN_MAC_LEN 32 /* SHA-256 */
#define PD_SIGN_HEX_LEN (2 * PD_SIGN_MAC_LEN)

/* The signed headers, in the order they are signed (see sign.h). */
static const char *const sign_names[] = {
    "ce_specversion", "ce_id",     "ce_source",    "ce_type",
    "ce_time",        "ce_tenant", "content-type",
};

/* A hostile value made fit for a message: at most 32 bytes, anything but
 * printable ASCII shown as '?'. buf must hold 33 bytes. */
static const char *sign_quote(const void *s, size_t len, char buf[33]) {
        const unsigned char *p = s;
        size_t i;

        if (len > 32)
                len = 32;
        for (i = 0; i < len; i++)
                buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
        buf[i] = '\0';
        return buf;
}


/*
 * Key files.
 */

int pd_sign_key_load(const char *path, unsigned char **keyp, size_t *lenp,
                     char *errstr, size_t errstr_size) {
        unsigned char *buf = NULL;
        size_t len         = 0;
        struct stat stt;
        ssize_t r;
        int fd, err = -1;

        *keyp = NULL;
        *lenp = 0;
        /* O_NONBLOCK: a FIFO put where the key should be must fail below,
         * not hang the program in open(). */
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
            -1) {
                pd_errf(errstr, errstr_size, "cannot open signing key %s: %s",
                        path, pd_strerror(errno));
                goto done;
        }
        /* fstat, not stat: the checks are about the file that is read. */
        if (fstat(fd, &stt)) {
                pd_errf(errstr, errstr_size, "cannot stat signing key %s: %s",
                        path, pd_strerror(errno));
                goto done;
        }
        if (!S_ISREG(stt.st_mode)) {
                pd_errf(errstr, errstr_size,
                        "signing key %s is not a regular file", path);
                goto done;
        }
        /* Anyone who can read the key can sign; anyone who can write it can
         * make the reactor refuse every genuine event. */
        if (stt.st_mode & 077) {
                pd_errf(errstr, errstr_size,
                        "signing key %s is readable by others (chmod 600)",
                        path);
                goto done;
        }

        /* One byte more than allowed tells "too large" from "just fits"
         * whatever st_size said. */
        buf = pd_xmalloc(PD_SIGN_KEY_MAX + 1);
        while (len < PD_SIGN_KEY_MAX + 1) {
                r = read(fd, buf + len, PD_SIGN_KEY_MAX + 1 - len);
                if (r == -1 && errno == EINTR)
                        continue;
                if (r == -1) {
                        pd_errf(errstr, errstr_size,
                                "cannot read signing key %s: %s", path,
                                pd_strerror(errno));
                        goto done;
                }
                if (r == 0)
                        break;
                len += (size_t)r;
        }
        if (len > PD_SIGN_KEY_MAX) {
                pd_errf(errstr, errstr_size,
                        "signing key %s is larger than %d bytes", path,
                        PD_SIGN_KEY_MAX);
                goto done;
        }
        /* Editors and `echo` end files with a newline that nobody means as
         * part of the key; every producer must strip it the same way. */
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                len--;
        if (!len) {
                pd_errf(errstr, errstr_size, "signing key %s is empty", path);
                goto done;
        }
        if (len < PD_SIGN_KEY_MIN) {
                pd_errf(errstr, errstr_size,
                        "signing key %s is shorter than %d bytes", path,
                        PD_SIGN_KEY_MIN);
                goto done;
        }

        *keyp = buf;
        *lenp = len;
        buf   = NULL;
        err   = 0;
done:
        if (buf) {
                OPENSSL_cleanse(buf, PD_SIGN_KEY_MAX + 1);
                free(buf);
        }
        if (fd != -1)
                close(fd);
        return err;
}

void pd_sign_key_free(unsigned char *key, size_t len) {
        if (!key)
                return;
        /* OPENSSL_cleanse, not memset: a compiler may drop a memset of
         * memory that is freed right after. */
        OPENSSL_cleanse(key, len);
        free(key);
}


/*
 * The signature.
 */

/* Feeds one header of the signed string: "name=value\n" or "name\n". */
static int sign_update_field(EVP_MAC_CTX *mctx, const char *name, int present,
                             const void *val, size_t size) {
        if (!EVP_MAC_update(mctx, (const unsigned char *)name, strlen(name)))
                return -1;
        if (present) {
                if (!EVP_MAC_update(mctx, (const unsigned char *)"=", 1))
                        return -1;
                /* A Kafka header may have a null value: size is then 0 and
                 * it is signed as an empty one. */
                if (size && !EVP_MAC_update(mctx, val, size))
                        return -1;
        }
        return EVP_MAC_update(mctx, (const unsigned char *)"\n", 1) ? 0 : -1;
}

/*
 * Computes the HMAC-SHA256 of the signed string of (hdrs, rkey, value) into
 * mac. Returns 0, or -1 with errstr if the headers or the key are not in a
 * shape that can be signed unambiguously, or if OpenSSL fails.
 */
static int sign_mac(const rd_kafka_headers_t *hdrs, const void *rkey,
                    size_t rkey_len, const void *value, size_t len,
                    const unsigned char *secret, size_t secret_len,
                    unsigned char mac[PD_SIGN_MAC_LEN], char *errstr,
                    size_t errstr_size) {
        /* OSSL_PARAM wants a char *, even for a value it only reads. */
        char digest[]       = "SHA256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end(),
        };
        EVP_MAC *hmac     = NULL;
        EVP_MAC_CTX *mctx = NULL;
        const void *val;
        size_t size, i, outl = 0;
        int err = -1;

        assert(secret && secret_len);

        /* The shape first: a signature must never be computed, or
         * accepted, over headers that could be read two ways. */
        for (i = 0; i < sizeof(sign_names) / sizeof(sign_names[0]); i++) {
                if (!hdrs ||
                    rd_kafka_header_get(hdrs, 0, sign_names[i], &val, &size))
                        continue;
                if (!rd_kafka_header_get(hdrs, 1, sign_names[i], &val, &size))
                        return pd_errf(errstr, errstr_size,
                                       "duplicate header %s", sign_names[i]);
                if (size && memchr(val, '\n', size))
                        return pd_errf(errstr, errstr_size,
                                       "header %s contains a newline",
                                       sign_names[i]);
        }
        if (rkey && rkey_len && memchr(rkey, '\n', rkey_len))
                return pd_errf(errstr, errstr_size,
                               "record key contains a newline");

        if (!(hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) ||
            !(mctx = EVP_MAC_CTX_new(hmac)) ||
            !EVP_MAC_init(mctx, secret, secret_len, params))
                goto done;
        for (i = 0; i < sizeof(sign_names) / sizeof(sign_names[0]); i++) {
                int present = hdrs && !rd_kafka_header_get(
                                          hdrs, 0, sign_names[i], &val, &size);

                if (sign_update_field(mctx, sign_names[i], present,
                                      present ? val : NULL, present ? size : 0))
                        goto done;
        }
        if (sign_update_field(mctx, "key", rkey != NULL, rkey, rkey_len))
                goto done;
        if (len && !EVP_MAC_update(mctx, value, len))
                goto done;
        if (!EVP_MAC_final(mctx, mac, &outl, PD_SIGN_MAC_LEN) ||
            outl != PD_SIGN_MAC_LEN)
                goto done;
        err = 0;
done:
        if (err)
                pd_errf(errstr, errstr_size, "HMAC-SHA256 failed in OpenSSL");
        EVP_MAC_CTX_free(mctx);
        EVP_MAC_free(hmac);
        return err;
}

int pd_sign_headers(rd_kafka_headers_t *hdrs, const void *rkey, size_t rkey_len,
                    const void *value, size_t len, const unsigned char *secret,
                    size_t secret_len, char *errstr, size_t errstr_size) {
        static const char hex[] = "0123456789abcdef";
        unsigned char mac[PD_SIGN_MAC_LEN];
        char sig[sizeof(PD_SIGN_SCHEME "=") + PD_SIGN_HEX_LEN];
        rd_kafka_resp_err_t err;
        char *p;
        size_t i;

        /* A stale signature from an earlier attempt must not travel next
         * to the new one: the verifier refuses two. */
        rd_kafka_header_remove(hdrs, PD_SIGN_HEADER);
        if (sign_mac(hdrs, rkey, rkey_len, value, len, secret, secret_len, mac,
                     errstr, errstr_size))
                return -1;
        p = sig + strlen(strcpy(sig, PD_SIGN_SCHEME "="));
        for (i = 0; i < PD_SIGN_MAC_LEN; i++) {
                *p++ = hex[mac[i] >> 4];
                *p++ = hex[mac[i] & 0xf];
        }
        *p  = '\0';
        err = rd_kafka_header_add(hdrs, PD_SIGN_HEADER, -1, sig, -1);
        if (err)
                return pd_errf(errstr, errstr_size,
                               "cannot add the " PD_SIGN_HEADER " header: %s",
                               rd_kafka_err2str(err));
        return 0;
}

/* The value of one hex digit, either case, or -1. */
static int sign_hexval(unsigned char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int pd_sign_verify(const rd_kafka_headers_t *hdrs, const void *rkey,
                   size_t rkey_len, const void *value, size_t len,
                   const unsigned char *secret, size_t secret_len, char *errstr,
                   size_t errstr_size) {
        static const size_t scheme_len = sizeof(PD_SIGN_SCHEME) - 1;
        unsigned char want[PD_SIGN_MAC_LEN], got[PD_SIGN_MAC_LEN];
        const unsigned char *sig, *eq;
        const void *val = NULL, *dup;
        size_t size     = 0, dup_size, i;
        char q[33];

        if (!hdrs || rd_kafka_header_get(hdrs, 0, PD_SIGN_HEADER, &val, &size))
                return pd_errf(errstr, errstr_size,
                               "unsigned event (no " PD_SIGN_HEADER " header)");
        if (!rd_kafka_header_get(hdrs, 1, PD_SIGN_HEADER, &dup, &dup_size))
                return pd_errf(errstr, errstr_size,
                               "duplicate header " PD_SIGN_HEADER);

        /* "scheme=hex"; with no '=' the whole value names the scheme. */
        sig = size ? val : (const unsigned char *)"";
        eq  = size ? memchr(sig, '=', size) : NULL;
        if ((eq ? (size_t)(eq - sig) : size) != scheme_len ||
            memcmp(sig, PD_SIGN_SCHEME, scheme_len))
                return pd_errf(
                    errstr, errstr_size, "unsupported signature scheme '%s'",
                    sign_quote(sig, eq ? (size_t)(eq - sig) : size, q));
        /* Either case of hex: the case carries no information, and some
         * libraries (Java's, .NET's) print upper case. */
        if (!eq || size - scheme_len - 1 != PD_SIGN_HEX_LEN)
                goto malformed;
        for (i = 0; i < PD_SIGN_MAC_LEN; i++) {
                int hi = sign_hexval(eq[1 + 2 * i]);
                int lo = sign_hexval(eq[2 + 2 * i]);

                if (hi == -1 || lo == -1)
                        goto malformed;
                got[i] = (unsigned char)(hi << 4 | lo);
        }

        if (sign_mac(hdrs, rkey, rkey_len, value, len, secret, secret_len, want,
                     errstr, errstr_size))
                return -1;
        /* Constant time: how many leading bytes matched must not leak. */
        if (CRYPTO_memcmp(want, got, PD_SIGN_MAC_LEN))
                return pd_errf(errstr, errstr_size, "bad signature");
        return 0;

malformed:
        return pd_errf(errstr, errstr_size,
                       "malformed signature (%d hex digits expected "
                       "after '" PD_SIGN_SCHEME "=')",
                       PD_SIGN_HEX_LEN);
}


/*
 * Freshness.
 */

int pd_sign_check_age(const rd_kafka_headers_t *hdrs, int64_t now_ms,
                      int64_t max_age_ms, char *errstr, size_t errstr_size) {
        const void *val = NULL;
        size_t size     = 0;
        int64_t t;
        char q[33];

        if (!max_age_ms)
                return 0;
        if (!hdrs || rd_kafka_header_get(hdrs, 0, "ce_time", &val, &size))
                return pd_errf(errstr, errstr_size,
                               "no ce_time header (max_event_age needs one)");
        sign_quote(size ? val : "", size, q);
        if (!size || pd_time_parse(val, size, &t))
                return pd_errf(errstr, errstr_size,
                               "unreadable ce_time '%s' (RFC 3339 expected)",
                               q);
        if (now_ms - t > max_age_ms)
                return pd_errf(errstr, errstr_size,
                               "event too old: ce_time %s is %" PRId64
                               " s old, over max_event_age (%" PRId64 " s)",
                               q, (now_ms - t) / 1000, max_age_ms / 1000);
        if (t - now_ms > PD_SIGN_MAX_SKEW_MS)
                return pd_errf(errstr, errstr_size,
                               "ce_time %s is %" PRId64
                               " s in the future (over %d s of clock skew)",
                               q, (t - now_ms) / 1000,
                               PD_SIGN_MAX_SKEW_MS / 1000);
        return 0;
}
