/*
 * bench_floor_spawn.c - the floor of benchmark 2: how fast this machine can
 * start and reap a command, with as many threads as the reactor has
 * workers. Each thread runs posix_spawn + waitpid of the command in a loop;
 * nothing else (no pipe, no environment building, no state).
 *
 * Usage: bench_floor_spawn -w WORKERS -n TOTAL [-- COMMAND...]
 * (default command /bin/true). Prints spawns=, seconds= and rate= (per
 * second) on stdout.
 */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

extern char **environ;

typedef struct pd_spawner_s {
        pthread_t thread;
        long count;
        char **argv;
        int failed;
} pd_spawner_t;

static void *spawner_main(void *arg) {
        pd_spawner_t *sp = arg;

        for (long i = 0; i < sp->count; i++) {
                pid_t pid;
                int status;

                if (posix_spawn(&pid, sp->argv[0], NULL, NULL, sp->argv,
                                environ) ||
                    waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
                        sp->failed = 1;
                        break;
                }
        }
        return NULL;
}

int main(int argc, char **argv) {
        static char *true_argv[] = {"/bin/true", NULL};
        long workers = 2, total = 1000;
        pd_spawner_t *sps;
        int64_t t0, t1;
        int opt, failed = 0;

        while ((opt = getopt(argc, argv, "w:n:")) != -1) {
                switch (opt) {
                case 'w':
                        if (pd_bench_count(optarg, &workers) || !workers)
                                goto usage;
                        break;
                case 'n':
                        if (pd_bench_count(optarg, &total) || !total)
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        sps = calloc((size_t)workers, sizeof(*sps));
        if (!sps)
                return 1;
        t0 = pd_bench_now_us();
        for (long i = 0; i < workers; i++) {
                sps[i].count = total / workers + (i < total % workers);
                sps[i].argv  = optind < argc ? argv + optind : true_argv;
                if (pthread_create(&sps[i].thread, NULL, spawner_main,
                                   &sps[i])) {
                        fprintf(stderr, "bench_floor_spawn: no thread\n");
                        return 1;
                }
        }
        for (long i = 0; i < workers; i++) {
                pthread_join(sps[i].thread, NULL);
                failed |= sps[i].failed;
        }
        t1 = pd_bench_now_us();
        free(sps);
        if (failed) {
                fprintf(stderr, "bench_floor_spawn: a spawn failed\n");
                return 1;
        }
        printf("spawns=%ld\nseconds=%.3f\nrate=%.1f\n", total,
               (double)(t1 - t0) / 1e6,
               (double)total * 1e6 / (double)(t1 - t0));
        return 0;

usage:
        fprintf(
            stderr,
            "Usage: bench_floor_spawn -w WORKERS -n TOTAL [-- COMMAND...]\n");
        return 2;
}
