/*
 * loop.c - the supervisor process: its loop (poll over the
 * listening socket, the connections, the run threads' eventfd and the
 * signals), idle exit and stop, and its life cycle from pd_sup_main's
 * fork to its exit.
 *
 * The folder is held with a flock on DIR/supervisor/lock for the process's
 * lifetime, so only one supervisor serves it, and a socket found there
 * without the lock is a dead supervisor's and can be replaced. To exit when
 * idle, the supervisor unlinks its socket first (new clients then start a
 * new one, which retries until our lock is free), then accepts whatever
 * reached the backlog in between; if something did, it binds again and
 * serves on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* close_range, SOCK_CLOEXEC */
#endif
#include "consumer/supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* ------------------------------------------------------------------ */
/* The supervisor: the loop                                             */

/* The syncer synced: the loop looks again at whether it may idle. */
static void sup_synced(pd_sup_server_t *srv) {
        uint64_t n;

        while (read(srv->event_fd, &n, sizeof(n)) < 0 && errno == EINTR)
                ;
}

/* Binds and listens at the socket path (which we hold the lock for, so
 * what is there is a dead supervisor's). Returns the fd, or -1. */
static int sup_listen(pd_sup_server_t *srv, char *errstr, size_t errstr_size) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        mode_t old;
        int err;

        if (fd == -1) {
                snprintf(errstr, errstr_size, "socket: %s", pd_strerror(errno));
                return -1;
        }
        if (unlink(srv->sa.sun_path) && errno != ENOENT) {
                snprintf(errstr, errstr_size, "cannot remove %s: %s",
                         srv->sa.sun_path, pd_strerror(errno));
                close(fd);
                return -1;
        }
        /* Created 0600 (its x bits mean nothing): only our user may
         * connect. */
        old = umask(0177);
        err = bind(fd, (const struct sockaddr *)&srv->sa, sizeof(srv->sa));
        umask(old);
        if (err || listen(fd, 128)) {
                snprintf(errstr, errstr_size, "cannot listen at %s: %s",
                         srv->sa.sun_path, pd_strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Whether nothing would be lost if the supervisor exited now. */
static int sup_idle(pd_sup_server_t *srv) {
        if (srv->conn_cnt || srv->running)
                return 0;
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (!srv->runs[i]->saved)
                        return 0;
        return pd__sup_all_synced(srv);
}

/* Idle long enough: returns 1 if the supervisor may exit, 0 if a client
 * slipped in while the socket went away (it is then served, at a new
 * socket). */
static int sup_idle_exit(pd_sup_server_t *srv) {
        char errstr[256];

        /* From here on a connect fails, and the client starts a new
         * supervisor, which waits for our lock. */
        unlink(srv->sa.sun_path);
        if (!pd__sup_accept(srv))
                return 1;
        close(srv->listen_fd);
        srv->listen_fd = sup_listen(srv, errstr, sizeof(errstr));
        if (srv->listen_fd == -1)
                pd_log(PD_LOG_ERROR, "%s; serving the clients connected",
                       errstr);
        return 0;
}

/* SIGTERM/SIGINT: stop taking requests, cancel every run, and exit once
 * they have ended (their outcomes saved as usual). */
static void sup_stop(pd_sup_server_t *srv) {
        if (srv->stopping)
                return;
        srv->stopping = 1;
        pd_log(PD_LOG_INFO, "stopping: %zu run(s) interrupted", srv->running);
        if (srv->listen_fd != -1) {
                unlink(srv->sa.sun_path);
                close(srv->listen_fd);
                srv->listen_fd = -1;
        }
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i]->state == PD_SUP_RUNNING)
                        srv->runs[i]->cancel = 1;
}

/* Serves until idle, or stopped and every run has ended. */
static void sup_serve(pd_sup_server_t *srv) {
        struct pollfd *pfd   = NULL;
        pd_sup_run_t **owner = NULL;
        size_t pfd_cap = 0, owner_cap = 0;
        int64_t idle_since = -1;

        for (;;) {
                const size_t base = 3;
                size_t cnt        = srv->conn_cnt;
                size_t rcnt;
                int timeout = -1;
                int64_t now;
                int n;

                if (srv->stopping && !srv->running)
                        break;
                now = pd_mono_ms();
                if (!srv->stopping && sup_idle(srv)) {
                        if (idle_since < 0)
                                idle_since = now;
                        if (now - idle_since >= srv->idle_ms) {
                                if (sup_idle_exit(srv))
                                        break;
                                idle_since = -1;
                                continue;
                        }
                        timeout = (int)pd_sup_min(
                            idle_since + srv->idle_ms - now, 3600000);
                } else {
                        idle_since = -1;
                }

                /* A log grown long is compacted after a quiet second. */
                if (pd__sup_log_bloated(srv, 1) &&
                    (timeout < 0 || timeout > PD_SUP_QUIET_MS))
                        timeout = PD_SUP_QUIET_MS;

                /* Each run polls its output, its progress and its pidfd
                 * at most. */
                pfd =
                    pd_xgrow(pfd, &pfd_cap,
                             base + cnt + PD_RUNNER_PFD_MAX * srv->run_cnt + 1,
                             sizeof(*pfd));
                owner  = pd_xgrow(owner, &owner_cap,
                                  PD_RUNNER_PFD_MAX * srv->run_cnt + 1,
                                  sizeof(*owner));
                pfd[0] = (struct pollfd){srv->signal_fd, POLLIN, 0};
                pfd[1] = (struct pollfd){srv->event_fd, POLLIN, 0};
                pfd[2] = (struct pollfd){srv->listen_fd, POLLIN, 0};
                for (size_t i = 0; i < cnt; i++) {
                        pd_sup_conn_t *conn = srv->conns[i];
                        short ev            = 0;

                        if (!conn->eof && !conn->closing && !srv->stopping)
                                ev |= POLLIN;
                        if (conn->out.len)
                                ev |= POLLOUT;
                        pfd[base + i] = (struct pollfd){conn->fd, ev, 0};
                }
                rcnt = pd__sup_runs_prepare(srv, pfd + base + cnt, owner,
                                            &timeout);
                n    = poll(pfd, base + cnt + rcnt, timeout);
                if (n < 0 && errno != EINTR) {
                        pd_log(PD_LOG_ERROR, "poll: %s; retrying",
                               pd_strerror(errno));
                        poll(NULL, 0, PD_SUP_TICK_MS);
                        continue;
                }
                if (n >= 0)
                        pd__sup_runs_handle(srv, pfd + base + cnt, owner, rcnt);
                if (n == 0 && pd__sup_log_bloated(srv, 1))
                        pd__sup_log_compact(srv);
                if (n <= 0 && !rcnt)
                        continue;

                if (pfd[0].revents) {
                        struct signalfd_siginfo si;

                        if (read(srv->signal_fd, &si, sizeof(si)) > 0)
                                pd_log(PD_LOG_INFO, "signal %u",
                                       (unsigned)si.ssi_signo);
                        sup_stop(srv);
                }
                if (pfd[1].revents)
                        sup_synced(srv);
                if (pfd[2].revents)
                        pd__sup_accept(srv);
                for (size_t i = 0; i < cnt; i++) {
                        pd_sup_conn_t *conn = srv->conns[i];
                        short rev           = pfd[base + i].revents;

                        if (rev & (POLLIN | POLLHUP | POLLERR))
                                pd__sup_conn_read(srv, conn);
                        if (rev & (POLLHUP | POLLERR))
                                conn->hup = 1;
                }
                /* Connections accepted above are read here, so a request
                 * that came with its connection waits for no other poll. */
                for (size_t i = cnt; i < srv->conn_cnt; i++)
                        pd__sup_conn_read(srv, srv->conns[i]);

                /* Handle before closing: a connection whose peer is gone
                 * may still hold its last request. */
                pd__sup_process(srv);
                pd__sup_lease_check(srv, pd_mono_ms());
                /* Busy for so long that no quiet second comes, and mostly
                 * forgotten: now, then. */
                if (pd__sup_log_bloated(srv, 0))
                        pd__sup_log_compact(srv);
                for (size_t i = srv->conn_cnt; i-- > 0;) {
                        pd_sup_conn_t *conn = srv->conns[i];

                        pd__sup_conn_flush(conn);
                        if (conn->dead ||
                            (conn->hup &&
                             (conn->eof || conn->closing || srv->stopping)) ||
                            (!conn->out.len &&
                             (conn->closing ||
                              (conn->eof && !conn->has_waiting)))) {
                                pd__sup_conn_destroy(conn);
                                srv->conns[i] = srv->conns[--srv->conn_cnt];
                        }
                }
        }
        /* Last replies, best effort: a client that misses its RESULT asks
         * the next supervisor, which reads it from the file. */
        for (size_t i = 0; i < srv->conn_cnt; i++)
                pd__sup_conn_flush(srv->conns[i]);
        free(pfd);
        free(owner);
}

/* ------------------------------------------------------------------ */
/* The supervisor: life cycle                                           */

static void sup_server_destroy(pd_sup_server_t *srv) {
        if (!srv)
                return;
        /* Only after an error: the loop itself ends with no run left. */
        pd__sup_runs_end_all(srv);
        pd__sup_syncer_stop(srv);
        for (size_t i = 0; i < srv->run_cnt; i++)
                pd__sup_run_destroy(srv->runs[i]);
        free(srv->runs);
        if (srv->log_fd != -1)
                close(srv->log_fd);
        for (size_t i = 0; i < srv->conn_cnt; i++)
                pd__sup_conn_destroy(srv->conns[i]);
        free(srv->conns);
        if (srv->listen_fd != -1) {
                unlink(srv->sa.sun_path);
                close(srv->listen_fd);
        }
        if (srv->event_fd != -1)
                close(srv->event_fd);
        if (srv->signal_fd != -1)
                close(srv->signal_fd);
        if (srv->results_fd != -1)
                close(srv->results_fd);
        if (srv->lock_fd != -1)
                close(srv->lock_fd);
        pthread_mutex_destroy(&srv->log_lock);
        pthread_cond_destroy(&srv->log_cond);
        free(srv->dir);
        free(srv);
}

/*
 * Takes dir: creates it and DIR/supervisor (0700) if missing, takes the
 * lock and listens. Returns the server, or NULL with errstr, or NULL with
 * *busy set when another supervisor holds dir.
 */
static pd_sup_server_t *sup_server_new(const char *dir, int idle_s, int *busy,
                                       char *errstr, size_t errstr_size) {
        pd_sup_server_t *srv = pd_xcalloc(1, sizeof(*srv));
        char path[PD_SUP_PATH_MAX];
        pthread_condattr_t cattr;

        *busy        = 0;
        srv->lock_fd = srv->listen_fd = srv->results_fd = -1;
        srv->event_fd = srv->signal_fd = srv->log_fd = -1;
        pthread_mutex_init(&srv->log_lock, NULL);
        /* The syncer's delay is measured on the monotonic clock. */
        pthread_condattr_init(&cattr);
        pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->log_cond, &cattr);
        pthread_condattr_destroy(&cattr);
        srv->idle_ms =
            (int64_t)(idle_s < 0 ? PD_SUP_IDLE_DEFAULT_S : idle_s) * 1000;
        srv->dir = pd_xstrdup(dir);
        if (pd_sup_addr(dir, &srv->sa, errstr, errstr_size))
                goto fail;
        snprintf(srv->results, sizeof(srv->results), "%s/supervisor", dir);
        if ((mkdir(dir, 0700) && errno != EEXIST) ||
            (mkdir(srv->results, 0700) && errno != EEXIST)) {
                snprintf(errstr, errstr_size, "cannot create %s: %s",
                         access(dir, F_OK) ? dir : srv->results,
                         pd_strerror(errno));
                goto fail;
        }
        snprintf(path, sizeof(path), "%s/lock", srv->results);
        srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (srv->lock_fd == -1) {
                snprintf(errstr, errstr_size, "cannot open %s: %s", path,
                         pd_strerror(errno));
                goto fail;
        }
        if (flock(srv->lock_fd, LOCK_EX | LOCK_NB)) {
                if (errno == EWOULDBLOCK)
                        *busy = 1;
                snprintf(errstr, errstr_size, "cannot lock %s: %s", path,
                         pd_strerror(errno));
                goto fail;
        }
        srv->results_fd =
            open(srv->results, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (srv->results_fd == -1) {
                snprintf(errstr, errstr_size, "cannot open %s: %s",
                         srv->results, pd_strerror(errno));
                goto fail;
        }
        srv->listen_fd = sup_listen(srv, errstr, errstr_size);
        if (srv->listen_fd == -1)
                goto fail;
        return srv;
fail:
        sup_server_destroy(srv);
        return NULL;
}

/* In the serving process: the run table, the eventfd and the signals.
 * Returns 0, or -1 (logged). */
static int sup_server_start(pd_sup_server_t *srv) {
        sigset_t mask;
        int err;

        /* Blocked before any thread starts, so every thread inherits it
         * and the signals reach the loop's signalfd only. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        srv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        srv->event_fd  = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->signal_fd == -1 || srv->event_fd == -1) {
                pd_log(PD_LOG_ERROR, "signalfd/eventfd: %s",
                       pd_strerror(errno));
                return -1;
        }
        err = pthread_create(&srv->syncer, NULL, pd__sup_syncer_main, srv);
        if (err) {
                pd_log(PD_LOG_ERROR, "cannot start the syncer thread: %s",
                       pd_strerror(err));
                return -1;
        }
        srv->has_syncer = 1;
        return pd__sup_load(srv);
}

/* Points stdin at /dev/null and stdout, stderr at DIR/supervisor.log. */
static int sup_redirect(const char *dir) {
        char path[PD_SUP_PATH_MAX];
        int null_fd, log_fd, ret = 0;

        snprintf(path, sizeof(path), "%s/supervisor.log", dir);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_fd  = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (null_fd == -1 || log_fd == -1 ||
            dup2(null_fd, STDIN_FILENO) == -1 ||
            dup2(log_fd, STDOUT_FILENO) == -1 ||
            dup2(log_fd, STDERR_FILENO) == -1)
                ret = -1;
        if (null_fd > STDERR_FILENO)
                close(null_fd);
        if (log_fd > STDERR_FILENO)
                close(log_fd);
        return ret;
}

/* Tells the starter (pd_sup_main's parent half) how starting went. */
static void sup_ready(int *ready_fd, unsigned char status) {
        while (write(*ready_fd, &status, 1) < 0 && errno == EINTR)
                ;
        close(*ready_fd);
        *ready_fd = -1;
}

int pd_sup_main(const char *dir, int idle_s) {
        pd_sup_server_t *srv = NULL;
        unsigned char status = 1;
        char errstr[512], abs[PATH_MAX];
        int ready[2], busy, ret = 1;
        mode_t started_umask;
        pid_t pid;

        pd_log_set_program("postdeploy-supervisor");
        /* Started as /proc/self/exe, the kernel would name us "exe" in ps
         * and top; the name says what we are (15 bytes at most). */
        prctl(PR_SET_NAME, "pd-supervisor", 0, 0, 0);
        dir = pd_sup_abspath(dir, abs, sizeof(abs)); /* before chdir("/") */
        /* Whatever the starter left open (another client's connection to
         * an older supervisor, say) must not be kept alive by us. */
        close_range(STDERR_FILENO + 1, ~0U, 0);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        /* Our files are private; the commands get their starter's umask
         * back (pd_sup_start), which is what the operator set. */
        started_umask = umask(077);

        /* The child serves, detached in a session of its own; the parent
         * returns once the child listens (or found another supervisor, or
         * failed), which tells the client that started it when to
         * connect. Forked first, so the process that listens is the one
         * that serves (a client sees its pid as the socket's peer). */
        if (pipe2(ready, O_CLOEXEC)) {
                pd_log(PD_LOG_ERROR, "pipe: %s", pd_strerror(errno));
                return 1;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == -1) {
                pd_log(PD_LOG_ERROR, "fork: %s", pd_strerror(errno));
                close(ready[0]);
                close(ready[1]);
                return 1;
        }
        if (pid > 0) {
                ssize_t n;

                close(ready[1]);
                while ((n = read(ready[0], &status, 1)) < 0 && errno == EINTR)
                        ;
                close(ready[0]);
                return n == 1 ? status : 1;
        }

        close(ready[0]);
        setsid();
        /* Nothing here uses a relative path (clients send absolute ones),
         * and a release folder we were started from may be deleted. */
        if (chdir("/"))
                pd_log(PD_LOG_WARN, "chdir /: %s", pd_strerror(errno));
        srv = sup_server_new(dir, idle_s, &busy, errstr, sizeof(errstr));
        if (!srv && busy) {
                sup_ready(&ready[1], 0); /* another one serves dir */
                return 0;
        }
        if (!srv) {
                pd_log(PD_LOG_ERROR, "%s", errstr);
                sup_ready(&ready[1], 1);
                return 1;
        }
        srv->umask = (unsigned)started_umask;
        if (!sup_server_start(srv)) {
                sup_ready(&ready[1], 0);
                if (sup_redirect(dir))
                        pd_log(PD_LOG_WARN, "cannot open %s/supervisor.log: %s",
                               dir, pd_strerror(errno));
                pd_log(PD_LOG_INFO,
                       "pid %ld serves %s (%zu result(s) kept, "
                       "idle exit after %" PRId64 " ms)",
                       (long)getpid(), dir, srv->run_cnt, srv->idle_ms);
                sup_serve(srv);
                /* What a later supervisor loads: the outcomes kept. */
                pd__sup_log_compact(srv);
                pd_log(PD_LOG_INFO, "pid %ld exits", (long)getpid());
                ret = 0;
        } else {
                sup_ready(&ready[1], 1);
        }
        sup_server_destroy(srv);
        return ret;
}
