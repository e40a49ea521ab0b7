/*
 * path.c - see path.h.
 */
#include "common/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xalloc.h"

int pd_mkparents(const char *path, char *failed, size_t failed_size) {
        char *dir = pd_xstrdup(path);
        int ret   = -1, err;

        /* Skips a leading '/': the root always exists. */
        for (char *p = strchr(dir + (*dir == '/'), '/'); p;
             p       = strchr(p + 1, '/')) {
                *p = '\0';
                if (p > dir && p[-1] != '/' && mkdir(dir, 0700) &&
                    errno != EEXIST) {
                        err = errno;
                        if (failed)
                                snprintf(failed, failed_size, "%s", dir);
                        errno = err;
                        goto out;
                }
                *p = '/';
        }
        ret = 0;
out:
        free(dir);
        return ret;
}
