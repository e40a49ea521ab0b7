/*
 * client.c - the client of the supervisor, what the reactor's
 * workers call (consumer/supervisor.h): connecting (starting a supervisor
 * when none answers), START/STATUS/WAIT/FORGET with the held FORGET that
 * saves a round trip, PINGs to a silent supervisor and killing a hung one,
 * reconnecting after a broken connection, the reactor's lease and its
 * pings (pd_sup_set_lease, pd_sup_ping), and pd_sup_shutdown.
 *
 * The client sends one request at a time and reads its reply. A run whose
 * START was sent whole is from then on only waited for, never sent again,
 * whatever happens to the connection: that is what makes a run id start at
 * most once even across a supervisor that died.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_CLOEXEC */
#endif
#include "consumer/supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

extern char **environ;

/* ------------------------------------------------------------------ */
/* The client                                                           */

/* FORGETs held for the next request, at most. */
#define PD_SUP_FORGET_MAX 64

struct pd_sup_s {
        int fd; /* -1 while disconnected */
        char *dir;
        char *exe;
        int idle_s;
        pd_sup_buf_t in;  /* bytes read: the frame handed out, then more */
        size_t handed;    /* size of the frame handed out, to drop */
        char errstr[256]; /* why the last reconnect failed */
        /* Runs whose RESULT this handle read last, newest at the end:
         * they have ended, so their FORGET can wait for a request. */
        int64_t ended[PD_SUP_FORGET_MAX];
        size_t ended_cnt;
        /* FORGETs that ride with the next request (pd_sup_forget): the
         * reactor records outcomes in batches, so several are often
         * ready at once; their replies come back in the same order. */
        int64_t forget_ids[PD_SUP_FORGET_MAX];
        size_t forget_cnt;
        size_t forget_acked; /* ... of which answered, once sent */
        int forget;          /* PD_SUP_FORGET_* */
        int64_t hang_ms;     /* silent this long: taken for hung */
        int64_t lease_ms;    /* told on each connection, if has_lease */
        int has_lease;
        int lease_refused; /* the last connection's supervisor was older
                            * than leases */
        /* While pd_sup_run awaits its run: whom its PROGRESS frames go to
         * (job->progress and job->opaque; NULL: they are dropped). */
        void (*progress)(void *opaque, int64_t done, int64_t total);
        void *progress_opaque;
};

enum {
        PD_SUP_FORGET_NONE,
        PD_SUP_FORGET_HELD, /* to send before the next request */
        PD_SUP_FORGET_SENT, /* sent: its reply comes first */
};

/* Starts a supervisor for sup->dir and waits until it listens (or finds
 * one already there). Returns 0, or -1 with errstr. */
static int sup_spawn(pd_sup_t *sup, char *errstr, size_t errstr_size) {
        char idle[16];
        /* argv[0] is what `ps -o args` shows: the binary's path (often
         * /proc/self/exe) would not say which process this is. Its log
         * lines are in our format, so one shipper reads both. */
        char *argv[] = {"postdeploy-supervisor",
                        "--supervisor",
                        sup->dir,
                        "--idle",
                        idle,
                        "--log-format",
                        (char *)pd_log_format_name(pd_log_format),
                        NULL};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int err, wstatus = 0;
        pid_t pid;

        snprintf(idle, sizeof(idle), "%d", sup->idle_s);
        err = posix_spawn_file_actions_init(&fa);
        if (err)
                goto out;
        err = posix_spawnattr_init(&attr);
        if (err) {
                posix_spawn_file_actions_destroy(&fa);
                goto out;
        }
        /* Its stderr stays ours until it listens, so a failure to start is
         * in the reactor's log; after that it writes its own log. */
        err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
                                               O_RDONLY, 0);
        /* Our signal set-up is not the supervisor's; it stays in our
         * process group until it detaches (setsid). */
        if (!err)
                err = pd_spawnattr_child(&attr, 0);
        if (!err)
                err = posix_spawn(&pid, sup->exe, &fa, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
out:
        if (err) {
                snprintf(errstr, errstr_size,
                         "cannot start the supervisor '%s': %s", sup->exe,
                         pd_strerror(err));
                return -1;
        }
        while (waitpid(pid, &wstatus, 0) == -1) {
                if (errno != EINTR) {
                        snprintf(errstr, errstr_size,
                                 "cannot wait for the supervisor: %s",
                                 pd_strerror(errno));
                        return -1;
                }
        }
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
                snprintf(errstr, errstr_size,
                         "the supervisor '%s --supervisor %s' did not start "
                         "(%s %d)",
                         sup->exe, sup->dir,
                         WIFEXITED(wstatus) ? "exit status" : "signal",
                         WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                            : WTERMSIG(wstatus));
                return -1;
        }
        return 0;
}

/*
 * Connects sup, starting a supervisor when none answers, for up to
 * PD_SUP_CONNECT_MS: one that is still starting, or exiting while idle,
 * is waited out. Returns 0, or -1 with errstr.
 */
static int sup_dial(pd_sup_t *sup, char *errstr, size_t errstr_size) {
        const int64_t deadline = pd_mono_ms() + PD_SUP_CONNECT_MS;
        struct sockaddr_un sa;
        int nap_ms = 1;

        if (pd_sup_addr(sup->dir, &sa, errstr, errstr_size))
                return -1;
        sup->in.len = 0;
        sup->handed = 0;
        for (int spawned = 0;; spawned = !spawned) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int err;

                if (fd == -1) {
                        snprintf(errstr, errstr_size, "socket: %s",
                                 pd_strerror(errno));
                        return -1;
                }
                if (!connect(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
                        sup->fd = fd;
                        return 0;
                }
                err = errno;
                close(fd);
                if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN &&
                    err != EINTR) {
                        snprintf(errstr, errstr_size,
                                 "cannot connect to %s: %s", sa.sun_path,
                                 pd_strerror(err));
                        return -1;
                }
                if (pd_mono_ms() >= deadline) {
                        snprintf(errstr, errstr_size,
                                 "no supervisor answers at %s (see "
                                 "%s/supervisor.log)",
                                 sa.sun_path, sup->dir);
                        return -1;
                }
                if (spawned) {
                        /* It found another one holding the folder, still
                         * starting or on its way out: try again soon. */
                        poll(NULL, 0, nap_ms);
                        nap_ms = nap_ms < 100 ? nap_ms * 2 : 100;
                } else if (sup_spawn(sup, errstr, errstr_size)) {
                        return -1;
                }
        }
}

static void sup_hangup(pd_sup_t *sup) {
        if (sup->fd != -1)
                close(sup->fd);
        sup->fd = -1;
        /* Unanswered, so maybe unread: asked again on the next one. */
        if (sup->forget == PD_SUP_FORGET_SENT) {
                memmove(sup->forget_ids, sup->forget_ids + sup->forget_acked,
                        (sup->forget_cnt - sup->forget_acked) *
                            sizeof(*sup->forget_ids));
                sup->forget_cnt -= sup->forget_acked;
                sup->forget_acked = 0;
                sup->forget       = PD_SUP_FORGET_HELD;
        }
}

void pd_sup_set_timeout(pd_sup_t *sup, int64_t ms) {
        sup->hang_ms = ms >= 300 ? ms : 300;
}

pd_sup_t *pd_sup_connect(const char *dir, const char *exe, int idle_s,
                         char *errstr, size_t errstr_size) {
        pd_sup_t *sup = pd_xcalloc(1, sizeof(*sup));
        char abs[PATH_MAX];

        sup->fd = -1;
        /* The supervisor works from "/": it is told where DIR really is. */
        dir          = pd_sup_abspath(dir, abs, sizeof(abs));
        sup->dir     = pd_xstrdup(dir);
        sup->exe     = pd_xstrdup(exe ? exe : "/proc/self/exe");
        sup->idle_s  = idle_s > 0 ? idle_s : PD_SUP_IDLE_DEFAULT_S;
        sup->hang_ms = PD_SUP_HANG_MS;
        if (sup_dial(sup, errstr, errstr_size))
                goto fail;
        return sup;
fail:
        pd_sup_close(sup);
        return NULL;
}

/* Sends len bytes. Returns 0, or PD_SUP_BROKEN if they did not all go. */
static int sup_send(pd_sup_t *sup, const char *p, size_t len) {
        while (len) {
                ssize_t n = send(sup->fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return PD_SUP_BROKEN;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Appends a frame that is just a run id to b. Returns 0 (or -1 if the
 * frame were too long, which an id never is). */
static int sup_put_id(pd_sup_buf_t *b, unsigned type, int64_t id) {
        size_t at = pd_sup_frame_begin(b, type);

        pd_sup_buf_i64(b, id);
        return pd_sup_frame_end(b, at);
}

/* Sends a frame that is just a run id. */
static int sup_send_id(pd_sup_t *sup, unsigned type, int64_t id) {
        pd_sup_buf_t b = {0};
        int ret;

        ret = sup_put_id(&b, type, id) ? -1 : sup_send(sup, b.p, b.len);
        pd_sup_buf_free(&b);
        return ret;
}

/* Appends a FORGET for every held run to b. Returns 0, or -1 (oom). */
static int sup_put_forgets(const pd_sup_t *sup, pd_sup_buf_t *b) {
        for (size_t i = 0; i < sup->forget_cnt; i++)
                if (sup_put_id(b, PD_SUP_F_FORGET, sup->forget_ids[i]))
                        return -1;
        return 0;
}

/* Notes that run id has ended (we read its RESULT); the oldest note goes
 * when there is no room. */
static void sup_ended(pd_sup_t *sup, int64_t id) {
        if (sup->ended_cnt == PD_SUP_FORGET_MAX) {
                memmove(sup->ended, sup->ended + 1,
                        (PD_SUP_FORGET_MAX - 1) * sizeof(*sup->ended));
                sup->ended_cnt--;
        }
        sup->ended[sup->ended_cnt++] = id;
}

/* Whether run id is noted as ended; the note is taken away. */
static int sup_unended(pd_sup_t *sup, int64_t id) {
        for (size_t i = sup->ended_cnt; i-- > 0;)
                if (sup->ended[i] == id) {
                        memmove(sup->ended + i, sup->ended + i + 1,
                                (--sup->ended_cnt - i) * sizeof(*sup->ended));
                        return 1;
                }
        return 0;
}

/*
 * Sends sig to the supervisor that listens at sa, whose pid the kernel
 * tells the peer of a connection. Returns 0, or -1 if none answers.
 */
static int sup_signal(const struct sockaddr_un *sa, int sig) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int ret       = -1;

        if (fd == -1)
                return -1;
        if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) &&
            !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) &&
            cred.pid > 0 && !kill(cred.pid, sig))
                ret = 0;
        close(fd);
        return ret;
}

int pd_sup_shutdown(const char *dir, int64_t timeout_ms, char *errstr,
                    size_t errstr_size) {
        const int64_t deadline = pd_mono_ms() + timeout_ms;
        char path[PD_SUP_PATH_MAX];
        struct sockaddr_un sa;
        int fd, signalled = 0, ret = -1;

        if (pd_sup_addr(dir, &sa, errstr, errstr_size))
                return -1;
        snprintf(path, sizeof(path), "%s/supervisor/lock", dir);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd == -1) {
                if (errno == ENOENT) /* no supervisor ever served dir */
                        return 0;
                snprintf(errstr, errstr_size, "cannot open %s: %s", path,
                         pd_strerror(errno));
                return -1;
        }
        /* The supervisor holds its lock for as long as it lives: once we
         * get it, it is gone, and with it every command it ran. */
        while (flock(fd, LOCK_EX | LOCK_NB)) {
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        snprintf(errstr, errstr_size, "cannot lock %s: %s",
                                 path, pd_strerror(errno));
                        goto done;
                }
                if (pd_mono_ms() >= deadline) {
                        snprintf(errstr, errstr_size,
                                 "the supervisor of %s is still there after "
                                 "%" PRId64 " ms",
                                 dir, timeout_ms);
                        goto done;
                }
                /* No answer yet: one that is starting, or exiting. */
                if (!signalled)
                        signalled = !sup_signal(&sa, SIGTERM);
                poll(NULL, 0, 20);
        }
        ret = 0;
done:
        close(fd);
        return ret;
}

void pd_sup_close(pd_sup_t *sup) {
        if (!sup)
                return;
        /* The supervisor reads what a closed connection sent. */
        if (sup->fd != -1 && sup->forget == PD_SUP_FORGET_HELD) {
                pd_sup_buf_t b = {0};

                if (!sup_put_forgets(sup, &b))
                        sup_send(sup, b.p, b.len);
                pd_sup_buf_free(&b);
        }
        sup_hangup(sup);
        pd_sup_buf_free(&sup->in);
        free(sup->dir);
        free(sup->exe);
        free(sup);
}

/*
 * Sends the request frame(s) req, preceded by the held FORGETs, in one
 * send: the supervisor handles them all in one pass, and no round trip is
 * spent on a FORGET alone. Returns as sup_send.
 */
static int sup_send_req(pd_sup_t *sup, const pd_sup_buf_t *req) {
        pd_sup_buf_t b = {0};
        int ret;

        if (sup->forget != PD_SUP_FORGET_HELD)
                return sup_send(sup, req->p, req->len);
        if (sup_put_forgets(sup, &b)) {
                pd_sup_buf_free(&b);
                return -1;
        }
        if (req->len)
                pd_sup_buf_put(&b, req->p, req->len);
        ret = sup_send(sup, b.p, b.len);
        if (!ret) {
                sup->forget       = PD_SUP_FORGET_SENT;
                sup->forget_acked = 0;
        }
        pd_sup_buf_free(&b);
        return ret;
}

/* Sends a request that is just a run id (with a held FORGET). */
static int sup_send_req_id(pd_sup_t *sup, unsigned type, int64_t id) {
        pd_sup_buf_t b = {0};
        int ret;

        ret = sup_put_id(&b, type, id) ? -1 : sup_send_req(sup, &b);
        pd_sup_buf_free(&b);
        return ret;
}

/*
 * Reads the next frame: its type and a reader over its payload, valid
 * until the next call. Waits at most timeout_ms (< 0: for ever); while it
 * waits, sends CANCEL for id once *cancel is set (*cancel_sent records
 * that). Returns 0, PD_SUP_BROKEN when the connection ended or sent
 * garbage, or -1 on timeout.
 */
/*
 * The supervisor at the other end answered nothing, not even a PING, for
 * sup->hang_ms: it is hung (stopped, or stuck). It is killed, so that the
 * next connection starts a new one, which stops the runs it left and
 * reports them INTERRUPTED. Returns PD_SUP_BROKEN.
 */
static int sup_hung(pd_sup_t *sup) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (!getsockopt(sup->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) &&
            cred.pid > 0) {
                pd_log(PD_LOG_ERROR,
                       "the supervisor of %s (pid %ld) answered nothing for "
                       "%" PRId64 " ms: killing it and starting another",
                       sup->dir, (long)cred.pid, sup->hang_ms);
                kill(cred.pid, SIGKILL);
        }
        sup_hangup(sup);
        return PD_SUP_BROKEN;
}

/*
 * Reads the next frame of the conversation about id into *type and *rd
 * (valid until the next call), sending CANCEL once *cancel is set. PONGs
 * are taken here; while a wait has no time limit (timeout_ms < 0), a
 * supervisor silent for a third of hang_ms is sent a PING, and one silent
 * for hang_ms is taken for hung. Returns 0, -1 on a timeout, or
 * PD_SUP_BROKEN.
 */
static int sup_recv(pd_sup_t *sup, int64_t id, volatile int *cancel,
                    int *cancel_sent, int timeout_ms, unsigned *type,
                    pd_sup_rd_t *rd) {
        const int64_t deadline = pd_mono_ms() + timeout_ms;
        int64_t heard          = pd_mono_ms();
        int pinged             = 0;

        pd_sup_buf_consume(&sup->in, sup->handed);
        sup->handed = 0;
        for (;;) {
                struct pollfd pfd = {sup->fd, POLLIN, 0};
                int64_t wait      = PD_SUP_TICK_MS;
                int64_t now;
                ssize_t n;

                if (sup->in.len >= PD_SUP_HDR) {
                        uint32_t len = pd_sup_le32(sup->in.p);

                        if (len > PD_SUP_FRAME_MAX)
                                return PD_SUP_BROKEN;
                        if (sup->in.len >= PD_SUP_HDR + (size_t)len &&
                            (unsigned char)sup->in.p[4] == PD_SUP_F_PONG) {
                                pd_sup_buf_consume(&sup->in,
                                                   PD_SUP_HDR + (size_t)len);
                                continue;
                        }
                        if (sup->in.len >= PD_SUP_HDR + (size_t)len) {
                                *type = (unsigned char)sup->in.p[4];
                                *rd = (pd_sup_rd_t){sup->in.p + PD_SUP_HDR, len,
                                                    0, 0};
                                sup->handed = PD_SUP_HDR + (size_t)len;
                                return 0;
                        }
                }
                if (cancel && *cancel && !*cancel_sent) {
                        if (sup_send_id(sup, PD_SUP_F_CANCEL, id))
                                return PD_SUP_BROKEN;
                        *cancel_sent = 1;
                }
                now = pd_mono_ms();
                if (timeout_ms >= 0) {
                        int64_t left = deadline - now;

                        if (left <= 0)
                                return -1;
                        if (left < wait)
                                wait = left;
                } else if (now - heard >= sup->hang_ms) {
                        return sup_hung(sup);
                } else if (!pinged && now - heard >= sup->hang_ms / 3) {
                        if (sup_send_id(sup, PD_SUP_F_PING, id))
                                return PD_SUP_BROKEN;
                        pinged = 1;
                }
                if (poll(&pfd, 1, (int)wait) <= 0)
                        continue;
                pd_sup_buf_reserve(&sup->in, 4096);
                n = read(sup->fd, sup->in.p + sup->in.len,
                         sup->in.size - sup->in.len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return PD_SUP_BROKEN;
                sup->in.len += (size_t)n;
                heard  = pd_mono_ms();
                pinged = 0;
        }
}

/* Whether the frame is the reply to the next FORGET sent before the
 * request (they come first, in order); once all are, they need no more. */
static int sup_forgotten(pd_sup_t *sup, unsigned type, pd_sup_rd_t rd) {
        if (sup->forget != PD_SUP_FORGET_SENT ||
            (type != PD_SUP_F_FORGOTTEN && type != PD_SUP_F_RUNNING) ||
            pd_sup_rd_i64(&rd) != sup->forget_ids[sup->forget_acked] || rd.bad)
                return 0;
        if (++sup->forget_acked == sup->forget_cnt) {
                sup->forget       = PD_SUP_FORGET_NONE;
                sup->forget_cnt   = 0;
                sup->forget_acked = 0;
        }
        return 1;
}

/*
 * Reads replies about id until one settles it. With await set, STARTED and
 * RUNNING mean "wait on" and the wait has no time limit. Returns a PD_SUP_*
 * state (FINISHED with *res and *runner_failed), PD_SUP_BROKEN, or -1 with
 * res->error.
 */
static int sup_reply_get(pd_sup_t *sup, int64_t id, int await,
                         volatile int *cancel, pd_runner_result_t *res,
                         int *runner_failed) {
        int cancel_sent = 0;

        for (;;) {
                const char *why;
                pd_sup_rd_t rd;
                unsigned type = 0;
                int r         = sup_recv(sup, id, cancel, &cancel_sent,
                                 await ? -1 : (int)sup->hang_ms, &type, &rd);

                /* After a timeout or a refusal the conversation is lost:
                 * the next request starts a new one. */
                if (r == -1) {
                        snprintf(res->error, sizeof(res->error),
                                 "the supervisor of %s did not answer "
                                 "within %" PRId64 " ms",
                                 sup->dir, sup->hang_ms);
                        sup_hung(sup);
                        return -1;
                }
                if (r)
                        return r;
                if (sup_forgotten(sup, type, rd))
                        continue;
                if (type == PD_SUP_F_ERROR) {
                        pd_sup_rd_i64(&rd);
                        why = pd_sup_rd_str(&rd);
                        snprintf(res->error, sizeof(res->error),
                                 "the supervisor refused: %s",
                                 why ? why : "no reason given");
                        sup_hangup(sup);
                        return -1;
                }
                if (pd_sup_rd_i64(&rd) != id || rd.bad)
                        return PD_SUP_BROKEN; /* not our conversation */
                switch (type) {
                case PD_SUP_F_STARTED:
                case PD_SUP_F_RUNNING:
                        if (!await)
                                return PD_SUP_RUNNING;
                        break;
                case PD_SUP_F_PROGRESS: {
                        int64_t done  = pd_sup_rd_i64(&rd);
                        int64_t total = pd_sup_rd_i64(&rd);

                        if (rd.bad)
                                return PD_SUP_BROKEN;
                        if (sup->progress)
                                sup->progress(sup->progress_opaque, done,
                                              total);
                        break;
                }
                case PD_SUP_F_UNKNOWN:
                        return PD_SUP_UNKNOWN;
                case PD_SUP_F_FORGOTTEN:
                        return PD_SUP_FINISHED; /* done with, too */
                case PD_SUP_F_RESULT:
                        if (pd_sup_result_get(&rd, runner_failed, res))
                                return PD_SUP_BROKEN;
                        sup_ended(sup, id);
                        return PD_SUP_FINISHED;
                default:
                        return PD_SUP_BROKEN;
                }
        }
}

/*
 * Tells the supervisor at the other end of a fresh connection the lease
 * and reads its LEASED. Returns 0, or -1 (logged): it did not answer (the
 * connection is hung up), or it is older than leases and refused the frame
 * (the connection is made again without it).
 */
static int sup_lease_send(pd_sup_t *sup) {
        pd_sup_buf_t b = {0};
        size_t at      = pd_sup_frame_begin(&b, PD_SUP_F_LEASE);
        const char *why;
        pd_sup_rd_t rd;
        unsigned type = 0;
        int r;

        sup->lease_refused = 0;
        pd_sup_buf_i64(&b, 0);
        pd_sup_buf_i64(&b, sup->lease_ms);
        r = pd_sup_frame_end(&b, at) ? -1 : sup_send(sup, b.p, b.len);
        pd_sup_buf_free(&b);
        if (!r)
                r = sup_recv(sup, 0, NULL, NULL, (int)sup->hang_ms, &type, &rd);
        if (!r && type == PD_SUP_F_LEASED)
                return 0;
        if (!r && type == PD_SUP_F_ERROR) {
                pd_sup_rd_i64(&rd);
                why = pd_sup_rd_str(&rd);
                /* Without a lease asked for, an old supervisor is fine. */
                pd_log(sup->lease_ms ? PD_LOG_WARN : PD_LOG_DEBUG,
                       "the supervisor of %s takes no lease (%s): it is "
                       "older than this reactor, and its runs go on while "
                       "the reactor is silent until a newer one replaces "
                       "it (once it is idle)",
                       sup->dir, why ? why : "refused");
                sup->lease_refused = 1;
                sup_hangup(sup);
                if (sup_dial(sup, sup->errstr, sizeof(sup->errstr)))
                        pd_log(PD_LOG_WARN, "supervisor: %s", sup->errstr);
                return -1;
        }
        snprintf(sup->errstr, sizeof(sup->errstr),
                 "the supervisor of %s did not take the lease", sup->dir);
        pd_log(PD_LOG_WARN, "%s", sup->errstr);
        sup_hangup(sup);
        return -1;
}

/* Reconnects after a broken connection, telling the lease again. Returns
 * 0, or -1 with sup->errstr. */
static int sup_redial(pd_sup_t *sup) {
        sup_hangup(sup);
        if (sup_dial(sup, sup->errstr, sizeof(sup->errstr)))
                return -1;
        /* Asked again even of one that refused it: the old supervisor
         * may have exited, idle, and a newer one taken over. */
        if (sup->has_lease && sup_lease_send(sup))
                return sup->fd == -1 ? -1 : 0;
        return 0;
}

int pd_sup_set_lease(pd_sup_t *sup, int64_t lease_ms) {
        sup->lease_ms      = lease_ms > 0 ? lease_ms : 0;
        sup->has_lease     = 1;
        sup->lease_refused = 0;
        if (sup->fd == -1) {
                if (sup_redial(sup)) {
                        pd_log(PD_LOG_WARN, "supervisor: %s", sup->errstr);
                        return -1;
                }
                return sup->lease_refused ? -1 : 0;
        }
        return sup_lease_send(sup);
}

/*
 * Reads what the connection holds now, without waiting, and drops the
 * PONGs (and LEASED) at its front: nobody waits for them. Returns 0, or
 * -1 if the connection ended or holds another frame (it is no longer in
 * step: hang it up).
 */
static int sup_drain(pd_sup_t *sup) {
        pd_sup_buf_consume(&sup->in, sup->handed);
        sup->handed = 0;
        for (;;) {
                ssize_t n;

                pd_sup_buf_reserve(&sup->in, 4096);
                n = recv(sup->fd, sup->in.p + sup->in.len,
                         sup->in.size - sup->in.len, MSG_DONTWAIT);
                if (n > 0) {
                        sup->in.len += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                return -1;
        }
        while (sup->in.len >= PD_SUP_HDR) {
                uint32_t len  = pd_sup_le32(sup->in.p);
                unsigned type = (unsigned char)sup->in.p[4];

                if (len > PD_SUP_FRAME_MAX ||
                    (type != PD_SUP_F_PONG && type != PD_SUP_F_LEASED))
                        return -1;
                if (sup->in.len < PD_SUP_HDR + (size_t)len)
                        break;
                pd_sup_buf_consume(&sup->in, PD_SUP_HDR + (size_t)len);
        }
        return 0;
}

int pd_sup_ping(pd_sup_t *sup) {
        pd_sup_buf_t b = {0};
        size_t len;
        ssize_t n;
        int err;

        if (sup->fd != -1 && sup_drain(sup))
                sup_hangup(sup);
        if (sup->fd == -1 && sup_redial(sup)) {
                pd_log(PD_LOG_WARN, "supervisor: %s", sup->errstr);
                return -1;
        }
        sup_put_id(&b, PD_SUP_F_PING, 0);
        len = b.len;
        /* Never blocks the caller: a supervisor that reads nothing (hung)
         * fills the socket, and this PING is then not sent at all. */
        do
                n = send(sup->fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        err = errno;
        pd_sup_buf_free(&b);
        if (n == (ssize_t)len)
                return 0;
        /* Part of a frame went: the stream is out of step. */
        if (n >= 0 || (err != EAGAIN && err != EWOULDBLOCK))
                sup_hangup(sup);
        return -1;
}

int pd_sup_lease_cut(const pd_runner_result_t *res) {
        return res->status == PD_ST_INTERRUPTED &&
               !strncmp(res->error, PD_SUP_LEASE_ERROR,
                        strlen(PD_SUP_LEASE_ERROR));
}

/*
 * Asks a one-id request (STATUS, WAIT, FORGET) and reads the answer,
 * reconnecting if the connection breaks (each of them may be asked
 * again). Returns as sup_reply_get, never PD_SUP_BROKEN.
 */
static int sup_ask(pd_sup_t *sup, unsigned type, int64_t id,
                   volatile int *cancel, pd_runner_result_t *res,
                   int *runner_failed) {
        for (int tries = 0;; tries++) {
                int r = PD_SUP_BROKEN;

                if (sup->fd != -1 && !sup_send_req_id(sup, type, id))
                        r = sup_reply_get(sup, id, type == PD_SUP_F_WAIT,
                                          cancel, res, runner_failed);
                if (r != PD_SUP_BROKEN)
                        return r;
                sup_hangup(sup);
                if (tries == PD_SUP_RECONNECTS || sup_redial(sup)) {
                        snprintf(res->error, sizeof(res->error),
                                 "lost the supervisor: %s",
                                 tries == PD_SUP_RECONNECTS
                                     ? "the connection keeps breaking"
                                     : sup->errstr);
                        return -1;
                }
        }
}

int pd_sup_status(pd_sup_t *sup, int64_t run_id, pd_runner_result_t *res) {
        int failed;

        memset(res, 0, sizeof(*res));
        return sup_ask(sup, PD_SUP_F_STATUS, run_id, NULL, res, &failed);
}

int pd_sup_wait(pd_sup_t *sup, int64_t run_id, volatile int *cancel,
                pd_runner_result_t *res) {
        int failed;

        memset(res, 0, sizeof(*res));
        return sup_ask(sup, PD_SUP_F_WAIT, run_id, cancel, res, &failed);
}

int pd_sup_forget(pd_sup_t *sup, int64_t run_id) {
        pd_runner_result_t *res = pd_xcalloc(1, sizeof(*res));
        int failed, r;

        for (size_t i = 0; i < sup->forget_cnt; i++)
                if (sup->forget_ids[i] == run_id) {
                        free(res);
                        return 0; /* on its way already */
                }
        /* A run whose RESULT we read has ended: its FORGET waits for the
         * next request, which takes it along. */
        if (sup->forget != PD_SUP_FORGET_SENT &&
            sup->forget_cnt < PD_SUP_FORGET_MAX && sup_unended(sup, run_id)) {
                sup->forget_ids[sup->forget_cnt++] = run_id;
                sup->forget                        = PD_SUP_FORGET_HELD;
                free(res);
                return 0;
        }
        if (!res)
                return -1;
        r = sup_ask(sup, PD_SUP_F_FORGET, run_id, NULL, res, &failed);
        free(res);
        return r == PD_SUP_FINISHED ? 0 : -1;
}

int pd_sup_forget_flush(pd_sup_t *sup) {
        pd_sup_buf_t b = {0};
        int ret;

        if (sup->forget != PD_SUP_FORGET_HELD || sup->fd == -1)
                return sup->forget == PD_SUP_FORGET_NONE ? 0 : -1;
        /* No request of its own: the FORGETs alone, then their answers. */
        ret = sup_send_req(sup, &b);
        pd_sup_buf_free(&b);
        while (!ret && sup->forget == PD_SUP_FORGET_SENT) {
                pd_sup_rd_t rd;
                unsigned type = 0;

                ret = sup_recv(sup, sup->forget_ids[sup->forget_acked], NULL,
                               NULL, (int)sup->hang_ms, &type, &rd);
                if (!ret && !sup_forgotten(sup, type, rd))
                        ret = PD_SUP_BROKEN;
        }
        if (ret)
                sup_hangup(sup);
        return ret ? -1 : 0;
}

static int sup_run(pd_sup_t *sup, int64_t run_id, const pd_runner_job_t *job,
                   pd_runner_result_t *res) {
        pd_sup_buf_t b = {0};
        char path[PATH_MAX];
        size_t at;
        int failed = 0, sent = 0, r = PD_SUP_BROKEN;

        memset(res, 0, sizeof(*res));
        res->status = PD_ST_FAILED;
        at          = pd_sup_frame_begin(&b, PD_SUP_F_START);
        pd_sup_buf_i64(&b, run_id);
        pd_sup_buf_i64(&b, job->timeout_ms);
        pd_sup_buf_strv(&b, job->argv);
        pd_sup_buf_strv(&b, job->envp ? job->envp : environ);
        /* The supervisor works from "/" and may outlive the reactor that
         * started it: paths go as they mean to the reactor that sends
         * them, and no workdir means this one's, as in pd_runner_run. */
        pd_sup_buf_str(&b, pd_sup_abspath(job->workdir ? job->workdir : ".",
                                          path, sizeof(path)));
        pd_sup_buf_str(&b, job->log_path ? pd_sup_abspath(job->log_path, path,
                                                          sizeof(path))
                                         : "");
        /* Only when the job has one: a supervisor older than the umask
         * field, still serving after an upgrade, reads the rest. */
        if (job->has_umask)
                pd_sup_buf_u32(&b, job->umask);
        if (pd_sup_frame_end(&b, at)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot start '%s': its arguments and environment "
                         "are over 1 MiB",
                         job->argv[0]);
                pd_sup_buf_free(&b);
                return -1;
        }

        /* Until the START is sent whole it can be sent again: a partial
         * frame is never run. After that, only WAIT. */
        for (int tries = 0; tries <= PD_SUP_RECONNECTS; tries++) {
                if ((tries || sup->fd == -1) && sup_redial(sup))
                        break;
                if (sup_send_req(sup, &b))
                        continue;
                sent = 1;
                if (job->sent)
                        job->sent(job->opaque);
                r = sup_reply_get(sup, run_id, 1, job->cancel, res, &failed);
                break;
        }
        pd_sup_buf_free(&b);
        if (!sent) {
                snprintf(res->error, sizeof(res->error),
                         "cannot start '%s': no supervisor: %s", job->argv[0],
                         sup->errstr);
                return -1;
        }
        if (r == PD_SUP_FINISHED)
                return failed ? -1 : 0;
        if (r == -1)
                return -1; /* refused: it never started (res->error) */

        /* The START went out whole, so it may be running: from now on it
         * is only waited for, never sent again. */
        sup_hangup(sup);
        r = sup_ask(sup, PD_SUP_F_WAIT, run_id, job->cancel, res, &failed);
        if (r == PD_SUP_FINISHED)
                return failed ? -1 : 0;
        /* Nobody saw how it ended: the supervisor was lost with it, or
         * cannot be reached again (res->error says which). */
        res->status = PD_ST_INTERRUPTED;
        if (r == PD_SUP_UNKNOWN)
                snprintf(res->error, sizeof(res->error),
                         "interrupted: the supervisor was lost during the "
                         "run");
        return -1;
}

int pd_sup_run(pd_sup_t *sup, int64_t run_id, const pd_runner_job_t *job,
               pd_runner_result_t *res) {
        int ret;

        /* Its PROGRESS frames, for this run only. */
        sup->progress        = job->progress;
        sup->progress_opaque = job->opaque;
        ret                  = sup_run(sup, run_id, job, res);
        sup->progress        = NULL;
        sup->progress_opaque = NULL;
        return ret;
}
