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
 * With -H RUNS it writes a history instead: RUNS runs, each of its own
 * event, round-robin over the n x a (tenant, action) states, spread evenly
 * over the -d DAYS (default 365) before now, each with a 100-byte output
 * tail. With -k DAYS (retention, reactor.keep_runs) it prunes as the
 * reactor's committer does, in slices of 500 rows of each table inside
 * the open transaction, after every batch of 1,000 runs, until a slice is
 * no longer full. It then prints runs= and events= (the rows left),
 * db_bytes= (the file after a checkpoint), free_pages=, what the prune
 * slices took (prune_slices=, prune_slice_us_avg=, prune_slice_us_max=:
 * how long one holds the reactor's store lock) and seconds=.
 *
 * Usage: bench_seed_store -s STATE -n TENANTS -a ACTIONS [-f FLOOR]
 *        bench_seed_store -s STATE -n TENANTS -a ACTIONS -H RUNS [-d DAYS]
 *                         [-k DAYS]
 * Prints states= and seconds=.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench/bench.h"
#include "common/clock.h"
#include "state/store.h"

#define PD_SEED_BATCH      1000
#define PD_SEED_PRUNE_ROWS 500 /* as the reactor's PD_PRUNE_ROWS */
#define PD_DAY_MS          86400000LL

/* Prints name=N for one number SQL gives. */
static void seed_print1(sqlite3 *db, const char *name, const char *sql) {
        sqlite3_stmt *stmt = NULL;

        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
                printf("%s=%lld\n", name,
                       (long long)sqlite3_column_int64(stmt, 0));
        sqlite3_finalize(stmt);
}

/* The history mode (-H): see the top of the file. */
static int seed_history(pd_store_t *st, const char *path, long tenants,
                        long actions, long runs, long days, long keep_days) {
        const int64_t span = days * PD_DAY_MS, now = pd_now_ms();
        static const char tail[] =
            "reindexed 1234 documents in 3 shards; 0 errors; cache "
            "warmed; done in 2.1 s; exit 0 ............\n";
        int64_t slice_us = 0, slice_max_us = 0, slices = 0;
        sqlite3 *db = NULL;
        struct stat sb;
        int ret = -1;

        for (long i = 0; i < runs; i++) {
                long state = i % (tenants * actions);
                char tenant[32], action[32], id[64];
                pd_run_t run = {0};
                int64_t at   = now - span + (int64_t)((double)span * i / runs);

                if (i % PD_SEED_BATCH == 0 && pd_store_begin(st))
                        goto fail;
                snprintf(tenant, sizeof(tenant), "t%06ld", state / actions + 1);
                snprintf(action, sizeof(action), "bench.a%ld", state % actions);
                snprintf(id, sizeof(id), "history-%ld", i);
                run.tenant         = tenant;
                run.action         = action;
                run.release        = "1.0.0";
                run.trigger_source = "bench-seed";
                run.trigger_id     = id;
                run.attempt        = 1;
                run.started_at     = at;
                if (pd_store_run_begin(st, &run))
                        goto fail;
                run.status        = PD_ST_SUCCEEDED;
                run.has_exit_code = 1;
                run.finished_at   = at + 3;
                run.duration_ms   = 3;
                run.output_tail   = tail;
                if (pd_store_run_end(st, &run) ||
                    pd_store_event_mark(st, "bench-seed", id, tenant, at + 3))
                        goto fail;
                if ((i + 1) % PD_SEED_BATCH && i + 1 != runs)
                        continue;
                for (int deleted = PD_SEED_PRUNE_ROWS;
                     keep_days && deleted >= PD_SEED_PRUNE_ROWS;) {
                        int64_t t0 = pd_bench_now_us();

                        if (pd_store_prune(st, at - keep_days * PD_DAY_MS,
                                           PD_SEED_PRUNE_ROWS, &deleted))
                                goto fail;
                        t0           = pd_bench_now_us() - t0;
                        slice_max_us = t0 > slice_max_us ? t0 : slice_max_us;
                        slice_us += t0;
                        slices++;
                }
                if (pd_store_commit(st))
                        goto fail;
        }
        pd_store_close(st);
        /* A checkpoint (TRUNCATE) leaves the whole state in the file. */
        if (sqlite3_open(path, &db) != SQLITE_OK ||
            sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                      NULL, NULL) != SQLITE_OK ||
            stat(path, &sb)) {
                fprintf(stderr, "bench_seed_store: %s: %s\n", path,
                        sqlite3_errmsg(db));
                goto out;
        }
        seed_print1(db, "runs", "SELECT count(*) FROM runs");
        seed_print1(db, "events", "SELECT count(*) FROM events");
        seed_print1(db, "free_pages", "PRAGMA freelist_count");
        printf("db_bytes=%lld\n", (long long)sb.st_size);
        if (slices)
                printf(
                    "prune_slices=%lld\nprune_slice_us_avg=%lld\n"
                    "prune_slice_us_max=%lld\n",
                    (long long)slices, (long long)(slice_us / slices),
                    (long long)slice_max_us);
        ret = 0;
out:
        sqlite3_close(db);
        return ret;
fail:
        fprintf(stderr, "bench_seed_store: %s\n", pd_store_errmsg(st));
        pd_store_close(st);
        return -1;
}

static int seed_floor(const char *path, long tenants, long actions) {
        sqlite3 *db        = NULL;
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
        long tenants = 100, actions = 10, runs = 0, days = 365, keep = 0;
        pd_store_t *st;
        char errstr[512];
        int64_t t0, now = pd_now_ms();
        int opt;

        while ((opt = getopt(argc, argv, "s:n:a:f:H:d:k:")) != -1) {
                switch (opt) {
                case 'H':
                        if (pd_bench_count(optarg, &runs) || !runs)
                                goto usage;
                        break;
                case 'd':
                        if (pd_bench_count(optarg, &days) || !days)
                                goto usage;
                        break;
                case 'k':
                        if (pd_bench_count(optarg, &keep))
                                goto usage;
                        break;
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
        if (runs) {
                if (seed_history(st, path, tenants, actions, runs, days, keep))
                        return 1;
                printf("seconds=%.3f\n",
                       (double)(pd_bench_now_us() - t0) / 1e6);
                return 0;
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
        if (floor_path && seed_floor(floor_path, tenants, actions))
                return 1;
        printf("states=%ld\nseconds=%.3f\n", tenants * actions,
               (double)(pd_bench_now_us() - t0) / 1e6);
        return 0;

fail:
        fprintf(stderr, "bench_seed_store: %s\n", pd_store_errmsg(st));
        pd_store_close(st);
        return 1;

usage:
        fprintf(stderr,
                "Usage: bench_seed_store -s STATE -n TENANTS -a "
                "ACTIONS [-f FLOOR]\n"
                "       bench_seed_store -s STATE -n TENANTS -a "
                "ACTIONS -H RUNS [-d DAYS] [-k DAYS]\n");
        return 2;
}
