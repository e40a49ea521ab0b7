/*
 * http_none.c - the HTTP endpoint of a build without libmicrohttpd
 * (scripts/setup.sh --demo does not install it): `[reactor] http` is then
 * a start-up error that says so, and the rest of the reactor is the same.
 */
#include <stdio.h>

#include "consumer/http.h"

pd_http_t *pd_http_new(const char *addr, char *errstr, size_t errstr_size) {
        snprintf(errstr, errstr_size,
                 "cannot listen on %s: this build has no libmicrohttpd "
                 "(install libmicrohttpd-dev and build again)",
                 addr);
        return NULL;
}

void pd_http_destroy(pd_http_t *http) {
        (void)http;
}
