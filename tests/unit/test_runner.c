/*
 * test_runner.c - the command runner: outcomes, output capture, timeouts
 * and cancellation, and what the child starts with.
 *
 * The test process makes itself a child subreaper, so the processes a
 * command leaves behind become its children when the command ends: a test
 * can then wait for them and prove they were killed, without sleeping.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include "consumer/runner.h"

extern char **environ;

typedef struct fx_s {
        char dir[PATH_MAX]; /* the test's own temporary folder */
} fx_t;

static int setup(void **state) {
        fx_t *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        pd_test_tmpdir(fx->dir, sizeof(fx->dir), "test_runner", 0);
        *state = fx;
        return 0;
}


static int teardown(void **state) {
        fx_t *fx = *state;

        pd_test_rmtree(fx->dir);
        free(fx);
        return 0;
}

/* Runs argv with our environment and the given timeout. */
static void run_argv(char *const *argv, int64_t timeout_ms,
                     pd_runner_result_t *res) {
        pd_runner_job_t job = {0};

        job.argv       = argv;
        job.envp       = environ;
        job.timeout_ms = timeout_ms;
        assert_int_equal(pd_runner_run(&job, res), 0);
}

/* Runs `sh -c script` (sh is just a program here, started from an argv),
 * with $1 set to arg. */
static void run_sh(const char *script, const char *arg, int64_t timeout_ms,
                   pd_runner_result_t *res) {
        char *argv[] = {"sh", "-c", (char *)script, "sh", (char *)arg, NULL};

        if (!arg)
                argv[3] = NULL;
        run_argv(argv, timeout_ms, res);
}

static pid_t read_pid(const char *path) {
        FILE *fp = fopen(path, "r");
        long pid = 0;

        if (!fp)
                fail_msg("%s: %s", path, strerror(errno));
        assert_int_equal(fscanf(fp, "%ld", &pid), 1);
        fclose(fp);
        return (pid_t)pid;
}

/* Waits for an orphan left by a command (ours as the subreaper) and checks
 * that signal sig killed it and it is gone. A runner that let it live
 * fails this when the orphan's `sleep 10` ends by itself. */
static void assert_killed_and_gone(pid_t pid, int sig) {
        int wstatus = 0;

        assert_int_equal(waitpid(pid, &wstatus, 0), pid);
        assert_true(WIFSIGNALED(wstatus));
        assert_int_equal(WTERMSIG(wstatus), sig);
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
}

static void assert_mode(const char *path, mode_t mode) {
        struct stat sb;

        if (stat(path, &sb))
                fail_msg("stat(%s): %s", path, strerror(errno));
        if ((sb.st_mode & 07777) != mode)
                fail_msg("%s: mode %04o, expected %04o", path,
                         (unsigned)(sb.st_mode & 07777), (unsigned)mode);
}

/* What `seq 1 n` prints. The caller frees it. */
static char *seq_output(int n, size_t *lenp) {
        size_t size = (size_t)n * 8 + 1, len = 0;
        char *buf = malloc(size);

        assert_non_null(buf);
        for (int i = 1; i <= n; i++)
                len += (size_t)snprintf(buf + len, size - len, "%d\n", i);
        *lenp = len;
        return buf;
}

/* ---- outcomes ---- */

static void test_exit_0_is_succeeded(void **state) {
        char *argv[] = {"true", NULL};
        pd_runner_result_t res;

        (void)state;
        run_argv(argv, 0, &res);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_true(res.has_exit_code);
        assert_int_equal(res.exit_code, 0);
        assert_int_equal(res.term_signal, 0);
        assert_string_equal(res.error, "");
        assert_int_equal(res.tail_len, 0);
        assert_string_equal(res.tail, "");
        assert_int_equal(res.output_bytes, 0);
}

static void test_a_nonzero_exit_is_failed_with_its_status(void **state) {
        pd_runner_result_t res;

        (void)state;
        run_sh("exit 3", NULL, 0, &res);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_true(res.has_exit_code);
        assert_int_equal(res.exit_code, 3);
        assert_string_equal(res.error, "exited with status 3");
}

static void test_a_death_by_signal_is_failed_with_the_signal(void **state) {
        pd_runner_result_t res;

        (void)state;
        run_sh("kill -SEGV $$", NULL, 0, &res);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_false(res.has_exit_code);
        assert_int_equal(res.term_signal, SIGSEGV);
        assert_string_equal(res.error,
                            "killed by signal 11 (Segmentation fault)");
}

static void test_a_missing_executable_is_127(void **state) {
        char *argv[] = {"pd-no-such-program", "x", NULL};
        pd_runner_result_t res;

        (void)state;
        run_argv(argv, 0, &res);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_true(res.has_exit_code);
        assert_int_equal(res.exit_code, 127);
        assert_string_equal(
            res.error,
            "cannot execute 'pd-no-such-program': No such file or "
            "directory");
}

static void test_a_file_without_exec_permission_is_126(void **state) {
        fx_t *fx = *state;
        char path[PATH_MAX + 16];
        char *argv[] = {path, NULL};
        pd_runner_result_t res;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/script", fx->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("#!/bin/sh\nexit 0\n", fp);
        fclose(fp);
        assert_int_equal(chmod(path, 0600), 0);

        run_argv(argv, 0, &res);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_int_equal(res.exit_code, 126);
        assert_non_null(strstr(res.error, "Permission denied"));
}

/* ---- output ---- */

static void test_stdout_and_stderr_both_reach_the_tail(void **state) {
        pd_runner_result_t res;

        (void)state;
        run_sh("echo out; echo err >&2; echo out again", NULL, 0, &res);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.tail, "out\nerr\nout again\n");
        assert_int_equal(res.tail_len, 18);
        assert_int_equal(res.output_bytes, 18);
}

static void test_the_tail_keeps_the_last_bytes_of_a_large_output(void **state) {
        char *argv[] = {"seq", "1", "1000000", NULL};
        pd_runner_result_t res;
        size_t len;
        char *expected = seq_output(1000000, &len);

        (void)state;
        run_argv(argv, 0, &res);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_int_equal(res.output_bytes, len);
        assert_int_equal(res.tail_len, PD_OUTPUT_TAIL_MAX);
        assert_memory_equal(res.tail, expected + len - PD_OUTPUT_TAIL_MAX,
                            PD_OUTPUT_TAIL_MAX);
        assert_int_equal(res.tail[PD_OUTPUT_TAIL_MAX], '\0');
        free(expected);
}

static void test_the_tail_does_not_start_inside_a_character(void **state) {
        pd_runner_result_t res;

        (void)state;
        /* 4095 bytes after a 2-byte "é": the cut falls inside it. */
        run_sh("printf '\\303\\251'; head -c 4095 /dev/zero | tr '\\0' x", NULL,
               0, &res);
        assert_int_equal(res.output_bytes, 4097);
        assert_int_equal(res.tail_len, 4095);
        assert_int_equal(res.tail[0], 'x');
}

static void test_the_log_file_gets_everything_and_is_0600(void **state) {
        fx_t *fx = *state;
        char log_path[PATH_MAX + 32], folder[PATH_MAX + 32];
        char *argv[]        = {"seq", "1", "100000", NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;
        struct stat sb;
        size_t len;
        char *expected = seq_output(100000, &len);
        char *content  = malloc(2 * len);
        FILE *fp;

        assert_non_null(content);
        snprintf(log_path, sizeof(log_path), "%s/logs/acme/run.log", fx->dir);
        job.argv     = argv;
        job.envp     = environ;
        job.log_path = log_path;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_int_equal(res.output_bytes, len);

        assert_mode(log_path, 0600);
        snprintf(folder, sizeof(folder), "%s/logs", fx->dir);
        assert_mode(folder, 0700);
        snprintf(folder, sizeof(folder), "%s/logs/acme", fx->dir);
        assert_mode(folder, 0700);
        assert_int_equal(stat(log_path, &sb), 0);
        assert_int_equal(sb.st_size, len);

        /* A second run appends. */
        assert_int_equal(pd_runner_run(&job, &res), 0);
        fp = fopen(log_path, "r");
        assert_non_null(fp);
        assert_int_equal(fread(content, 1, 2 * len, fp), 2 * len);
        fclose(fp);
        assert_memory_equal(content, expected, len);
        assert_memory_equal(content + len, expected, len);
        free(content);
        free(expected);
}

/* ---- timeouts and cancellation ---- */

static void test_a_timeout_kills_the_whole_group(void **state) {
        fx_t *fx = *state;
        char pid_path[PATH_MAX + 16];
        pd_runner_result_t res;

        snprintf(pid_path, sizeof(pid_path), "%s/pid", fx->dir);
        run_sh("sleep 10 & echo $! > \"$1\"; wait", pid_path, 500, &res);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_string_equal(res.error, "timed out after 500ms");
        assert_false(res.has_exit_code);
        assert_int_equal(res.term_signal, SIGTERM);
        /* SIGTERM was enough: no 2 s wait for SIGKILL, let alone 60 s. */
        assert_true(res.duration_ms >= 500);
        assert_true(res.duration_ms < 1900);
        /* The grandchild got the same graceful SIGTERM as the leader. */
        assert_killed_and_gone(read_pid(pid_path), SIGTERM);
}

static void test_a_timeout_applies_after_the_output_is_closed(void **state) {
        pd_runner_result_t res;

        (void)state;
        run_sh("echo bye; exec >&- 2>&-; exec sleep 60", NULL, 300, &res);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_string_equal(res.tail, "bye\n");
        assert_true(res.duration_ms < 1900);
}

static void test_a_timeout_in_whole_seconds_says_seconds(void **state) {
        pd_runner_result_t res;

        (void)state;
        /* The child ignores nothing; SIGTERM ends it at once. */
        run_sh("exec sleep 60", NULL, 1000, &res);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_string_equal(res.error, "timed out after 1s");
}

static void test_sigkill_follows_an_ignored_sigterm(void **state) {
        pd_runner_result_t res;

        (void)state;
        /* An ignored signal stays ignored across exec. */
        run_sh("trap '' TERM; exec sleep 60", NULL, 200, &res);
        assert_int_equal(res.status, PD_ST_TIMED_OUT);
        assert_int_equal(res.term_signal, SIGKILL);
        assert_true(res.duration_ms >= 2200);
        assert_true(res.duration_ms < 4000);
}

static void test_the_cancel_flag_interrupts_the_run(void **state) {
        char *argv[]        = {"sleep", "60", NULL};
        volatile int cancel = 1;
        pd_runner_job_t job = {0};
        pd_runner_result_t res;

        (void)state;
        job.argv   = argv;
        job.envp   = environ;
        job.cancel = &cancel;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_INTERRUPTED);
        assert_string_equal(res.error, "interrupted: reactor shutting down");
        assert_int_equal(res.term_signal, SIGTERM);
        assert_true(res.duration_ms < 1900);
}

static void test_background_processes_do_not_outlive_the_run(void **state) {
        fx_t *fx = *state;
        char pid_path[PATH_MAX + 16];
        pd_runner_result_t res;

        /* The leftover keeps the pipe open; the run must end anyway. */
        snprintf(pid_path, sizeof(pid_path), "%s/pid", fx->dir);
        run_sh("sleep 10 & echo $! > \"$1\"; echo done", pid_path, 0, &res);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.tail, "done\n");
        assert_true(res.duration_ms < 1900);
        assert_killed_and_gone(read_pid(pid_path), SIGKILL);
}

/* ---- what the child starts with ---- */

static void test_the_workdir_is_honoured(void **state) {
        fx_t *fx            = *state;
        char *argv[]        = {"pwd", NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;
        char expected[PATH_MAX + 2];
        char *real = realpath(fx->dir, NULL);

        assert_non_null(real);
        snprintf(expected, sizeof(expected), "%s\n", real);
        free(real);
        job.argv    = argv;
        job.envp    = environ;
        job.workdir = fx->dir;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.tail, expected);
}

/* Runs a command that creates fx->dir/NAME and prints its mode, with the
 * job's umask when has_umask; returns the mode it printed. */
static unsigned created_mode(fx_t *fx, const char *name, int has_umask,
                             unsigned mask) {
        char path[PATH_MAX + 16];
        char *argv[]        = {"sh", "-c", ": > \"$1\"; stat -c %a \"$1\"",
                               "sh", path, NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;

        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        job.argv      = argv;
        job.envp      = environ;
        job.has_umask = has_umask;
        job.umask     = mask;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        return (unsigned)strtoul(res.tail, NULL, 8);
}

static void test_the_command_gets_the_jobs_umask(void **state) {
        fx_t *fx    = *state;
        mode_t ours = umask(077);

        /* Ours (077, as the supervisor's) without one; the job's with. */
        assert_int_equal(created_mode(fx, "inherited", 0, 0), 0600);
        assert_int_equal(created_mode(fx, "shared", 1, 022), 0644);
        assert_int_equal(created_mode(fx, "private", 1, 077), 0600);
        assert_int_equal(created_mode(fx, "open", 1, 0), 0666);
        /* ... and ours is left as it was. */
        assert_int_equal(umask(ours), 077);
}

static void test_a_missing_workdir_is_named_in_the_error(void **state) {
        fx_t *fx     = *state;
        char *argv[] = {"pwd", NULL};
        char dir[PATH_MAX + 16], expected[PATH_MAX + 128];
        pd_runner_job_t job = {0};
        pd_runner_result_t res;

        snprintf(dir, sizeof(dir), "%s/nowhere", fx->dir);
        snprintf(expected, sizeof(expected),
                 "cannot enter workdir '%s': No such file or directory", dir);
        job.argv    = argv;
        job.envp    = environ;
        job.workdir = dir;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_false(res.has_exit_code);
        assert_string_equal(res.error, expected);
}

static void test_the_environment_is_envp_and_the_progress_fd(void **state) {
        char *argv[]        = {"env", NULL};
        char *envp[]        = {"PD_TEST=hello world", NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;

        (void)state;
        job.argv = argv;
        job.envp = envp;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_string_equal(res.tail,
                            "PD_TEST=hello world\nPOSTDEPLOY_PROGRESS_FD=3\n");
}

static void test_progress_lines_are_two_numbers_or_one(void **state) {
        static const char *const good[] = {
            "5 10",
            "5/10",
            " 7 / 9 ",
            "0 0",
            "5",
            "10 10\r",
            "999999999999999999 999999999999999999"};
        static const int64_t want[][2] = {
            {5, 10},
            {5, 10},
            {7, 9},
            {0, 0},
            {5, 0},
            {10, 10},
            {999999999999999999, 999999999999999999}};
        static const char *const bad[] = {"",
                                          "abc",
                                          "-1 10",
                                          "11 10",
                                          "5 10 x",
                                          "5x",
                                          "5,10",
                                          "5 10 15",
                                          "1000000000000000000 1",
                                          "99999999999999999999 1",
                                          "/10",
                                          "5/",
                                          "+5 10"};
        int64_t done, total;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
                done = total = -1;
                if (pd_runner_progress_parse(good[i], strlen(good[i]), &done,
                                             &total))
                        fail_msg("'%s' refused", good[i]);
                assert_int_equal(done, want[i][0]);
                assert_int_equal(total, want[i][1]);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                if (!pd_runner_progress_parse(bad[i], strlen(bad[i]), &done,
                                              &total))
                        fail_msg("'%s' taken", bad[i]);
}

static void test_progress_keeps_the_newest_line_and_counts_bad_ones(
    void **state) {
        pd_runner_progress_t pr = {0};
        char longline[200];

        (void)state;
        /* Lines cut anywhere between reads. */
        pd_runner_progress_feed(&pr, "1 10\n2 1", strlen("1 10\n2 1"));
        assert_true(pr.fresh);
        assert_int_equal(pr.done, 1);
        pd_runner_progress_feed(&pr, "0\nnonsense\n3/1",
                                strlen("0\nnonsense\n3/1"));
        pd_runner_progress_feed(&pr, "0\n", strlen("0\n"));
        assert_int_equal(pr.done, 3);
        assert_int_equal(pr.total, 10);
        assert_int_equal(pr.bad, 1);
        /* A line over the limit is bad, whatever its end says, and the
         * next line is read as usual. */
        pr.fresh = 0;
        memset(longline, ' ', sizeof(longline));
        memcpy(longline + sizeof(longline) - 5, "9 10\n", 5);
        pd_runner_progress_feed(&pr, longline, sizeof(longline));
        assert_false(pr.fresh);
        assert_int_equal(pr.done, 3);
        assert_int_equal(pr.bad, 2);
        /* The same value again is no news. */
        pd_runner_progress_feed(&pr, "3 10\n", strlen("3 10\n"));
        assert_false(pr.fresh);
        pd_runner_progress_feed(&pr, "4 10\n", strlen("4 10\n"));
        assert_true(pr.fresh);
        assert_int_equal(pr.done, 4);
}

/* What job.progress was told: how often, and the last value. */
typedef struct heard_s {
        int calls;
        int64_t done, total;
        int monotone;
} heard_t;

static void heard_progress(void *opaque, int64_t done, int64_t total) {
        heard_t *h = opaque;

        if (h->calls && done < h->done)
                h->monotone = 0;
        h->calls++;
        h->done  = done;
        h->total = total;
}

static void run_progress(const char *script, heard_t *h,
                         pd_runner_result_t *res) {
        char *argv[]        = {"sh", "-c", (char *)script, NULL};
        pd_runner_job_t job = {0};

        *h           = (heard_t){0, 0, 0, 1};
        job.argv     = argv;
        job.envp     = environ;
        job.progress = heard_progress;
        job.opaque   = h;
        assert_int_equal(pd_runner_run(&job, res), 0);
        assert_int_equal(res->status, PD_ST_SUCCEEDED);
}

static void test_a_commands_progress_lines_reach_the_caller(void **state) {
        pd_runner_result_t res;
        heard_t h;

        (void)state;
        /* The last line written just before the exit still counts. */
        run_progress(
            "for i in 1 2 3; do echo \"$i 3\" "
            ">&\"$POSTDEPLOY_PROGRESS_FD\"; done; "
            "echo junk >&3; echo out",
            &h, &res);
        assert_true(h.calls >= 1);
        assert_true(h.monotone);
        assert_int_equal(h.done, 3);
        assert_int_equal(h.total, 3);
        /* Progress is not output. */
        assert_string_equal(res.tail, "out\n");
}

/* A parent whose fds 0 and 3 are free gets them for the progress pipe:
 * the write end must still reach the child as its fd 3, open. */
static void test_progress_reaches_the_caller_when_low_fds_are_free(
    void **state) {
        pd_runner_result_t res;
        heard_t h;
        int saved0 = dup(STDIN_FILENO);
        int saved3 = fcntl(3, F_DUPFD_CLOEXEC, 10);

        (void)state;
        assert_true(saved0 >= 0);
        close(STDIN_FILENO);
        close(3);
        run_progress("echo '2 5' >&3 && echo out", &h, &res);
        dup2(saved0, STDIN_FILENO);
        close(saved0);
        if (saved3 >= 0) {
                dup2(saved3, 3);
                close(saved3);
        }
        assert_int_equal(h.done, 2);
        assert_int_equal(h.total, 5);
        assert_string_equal(res.tail, "out\n");
}

static void test_a_progress_flood_ends_with_its_last_value(void **state) {
        pd_runner_result_t res;
        heard_t h;

        (void)state;
        run_progress("seq 1000000 | sed 's|$| 1000000|' >&3", &h, &res);
        assert_true(h.monotone);
        assert_int_equal(h.done, 1000000);
        assert_int_equal(h.total, 1000000);
        /* Told once per read at most, not once per line. */
        assert_true(h.calls < 100000);
}

static void test_no_shell_interprets_the_argv(void **state) {
        char *argv[] = {"echo", "$HOME;", "*", "`id`", "a b", NULL};
        pd_runner_result_t res;

        (void)state;
        run_argv(argv, 0, &res);
        assert_string_equal(res.tail, "$HOME; * `id` a b\n");
}

static void test_stdin_is_dev_null(void **state) {
        char *argv[] = {"readlink", "/proc/self/fd/0", NULL};
        pd_runner_result_t res;

        (void)state;
        run_argv(argv, 0, &res);
        assert_string_equal(res.tail, "/dev/null\n");
}

/* The value of a "Name:\tvalue" line of /proc/PID/status. */
static unsigned long long status_field(const char *status, const char *name,
                                       int base) {
        const char *p = strstr(status, name);

        if (!p)
                fail_msg("no %s in %s", name, status);
        return strtoull(p + strlen(name), NULL, base);
}

static void test_the_child_leads_its_group_with_default_signals(void **state) {
        char *argv[] = {"cat", "/proc/self/status", NULL};
        pd_runner_result_t res;
        sigset_t block, saved;
        void (*old_pipe)(int);

        (void)state;
        /* What the reactor does to itself. */
        old_pipe = signal(SIGPIPE, SIG_IGN);
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &saved), 0);

        run_argv(argv, 0, &res);

        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        signal(SIGPIPE, old_pipe);
        assert_int_equal(res.status, PD_ST_SUCCEEDED);
        assert_int_equal(status_field(res.tail, "\nPid:", 10),
                         status_field(res.tail, "\nNSpgid:", 10));
        assert_int_equal(status_field(res.tail, "\nSigBlk:", 16), 0);
        assert_int_equal(
            status_field(res.tail, "\nSigIgn:", 16) & (1ULL << (SIGPIPE - 1)),
            0);
}

static void test_an_unopenable_log_is_a_runner_error(void **state) {
        fx_t *fx = *state;
        char log_path[PATH_MAX + 32];
        char *argv[]        = {"true", NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;
        FILE *fp;

        /* Its folder is a regular file. */
        snprintf(log_path, sizeof(log_path), "%s/file", fx->dir);
        fp = fopen(log_path, "w");
        assert_non_null(fp);
        fclose(fp);
        snprintf(log_path, sizeof(log_path), "%s/file/run.log", fx->dir);
        job.argv     = argv;
        job.envp     = environ;
        job.log_path = log_path;
        assert_int_equal(pd_runner_run(&job, &res), -1);
        assert_int_equal(res.status, PD_ST_FAILED);
        assert_non_null(strstr(res.error, "cannot open log file"));
        assert_non_null(strstr(res.error, "Not a directory"));
}

static int count_fds(void) {
        DIR *dir = opendir("/proc/self/fd");
        int cnt  = 0;

        assert_non_null(dir);
        while (readdir(dir))
                cnt++;
        closedir(dir);
        return cnt;
}

static void test_no_descriptor_is_left_open(void **state) {
        fx_t *fx = *state;
        char log_path[PATH_MAX + 32];
        char *ok[]          = {"echo", "hi", NULL};
        char *missing[]     = {"pd-no-such-program", NULL};
        pd_runner_job_t job = {0};
        pd_runner_result_t res;
        int before = count_fds();

        snprintf(log_path, sizeof(log_path), "%s/run.log", fx->dir);
        job.envp     = environ;
        job.log_path = log_path;
        job.argv     = ok;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        job.argv = missing;
        assert_int_equal(pd_runner_run(&job, &res), 0);
        job.argv    = ok;
        job.workdir = "/nonexistent";
        assert_int_equal(pd_runner_run(&job, &res), 0);
        run_sh("exec sleep 10", NULL, 100, &res);
        assert_int_equal(count_fds(), before);
}

/* ---- threads ---- */

/* Runs per thread: each thread starts its children on, and reads their
 * pipes through, a block of its own (runner.c, runner_scratch), kept from
 * one run to the next. */
#define PAR_RUNS 25

typedef struct par_s {
        pthread_t thread;
        char word[16];
        pd_runner_result_t res;
        int ret;
        int wrong; /* runs whose outcome or tail was not their own */
} par_t;

static void *par_main(void *arg) {
        par_t *p            = arg;
        char *argv[]        = {"echo", p->word, NULL};
        pd_runner_job_t job = {0};
        char expected[32];

        snprintf(expected, sizeof(expected), "%s\n", p->word);
        job.argv = argv;
        job.envp = environ;
        for (int i = 0; i < PAR_RUNS; i++) {
                p->ret = pd_runner_run(&job, &p->res);
                if (p->ret || p->res.status != PD_ST_SUCCEEDED ||
                    strcmp(p->res.tail, expected))
                        p->wrong++;
        }
        return NULL;
}

static void test_parallel_runs_keep_their_own_output(void **state) {
        par_t par[8];
        char expected[32];

        (void)state;
        memset(par, 0, sizeof(par));
        for (int i = 0; i < 8; i++) {
                snprintf(par[i].word, sizeof(par[i].word), "run-%d", i);
                assert_int_equal(
                    pthread_create(&par[i].thread, NULL, par_main, &par[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                pthread_join(par[i].thread, NULL);
                snprintf(expected, sizeof(expected), "run-%d\n", i);
                assert_int_equal(par[i].wrong, 0);
                assert_int_equal(par[i].ret, 0);
                assert_int_equal(par[i].res.status, PD_ST_SUCCEEDED);
                assert_string_equal(par[i].res.tail, expected);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
            T(test_exit_0_is_succeeded),
            T(test_a_nonzero_exit_is_failed_with_its_status),
            T(test_a_death_by_signal_is_failed_with_the_signal),
            T(test_a_missing_executable_is_127),
            T(test_a_file_without_exec_permission_is_126),
            T(test_stdout_and_stderr_both_reach_the_tail),
            T(test_the_tail_keeps_the_last_bytes_of_a_large_output),
            T(test_the_tail_does_not_start_inside_a_character),
            T(test_the_log_file_gets_everything_and_is_0600),
            T(test_a_timeout_kills_the_whole_group),
            T(test_a_timeout_applies_after_the_output_is_closed),
            T(test_a_timeout_in_whole_seconds_says_seconds),
            T(test_sigkill_follows_an_ignored_sigterm),
            T(test_the_cancel_flag_interrupts_the_run),
            T(test_background_processes_do_not_outlive_the_run),
            T(test_the_workdir_is_honoured),
            T(test_the_command_gets_the_jobs_umask),
            T(test_a_missing_workdir_is_named_in_the_error),
            T(test_the_environment_is_envp_and_the_progress_fd),
            T(test_progress_lines_are_two_numbers_or_one),
            T(test_progress_keeps_the_newest_line_and_counts_bad_ones),
            T(test_a_commands_progress_lines_reach_the_caller),
            T(test_progress_reaches_the_caller_when_low_fds_are_free),
            T(test_a_progress_flood_ends_with_its_last_value),
            T(test_no_shell_interprets_the_argv),
            T(test_stdin_is_dev_null),
            T(test_the_child_leads_its_group_with_default_signals),
            T(test_an_unopenable_log_is_a_runner_error),
            T(test_no_descriptor_is_left_open),
            T(test_parallel_runs_keep_their_own_output),
#undef T
        };
        struct rlimit no_core = {0, 0};

        /* Orphans of the commands become ours, so tests can reap them. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
                perror("prctl(PR_SET_CHILD_SUBREAPER)");
                return 1;
        }
        /* The SIGSEGV test must not leave a core file behind. */
        setrlimit(RLIMIT_CORE, &no_core);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
