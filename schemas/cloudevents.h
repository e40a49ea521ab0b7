/*
 * cloudevents.h - postdeploy's events as Kafka records: the CloudEvents
 * binary-mode headers read and written, and producing an event. Split from
 * schemas/event.h so that code which only builds, encodes or decodes
 * events (state/, the runner, the codec's tests) does not include
 * librdkafka's headers.
 */
#ifndef PD_CLOUDEVENTS_H
#define PD_CLOUDEVENTS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "schemas/event.h"

/*
 * Turns a consumed Kafka message into an event: reads and checks the
 * CloudEvents headers (ce_specversion must be "1.0"; ce_id, ce_source,
 * ce_type present; ce_tenant valid if present), then decodes the value.
 * Returns a new event (caller destroys) or NULL with the reason in errstr;
 * the reason is what the dead-letter topic records.
 */
pd_event_t *pd_event_from_message(const rd_kafka_message_t *rkm, char *errstr,
                                  size_t errstr_size);

/*
 * What pd_event_from_message does once it has the message's parts: hdrs
 * (NULL: no headers) and the value (NULL: none, e.g. a tombstone). Exposed
 * because rd_kafka_message_headers() only works on messages that came from
 * librdkafka, so this is what the header checks are tested through.
 * Every header value must be printable ASCII of at most 256 bytes.
 */
pd_event_t *pd_event_from_parts(const rd_kafka_headers_t *hdrs,
                                const void *value, size_t len, char *errstr,
                                size_t errstr_size);

/*
 * Builds the headers for ev (ce_* attributes, ce_tenant when ev->tenant is
 * set, content-type application/avro). The caller owns the result.
 */
rd_kafka_headers_t *pd_event_headers(const pd_event_t *ev);

/*
 * Stamps ev if needed, encodes it and produces it to `topic` with `key`
 * (NULL: ev->tenant). `opaque` is passed to the delivery report.
 * Returns RD_KAFKA_RESP_ERR_NO_ERROR or the produce error (errstr filled).
 */
rd_kafka_resp_err_t pd_event_produce(rd_kafka_t *rk, const char *topic,
                                     const char *key, pd_event_t *ev,
                                     void *opaque, char *errstr,
                                     size_t errstr_size);

/*
 * pd_event_produce, with a ce_signature header (common/sign.h) made with
 * `secret` when it is not NULL.
 */
rd_kafka_resp_err_t pd_event_produce_signed(rd_kafka_t *rk, const char *topic,
                                            const char *key, pd_event_t *ev,
                                            const unsigned char *secret,
                                            size_t secret_len, void *opaque,
                                            char *errstr, size_t errstr_size);

#endif
