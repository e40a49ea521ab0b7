/*
 * bench_timeit.c - runs a command and says what it cost: wall time on
 * CLOCK_MONOTONIC, the user and system CPU time and the peak resident set
 * of the command (wait4's rusage, the same numbers `/usr/bin/time -v`
 * prints, with microseconds instead of hundredths).
 *
 * Usage: bench_timeit [-o FILE] -- COMMAND...
 * The command's stdout goes to FILE (default /dev/null); the figures
 * (wall_ms=, user_ms=, sys_ms=, maxrss_kb=, status=) go to stdout.
 * The exit status is the command's.
 *
 * It links nothing of postdeploy: a child's peak RSS starts at its
 * parent's (the kernel counts the parent's pages until the exec), so the
 * parent must be small.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t timeit_now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
        const char *out = "/dev/null";
        posix_spawn_file_actions_t fa;
        struct rusage ru;
        int64_t t0, t1;
        pid_t pid;
        int opt, status, err;

        while ((opt = getopt(argc, argv, "o:")) != -1) {
                if (opt != 'o')
                        goto usage;
                out = optarg;
        }
        if (optind >= argc)
                goto usage;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        t0 = timeit_now_us();
        err =
            posix_spawnp(&pid, argv[optind], &fa, NULL, argv + optind, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (err) {
                fprintf(stderr, "bench_timeit: cannot start %s\n",
                        argv[optind]);
                return 127;
        }
        if (wait4(pid, &status, 0, &ru) != pid) {
                perror("bench_timeit: wait4");
                return 127;
        }
        t1 = timeit_now_us();
        printf(
            "wall_ms=%.3f\nuser_ms=%.3f\nsys_ms=%.3f\nmaxrss_kb=%ld\n"
            "status=%d\n",
            (double)(t1 - t0) / 1000.0,
            (double)ru.ru_utime.tv_sec * 1000.0 +
                (double)ru.ru_utime.tv_usec / 1000.0,
            (double)ru.ru_stime.tv_sec * 1000.0 +
                (double)ru.ru_stime.tv_usec / 1000.0,
            ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;

usage:
        fprintf(stderr, "Usage: bench_timeit [-o FILE] -- COMMAND...\n");
        return 2;
}
