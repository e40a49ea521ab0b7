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

#include <spawn.h>
#include <stdint.h>

#include "schemas/event.h" /* pd_status_t, PD_OUTPUT_TAIL_MAX */

typedef struct pd_runner_job_s {
        char *const *argv;    /* argv[0] is a path or a name found in PATH */
        char *const *envp;    /* full environment for the child */
        const char *workdir;  /* NULL: the reactor's */
        int64_t timeout_ms;   /* 0: none */
        const char *log_path; /* NULL: output kept as tail only */
        volatile int *cancel; /* set non-zero to kill the run (may be NULL) */
        /* Called on the calling thread once the command runs, with its pid,
         * which is also its process group (may be NULL). */
        void (*spawned)(void *opaque, int pid);
        /* pd_sup_run only: called once its START has gone out whole, from
         * when the run may be going (may be NULL). */
        void (*sent)(void *opaque);
        void *opaque;
        int has_umask;  /* 0: the child inherits this process's */
        unsigned umask; /* the child's umask, 0..0777 */
        /* Called with the newest progress the command reported (its
         * lines on POSTDEPLOY_PROGRESS_FD, pd_runner_progress_feed), at most
         * once per read of that pipe; by pd_sup_run on its calling thread, once
         * per PROGRESS frame. May be NULL. */
        void (*progress)(void *opaque, int64_t done, int64_t total);
} pd_runner_job_t;

typedef struct pd_runner_result_s {
        pd_status_t status; /* SUCCEEDED, FAILED, TIMED_OUT, INTERRUPTED */
        int has_exit_code;  /* 0 when killed by a signal or never started */
        int exit_code;
        int term_signal; /* signal that ended it, 0 if none */
        int64_t duration_ms;
        /* The wall clock when it ended (ms since the epoch; 0: unknown).
         * A run the supervisor hands back to a redelivered START ended
         * before that START: its times come from here (record.c). */
        int64_t ended_at_ms;
        char error[512]; /* "" on success; else why, in a sentence */
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

/*
 * pd_runner_run in steps, for a caller that watches many runs from one
 * poll loop (the supervisor) instead of a thread each. job must outlive
 * the run.
 *
 * pd_runner_start starts the command. Returns the run, or NULL with *res
 * filled: *failed 0 when that is the command's outcome (it could not be
 * started), 1 for a failure of the runner itself, as pd_runner_run's -1.
 *
 * pd_runner_prepare does what is due (SIGTERM on a cancel or timeout,
 * SIGKILL after the grace), fills pfd (room for PD_RUNNER_PFD_MAX) with
 * what to poll and
 * returns how many; *wait (ms, -1: none yet) is lowered to when it must be
 * called again at the latest.
 *
 * pd_runner_handle takes what poll said of those nfds (output is read).
 * Returns 1 once the command has exited.
 *
 * pd_runner_finish (after the exit, or at any time: it then watches until
 * the exit) kills what is left in the group, reads the last output, reaps,
 * fills *res and frees the run. Returns as pd_runner_run.
 */
#define PD_RUNNER_PFD_MAX 3 /* output, progress, pidfd */
typedef struct pd_runner_s pd_runner_t;
struct pollfd;
pd_runner_t *pd_runner_start(const pd_runner_job_t *job,
                             pd_runner_result_t *res, int *failed);
int pd_runner_prepare(pd_runner_t *rn, struct pollfd *pfd, int64_t *wait);
int pd_runner_handle(pd_runner_t *rn, const struct pollfd *pfd, int nfds);
int pd_runner_finish(pd_runner_t *rn, pd_runner_result_t *res);

/*
 * Progress of a command: the runner gives every command the write end of a
 * pipe as file descriptor 3 and says so in its environment,
 * POSTDEPLOY_PROGRESS_FD=3. The command writes one line per step, "DONE
 * TOTAL" or "DONE/TOTAL" (or "DONE" alone when it does not know the
 * total, which is then 0): decimal numbers, 0 <= DONE, and DONE <= TOTAL
 * when TOTAL is given; spaces around them and a final '\r' are allowed.
 * Anything else is malformed and ignored (counted). Only the newest value
 * is kept, whatever the command writes: memory stays the same and the
 * reader's work is one pass over the bytes.
 */
#define PD_PROGRESS_ENV      "POSTDEPLOY_PROGRESS_FD"
#define PD_PROGRESS_FD       3
#define PD_PROGRESS_LINE_MAX 64 /* a longer line is malformed */

typedef struct pd_runner_progress_s {
        char line[PD_PROGRESS_LINE_MAX];
        size_t len;
        int overlong; /* the line being read is past the limit */
        int has;      /* a good line was read */
        int fresh;    /* done/total changed since the caller took them */
        int64_t done, total;
        uint64_t bad; /* malformed lines */
} pd_runner_progress_t;

/* Parses one line (without its '\n') into *done and *total. Returns 0, or
 * -1 if it is malformed. */
int pd_runner_progress_parse(const char *line, size_t len, int64_t *done,
                             int64_t *total);

/* Feeds len bytes of the pipe to pr: each whole line parsed, the newest
 * good value kept in pr->done and pr->total with pr->fresh set. */
void pd_runner_progress_feed(pd_runner_progress_t *pr, const char *buf,
                             size_t len);

/*
 * Output capture, the part of a run that command actions (above) and
 * in-process plugin actions (plugin.h) share, so both keep output the same
 * way: everything is appended to an optional log file, created 0600 in
 * folders created 0700, and the last PD_OUTPUT_TAIL_MAX bytes are kept for
 * the result. A log file that fails while writing is closed with a warning
 * and the run goes on with the tail only.
 *
 * One handle belongs to one run; it is not locked, so a caller that feeds
 * it from several threads serialises the calls itself.
 */
typedef struct pd_output_s pd_output_t;

/*
 * Returns a new capture writing to log_path (NULL: tail only; the string is
 * not copied and must outlive the handle), or NULL with "cannot open log
 * file '...': why" in errstr. The caller owns the
 * handle and frees it with pd_output_destroy.
 */
pd_output_t *pd_output_new(const char *log_path, char *errstr,
                           size_t errstr_size);

/* Appends len bytes of output. */
void pd_output_add(pd_output_t *out, const char *buf, size_t len);

/* Sets res->tail, res->tail_len and res->output_bytes from what was added.
 * A tail cut through a UTF-8 character starts after it. */
void pd_output_result(const pd_output_t *out, pd_runner_result_t *res);

/* Closes the log file and frees out. NULL is fine. */
void pd_output_destroy(pd_output_t *out);

/*
 * Writes the error of a run the reactor stopped, the same for every kind of
 * action: "timed out after 30s" (or "after 1500ms") for PD_ST_TIMED_OUT with
 * timeout_ms, "interrupted: reactor shutting down" for PD_ST_INTERRUPTED.
 */
void pd_runner_stop_error(pd_status_t stopped_as, int64_t timeout_ms,
                          char *errstr, size_t errstr_size);

/*
 * Sets attr up for a child of a process that blocks and handles signals
 * for itself (and ignores SIGPIPE): no signal blocked, and SIGPIPE,
 * SIGTERM, SIGINT, SIGHUP and SIGCHLD back to their defaults, so none of
 * that leaks into the child. With new_group, the child also leads a new
 * process group (group 0), so one kill reaches all it starts. attr is
 * initialised by the caller. Returns 0, or the errno value of the failure.
 */
int pd_spawnattr_child(posix_spawnattr_t *attr, int new_group);

#endif
