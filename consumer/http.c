/*
 * http.c - /metrics, /livez and /readyz over libmicrohttpd (see http.h).
 *
 * We make and bind the listening socket ourselves, so that an address that
 * is taken is a start-up error that names it, and hand it to
 * libmicrohttpd, whose internal thread answers every request from
 * consumer/metrics.c's registry. Nothing here touches the reactor.
 */
#define _POSIX_C_SOURCE 200809L
#include "consumer/http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/strerror.h"
#include "common/xalloc.h"
#include "consumer/metrics.h"

struct pd_http_s {
        struct MHD_Daemon *daemon;
        int fd;
};

static enum MHD_Result http_reply(struct MHD_Connection *conn,
                                  unsigned int code, const char *type,
                                  char *body) {
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(strlen(body), body,
                                               MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        ret = MHD_queue_response(conn, code, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* A probe's answer: 200 "ok", or 503 and the reason, one line. */
static enum MHD_Result http_probe(struct MHD_Connection *conn, int err,
                                  const char *reason) {
        const char *text = err ? reason : "ok";
        char *body       = pd_xmalloc(strlen(text) + 2);

        sprintf(body, "%s\n", text);
        return http_reply(conn,
                          err ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                          "text/plain; charset=utf-8", body);
}

/* libmicrohttpd's request handler (its thread). */
static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls) {
        char reason[256] = "";

        (void)cls, (void)version, (void)upload_data, (void)req_cls;
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
                return http_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "text/plain", pd_xstrdup("GET only\n"));
        if (*upload_data_size)
                return MHD_NO;
        if (!strcmp(url, "/metrics"))
                return http_reply(conn, MHD_HTTP_OK,
                                  "text/plain; version=0.0.4; "
                                  "charset=utf-8",
                                  pd_metrics_render());
        if (!strcmp(url, "/livez"))
                return http_probe(
                    conn,
                    pd_metrics_live(0, PD_HTTP_LIVE_MS, reason, sizeof(reason)),
                    reason);
        if (!strcmp(url, "/readyz"))
                return http_probe(
                    conn, pd_metrics_ready(reason, sizeof(reason)), reason);
        return http_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
                          pd_xstrdup("not found: try /metrics, /livez, "
                                     "/readyz\n"));
}

/* Binds and listens on addr; returns the socket, or -1 with errstr. */
static int http_listen(const char *addr, char *errstr, size_t errstr_size) {
        struct addrinfo hints = {0}, *ai = NULL;
        const char *name = addr; /* as written, for messages */
        char host[256];
        const char *colon = strrchr(addr, ':');
        size_t hlen;
        int fd = -1, one = 1, rc;

        if (!colon || colon == addr || !colon[1]) {
                snprintf(errstr, errstr_size,
                         "cannot listen on %s: not HOST:PORT", addr);
                return -1;
        }
        hlen = (size_t)(colon - addr);
        if (addr[0] == '[' && colon[-1] == ']') { /* [::1]:9464 */
                addr++;
                hlen -= 2;
        }
        snprintf(host, sizeof(host), "%.*s", (int)hlen, addr);
        hints.ai_family   = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
        if ((rc = getaddrinfo(host, colon + 1, &hints, &ai))) {
                snprintf(errstr, errstr_size, "cannot listen on %s: %s", name,
                         gai_strerror(rc));
                return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        /* SO_REUSEADDR lets a restart take its port back from TIME_WAIT;
         * on Linux it does not let two listeners share one. */
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
                snprintf(errstr, errstr_size, "cannot listen on %s: %s", name,
                         pd_strerror(errno));
                if (fd >= 0)
                        close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        return fd;
}

pd_http_t *pd_http_new(const char *addr, char *errstr, size_t errstr_size) {
        pd_http_t *http = pd_xcalloc(1, sizeof(*http));

        if ((http->fd = http_listen(addr, errstr, errstr_size)) < 0)
                goto err;
        http->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
            http_handle, NULL, MHD_OPTION_LISTEN_SOCKET, http->fd,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
        if (!http->daemon) {
                snprintf(errstr, errstr_size,
                         "cannot listen on %s: libmicrohttpd did not start",
                         addr);
                goto err;
        }
        pd_metrics_enable();
        return http;

err:
        pd_http_destroy(http);
        return NULL;
}

void pd_http_destroy(pd_http_t *http) {
        if (!http)
                return;
        if (http->daemon)
                MHD_stop_daemon(http->daemon);
        else if (http->fd >= 0)
                close(http->fd);
        free(http);
}
