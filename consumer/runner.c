/*
 * runner.c - runs one command action and reports how it went (runner.h).
 *
 * The child is started with posix_spawnp from an argv, in a process group of
 * its own, with the signal mask emptied and the signals the reactor handles
 * or ignores set back to their defaults, so it starts as if from a shell.
 * Its stdin is /dev/null; stdout and stderr share one pipe.
 *
 * How it is watched: one poll() over the output pipe and a pidfd of the
 * child (pidfd_open, Linux 5.3+). The pidfd becomes readable when the child
 * exits, so the run ends on time even when the child closed its output
 * early, and a run ends when its process does even if something it started
 * still holds the pipe. The poll wakes at least every 100 ms to see the
 * cancel flag. Where pidfd_open is refused (old kernel, no fds left) the
 * exit is checked with waitid(WNOWAIT) every 10 ms instead.
 *
 * The child is reaped only after everything else: until then its pid and
 * process group id cannot be reused, so signalling the group is safe.
 * When the child has exited, whatever is left in its group is killed: an
 * action's background processes do not outlive it, and the pipe they hold
 * cannot keep the run open.
 *
 * Nothing here keeps static state but the umask lock (below), so several
 * threads may run commands at once; every descriptor is close-on-exec, so
 * one run's pipe never leaks into another's child.
 *
 * The output capture (pd_output_*) is public in runner.h because in-process
 * plugin actions (plugin.c) keep their output the same way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE    /* pipe2, posix_spawn_file_actions_addchdir_np,         \
                          pidfd_open, sigdescr_np */
#endif
#include "consumer/runner.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/path.h"
#include "common/strerror.h"
#include "common/xalloc.h"

extern char **environ;

#define PD_RUNNER_READ_SIZE     (64 * 1024)
#define PD_RUNNER_TICK_MS       100  /* how often the cancel flag is seen */
#define PD_RUNNER_REAP_TICK_MS  10   /* exit checks without a pidfd */
#define PD_RUNNER_KILL_GRACE_MS 2000 /* SIGTERM, then SIGKILL after this */

/* Where the output goes: the log file and a ring of the last bytes
 * (runner.h: pd_output_new). */
struct pd_output_s {
        const char *log_path;
        int log_fd; /* -1: no log, or given up after a write error */
        char ring[PD_OUTPUT_TAIL_MAX];
        size_t ring_start; /* oldest byte kept */
        size_t ring_len;
        uint64_t total;
};

/* Opens the log file for appending, creating it 0600 and its folders 0700
 * when missing. Returns the fd, or -1 with errno set. */
static int runner_open_log(const char *path) {
        const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY;
        int fd          = open(path, flags, 0600);

        if (fd == -1 && errno == ENOENT && !pd_mkparents(path, NULL, 0))
                fd = open(path, flags, 0600);
        return fd;
}

/* Appends to the log; a failing log is dropped (the run goes on). */
static void output_log(pd_output_t *out, const char *buf, size_t len) {
        while (len > 0 && out->log_fd != -1) {
                ssize_t n = write(out->log_fd, buf, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        pd_log(PD_LOG_WARN,
                               "%s: %s; the rest of this run's output is "
                               "not logged",
                               out->log_path, pd_strerror(errno));
                        close(out->log_fd);
                        out->log_fd = -1;
                        break;
                }
                buf += n;
                len -= (size_t)n;
        }
}

/* Keeps the last bytes in the ring: constant work per byte, whatever the
 * size of the reads. */
static void output_keep(pd_output_t *out, const char *buf, size_t len) {
        const size_t max = sizeof(out->ring);
        size_t end, first;

        if (len >= max) {
                memcpy(out->ring, buf + len - max, max);
                out->ring_start = 0;
                out->ring_len   = max;
                return;
        }
        end   = (out->ring_start + out->ring_len) % max;
        first = len < max - end ? len : max - end;
        memcpy(out->ring + end, buf, first);
        memcpy(out->ring, buf + first, len - first);
        if (out->ring_len + len > max) {
                /* The bytes written over were the oldest. */
                out->ring_start =
                    (out->ring_start + out->ring_len + len - max) % max;
                out->ring_len = max;
        } else {
                out->ring_len += len;
        }
}

void pd_output_add(pd_output_t *out, const char *buf, size_t len) {
        out->total += len;
        output_log(out, buf, len);
        output_keep(out, buf, len);
}

/* Copies the ring into res->tail in order. */
void pd_output_result(const pd_output_t *out, pd_runner_result_t *res) {
        const size_t max = sizeof(out->ring);
        size_t first     = out->ring_len < max - out->ring_start
                               ? out->ring_len
                               : max - out->ring_start;
        size_t skip      = 0;

        memcpy(res->tail, out->ring + out->ring_start, first);
        memcpy(res->tail + first, out->ring, out->ring_len - first);
        res->tail_len = out->ring_len;
        /* A cut through a UTF-8 character would make the tail invalid
         * UTF-8, which JSON and Avro string consumers reject. */
        if (out->total > out->ring_len)
                while (skip < 3 && skip < res->tail_len &&
                       ((unsigned char)res->tail[skip] & 0xc0) == 0x80)
                        skip++;
        memmove(res->tail, res->tail + skip, res->tail_len - skip);
        res->tail_len -= skip;
        res->tail[res->tail_len] = '\0';
        res->output_bytes        = out->total;
}

pd_output_t *pd_output_new(const char *log_path, char *errstr,
                           size_t errstr_size) {
        pd_output_t *out = pd_xcalloc(1, sizeof(*out));

        out->log_path = log_path;
        out->log_fd   = -1;
        if (log_path) {
                out->log_fd = runner_open_log(log_path);
                if (out->log_fd == -1) {
                        snprintf(errstr, errstr_size,
                                 "cannot open log file '%s': %s", log_path,
                                 pd_strerror(errno));
                        free(out);
                        return NULL;
                }
        }
        return out;
}

void pd_output_destroy(pd_output_t *out) {
        if (!out)
                return;
        if (out->log_fd != -1)
                close(out->log_fd);
        free(out);
}

/*
 * A job's own umask. posix_spawn has no attribute for it, and the umask is
 * the process's, not the thread's: it is set around the spawn, under this
 * lock so that two runs never hand each other theirs. A child takes its
 * parent's umask when it is cloned and posix_spawn returns only once it
 * has exec'd, so the process holds the job's umask for that long only.
 * Whatever else the process creates meanwhile is created with an explicit
 * mode of 0600 or 0700, which a looser umask does not widen.
 */
static pthread_mutex_t runner_umask_lock = PTHREAD_MUTEX_INITIALIZER;

int pd_spawnattr_child(posix_spawnattr_t *attr, int new_group) {
        sigset_t mask, dflt;
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        int err;

        sigemptyset(&mask);
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGPIPE);
        sigaddset(&dflt, SIGTERM);
        sigaddset(&dflt, SIGINT);
        sigaddset(&dflt, SIGHUP);
        sigaddset(&dflt, SIGCHLD);
        if (new_group)
                flags |= POSIX_SPAWN_SETPGROUP;
        err = posix_spawnattr_setflags(attr, flags);
        if (!err && new_group)
                err = posix_spawnattr_setpgroup(attr, 0);
        if (!err)
                err = posix_spawnattr_setsigmask(attr, &mask);
        if (!err)
                err = posix_spawnattr_setsigdefault(attr, &dflt);
        return err;
}

/*
 * Starts job's command with its stdout and stderr on out_fd.
 * Returns 0 with *pidp, or the errno value of the failure (a failed exec
 * included: glibc reports it from the child).
 */
static int runner_spawn(const pd_runner_job_t *job, int out_fd, pid_t *pidp) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        mode_t old_umask = 0;
        int err;

        err = posix_spawn_file_actions_init(&fa);
        if (err)
                return err;
        err = posix_spawnattr_init(&attr);
        if (err)
                goto out_fa;

        /* Duplicated before stdin is opened: if out_fd happens to be 0, it
         * must be copied before /dev/null takes its place. */
        err = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
        if (!err)
                err = posix_spawn_file_actions_adddup2(&fa, out_fd,
                                                       STDERR_FILENO);
        if (!err)
                err = posix_spawn_file_actions_addopen(
                    &fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (!err && job->workdir)
                err = posix_spawn_file_actions_addchdir_np(&fa, job->workdir);

        /* The reactor blocks and handles signals for itself (and ignores
         * SIGPIPE); none of that may leak into the command. Group 0: the
         * child leads a new group, so one kill reaches all it starts. */
        if (!err)
                err = pd_spawnattr_child(&attr, 1);

        if (job->has_umask) {
                pthread_mutex_lock(&runner_umask_lock);
                old_umask = umask((mode_t)(job->umask & 0777));
        }
        if (!err)
                err = posix_spawnp(pidp, job->argv[0], &fa, &attr, job->argv,
                                   job->envp ? job->envp : environ);
        if (job->has_umask) {
                umask(old_umask);
                pthread_mutex_unlock(&runner_umask_lock);
        }

        posix_spawnattr_destroy(&attr);
out_fa:
        posix_spawn_file_actions_destroy(&fa);
        return err;
}

/* Why dir cannot be the working folder, as an errno value; 0 if it can. */
static int runner_workdir_error(const char *dir) {
        struct stat sb;

        if (stat(dir, &sb))
                return errno;
        if (!S_ISDIR(sb.st_mode))
                return ENOTDIR;
        return access(dir, X_OK) ? errno : 0;
}

/*
 * Fills res for a command that could not be started (spawn error err).
 * Returns 0 when that is the command's outcome, -1 when the runner itself
 * is short of resources.
 */
static int runner_not_started(const pd_runner_job_t *job, int err,
                              pd_runner_result_t *res) {
        int dir_err;

        res->status = PD_ST_FAILED;
        switch (err) {
        case EAGAIN:
        case ENOMEM:
        case EMFILE:
        case ENFILE:
                snprintf(res->error, sizeof(res->error),
                         "cannot start '%s': %s", job->argv[0],
                         pd_strerror(err));
                return -1;
        }
        /* The chdir happens in the child, and its error looks like the
         * exec's: ask the folder itself which one failed. */
        if (job->workdir && (dir_err = runner_workdir_error(job->workdir))) {
                snprintf(res->error, sizeof(res->error),
                         "cannot enter workdir '%s': %s", job->workdir,
                         pd_strerror(dir_err));
                return 0;
        }
        /* The shell's codes: 127 not found, 126 found but not runnable. */
        res->has_exit_code = 1;
        res->exit_code     = err == ENOENT ? 127 : 126;
        snprintf(res->error, sizeof(res->error), "cannot execute '%s': %s",
                 job->argv[0], pd_strerror(err));
        return 0;
}

/* Whether pid has exited, without reaping it (the fallback to pidfds). */
static int runner_exited(pid_t pid) {
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT))
                return 1; /* cannot watch it: let waitpid() say why */
        return si.si_pid == pid;
}

/* Reads what the pipe has now. Returns 0 while it stays open. */
static int runner_read(int fd, char *buf, pd_output_t *out) {
        ssize_t n = read(fd, buf, PD_RUNNER_READ_SIZE);

        if (n > 0)
                pd_output_add(out, buf, (size_t)n);
        return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

static int64_t runner_min(int64_t a, int64_t b) {
        return a < b ? a : b;
}

void pd_runner_stop_error(pd_status_t stopped_as, int64_t timeout_ms,
                          char *errstr, size_t errstr_size) {
        if (stopped_as == PD_ST_INTERRUPTED)
                snprintf(errstr, errstr_size,
                         "interrupted: reactor shutting down");
        else if (timeout_ms % 1000 == 0)
                snprintf(errstr, errstr_size, "timed out after %llds",
                         (long long)(timeout_ms / 1000));
        else
                snprintf(errstr, errstr_size, "timed out after %lldms",
                         (long long)timeout_ms);
}

/* Fills status, error and exit fields from the wait status. */
static void runner_outcome(const pd_runner_job_t *job, int wstatus,
                           pd_status_t stopped_as, pd_runner_result_t *res) {
        if (WIFEXITED(wstatus)) {
                res->has_exit_code = 1;
                res->exit_code     = WEXITSTATUS(wstatus);
        } else if (WIFSIGNALED(wstatus)) {
                res->term_signal = WTERMSIG(wstatus);
        }

        res->status = stopped_as;
        if (stopped_as == PD_ST_TIMED_OUT || stopped_as == PD_ST_INTERRUPTED) {
                pd_runner_stop_error(stopped_as, job->timeout_ms, res->error,
                                     sizeof(res->error));
        } else if (res->has_exit_code && res->exit_code == 0) {
                res->status = PD_ST_SUCCEEDED;
        } else if (res->has_exit_code) {
                res->status = PD_ST_FAILED;
                snprintf(res->error, sizeof(res->error),
                         "exited with status %d", res->exit_code);
        } else {
                const char *desc = sigdescr_np(res->term_signal);

                res->status = PD_ST_FAILED;
                snprintf(res->error, sizeof(res->error),
                         "killed by signal %d (%s)", res->term_signal,
                         desc ? desc : "unknown signal");
        }
}

/*
 * Watches the started child pid until it has exited and is reaped,
 * collecting its output from out_fd and enforcing the timeout and the
 * cancel flag. pidfd may be -1. Returns 0 with the outcome in res, or -1
 * with res->error if watching failed (the group is then killed and reaped).
 */
static int runner_watch(const pd_runner_job_t *job, pid_t pid, int pidfd,
                        int out_fd, char *buf, pd_output_t *out, int64_t start,
                        pd_runner_result_t *res) {
        const int64_t deadline =
            job->timeout_ms > 0 ? start + job->timeout_ms : INT64_MAX;
        /* PD_ST_SUCCEEDED: not stopped by us (any other outcome is the
         * child's own). */
        pd_status_t stopped_as = PD_ST_SUCCEEDED;
        int64_t kill_at        = INT64_MAX; /* SIGKILL after SIGTERM */
        int out_open           = 1;
        int exited             = 0;
        int wstatus            = 0;
        int ret                = 0;

        while (!exited) {
                struct pollfd pfd[2];
                int64_t now  = pd_mono_ms();
                int64_t wait = PD_RUNNER_TICK_MS;
                nfds_t nfds  = 0;
                int n;

                if (stopped_as == PD_ST_SUCCEEDED) {
                        if (job->cancel && *job->cancel)
                                stopped_as = PD_ST_INTERRUPTED;
                        else if (now >= deadline)
                                stopped_as = PD_ST_TIMED_OUT;
                        if (stopped_as != PD_ST_SUCCEEDED) {
                                kill(-pid, SIGTERM);
                                kill_at = now + PD_RUNNER_KILL_GRACE_MS;
                        }
                } else if (now >= kill_at) {
                        kill(-pid, SIGKILL);
                        kill_at = INT64_MAX;
                }

                if (stopped_as == PD_ST_SUCCEEDED)
                        wait = runner_min(wait, deadline - now);
                wait = runner_min(wait, kill_at - now);
                if (pidfd == -1)
                        wait = runner_min(wait, PD_RUNNER_REAP_TICK_MS);

                if (out_open)
                        pfd[nfds++] = (struct pollfd){out_fd, POLLIN, 0};
                if (pidfd != -1)
                        pfd[nfds++] = (struct pollfd){pidfd, POLLIN, 0};
                n = poll(pfd, nfds, (int)(wait > 0 ? wait : 0));
                if (n < 0 && errno != EINTR) {
                        snprintf(res->error, sizeof(res->error), "poll: %s",
                                 pd_strerror(errno));
                        ret = -1;
                        break;
                }
                if (n > 0 && out_open && pfd[0].revents)
                        out_open = !runner_read(out_fd, buf, out);
                if (pidfd != -1)
                        exited = n > 0 && pfd[nfds - 1].revents;
                else
                        exited = runner_exited(pid);
        }

        /* The child is gone but not reaped, so its group id is still ours
         * to signal: what it left behind goes now. */
        kill(-pid, SIGKILL);

        /* What was written before the exit is still in the pipe. Read only
         * what is there now, for one tick at most: a process that escaped
         * the group may keep the pipe open forever. */
        for (int64_t until = pd_mono_ms() + PD_RUNNER_TICK_MS;
             out_open && pd_mono_ms() < until;) {
                struct pollfd pfd = {out_fd, POLLIN, 0};
                int n             = poll(&pfd, 1, 0);

                if (n == 0 || (n < 0 && errno != EINTR))
                        break;
                if (n > 0)
                        out_open = !runner_read(out_fd, buf, out);
        }

        while (waitpid(pid, &wstatus, 0) == -1) {
                if (errno != EINTR) {
                        /* ECHILD: the process ignores SIGCHLD (children
                         * are then reaped by the kernel) or another thread
                         * waits for any child. Both must not happen. */
                        snprintf(res->error, sizeof(res->error),
                                 "cannot wait for '%s': %s", job->argv[0],
                                 pd_strerror(errno));
                        res->status = PD_ST_FAILED;
                        return -1;
                }
        }
        if (!ret)
                runner_outcome(job, wstatus, stopped_as, res);
        return ret;
}

int pd_runner_run(const pd_runner_job_t *job, pd_runner_result_t *res) {
        const int64_t start = pd_mono_ms();
        pd_output_t *out    = NULL;
        int pipefd[2]       = {-1, -1};
        int pidfd           = -1;
        char *buf           = NULL;
        pid_t pid           = -1;
        int ret             = -1;
        int err;

        assert(job->argv && job->argv[0]);
        memset(res, 0, sizeof(*res));
        res->status = PD_ST_FAILED;

        buf = pd_xmalloc(PD_RUNNER_READ_SIZE);
        if (pipe2(pipefd, O_CLOEXEC)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot create a pipe: %s", pd_strerror(errno));
                goto out;
        }
        out = pd_output_new(job->log_path, res->error, sizeof(res->error));
        if (!out)
                goto out;

        err = runner_spawn(job, pipefd[1], &pid);
        /* Only the child writes: our copy would hide its EOF. */
        close(pipefd[1]);
        pipefd[1] = -1;
        if (err) {
                ret = runner_not_started(job, err, res);
                goto out;
        }

        if (job->spawned)
                job->spawned(job->opaque, (int)pid);
        pidfd = pidfd_open(pid, 0);
        ret   = runner_watch(job, pid, pidfd, pipefd[0], buf, out, start, res);
        pd_output_result(out, res);
out:
        res->duration_ms = pd_mono_ms() - start;
        if (pidfd != -1)
                close(pidfd);
        pd_output_destroy(out);
        if (pipefd[0] != -1)
                close(pipefd[0]);
        if (pipefd[1] != -1)
                close(pipefd[1]);
        free(buf);
        return ret;
}
