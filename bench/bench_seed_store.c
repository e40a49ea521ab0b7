/*
 * bench_seed_store.c - the state of benchmark 6, written through the store
 * API (state/store.h) the reactor itself uses: for each of -n tenants
 * (t000001 ..., the names bench_load gives them), one processed
 * release.deployed and one succeeded run of each of -a actions (bench.a0
 * ...), so the store holds n x a (tenant, action) states and their history,
 * as a reactor leaves them. Batches of 1,000 tenants per transaction.
 *
 * With -f FLOOR it also writes the floor of the file size: one SQLite table
 * holding only what "pending" needs, (tenant, action, ever_succeeded), for
 * the same states.
 *
 * Usage: bench_seed_store -s STATE -n TENANTS -a ACTIONS [-f FLOOR]
 * Prints states= and seconds=.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench/bench.h"
#include "state/store.h"

#define PD_SEED_BATCH 1000

static int pd_seed_floor(const char *path, long tenants, long actions) {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        int rc;

        rc = sqlite3_open(path, &db);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db,
                                  "CREATE TABLE states (tenant TEXT, action "
                                  "TEXT, ever_succeeded INTEGER, PRIMARY KEY "
                                  "(tenant, action)) WITHOUT ROWID;"
                                  "BEGIN",
                                  NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db,
                                        "INSERT INTO states VALUES (?1, ?2, "
                                        "1)",
                                        -1, &stmt, NULL);
        for (long t = 1; rc == SQLITE_OK && t <= tenants; t++)
                for (long a = 0; rc == SQLITE_OK && a < actions; a++) {
                        char tenant[32], action[32];

                        snprintf(tenant, sizeof(tenant), "t%06ld", t);
                        snprintf(action, sizeof(action), "bench.a%ld", a);
                        sqlite3_bind_text(stmt, 1, tenant, -1,
                                          SQLITE_TRANSIENT);
                        sqlite3_bind_text(stmt, 2, action, -1,
                                          SQLITE_TRANSIENT);
                        rc = sqlite3_step(stmt);
                        rc = rc == SQLITE_DONE ? sqlite3_reset(stmt) : rc;
                }
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                fprintf(stderr, "bench_seed_store: %s: %s\n", path,
                        sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return rc == SQLITE_OK ? 0 : -1;
}

int main(int argc, char **argv) {
        const char *path = NULL, *floor_path = NULL;
        long tenants = 100, actions = 10;
        pd_store_t *st;
        char errstr[512];
        int64_t t0, now = pd_now_ms();
        int opt;

        while ((opt = getopt(argc, argv, "s:n:a:f:")) != -1) {
                switch (opt) {
                case 's':
                        path = optarg;
                        break;
                case 'f':
                        floor_path = optarg;
                        break;
                case 'n':
                        if (pd_bench_count(optarg, &tenants) || !tenants)
                                goto usage;
                        break;
                case 'a':
                        if (pd_bench_count(optarg, &actions) || !actions)
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (!path)
                goto usage;
        t0 = pd_bench_now_us();
        if (!(st = pd_store_open(path, 0, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench_seed_store: %s\n", errstr);
                return 1;
        }
        for (long t = 1; t <= tenants; t++) {
                char tenant[32], id[64];

                if ((t - 1) % PD_SEED_BATCH == 0 && pd_store_begin(st))
                        goto fail;
                snprintf(tenant, sizeof(tenant), "t%06ld", t);
                snprintf(id, sizeof(id), "seed-%ld", t);
                for (long a = 0; a < actions; a++) {
                        char action[32];
                        pd_run_t run = {0};

                        snprintf(action, sizeof(action), "bench.a%ld", a);
                        run.tenant         = tenant;
                        run.action         = action;
                        run.release        = "1.0.0";
                        run.trigger_source = "bench-seed";
                        run.trigger_id     = id;
                        run.attempt        = 1;
                        run.started_at     = now;
                        if (pd_store_run_begin(st, &run))
                                goto fail;
                        run.status        = PD_ST_SUCCEEDED;
                        run.has_exit_code = 1;
                        run.finished_at   = now + 3;
                        run.duration_ms   = 3;
                        run.output_tail   = "";
                        if (pd_store_run_end(st, &run))
                                goto fail;
                }
                if (pd_store_event_mark(st, "bench-seed", id, tenant, now))
                        goto fail;
                if (t % PD_SEED_BATCH == 0 || t == tenants)
                        if (pd_store_commit(st))
                                goto fail;
        }
        pd_store_close(st);
        if (floor_path && pd_seed_floor(floor_path, tenants, actions))
                return 1;
        printf("states=%ld\nseconds=%.3f\n", tenants * actions,
               (double)(pd_bench_now_us() - t0) / 1e6);
        return 0;

fail:
        fprintf(stderr, "bench_seed_store: %s\n", pd_store_errmsg(st));
        pd_store_close(st);
        return 1;

usage:
        fprintf(stderr, "Usage: bench_seed_store -s STATE -n TENANTS -a "
                        "ACTIONS [-f FLOOR]\n");
        return 2;
}
