/*
 * runner.c - runs one command action and reports how it went (runner.h).
 *
 * The child is started from an argv as posix_spawnp would (a vfork-like
 * clone, then a PATH search), in a process group of its own, with the
 * signal mask emptied and the signals the reactor handles or ignores set
 * back to their defaults, so it starts as if from a shell.
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
 * Nothing here keeps static state but the set of signals to reset (read
 * once), so several threads may run commands at once; every descriptor is
 * close-on-exec, so one run's pipe never leaks into another's child.
 *
 * The output capture (pd_output_*) is public in runner.h because in-process
 * plugin actions (plugin.c) keep their output the same way.
 *
 * Progress: a second pipe, whose write end the child gets as fd 3
 * (POSTDEPLOY_PROGRESS_FD=3 in its environment), is polled beside the
 * output; its lines are parsed as they come and only the newest value is
 * kept (pd_runner_progress_feed), so a command that floods it costs a pass over
 * the bytes and no memory. The caller hears of it through job->progress,
 * at most once per read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE    /* clone, pipe2, pidfd_open, sigdescr_np,               \
                          strchrnul, strerrordesc_np */
#endif
#include "consumer/runner.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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

/* A decimal number of at most 18 digits at *p (no sign), skipping the
 * spaces before it. Returns 0 and moves *p past it, or -1. */
static int progress_number(const char **p, const char *end, int64_t *v) {
        int digits = 0;

        while (*p < end && **p == ' ')
                (*p)++;
        *v = 0;
        while (*p < end && **p >= '0' && **p <= '9') {
                if (++digits > 18) /* before *v could overflow */
                        return -1;
                *v = *v * 10 + (**p - '0');
                (*p)++;
        }
        return digits ? 0 : -1;
}

int pd_runner_progress_parse(const char *line, size_t len, int64_t *done,
                             int64_t *total) {
        const char *p = line, *end = line + len;
        int64_t d, t               = 0;

        if (len && end[-1] == '\r')
                end--;
        if (progress_number(&p, end, &d))
                return -1;
        while (p < end && *p == ' ')
                p++;
        if (p < end) {
                /* "DONE TOTAL" or "DONE/TOTAL" */
                if (*p == '/')
                        p++;
                else if (p[-1] != ' ')
                        return -1;
                if (progress_number(&p, end, &t))
                        return -1;
                while (p < end && *p == ' ')
                        p++;
                if (p != end || d > t)
                        return -1;
        }
        *done  = d;
        *total = t;
        return 0;
}

void pd_runner_progress_feed(pd_runner_progress_t *pr, const char *buf,
                             size_t len) {
        for (const char *end = buf + len; buf < end;) {
                const char *nl = memchr(buf, '\n', (size_t)(end - buf));
                size_t n       = (size_t)((nl ? nl : end) - buf);
                int64_t done, total;

                if (pr->overlong || n > sizeof(pr->line) - pr->len) {
                        pr->overlong = 1;
                } else {
                        memcpy(pr->line + pr->len, buf, n);
                        pr->len += n;
                }
                if (!nl)
                        break;
                if (pr->overlong || pd_runner_progress_parse(pr->line, pr->len,
                                                             &done, &total)) {
                        pr->bad++;
                } else if (!pr->has || done != pr->done || total != pr->total) {
                        pr->done  = done;
                        pr->total = total;
                        pr->has   = 1;
                        pr->fresh = 1;
                }
                pr->len      = 0;
                pr->overlong = 0;
                buf          = nl + 1;
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

/* The signals the reactor and the supervisor handle or ignore, which no
 * child they start may inherit: one list for both ways of starting one. */
static void runner_changed_signals(sigset_t *set) {
        sigemptyset(set);
        sigaddset(set, SIGPIPE);
        sigaddset(set, SIGTERM);
        sigaddset(set, SIGINT);
        sigaddset(set, SIGHUP);
        sigaddset(set, SIGCHLD);
}

int pd_spawnattr_child(posix_spawnattr_t *attr, int new_group) {
        sigset_t mask, dflt;
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        int err;

        sigemptyset(&mask);
        runner_changed_signals(&dflt);
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
 * The child is started with clone(CLONE_VM | CLONE_VFORK), as glibc's
 * posix_spawn does, but without its reset of every one of the 64 signals
 * (a sigaction call to read each, in every child, whatever the attributes
 * say): only the signals this process ever changed are set back to their
 * default, and which those are is read once. The caller's thread waits
 * until the child has exec'd or failed, and the child shares our memory
 * until then, so it only makes system calls and writes its error into
 * pd_child_t.
 */

/* Signals the child sets back to SIG_DFL: those the reactor and the
 * supervisor handle or ignore, and any other that has a handler when the
 * first command starts (a handler would run in our memory). Handlers are
 * installed at start, before any run. */
static sigset_t runner_dflt;
static pthread_once_t runner_dflt_once = PTHREAD_ONCE_INIT;

static void runner_dflt_init(void) {
        runner_changed_signals(&runner_dflt);
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                struct sigaction sa;

                if (!sigaction(sig, NULL, &sa) && sa.sa_handler != SIG_DFL)
                        sigaddset(&runner_dflt, sig);
        }
        for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
                struct sigaction sa;

                if (!sigaction(sig, NULL, &sa) && sa.sa_handler != SIG_DFL)
                        sigaddset(&runner_dflt, sig);
        }
}

/* The child's stack: execve needs little, the PATH search a path. */
#define PD_CHILD_STACK (64 * 1024)

/*
 * One block per thread, kept for the thread's life: the stack of a child
 * while it is being started, and the buffer each read of a run's pipes
 * goes through. The two are never in use at once in one thread (the
 * parent is held until the child has exec'd: CLONE_VFORK). A run used to
 * malloc and free 128 KiB of them; glibc handed that back to the kernel
 * at each free (sbrk) and the next run faulted it in again: 5% of the
 * supervisor's own CPU (docs/BENCHMARKS.md, "2 on 2026-12-05").
 */
#define PD_RUNNER_SCRATCH                                                      \
        (PD_CHILD_STACK > PD_RUNNER_READ_SIZE ? PD_CHILD_STACK                 \
                                              : PD_RUNNER_READ_SIZE)
static pthread_key_t runner_scratch_key;
static pthread_once_t runner_scratch_once = PTHREAD_ONCE_INIT;

static void runner_scratch_init(void) {
        /* Freed when its thread ends; a process that never made one
         * frees nothing. */
        if (pthread_key_create(&runner_scratch_key, free))
                abort();
}

/* This thread's block of PD_RUNNER_SCRATCH bytes. */
static char *runner_scratch(void) {
        char *p;

        pthread_once(&runner_scratch_once, runner_scratch_init);
        p = pthread_getspecific(runner_scratch_key);
        if (!p) {
                p = pd_xmalloc(PD_RUNNER_SCRATCH);
                if (pthread_setspecific(runner_scratch_key, p))
                        abort();
        }
        return p;
}

typedef struct pd_child_s {
        const pd_runner_job_t *job;
        char *const *envp; /* job's, with POSTDEPLOY_PROGRESS_FD */
        int out_fd;
        int prog_fd;      /* the progress pipe's write end (>= 10) */
        const char *path; /* PATH to search a name without '/' in */
        int err;          /* set by the child when it cannot exec */
} pd_child_t;

/* execve of file, searched in path as posix_spawnp does (no /bin/sh for
 * a file without a #! line). Returns the errno value to report. */
static int child_exec(const char *file, char *const argv[], char *const envp[],
                      const char *path) {
        size_t flen = strlen(file);
        int eacces  = 0;
        char buf[4096];

        if (strchr(file, '/')) {
                execve(file, argv, envp);
                return errno;
        }
        for (const char *p = path;; p++) {
                const char *end = strchrnul(p, ':');
                size_t dlen     = (size_t)(end - p);

                if (dlen + 1 + flen < sizeof(buf)) {
                        memcpy(buf, p, dlen);
                        if (dlen)
                                buf[dlen++] = '/'; /* empty: this folder */
                        memcpy(buf + dlen, file, flen + 1);
                        execve(buf, argv, envp);
                        switch (errno) {
                        case EACCES:
                                eacces = 1;
                                break;
                        case ENOENT:
                        case ENOTDIR:
                        case ESTALE:
                        case ENODEV:
                        case ETIMEDOUT:
                                break;
                        default:
                                return errno;
                        }
                }
                if (!*end)
                        break;
                p = end;
        }
        return eacces ? EACCES : ENOENT;
}

/* The child, until exec: every signal is blocked when it starts. */
static int runner_child(void *arg) {
        pd_child_t *c              = arg;
        const pd_runner_job_t *job = c->job;
        struct sigaction sa;
        sigset_t none;
        int fd;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig <= SIGRTMAX; sig++)
                if (sigismember(&runner_dflt, sig) == 1)
                        sigaction(sig, &sa, NULL);
        /* Group 0: the child leads a new group, so one kill reaches all it
         * starts. */
        if (setpgid(0, 0))
                goto fail;
        /* Duplicated before stdin is opened: if out_fd happens to be 0, it
         * must be copied before /dev/null takes its place. dup2 onto
         * itself would keep close-on-exec. */
        for (fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
                if (c->out_fd == fd ? fcntl(fd, F_SETFD, 0)
                                    : dup2(c->out_fd, fd) == -1)
                        goto fail;
        if ((fd = open("/dev/null", O_RDONLY)) == -1)
                goto fail;
        if (fd != STDIN_FILENO && (dup2(fd, STDIN_FILENO) == -1 || close(fd)))
                goto fail;
        /* After stdin: /dev/null may have been given fd 3 for a moment.
         * prog_fd is above 3, so this is never a dup2 onto itself, which
         * would keep close-on-exec. */
        if (dup2(c->prog_fd, PD_PROGRESS_FD) == -1)
                goto fail;
        if (job->workdir && chdir(job->workdir))
                goto fail;
        /* Not shared with us (no CLONE_FS): no lock, no window. */
        if (job->has_umask)
                umask((mode_t)(job->umask & 0777));
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL))
                goto fail;
        c->err = child_exec(job->argv[0], job->argv, c->envp, c->path);
        _exit(127);
fail:
        c->err = errno;
        _exit(127);
}

/*
 * Starts job's command with its stdout and stderr on out_fd.
 * Returns 0 with *pidp, or the errno value of the failure (a failed exec
 * included, which the child reports).
 */
static int runner_spawn(const pd_runner_job_t *job, char *const *envp,
                        int out_fd, int prog_fd, pid_t *pidp) {
        char *stack      = runner_scratch();
        const char *path = getenv("PATH");
        pd_child_t c     = {
                job, envp, out_fd, prog_fd, path ? path : "/bin:/usr/bin", 0};
        sigset_t all, old;
        pid_t pid;
        int err = 0;

        pthread_once(&runner_dflt_once, runner_dflt_init);
        /* No handler of ours may run in the child, which shares our
         * memory: it unblocks only once they are all reset. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = clone(runner_child, stack + PD_CHILD_STACK,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
        if (pid == -1)
                err = errno;
#ifdef __SANITIZE_ADDRESS__
        /* The child ran instrumented code on this block as its stack and
         * left its frames' redzones poisoned; the block is ours again
         * (the pipe reads use it), so AddressSanitizer must see it so. */
        ASAN_UNPOISON_MEMORY_REGION(stack, PD_RUNNER_SCRATCH);
#endif
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!err && c.err) {
                /* It exited without exec: reaped here, never seen. */
                err = c.err;
                while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
                        ;
        }
        if (!err)
                *pidp = pid;
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
static int runner_read(int fd, pd_output_t *out) {
        char *buf = runner_scratch();
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

/* A command started and watched (runner.h: pd_runner_start). */
struct pd_runner_s {
        const pd_runner_job_t *job;
        int64_t start;
        int64_t deadline;
        /* PD_ST_SUCCEEDED: not stopped by us (any other outcome is the
         * child's own). */
        pd_status_t stopped_as;
        int64_t kill_at; /* SIGKILL after SIGTERM */
        pd_output_t *out;
        int out_fd; /* the pipe's read end */
        int out_open;
        int pidfd;   /* -1: exit checked every 10 ms instead */
        int prog_fd; /* the progress pipe's read end (non-blocking) */
        int prog_open;
        int ix_out, ix_prog; /* their places in prepare's pfd, -1: none */
        pd_runner_progress_t pr;
        char **envp; /* the child's: job's and POSTDEPLOY_PROGRESS_FD */
        pid_t pid;
        int exited;
        int failed; /* watching failed: res->error says why */
        char error[512];
};

/* fd moved to a number of 10 or more (close-on-exec). Returns it, or -1
 * with errno (fd is closed either way). */
static int runner_high_fd(int fd) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        int err  = errno;

        close(fd);
        errno = err;
        return high;
}

/* The child's environment: env without any POSTDEPLOY_PROGRESS_FD, and
 * ours. The array is the caller's to free; the strings stay env's. */
static char **runner_envp(char *const *env) {
        static char var[] = PD_PROGRESS_ENV "=3";
        size_t n = 0, k = 0;
        char **v;

        _Static_assert(PD_PROGRESS_FD == 3, "the text of var above");
        while (env[n])
                n++;
        v = pd_xcalloc(n + 2, sizeof(*v));
        for (size_t i = 0; i < n; i++)
                if (strncmp(env[i], PD_PROGRESS_ENV "=",
                            sizeof(PD_PROGRESS_ENV)))
                        v[k++] = env[i];
        v[k] = var;
        return v;
}

/* Reads what the progress pipe has now (one read) and tells the caller
 * of a new value. At its end or an error it is no longer polled. */
static void runner_progress_read(pd_runner_t *rn) {
        char *buf = runner_scratch();
        ssize_t n = read(rn->prog_fd, buf, PD_RUNNER_READ_SIZE);
        uint64_t bad;

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                rn->prog_open = 0;
                return;
        }
        bad = rn->pr.bad;
        pd_runner_progress_feed(&rn->pr, buf, (size_t)n);
        if (!bad && rn->pr.bad)
                pd_log(PD_LOG_WARN,
                       "%s: a progress line is not \"DONE TOTAL\" or "
                       "\"DONE/TOTAL\"; it and any more are ignored",
                       rn->job->argv[0]);
        if (rn->pr.fresh && rn->job->progress) {
                rn->pr.fresh = 0;
                rn->job->progress(rn->job->opaque, rn->pr.done, rn->pr.total);
        }
}

static void runner_free(pd_runner_t *rn) {
        if (rn->pidfd != -1)
                close(rn->pidfd);
        pd_output_destroy(rn->out);
        if (rn->out_fd != -1)
                close(rn->out_fd);
        if (rn->prog_fd != -1)
                close(rn->prog_fd);
        free(rn->envp);
        free(rn);
}

pd_runner_t *pd_runner_start(const pd_runner_job_t *job,
                             pd_runner_result_t *res, int *failed) {
        pd_runner_t *rn = pd_xcalloc(1, sizeof(*rn));
        int pipefd[2]   = {-1, -1};
        int progfd[2]   = {-1, -1};
        int err;

        assert(job->argv && job->argv[0]);
        memset(res, 0, sizeof(*res));
        res->status = PD_ST_FAILED;
        *failed     = 1;
        rn->job     = job;
        rn->start   = pd_mono_ms();
        rn->deadline =
            job->timeout_ms > 0 ? rn->start + job->timeout_ms : INT64_MAX;
        rn->stopped_as = PD_ST_SUCCEEDED;
        rn->kill_at    = INT64_MAX;
        rn->out_fd     = -1;
        rn->pidfd      = -1;
        rn->prog_fd    = -1;
        if (pipe2(progfd, O_CLOEXEC | O_NONBLOCK)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot create a pipe: %s", pd_strerror(errno));
                goto fail;
        }
        rn->prog_fd   = progfd[0];
        rn->prog_open = 1;
        /* The write end out of the way of 0..3 in the child
         * (runner_child): moved to 10 or more only when it is one of
         * them, which a process with 0..2 open rarely gives (a move is a
         * dup and a close per run). Blocking for the writer: a command
         * that writes faster than we read waits, as on its stdout. */
        if (progfd[1] <= PD_PROGRESS_FD)
                progfd[1] = runner_high_fd(progfd[1]);
        if (progfd[1] == -1 || fcntl(progfd[1], F_SETFL, 0)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot create a pipe: %s", pd_strerror(errno));
                if (progfd[1] != -1)
                        close(progfd[1]);
                goto fail;
        }
        rn->envp = runner_envp(job->envp ? job->envp : environ);
        if (pipe2(pipefd, O_CLOEXEC)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot create a pipe: %s", pd_strerror(errno));
                close(progfd[1]);
                goto fail;
        }
        rn->out_fd   = pipefd[0];
        rn->out_open = 1;
        rn->out = pd_output_new(job->log_path, res->error, sizeof(res->error));
        if (!rn->out) {
                close(pipefd[1]);
                close(progfd[1]);
                goto fail;
        }
        err = runner_spawn(job, rn->envp, pipefd[1], progfd[1], &rn->pid);
        /* Only the child writes: our copy would hide its EOF. */
        close(pipefd[1]);
        close(progfd[1]);
        if (err) {
                *failed = runner_not_started(job, err, res) != 0;
                goto fail;
        }
        if (job->spawned)
                job->spawned(job->opaque, (int)rn->pid);
        rn->pidfd = pidfd_open(rn->pid, 0);
        *failed   = 0;
        return rn;
fail:
        res->duration_ms = pd_mono_ms() - rn->start;
        res->ended_at_ms = pd_now_ms();
        runner_free(rn);
        return NULL;
}

int pd_runner_prepare(pd_runner_t *rn, struct pollfd *pfd, int64_t *wait) {
        const pd_runner_job_t *job = rn->job;
        int64_t now                = pd_mono_ms();
        int64_t w                  = PD_RUNNER_TICK_MS;
        int nfds                   = 0;

        if (rn->stopped_as == PD_ST_SUCCEEDED) {
                if (job->cancel && *job->cancel)
                        rn->stopped_as = PD_ST_INTERRUPTED;
                else if (now >= rn->deadline)
                        rn->stopped_as = PD_ST_TIMED_OUT;
                if (rn->stopped_as != PD_ST_SUCCEEDED) {
                        kill(-rn->pid, SIGTERM);
                        rn->kill_at = now + PD_RUNNER_KILL_GRACE_MS;
                }
        } else if (now >= rn->kill_at) {
                kill(-rn->pid, SIGKILL);
                rn->kill_at = INT64_MAX;
        }

        if (rn->stopped_as == PD_ST_SUCCEEDED)
                w = runner_min(w, rn->deadline - now);
        w = runner_min(w, rn->kill_at - now);
        if (rn->pidfd == -1)
                w = runner_min(w, PD_RUNNER_REAP_TICK_MS);
        if (w < 0)
                w = 0;
        if (w < *wait || *wait < 0)
                *wait = w;

        rn->ix_out = rn->ix_prog = -1;
        if (rn->out_open) {
                rn->ix_out  = nfds;
                pfd[nfds++] = (struct pollfd){rn->out_fd, POLLIN, 0};
        }
        if (rn->prog_open) {
                rn->ix_prog = nfds;
                pfd[nfds++] = (struct pollfd){rn->prog_fd, POLLIN, 0};
        }
        if (rn->pidfd != -1)
                pfd[nfds++] = (struct pollfd){rn->pidfd, POLLIN, 0};
        return nfds;
}

int pd_runner_handle(pd_runner_t *rn, const struct pollfd *pfd, int nfds) {
        if (rn->ix_out >= 0 && rn->ix_out < nfds && pfd[rn->ix_out].revents)
                rn->out_open = !runner_read(rn->out_fd, rn->out);
        if (rn->ix_prog >= 0 && rn->ix_prog < nfds && pfd[rn->ix_prog].revents)
                runner_progress_read(rn);
        if (rn->pidfd != -1)
                rn->exited = nfds && pfd[nfds - 1].revents;
        else
                rn->exited = runner_exited(rn->pid);
        return rn->exited;
}

/*
 * Watches the started child until it has exited, collecting its output
 * and enforcing the timeout and the cancel flag, with a poll of its own.
 */
static void runner_watch(pd_runner_t *rn) {
        while (!rn->exited) {
                struct pollfd pfd[PD_RUNNER_PFD_MAX];
                int64_t wait = -1;
                int nfds     = pd_runner_prepare(rn, pfd, &wait);
                int n        = poll(pfd, (nfds_t)nfds, (int)wait);

                if (n < 0 && errno != EINTR) {
                        snprintf(rn->error, sizeof(rn->error), "poll: %s",
                                 pd_strerror(errno));
                        rn->failed = 1;
                        break;
                }
                if (n < 0)
                        continue;
                pd_runner_handle(rn, pfd, nfds);
        }
}

int pd_runner_finish(pd_runner_t *rn, pd_runner_result_t *res) {
        const pd_runner_job_t *job = rn->job;
        int wstatus                = 0;
        int ret;

        if (!rn->exited && !rn->failed)
                runner_watch(rn);
        ret = rn->failed ? -1 : 0;
        if (ret)
                snprintf(res->error, sizeof(res->error), "%s", rn->error);

        /* The child is gone but not reaped, so its group id is still ours
         * to signal: what it left behind goes now. (After a failed watch
         * it is killed, as a command is by a timeout.) */
        kill(-rn->pid, SIGKILL);

        /* What was written before the exit is still in the pipe. Read only
         * what is there now, for one tick at most: a process that escaped
         * the group may keep the pipe open forever. */
        for (int64_t until = pd_mono_ms() + PD_RUNNER_TICK_MS;
             rn->out_open && pd_mono_ms() < until;) {
                struct pollfd pfd = {rn->out_fd, POLLIN, 0};
                int n             = poll(&pfd, 1, 0);

                if (n == 0 || (n < 0 && errno != EINTR))
                        break;
                if (n > 0)
                        rn->out_open = !runner_read(rn->out_fd, rn->out);
        }

        while (waitpid(rn->pid, &wstatus, 0) == -1) {
                if (errno != EINTR) {
                        /* ECHILD: the process ignores SIGCHLD (children
                         * are then reaped by the kernel) or another thread
                         * waits for any child. Both must not happen. */
                        snprintf(res->error, sizeof(res->error),
                                 "cannot wait for '%s': %s", job->argv[0],
                                 pd_strerror(errno));
                        res->status = PD_ST_FAILED;
                        ret         = -1;
                        goto out;
                }
        }
        if (!ret)
                runner_outcome(job, wstatus, rn->stopped_as, res);
out:
        pd_output_result(rn->out, res);
        res->duration_ms = pd_mono_ms() - rn->start;
        res->ended_at_ms = pd_now_ms();
        runner_free(rn);
        return ret;
}

int pd_runner_run(const pd_runner_job_t *job, pd_runner_result_t *res) {
        int failed;
        pd_runner_t *rn = pd_runner_start(job, res, &failed);

        if (!rn)
                return failed ? -1 : 0;
        return pd_runner_finish(rn, res);
}
