/*
 * fixture.h - what every unit test's set-up shares: a private temporary
 * folder, made fresh for a test and removed with everything in it after.
 *
 * Built into every tests/unit/test_*.c program (tests/CMakeLists.txt).
 * Both functions fail the running test (cmocka's fail_msg) instead of
 * returning an error: a test without its folder cannot mean anything.
 */
#ifndef PD_TEST_FIXTURE_H
#define PD_TEST_FIXTURE_H

#include <stddef.h>

/* Makes a new folder "$TMPDIR/pd_NAME.XXXXXX" and writes its path into buf.
 * TMPDIR is ignored when unset, empty or longer than max_tmp bytes (then
 * /tmp is used): a test that puts a UNIX socket beneath the folder passes
 * a limit so the socket's path fits sun_path; 0 means no limit. */
void pd_test_tmpdir(char *buf, size_t size, const char *name, size_t max_tmp);

/* Removes path and everything beneath it, without following links.
 * Fails the test if anything is left. */
void pd_test_rmtree(const char *path);

#endif
