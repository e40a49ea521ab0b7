/*
 * cloudevents.c - events as Kafka records in CloudEvents binary mode: the
 * ce_* attributes read from and written to Kafka headers, and producing an
 * event (stamped, Avro-encoded, optionally signed). The only part of
 * schemas/ that needs librdkafka; its API is schemas/cloudevents.h, so
 * that code which only encodes or decodes events does not include
 * librdkafka's headers.
 */
#include "schemas/cloudevents.h"
#include "schemas/event_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h" /* pd_tenant_valid, pd_release_valid */
#include "common/log.h"
#include "common/sign.h"

/*
 * Kafka messages.
 */

/*
 * Copies header `name` into buf (PD_HDR_MAX + 1 bytes). Sets *presentp; an
 * absent header is an error if required. A present one must be 1 to
 * PD_HDR_MAX bytes of printable ASCII, which also keeps NULs, control
 * characters and UTF-8 out of ids, logs and the dead-letter topic.
 */
static int hdr_get(const rd_kafka_headers_t *hdrs, const char *name,
                   int required, char *buf, int *presentp, char *errstr,
                   size_t errstr_size) {
        const void *val = NULL;
        const unsigned char *p;
        size_t size = 0, i;

        buf[0]    = '\0';
        *presentp = 0;
        if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &size)) {
                if (required)
                        return pd_errf(errstr, errstr_size, "missing header %s",
                                       name);
                return 0;
        }
        if (!val || !size)
                return pd_errf(errstr, errstr_size, "header %s is empty", name);
        if (size > PD_HDR_MAX)
                return pd_errf(errstr, errstr_size,
                               "header %s is %zu bytes, longer than %d", name,
                               size, PD_HDR_MAX);
        for (p = val, i = 0; i < size; i++)
                if (p[i] < 0x20 || p[i] >= 0x7f)
                        return pd_errf(errstr, errstr_size,
                                       "header %s is not printable ASCII",
                                       name);
        memcpy(buf, val, size);
        buf[size] = '\0';
        *presentp = 1;
        return 0;
}

pd_event_t *pd_event_from_parts(const rd_kafka_headers_t *hdrs,
                                const void *value, size_t len, char *errstr,
                                size_t errstr_size) {
        char specversion[PD_HDR_MAX + 1], id[PD_HDR_MAX + 1],
            source[PD_HDR_MAX + 1], type[PD_HDR_MAX + 1], time[PD_HDR_MAX + 1],
            tenant[PD_HDR_MAX + 1], ctype[PD_HDR_MAX + 1];
        int present, has_time, has_tenant, has_ctype;
        pd_evtype_t evtype;
        pd_event_t *ev = NULL;

        if (hdr_get(hdrs, "ce_specversion", 1, specversion, &present, errstr,
                    errstr_size) ||
            hdr_get(hdrs, "ce_id", 1, id, &present, errstr, errstr_size) ||
            hdr_get(hdrs, "ce_source", 1, source, &present, errstr,
                    errstr_size) ||
            hdr_get(hdrs, "ce_type", 1, type, &present, errstr, errstr_size) ||
            hdr_get(hdrs, "ce_time", 0, time, &has_time, errstr, errstr_size) ||
            hdr_get(hdrs, "ce_tenant", 0, tenant, &has_tenant, errstr,
                    errstr_size) ||
            hdr_get(hdrs, "content-type", 0, ctype, &has_ctype, errstr,
                    errstr_size))
                goto fail;
        if (strcmp(specversion, "1.0")) {
                pd_errf(errstr, errstr_size,
                        "unsupported ce_specversion '%s' (1.0 expected)",
                        specversion);
                goto fail;
        }
        if ((evtype = pd_evtype_parse(type)) == PD_EVT_UNKNOWN) {
                pd_errf(errstr, errstr_size, "unknown ce_type '%s'", type);
                goto fail;
        }
        if (has_tenant && !pd_tenant_valid(tenant)) {
                pd_errf(errstr, errstr_size, "invalid tenant '%s' in ce_tenant",
                        tenant);
                goto fail;
        }
        if (!value) {
                pd_errf(errstr, errstr_size, "message has no value");
                goto fail;
        }

        ev = pd_event_new(evtype);
        if (pd_event_decode(ev, has_ctype ? ctype : NULL, value, len, errstr,
                            errstr_size))
                goto fail;

        /* A release becomes a word of an action's argv: one that is no
         * version (`--delete`) is refused here, before anything runs. The
         * requests on the events topic are checked; skip and reset may
         * leave it empty. Results only repeat a checked trigger's release,
         * and a report must still read those written before the rule. */
        if ((evtype == PD_EVT_RELEASE_DEPLOYED ||
             ((evtype == PD_EVT_SKIP_REQUESTED ||
               evtype == PD_EVT_RESET_REQUESTED) &&
              ev->release && *ev->release)) &&
            !pd_release_valid(ev->release)) {
                char q[80];

                pd_errf(errstr, errstr_size,
                        "invalid release '%s': a release is " PD_RELEASE_RULE,
                        ev->release
                            ? pd__quote(ev->release, strlen(ev->release), q,
                                        sizeof(q))
                            : "");
                goto fail;
        }

        /* The results types carry the tenant in their data too; the two
         * must not tell different stories. */
        if (ev->tenant) {
                if (!pd_tenant_valid(ev->tenant)) {
                        char q[80];

                        pd_errf(errstr, errstr_size,
                                "invalid tenant '%s' in the data",
                                pd__quote(ev->tenant, strlen(ev->tenant), q,
                                          sizeof(q)));
                        goto fail;
                }
                if (has_tenant && strcmp(ev->tenant, tenant)) {
                        pd_errf(errstr, errstr_size,
                                "tenant '%s' in the data, '%s' in ce_tenant",
                                ev->tenant, tenant);
                        goto fail;
                }
        } else if (has_tenant) {
                ev->tenant = pd_xstrdup(tenant);
        }
        ev->ce_id     = pd_xstrdup(id);
        ev->ce_source = pd_xstrdup(source);
        if (has_time)
                ev->ce_time = pd_xstrdup(time);
        return ev;

fail:
        pd_event_destroy(ev);
        return NULL;
}

pd_event_t *pd_event_from_message(const rd_kafka_message_t *rkm, char *errstr,
                                  size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;

        if (rkm->err) {
                pd_errf(errstr, errstr_size, "consume error: %s",
                        rd_kafka_message_errstr(rkm));
                return NULL;
        }
        err = rd_kafka_message_headers(rkm, &hdrs);
        if (err == RD_KAFKA_RESP_ERR__NOENT) {
                hdrs = NULL;
        } else if (err) {
                pd_errf(errstr, errstr_size, "cannot read the headers: %s",
                        rd_kafka_err2str(err));
                return NULL;
        }
        return pd_event_from_parts(hdrs, rkm->payload, rkm->len, errstr,
                                   errstr_size);
}

rd_kafka_headers_t *pd_event_headers(const pd_event_t *ev) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);

        rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
        if (ev->ce_id)
                rd_kafka_header_add(hdrs, "ce_id", -1, ev->ce_id, -1);
        if (ev->ce_source)
                rd_kafka_header_add(hdrs, "ce_source", -1, ev->ce_source, -1);
        if (pd__evtype_valid(ev->type))
                rd_kafka_header_add(hdrs, "ce_type", -1,
                                    pd_evtypes[ev->type].name, -1);
        if (ev->ce_time)
                rd_kafka_header_add(hdrs, "ce_time", -1, ev->ce_time, -1);
        if (ev->tenant)
                rd_kafka_header_add(hdrs, "ce_tenant", -1, ev->tenant, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/avro", -1);
        return hdrs;
}

rd_kafka_resp_err_t pd_event_produce(rd_kafka_t *rk, const char *topic,
                                     const char *key, pd_event_t *ev,
                                     void *opaque, char *errstr,
                                     size_t errstr_size) {
        return pd_event_produce_signed(rk, topic, key, ev, NULL, 0, opaque,
                                       errstr, errstr_size);
}

rd_kafka_resp_err_t pd_event_produce_signed(rd_kafka_t *rk, const char *topic,
                                            const char *key, pd_event_t *ev,
                                            const unsigned char *secret,
                                            size_t secret_len, void *opaque,
                                            char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;
        void *buf = NULL;
        size_t len;

        pd_event_stamp(ev, NULL);
        if (pd_event_encode(ev, &buf, &len, errstr, errstr_size)) {
                err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                goto out;
        }
        hdrs = pd_event_headers(ev);
        if (!key)
                key = ev->tenant;
        if (secret &&
            pd_sign_headers(hdrs, key, key ? strlen(key) : 0, buf, len, secret,
                            secret_len, errstr, errstr_size)) {
                err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                goto out;
        }
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                RD_KAFKA_V_VALUE(buf, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err) {
                pd_errf(errstr, errstr_size, "cannot produce %s to %s: %s",
                        pd_evtypes[ev->type].name, topic,
                        rd_kafka_err2str(err));
                goto out;
        }
        /* librdkafka owns the value and the headers once producev succeeds,
         * and only then. */
        buf  = NULL;
        hdrs = NULL;
out:
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        free(buf);
        return err;
}
