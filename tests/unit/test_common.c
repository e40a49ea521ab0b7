/*
 * test_common.c - the base layer every module builds on: allocation that
 * never returns NULL (it aborts, saying why), the growable array, the
 * string vector and the hash map.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/map.h"
#include "common/path.h"
#include "common/random.h"
#include "common/strerror.h"
#include "common/strv.h"
#include "common/xalloc.h"

/* ---- allocation ---- */

/* Runs fn in a child and returns its stderr; *sig gets the signal that
 * ended it (0 if it exited). */
static char *run_child(void (*fn)(void), int *sig) {
        static char out[512];
        int pipefd[2], status;
        ssize_t n;
        size_t len = 0;
        pid_t pid;

        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(pipefd[1], 2);
                close(pipefd[0]);
                /* No core file for an abort we asked for. */
                signal(SIGABRT, SIG_DFL);
                fn();
                _exit(0);
        }
        close(pipefd[1]);
        while ((n = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0)
                len += (size_t)n;
        out[len] = '\0';
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return out;
}

static void alloc_too_much(void) {
        /* More than any address space holds: malloc must say no. */
        volatile size_t huge = SIZE_MAX - 4096;
        void *p              = pd_xmalloc(huge);

        (void)p;
}

static void grow_past_size_max(void) {
        size_t cap = 0;
        void *p    = pd_xgrow(NULL, &cap, SIZE_MAX / 2 + 2, 4);

        (void)p;
}

static void test_out_of_memory_aborts_with_a_message(void **state) {
        int sig;
        char *err;

        (void)state;
        err = run_child(alloc_too_much, &sig);
        assert_int_equal(sig, SIGABRT);
        assert_non_null(strstr(err, "out of memory"));

        /* A capacity that cannot be doubled, or multiplied by the item
         * size, is no smaller a failure: never a wrapped-around size. */
        err = run_child(grow_past_size_max, &sig);
        assert_int_equal(sig, SIGABRT);
        assert_non_null(strstr(err, "out of memory"));
}

static void test_zero_sized_allocations_are_real_pointers(void **state) {
        char *s;
        void *p = pd_xmalloc(0), *q = pd_xcalloc(0, 8);

        (void)state;
        assert_non_null(p);
        assert_non_null(q);
        free(p);
        free(q);
        s = pd_xstrdup(NULL);
        assert_string_equal(s, "");
        free(s);
        s = pd_xstrndup("tenant/action", 6);
        assert_string_equal(s, "tenant");
        free(s);
}

static void test_strerror_names_the_error(void **state) {
        (void)state;
        assert_string_equal(pd_strerror(ENOENT), "No such file or directory");
        assert_string_equal(pd_strerror(-12345), "Unknown error");
}

/* ---- the growable array ---- */

static void test_grow_keeps_items_and_doubles(void **state) {
        int *v     = NULL;
        size_t cap = 0, moves = 0, last_cap = 0;

        (void)state;
        for (int i = 0; i < 100000; i++) {
                v = pd_xgrow(v, &cap, (size_t)i + 1, sizeof(*v));
                assert_true(cap >= (size_t)i + 1);
                if (cap != last_cap) {
                        /* Each growth at least doubles. */
                        assert_true(cap >= 2 * last_cap);
                        moves++;
                        last_cap = cap;
                }
                v[i] = i;
        }
        /* 8, 16, ... 131072: 15 growths for 100000 appends, not 100000. */
        assert_int_equal(moves, 15);
        for (int i = 0; i < 100000; i++)
                assert_int_equal(v[i], i);
        free(v);
}

static void test_grow_with_room_changes_nothing(void **state) {
        size_t cap = 0;
        char *p    = pd_xgrow(NULL, &cap, 100, 1), *q;

        (void)state;
        assert_int_equal(cap, 128);
        q = pd_xgrow(p, &cap, 128, 1);
        assert_ptr_equal(p, q);
        assert_int_equal(cap, 128);
        /* A jump far past the capacity goes there in one call. */
        q = pd_xgrow(q, &cap, 5000, 1);
        assert_int_equal(cap, 8192);
        free(q);
}

/* ---- strv ---- */

static void test_strv_copies_and_stays_null_terminated(void **state) {
        pd_strv_t sv = {0};
        char word[]  = "alpha";

        (void)state;
        pd_strv_add(&sv, word);
        word[0] = 'X'; /* the vector holds its own copy */
        pd_strv_add(&sv, "beta");
        assert_int_equal(sv.cnt, 2);
        assert_string_equal(sv.v[0], "alpha");
        assert_null(sv.v[2]);
        assert_int_equal(pd_strv_find(&sv, "beta"), 1);
        assert_int_equal(pd_strv_find(&sv, "gamma"), -1);
        pd_strv_set(&sv, 1, "gamma");
        assert_int_equal(pd_strv_find(&sv, "gamma"), 1);
        pd_strv_truncate(&sv, 1);
        assert_int_equal(sv.cnt, 1);
        assert_null(sv.v[1]);
        pd_strv_truncate(&sv, 0);
        assert_int_equal(sv.cnt, 0);
        assert_null(sv.v);
        pd_strv_add(&sv, "again");
        assert_string_equal(sv.v[0], "again");
        pd_strv_clear(&sv);
        assert_null(sv.v);
        assert_int_equal(sv.cnt, 0);
}

static void test_strv_grows_geometrically(void **state) {
        pd_strv_t sv   = {0};
        size_t growths = 0, last_cap = 0;
        char num[16];

        (void)state;
        for (int i = 0; i < 10000; i++) {
                snprintf(num, sizeof(num), "%d", i);
                pd_strv_add(&sv, num);
                if (sv.cap != last_cap) {
                        growths++;
                        last_cap = sv.cap;
                }
                assert_true(sv.cap >= sv.cnt + 1);
        }
        /* It doubled (8 .. 16384: 12 growths) rather than growing by one
         * for each string, and holds at most twice what it uses. */
        assert_int_equal(growths, 12);
        assert_true(sv.cap <= 2 * (sv.cnt + 1));
        for (int i = 0; i < 10000; i++) {
                snprintf(num, sizeof(num), "%d", i);
                assert_string_equal(sv.v[i], num);
        }
        assert_null(sv.v[sv.cnt]);
        pd_strv_clear(&sv);
}

/* ---- the hash map ---- */

static void test_hash_is_fnv1a_64(void **state) {
        (void)state;
        /* The published FNV-1a test vectors. */
        assert_true(pd_map_hash("", 0) == 0xcbf29ce484222325ull);
        assert_true(pd_map_hash("a", 1) == 0xaf63dc4c8601ec8cull);
        assert_true(pd_map_hash("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_map_put_then_get(void **state) {
        pd_map_t *m = pd_map_new();
        int one = 1, two = 2;
        void **vp;

        (void)state;
        assert_null(pd_map_get(m, "acme/reindex", 12));
        vp = pd_map_put(m, "acme/reindex", 12);
        assert_null(*vp); /* a new key holds nothing yet */
        *vp = &one;
        assert_ptr_equal(pd_map_get(m, "acme/reindex", 12), &one);
        /* The same key again is the same place, not a second entry. */
        vp = pd_map_put(m, "acme/reindex", 12);
        assert_ptr_equal(*vp, &one);
        *vp = &two;
        assert_ptr_equal(pd_map_get(m, "acme/reindex", 12), &two);
        assert_int_equal(pd_map_count(m), 1);
        pd_map_destroy(m, NULL);
}

static void test_map_keys_are_bytes_with_a_length(void **state) {
        pd_map_t *m = pd_map_new();
        int a = 1, b = 2, c = 3;

        (void)state;
        *pd_map_put(m, "ab", 1)   = &a; /* "a" */
        *pd_map_put(m, "ab", 2)   = &b; /* "ab" */
        *pd_map_put(m, "a\0b", 3) = &c; /* a NUL inside */
        assert_ptr_equal(pd_map_get(m, "a", 1), &a);
        assert_ptr_equal(pd_map_get(m, "ab", 2), &b);
        assert_ptr_equal(pd_map_get(m, "a\0b", 3), &c);
        assert_null(pd_map_get(m, "a\0c", 3));
        assert_int_equal(pd_map_count(m), 3);
        pd_map_destroy(m, NULL);
}

static void test_map_keeps_its_own_copy_of_keys(void **state) {
        pd_map_t *m = pd_map_new();
        char key[]  = "acme/warm";
        const char *k;
        size_t it = 0, len;
        void *v;
        int x = 7;

        (void)state;
        *pd_map_put(m, key, strlen(key)) = &x;
        key[0]                           = 'X';
        assert_ptr_equal(pd_map_get(m, "acme/warm", 9), &x);
        assert_int_equal(pd_map_next(m, &it, &k, &len, &v), 1);
        assert_string_equal(k, "acme/warm");
        assert_int_equal(len, 9);
        assert_int_equal(pd_map_next(m, &it, &k, &len, &v), 0);
        pd_map_destroy(m, NULL);
}

static void test_map_colliding_keys_stay_apart(void **state) {
        pd_map_t *m = pd_map_new();
        char keys[8][16];
        int vals[8], found = 0;
        uint64_t slot = 0;

        (void)state;
        /* Keys that land on the same slot of a 16-slot table, so each one
         * after the first probes past the others. */
        for (int i = 0; found < 8 && i < 100000; i++) {
                char k[16];

                snprintf(k, sizeof(k), "k%d", i);
                if (!found)
                        slot = pd_map_hash(k, strlen(k)) & 15;
                if ((pd_map_hash(k, strlen(k)) & 15) == slot)
                        memcpy(keys[found++], k, sizeof(k));
        }
        assert_int_equal(found, 8);
        for (int i = 0; i < 8; i++) {
                vals[i]                                  = i;
                *pd_map_put(m, keys[i], strlen(keys[i])) = &vals[i];
        }
        for (int i = 0; i < 8; i++)
                assert_ptr_equal(pd_map_get(m, keys[i], strlen(keys[i])),
                                 &vals[i]);
        assert_null(pd_map_get(m, "absent", 6));
        assert_int_equal(pd_map_count(m), 8);
        pd_map_destroy(m, NULL);
}

static void test_map_grows_and_loses_nothing(void **state) {
        pd_map_t *m = pd_map_new();
        char key[64];
        size_t it = 0, seen = 0;
        void *v;

        (void)state;
        for (intptr_t i = 1; i <= 50000; i++) {
                snprintf(key, sizeof(key), "tenant%ld/action", (long)i);
                *pd_map_put(m, key, strlen(key)) = (void *)i;
        }
        assert_int_equal(pd_map_count(m), 50000);
        for (intptr_t i = 1; i <= 50000; i++) {
                snprintf(key, sizeof(key), "tenant%ld/action", (long)i);
                assert_true(pd_map_get(m, key, strlen(key)) == (void *)i);
        }
        /* Iteration visits every entry once. */
        while (pd_map_next(m, &it, NULL, NULL, &v))
                seen++;
        assert_int_equal(seen, 50000);
        pd_map_clear(m, NULL);
        assert_int_equal(pd_map_count(m), 0);
        assert_null(pd_map_get(m, "tenant1/action", 14));
        pd_map_destroy(m, NULL);
}

static void test_map_frees_values_it_is_told_to(void **state) {
        pd_map_t *m = pd_map_new();

        (void)state;
        /* Under ASan or valgrind a leak here fails the run. */
        *pd_map_put(m, "a", 1) = pd_xstrdup("one");
        *pd_map_put(m, "b", 1) = pd_xstrdup("two");
        pd_map_clear(m, free);
        *pd_map_put(m, "c", 1) = pd_xstrdup("three");
        pd_map_destroy(m, free);
}

static void test_null_map_reads_as_empty(void **state) {
        size_t it = 0;
        void *v;

        (void)state;
        assert_null(pd_map_get(NULL, "a", 1));
        assert_int_equal(pd_map_count(NULL), 0);
        assert_int_equal(pd_map_next(NULL, &it, NULL, NULL, &v), 0);
        pd_map_destroy(NULL, free);
}

static void assert_private_folder(const char *path) {
        struct stat sb;

        assert_int_equal(stat(path, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 077, 0);
}

static void test_mkparents_makes_each_missing_folder_private(void **state) {
        char dir[256], path[512], part[512];
        mode_t old = umask(0);

        (void)state;
        pd_test_tmpdir(dir, sizeof(dir), "test_common", 0);
        snprintf(path, sizeof(path), "%s/a//b/c/state.db", dir);
        assert_int_equal(pd_mkparents(path, NULL, 0), 0);
        umask(old);
        snprintf(part, sizeof(part), "%s/a", dir);
        assert_private_folder(part);
        snprintf(part, sizeof(part), "%s/a/b/c", dir);
        assert_private_folder(part);
        /* The file itself is not made, and a second call changes nothing. */
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(pd_mkparents(path, NULL, 0), 0);
        pd_test_rmtree(dir);
}

static void test_mkparents_names_the_folder_it_could_not_make(void **state) {
        char dir[256], path[512], failed[512] = "", file[512];
        FILE *fp;

        (void)state;
        pd_test_tmpdir(dir, sizeof(dir), "test_common", 0);
        snprintf(file, sizeof(file), "%s/plain", dir);
        assert_non_null(fp = fopen(file, "w"));
        assert_int_equal(fclose(fp), 0);
        /* A regular file where a folder should be. */
        snprintf(path, sizeof(path), "%s/plain/sub/state.db", dir);
        assert_int_equal(pd_mkparents(path, failed, sizeof(failed)), -1);
        assert_int_equal(errno, ENOTDIR);
        snprintf(file, sizeof(file), "%s/plain/sub", dir);
        assert_string_equal(failed, file);
        pd_test_rmtree(dir);
}

/* ---- random ids ---- */

/* A child of a fork draws from a pool of its own: an id it hands out is
 * never the one its parent hands out next. */
static void test_a_forked_child_never_hands_out_its_parents_ids(void **state) {
        char parent[37], child[37] = "";
        int pipefd[2], status;
        pid_t pid;

        (void)state;
        pd_uuid4(parent); /* the pool is drawn, and would be inherited */
        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pd_uuid4(child);
                _exit(write(pipefd[1], child, sizeof(child)) ==
                              (ssize_t)sizeof(child)
                          ? 0
                          : 1);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], child, sizeof(child)), sizeof(child));
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pd_uuid4(parent);
        assert_int_equal(strlen(child), 36);
        assert_string_not_equal(parent, child);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_out_of_memory_aborts_with_a_message),
            cmocka_unit_test(test_zero_sized_allocations_are_real_pointers),
            cmocka_unit_test(test_strerror_names_the_error),
            cmocka_unit_test(test_grow_keeps_items_and_doubles),
            cmocka_unit_test(test_grow_with_room_changes_nothing),
            cmocka_unit_test(test_strv_copies_and_stays_null_terminated),
            cmocka_unit_test(test_strv_grows_geometrically),
            cmocka_unit_test(test_hash_is_fnv1a_64),
            cmocka_unit_test(test_map_put_then_get),
            cmocka_unit_test(test_map_keys_are_bytes_with_a_length),
            cmocka_unit_test(test_map_keeps_its_own_copy_of_keys),
            cmocka_unit_test(test_map_colliding_keys_stay_apart),
            cmocka_unit_test(test_map_grows_and_loses_nothing),
            cmocka_unit_test(test_map_frees_values_it_is_told_to),
            cmocka_unit_test(test_null_map_reads_as_empty),
            cmocka_unit_test(test_mkparents_makes_each_missing_folder_private),
            cmocka_unit_test(test_mkparents_names_the_folder_it_could_not_make),
            cmocka_unit_test(
                test_a_forked_child_never_hands_out_its_parents_ids),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
