/*
 * runner.h - runs one command action and reports how it went.
 *
 * The command is started with posix_spawn from an argv: no shell ever sees
 * it. It gets its own process group, so a timeout or a cancellation kills
 * everything it started. stdout and stderr are merged into one pipe; the
 * whole output goes to an optional log file (created 0600) and only the last
 * PD_OUTPUT_TAIL_MAX bytes are kept in memory, so memory stays bounded
 * whatever the action prints.
 *
 * pd_runner_run blocks the calling thread until the process is gone. It is
 * safe to call from several threads at once.
 */
#ifndef PD_RUNNER_H
#define PD_RUNNER_H

#include <stdint.h>

#include "schemas/event.h" /* pd_status_t, PD_OUTPUT_TAIL_MAX */

typedef struct pd_runner_job_s {
        char *const *argv;     /* argv[0] is a path or a name found in PATH */
        char *const *envp;     /* full environment for the child */
        const char *workdir;   /* NULL: the reactor's */
        int64_t timeout_ms;    /* 0: none */
        const char *log_path;  /* NULL: output kept as tail only */
        volatile int *cancel;  /* set non-zero to kill the run (may be NULL) */
} pd_runner_job_t;

typedef struct pd_runner_result_s {
        pd_status_t status;    /* SUCCEEDED, FAILED, TIMED_OUT, INTERRUPTED */
        int has_exit_code;     /* 0 when killed by a signal or never started */
        int exit_code;
        int term_signal;       /* signal that ended it, 0 if none */
        int64_t duration_ms;
        char error[512];       /* "" on success; else why, in a sentence */
        char tail[PD_OUTPUT_TAIL_MAX + 1]; /* last output bytes, NUL-ended */
        size_t tail_len;
        uint64_t output_bytes; /* everything it printed */
} pd_runner_result_t;

/*
 * Runs job to completion and fills *res. Returns 0 when the outcome is in
 * *res (including a failed, timed out, or unstartable command: a missing
 * executable is FAILED with exit code 127 and an error naming it), -1 only
 * for a failure of the runner itself (pipe, fork resources), with res->error.
 * A timeout sends SIGTERM to the group, then SIGKILL after 2 s. A cancel
 * does the same and yields INTERRUPTED.
 */
int pd_runner_run(const pd_runner_job_t *job, pd_runner_result_t *res);

#endif
