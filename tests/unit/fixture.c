/*
 * fixture.c - the temporary folder every unit test's set-up makes and its
 * teardown removes (see fixture.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fixture.h"

void pd_test_tmpdir(char *buf, size_t size, const char *name, size_t max_tmp) {
        const char *tmp = getenv("TMPDIR");
        int n;

        if (!tmp || !*tmp || (max_tmp && strlen(tmp) > max_tmp))
                tmp = "/tmp";
        n = snprintf(buf, size, "%s/pd_%s.XXXXXX", tmp, name);
        if (n < 0 || (size_t)n >= size)
                fail_msg("temporary folder name for %s does not fit %zu bytes",
                         name, size);
        if (!mkdtemp(buf))
                fail_msg("mkdtemp(%s): %s", buf, strerror(errno));
}

/* nftw's callback: one entry, children before their folder (FTW_DEPTH). */
static int rm_entry(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw) {
        (void)sb;
        (void)type;
        (void)ftw;
        if (remove(path) && errno != ENOENT) {
                print_error("cannot remove %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

void pd_test_rmtree(const char *path) {
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
                fail_msg("cannot remove the test folder %s", path);
}
