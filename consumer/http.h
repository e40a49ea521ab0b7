/*
 * http.h - the reactor's HTTP endpoint ([reactor] http = HOST:PORT):
 * /metrics (Prometheus text format 0.0.4), /livez and /readyz, from the
 * registry in consumer/metrics.h. libmicrohttpd serves it on a thread of
 * its own, so a scrape never waits for the reactor's threads.
 */
#ifndef PD_HTTP_H
#define PD_HTTP_H

#include <stddef.h>

typedef struct pd_http_s pd_http_t;

/* How long the poll loop may not turn before /livez says 503: more than
 * the 5 s SQLite may wait on a locked store inside one turn, so a store
 * held by another process makes the reactor unready, not dead. */
#define PD_HTTP_LIVE_MS 10000

/*
 * Listens on `addr` ("HOST:PORT", "[V6]:PORT") and starts serving; counting
 * of Kafka statistics is turned on. Returns the server, or NULL with
 * "cannot listen on ADDR: reason" in errstr (the address is taken, not an
 * address, or this build has no libmicrohttpd). The caller frees it with
 * pd_http_destroy.
 */
pd_http_t *pd_http_new(const char *addr, char *errstr, size_t errstr_size);

/* Stops serving and frees; NULL is fine. */
void pd_http_destroy(pd_http_t *http);

#endif
