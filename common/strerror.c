/*
 * strerror.c - see strerror.h. glibc's strerrordesc_np returns the static
 * description itself, where strerror() may use a shared buffer (and
 * strerror_r has two incompatible signatures).
 */
#define _GNU_SOURCE /* strerrordesc_np */
#include "common/strerror.h"

#include <string.h>

const char *pd_strerror(int err) {
        const char *s = strerrordesc_np(err);

        return s ? s : "Unknown error";
}
