/*
 * server.c - the supervisor's run table, its client connections
 * and the requests they carry (START, STATUS, WAIT, CANCEL, FORGET, PING),
 * the runs the loop watches, and the runs a dead supervisor left
 * (orphans), which are stopped at start.
 *
 * The lease: a reactor that says how long it may stay silent (LEASE) and
 * then goes silent for longer while runs go on (SIGSTOP, a crash it does
 * not come back from, a partitioned host) is taken for gone: its runs are
 * stopped like a cancel and end INTERRUPTED, "reactor silent past its
 * lease". In a shared group its partitions go to another reactor once it
 * has been silent for the session timeout, at least twice the lease, so
 * the new owner never starts a run beside one of ours.
 *
 * The supervisor. One thread, the loop, owns the listening socket, every
 * connection and the table of runs; it never blocks on anything but poll()
 * (and a spawn, until the child has exec'd). A START starts its command
 * there with pd_runner_start (its own process group, output tail and log,
 * timeout, cancel: runner.c), and the loop polls every run's output pipe
 * and pidfd beside the connections; when a command exits, its outcome is
 * appended to the log of outcomes and the waiting client is answered. No
 * thread per run: a run used to cost a thread's creation, its wake-ups and
 * an eventfd round to the loop.
 *
 * The one race that matters: a reactor commits a run, sends START and is
 * killed; a new reactor asks STATUS of that run seconds later, while the
 * START still sits unread in the dead connection (or the dead connection
 * itself still waits in the listen backlog). Answering UNKNOWN then would
 * record INTERRUPTED for a command that is about to run. So UNKNOWN is
 * never answered straight away: the request is parked, the loop accepts
 * every pending connection and reads every connection to its end or to
 * EAGAIN, handles what it read, repeats until a pass finds nothing new,
 * and only then answers. Data a process wrote before it died is in the
 * socket by then, and Linux hands it out before it reports the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC */
#endif
#include "consumer/supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* ------------------------------------------------------------------ */
/* The supervisor: the run table                                        */

pd_sup_run_t *pd__sup_find(pd_sup_server_t *srv, int64_t id) {
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i]->id == id)
                        return srv->runs[i];
        return NULL;
}

/* Frees the job of a run that no longer runs. */
static void sup_run_clear_job(pd_sup_run_t *run) {
        free(run->start);
        free(run->argv);
        free(run->envp);
        run->start = NULL;
        run->argv  = NULL;
        run->envp  = NULL;
}

void pd__sup_run_destroy(pd_sup_run_t *run) {
        sup_run_clear_job(run);
        free(run);
}

/* Adds run to the table (which then owns it). */
void pd__sup_run_add(pd_sup_server_t *srv, pd_sup_run_t *run) {
        srv->runs = pd_xgrow(srv->runs, &srv->run_cap, srv->run_cnt + 1,
                             sizeof(*srv->runs));
        srv->runs[srv->run_cnt++] = run;
}

void pd__sup_run_remove(pd_sup_server_t *srv, pd_sup_run_t *run) {
        if (run->saved) {
                pthread_mutex_lock(&srv->log_lock);
                srv->live_bytes -= run->log_len;
                pthread_mutex_unlock(&srv->log_lock);
        }
        for (size_t i = 0; i < srv->run_cnt; i++)
                if (srv->runs[i] == run) {
                        srv->runs[i] = srv->runs[--srv->run_cnt];
                        break;
                }
        pd__sup_run_destroy(run);
}

/*
 * The state of process pid (R, S, Z, ...: field 3 of /proc/PID/stat) and
 * when it started, in clock ticks after boot (field 22). Returns 0, or -1
 * if there is no such process.
 */
static int sup_proc_stat(int pid, char *state, uint64_t *start) {
        char path[64], buf[1024];
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* The name in parentheses may hold anything: count from its end. */
        if (!(p = strrchr(buf, ')')) || p[1] != ' ')
                return -1;
        *state = p[2];
        for (int field = 2; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p)
                return -1;
        *start = strtoull(p + 1, NULL, 10);
        return 0;
}

/* Clock ticks after boot now, as /proc/PID/stat counts a start. */
static uint64_t sup_boot_ticks(void) {
        static long hz;
        struct timespec ts;

        if (!hz && (hz = sysconf(_SC_CLK_TCK)) <= 0)
                hz = 100;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t)ts.tv_sec * (uint64_t)hz +
               (uint64_t)ts.tv_nsec / (1000000000 / (uint64_t)hz);
}

#define PD_SUP_PSTART_TICK_BITS 48

/* pstart for a process that started between ticks lo and hi. Taking the
 * clock around the spawn costs nothing; reading the child's start from
 * /proc was 17% of the supervisor's samples in benchmark 2. */
static uint64_t sup_pstart_window(uint64_t lo, uint64_t hi) {
        uint64_t span = hi - lo;

        if (span > 0xffff)
                span = 0xffff;
        return lo | span << PD_SUP_PSTART_TICK_BITS;
}

/* Whether a process that started at tick start can be the one pstart
 * names. */
static int sup_pstart_match(uint64_t pstart, uint64_t start) {
        uint64_t lo = pstart & ((1ULL << PD_SUP_PSTART_TICK_BITS) - 1);

        return start >= lo && start - lo <= pstart >> PD_SUP_PSTART_TICK_BITS;
}

/*
 * A run the log says started but not how it ended was a dead supervisor's
 * (killed, or hung and killed by a client). Its command may still run,
 * reparented, its output going nowhere and its exit status out of reach:
 * its process group is killed, so it can never run beside the new run the
 * reactor starts, and the run ends INTERRUPTED. A process of that pid
 * that started at another time is somebody else's and is left alone. The
 * loop's thread, at start.
 */
static void sup_orphans_stop(pd_sup_server_t *srv) {
        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];
                uint64_t start;
                char state;
                int alive;

                if (!run->orphan)
                        continue;
                alive = !sup_proc_stat(run->pid, &state, &start);
                if (!alive || sup_pstart_match(run->pstart, start)) {
                        /* No process has that pid: any group of that id is
                         * still the run's (Linux hands out no pid that a
                         * group or session still uses). */
                        kill(-run->pid, SIGKILL);
                        /* Dead before the reactor may start it again. */
                        for (int t = 0; t < 200 && alive && state != 'Z'; t++) {
                                poll(NULL, 0, 5);
                                alive =
                                    !sup_proc_stat(run->pid, &state, &start);
                        }
                }
                pd_log(PD_LOG_WARN,
                       "run %" PRId64
                       ": the supervisor that ran it died; "
                       "%s",
                       run->id,
                       alive && !sup_pstart_match(run->pstart, start)
                           ? "its process is gone"
                           : "its processes were killed");
                run->orphan            = 0;
                run->state             = PD_SUP_FINISHED;
                run->res.status        = PD_ST_INTERRUPTED;
                run->res.has_exit_code = 0;
                snprintf(run->res.error, sizeof(run->res.error),
                         "interrupted: the supervisor running it died");
                pd__sup_persist(srv, run);
        }
}

/*
 * Loads the outcomes kept in the log, which is then rewritten with what is
 * not forgotten (synced, so a killed supervisor's unsynced appends are on
 * disk now too). If it cannot be rewritten (disk full, say), the old log
 * serves on. Returns 0, or -1 (logged) if it cannot be read.
 */
int pd__sup_load(pd_sup_server_t *srv) {
        if (pd__sup_log_load(srv))
                return -1;
        sup_orphans_stop(srv);
        pd__sup_log_compact(srv);
        return 0;
}

/* ------------------------------------------------------------------ */
/* The supervisor: connections                                          */

/* Queues a reply frame with just the run id. */
static void sup_reply(pd_sup_conn_t *conn, unsigned type, int64_t id) {
        size_t at = pd_sup_frame_begin(&conn->out, type);

        pd_sup_buf_i64(&conn->out, id);
        pd_sup_frame_end(&conn->out, at);
}

/* Queues what is known of run id: UNKNOWN, RUNNING or RESULT. */
static void sup_reply_state(pd_sup_conn_t *conn, int64_t id,
                            const pd_sup_run_t *run) {
        if (!run)
                sup_reply(conn, PD_SUP_F_UNKNOWN, id);
        else if (run->state == PD_SUP_RUNNING)
                sup_reply(conn, PD_SUP_F_RUNNING, id);
        else
                pd_sup_result_put(&conn->out, id, run->runner_failed,
                                  &run->res);
}

/* Answers ERROR and closes conn once that is written. */
static void sup_refuse(pd_sup_conn_t *conn, const char *why) {
        size_t at = pd_sup_frame_begin(&conn->out, PD_SUP_F_ERROR);

        pd_sup_buf_i64(&conn->out, 0);
        pd_sup_buf_str(&conn->out, why);
        pd_sup_frame_end(&conn->out, at);
        pd_log(PD_LOG_WARN, "client refused: %s", why);
        conn->closing = 1;
}

/* Writes what conn has queued, without blocking. */
void pd__sup_conn_flush(pd_sup_conn_t *conn) {
        if (conn->out.len > PD_SUP_OUT_MAX) {
                pd_log(PD_LOG_WARN,
                       "dropping a client that does not read "
                       "its replies");
                conn->dead = 1;
                return;
        }
        while (conn->out.len && !conn->dead) {
                ssize_t n = send(conn->fd, conn->out.p, conn->out.len,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n > 0)
                        pd_sup_buf_consume(&conn->out, (size_t)n);
                else if (n < 0 && errno == EINTR)
                        continue;
                else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                else
                        conn->dead = 1; /* EPIPE: the client is gone */
        }
}

/*
 * Reads what conn has now, without blocking, up to the end, EAGAIN or a
 * short read. Returns 1 if it read anything or the end. A reset counts as the
 * end: Linux reports it only after every byte the peer sent has been read.
 */
int pd__sup_conn_read(pd_sup_server_t *srv, pd_sup_conn_t *conn) {
        int got = 0;

        if (conn->eof || conn->closing || conn->dead || srv->stopping)
                return 0;
        while (conn->in.len < PD_SUP_IN_MAX) {
                size_t room = PD_SUP_IN_MAX - conn->in.len;
                ssize_t n;

                if (room > PD_SUP_READ_SIZE)
                        room = PD_SUP_READ_SIZE;
                pd_sup_buf_reserve(&conn->in, room);
                n = read(conn->fd, conn->in.p + conn->in.len, room);
                if (n > 0) {
                        conn->in.len += (size_t)n;
                        got = 1;
                        /* Less than there was room for: the socket is
                         * empty now, and the read that would say EAGAIN
                         * (one per request) is spared. What comes later
                         * wakes the poll again; the parked pass reads on
                         * until a read brings nothing. */
                        if ((size_t)n < room)
                                break;
                } else if (n < 0 && errno == EINTR) {
                        continue;
                } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        break;
                } else {
                        conn->eof = 1;
                        return 1;
                }
        }
        return got;
}

/* Accepts every connection waiting in the backlog. Returns how many. */
int pd__sup_accept(pd_sup_server_t *srv) {
        int got = 0;

        while (srv->listen_fd != -1) {
                int fd = accept4(srv->listen_fd, NULL, NULL,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                pd_sup_conn_t *conn;

                if (fd == -1 && (errno == EINTR || errno == ECONNABORTED))
                        continue;
                if (fd == -1) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                pd_log(PD_LOG_WARN, "accept: %s",
                                       pd_strerror(errno));
                        break;
                }
                conn       = pd_xcalloc(1, sizeof(*conn));
                srv->conns = pd_xgrow(srv->conns, &srv->conn_cap,
                                      srv->conn_cnt + 1, sizeof(*srv->conns));
                conn->fd   = fd;
                srv->conns[srv->conn_cnt++] = conn;
                got++;
        }
        return got;
}

void pd__sup_conn_destroy(pd_sup_conn_t *conn) {
        close(conn->fd);
        pd_sup_buf_free(&conn->in);
        pd_sup_buf_free(&conn->out);
        free(conn);
}

/* ------------------------------------------------------------------ */
/* The supervisor: requests                                             */

/* The run's command started: its pid goes to the log (not synced: only
 * a dead supervisor's successor needs it, and a crash of the machine
 * takes the process too). The loop's thread. */
static void sup_spawned(void *opaque, int pid) {
        pd_sup_run_t *run    = opaque;
        pd_sup_server_t *srv = run->srv;
        pd_sup_buf_t b       = {0};

        /* The child started after the tick taken before the spawn began
         * (sup_start) and before now. */
        run->pid    = pid;
        run->pstart = sup_pstart_window(run->pstart, sup_boot_ticks());
        pd__sup_log_started(&b, run);
        if (pd__sup_log_write(srv, b.p, b.len, NULL))
                pd_log(PD_LOG_WARN, "%s/outcomes: %s", srv->results,
                       pd_strerror(errno));
        pd_sup_buf_free(&b);
}

/* Reads a string list of the START payload copy into a NULL-ended array
 * pointing into it. Returns it, or NULL (rd->bad set when malformed). */
static char **sup_start_strv(pd_sup_rd_t *rd) {
        uint32_t n = pd_sup_rd_u32(rd);
        char **v;

        /* Each string takes at least its NUL: a bigger count is a lie. */
        if (rd->bad || n > rd->len - rd->off) {
                rd->bad = 1;
                return NULL;
        }
        v = pd_xcalloc((size_t)n + 1, sizeof(*v));
        for (uint32_t i = 0; i < n; i++)
                v[i] = (char *)pd_sup_rd_str(rd);
        if (rd->bad) {
                free(v);
                return NULL;
        }
        return v;
}

/* Sends run's newest progress to whoever awaits its RESULT, if it moved
 * and the last was sent PD_SUP_TICK_MS ago (or force): a command that
 * reports a thousand times a second costs each client ten frames. A value
 * held back goes when the loop next handles the run: a running run wakes
 * it at least every 100 ms (pd_runner_prepare). */
static void sup_progress_send(pd_sup_server_t *srv, pd_sup_run_t *run,
                              int force) {
        int64_t now = pd_mono_ms();

        if (!run->prog_dirty ||
            (!force && now - run->prog_sent_ms < PD_SUP_TICK_MS))
                return;
        run->prog_dirty   = 0;
        run->prog_sent_ms = now;
        for (size_t i = 0; i < srv->conn_cnt; i++) {
                pd_sup_conn_t *conn = srv->conns[i];
                size_t at;

                if (!conn->has_waiting || conn->waiting != run->id)
                        continue;
                at = pd_sup_frame_begin(&conn->out, PD_SUP_F_PROGRESS);
                pd_sup_buf_i64(&conn->out, run->id);
                pd_sup_buf_i64(&conn->out, run->prog_done);
                pd_sup_buf_i64(&conn->out, run->prog_total);
                pd_sup_frame_end(&conn->out, at);
        }
}

/* The runner read a new progress value of the run's command (job.progress,
 * the loop's thread): only the newest is kept. */
static void sup_progress(void *opaque, int64_t done, int64_t total) {
        pd_sup_run_t *run = opaque;

        run->prog_done  = done;
        run->prog_total = total;
        run->prog_dirty = 1;
        sup_progress_send(run->srv, run, 0);
}

/* The run ended (or never started): tell whoever waits for it. */
void pd__sup_finish(pd_sup_server_t *srv, pd_sup_run_t *run) {
        run->state = PD_SUP_FINISHED;
        sup_run_clear_job(run);
        pd_log(PD_LOG_DEBUG, "run %" PRId64 ": %s%s%s", run->id,
               pd_status_name(run->res.status), *run->res.error ? ": " : "",
               run->res.error);
        for (size_t i = 0; i < srv->conn_cnt; i++) {
                pd_sup_conn_t *conn = srv->conns[i];

                if (conn->has_waiting && conn->waiting == run->id) {
                        conn->has_waiting = 0;
                        sup_reply_state(conn, run->id, run);
                }
        }
}

/* START: runs it unless the id is known, in which case the client gets
 * its state and, if it runs, its RESULT later. */
static void sup_start(pd_sup_server_t *srv, pd_sup_conn_t *conn, int64_t id,
                      const char *payload, size_t len) {
        pd_sup_run_t *run = pd__sup_find(srv, id);
        const char *workdir, *log_path;
        pd_sup_rd_t rd;
        int failed;

        if (run) {
                sup_reply_state(conn, id, run);
                if (run->state == PD_SUP_RUNNING) {
                        conn->waiting     = id;
                        conn->has_waiting = 1;
                }
                return;
        }
        run        = pd_xcalloc(1, sizeof(*run));
        run->start = pd_xmalloc(len);
        memcpy(run->start, payload, len);
        rd                  = (pd_sup_rd_t){run->start, len, 8, 0};
        run->id             = id;
        run->srv            = srv;
        run->state          = PD_SUP_RUNNING;
        run->job.timeout_ms = pd_sup_rd_i64(&rd);
        run->argv           = sup_start_strv(&rd);
        run->envp           = sup_start_strv(&rd);
        workdir             = pd_sup_rd_str(&rd);
        log_path            = pd_sup_rd_str(&rd);
        /* A START without a umask (an older reactor's, or an action that
         * names none) gets the one our starter had. */
        run->job.has_umask = 1;
        run->job.umask     = rd.off < len ? pd_sup_rd_u32(&rd) : srv->umask;
        if (rd.bad || rd.off != len || !run->argv[0] || !*run->argv[0] ||
            run->job.umask > 0777) {
                pd__sup_run_destroy(run);
                sup_refuse(conn, "malformed START");
                return;
        }
        run->job.argv     = run->argv;
        run->job.envp     = run->envp;
        run->job.workdir  = *workdir ? workdir : NULL;
        run->job.log_path = *log_path ? log_path : NULL;
        run->job.cancel   = &run->cancel;
        pd__sup_run_add(srv, run);

        conn->waiting     = id;
        conn->has_waiting = 1;
        sup_reply(conn, PD_SUP_F_STARTED, id);
        /* Started here, on the loop's thread, and watched by the loop
         * (pd_sup_runs_poll): no thread per run. */
        run->job.spawned  = sup_spawned;
        run->job.progress = sup_progress;
        run->job.opaque   = run;
        run->pstart       = sup_boot_ticks(); /* see sup_spawned */
        run->rn           = pd_runner_start(&run->job, &run->res, &failed);
        if (!run->rn) {
                /* It could not be started: that is its outcome. */
                run->runner_failed = failed;
                pd__sup_persist(srv, run);
                pd__sup_finish(srv, run);
                return;
        }
        srv->running++;
        pd_log(PD_LOG_DEBUG, "run %" PRId64 ": %s started", id, run->argv[0]);
}

/* FORGET: the reactor has recorded the outcome. */
static void sup_forget_run(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                           int64_t id) {
        pd_sup_run_t *run = pd__sup_find(srv, id);

        if (run && run->state == PD_SUP_RUNNING) {
                sup_reply(conn, PD_SUP_F_RUNNING, id);
                return;
        }
        if (run && run->saved)
                pd__sup_persist_forget(srv, id);
        if (run)
                pd__sup_run_remove(srv, run);
        sup_reply(conn, PD_SUP_F_FORGOTTEN, id);
}

/* LEASE: from now on the reactor may be silent for at most lease_ms while
 * runs go on (0: for ever). The last one told holds: a reactor restarted
 * without a lease ends the one its predecessor set. */
static void sup_lease(pd_sup_server_t *srv, pd_sup_conn_t *conn, int64_t id,
                      int64_t lease_ms) {
        if (lease_ms < 0) {
                sup_refuse(conn, "negative lease");
                return;
        }
        if (lease_ms && lease_ms != srv->lease_ms)
                pd_log(PD_LOG_INFO,
                       "lease %" PRId64
                       " ms: runs stop when the reactor is "
                       "silent that long",
                       lease_ms);
        else if (!lease_ms && srv->lease_ms)
                pd_log(PD_LOG_INFO, "no lease: runs go on without the reactor");
        srv->lease_ms = lease_ms;
        sup_reply(conn, PD_SUP_F_LEASED, id);
}

/*
 * Handles one request frame. Returns 0 when it is done with, or
 * PD_SUP_PARK for a STATUS or WAIT of an unknown run while settled is
 * unset: that answer waits until every connection is read.
 */
static int sup_handle(pd_sup_server_t *srv, pd_sup_conn_t *conn, unsigned type,
                      const char *payload, size_t len, int settled) {
        pd_sup_rd_t rd = {payload, len, 0, 0};
        int64_t id     = pd_sup_rd_i64(&rd);
        pd_sup_run_t *run;

        if (rd.bad) {
                sup_refuse(conn, "frame too short");
                return 0;
        }
        /* Any frame, a PING included, says the reactor is there. */
        srv->heard_ms = pd_mono_ms();
        if (type != PD_SUP_F_START &&
            len != (type == PD_SUP_F_LEASE ? 16u : 8u)) {
                sup_refuse(conn, "malformed request");
                return 0;
        }
        run = pd__sup_find(srv, id);
        switch (type) {
        case PD_SUP_F_START:
                sup_start(srv, conn, id, payload, len);
                break;
        case PD_SUP_F_STATUS:
        case PD_SUP_F_WAIT:
                if (!run && !settled)
                        return PD_SUP_PARK;
                if (type == PD_SUP_F_WAIT && run &&
                    run->state == PD_SUP_RUNNING) {
                        conn->waiting     = id;
                        conn->has_waiting = 1;
                } else {
                        sup_reply_state(conn, id, run);
                }
                break;
        case PD_SUP_F_CANCEL:
                if (run && run->state == PD_SUP_RUNNING)
                        run->cancel = 1;
                break;
        case PD_SUP_F_FORGET:
                sup_forget_run(srv, conn, id);
                break;
        case PD_SUP_F_PING:
                sup_reply(conn, PD_SUP_F_PONG, id);
                break;
        case PD_SUP_F_LEASE:
                sup_lease(srv, conn, id, pd_sup_rd_i64(&rd));
                break;
        default:
                sup_refuse(conn, "unknown request type");
                break;
        }
        return 0;
}

/*
 * Handles the complete frames conn holds, in order, until one is parked.
 * With settled set, the first frame may answer UNKNOWN. Returns 1 if a
 * frame is parked.
 */
static int sup_conn_process(pd_sup_server_t *srv, pd_sup_conn_t *conn,
                            int settled) {
        while (!conn->closing && !conn->dead && !srv->stopping &&
               conn->in.len >= PD_SUP_HDR) {
                uint32_t len = pd_sup_le32(conn->in.p);

                if (len > PD_SUP_FRAME_MAX) {
                        char why[128];

                        snprintf(why, sizeof(why),
                                 "frame of %" PRIu32
                                 " bytes is over the "
                                 "limit of %d",
                                 len, PD_SUP_FRAME_MAX);
                        sup_refuse(conn, why);
                        break;
                }
                if (conn->in.len < PD_SUP_HDR + (size_t)len)
                        break;
                if (sup_handle(srv, conn, (unsigned char)conn->in.p[4],
                               conn->in.p + PD_SUP_HDR, len,
                               settled) == PD_SUP_PARK)
                        return 1;
                pd_sup_buf_consume(&conn->in, PD_SUP_HDR + (size_t)len);
                settled = 0;
        }
        return 0;
}

/* Handles what every connection holds. Returns how many are parked. */
static size_t sup_process_all(pd_sup_server_t *srv, int settled) {
        size_t parked = 0;

        /* conn_cnt is read each time: nothing here adds or removes. */
        for (size_t i = 0; i < srv->conn_cnt; i++)
                parked += (size_t)sup_conn_process(srv, srv->conns[i], settled);
        return parked;
}

/*
 * Handles every request read so far. A STATUS or WAIT of an unknown run
 * is answered only after a pass that accepted and read everything there
 * was found nothing new: by then, a START that any process sent before
 * this request (a killed reactor's, still unread in its connection or its
 * connection still in the backlog) has been handled.
 */
void pd__sup_process(pd_sup_server_t *srv) {
        size_t parked = sup_process_all(srv, 0);

        while (parked) {
                int progress;

                do {
                        progress = pd__sup_accept(srv) > 0;
                        for (size_t i = 0; i < srv->conn_cnt; i++)
                                progress |=
                                    pd__sup_conn_read(srv, srv->conns[i]);
                        sup_process_all(srv, 0);
                } while (progress);
                /* Settled: what is still unknown is unknown. Each pass
                 * answers at least one parked request, so this ends. */
                parked = sup_process_all(srv, 1);
        }
}

/* ------------------------------------------------------------------ */
/* The supervisor: watching the runs                                   */

/* A run's command has exited (or is given up on): its outcome is saved,
 * then whoever waits is told. */
static void sup_run_end(pd_sup_server_t *srv, pd_sup_run_t *run) {
        run->runner_failed = pd_runner_finish(run->rn, &run->res) != 0;
        run->rn            = NULL;
        /* The runner says "reactor shutting down" of any cancel: this one
         * says why, which the reactor that comes back records as it is. */
        if (run->lease_cut_ms && run->res.status == PD_ST_INTERRUPTED)
                pd_sup_lease_error(run->lease_cut_ms, run->res.error,
                                   sizeof(run->res.error));
        /* Its last progress goes before its RESULT. */
        sup_progress_send(srv, run, 1);
        pd__sup_persist(srv, run);
        srv->running--;
        pd__sup_finish(srv, run);
}

size_t pd__sup_runs_prepare(pd_sup_server_t *srv, struct pollfd *pfd,
                            pd_sup_run_t **owner, int *timeout) {
        int64_t wait = *timeout;
        size_t n     = 0;

        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];
                int k;

                if (!run->rn)
                        continue;
                k = pd_runner_prepare(run->rn, pfd + n, &wait);
                for (int j = 0; j < k; j++)
                        owner[n + (size_t)j] = run;
                /* A run with nothing to poll still needs handling. */
                if (!k) {
                        pfd[n]   = (struct pollfd){-1, 0, 0};
                        owner[n] = run;
                        k        = 1;
                }
                n += (size_t)k;
        }
        *timeout = (int)wait;
        return n;
}

void pd__sup_runs_handle(pd_sup_server_t *srv, struct pollfd *pfd,
                         pd_sup_run_t **owner, size_t n) {
        /* A run's entries are next to each other; a running run is never
         * removed before this (FORGET refuses it). */
        for (size_t i = 0; i < n;) {
                pd_sup_run_t *run = owner[i];
                size_t k          = 1;

                while (i + k < n && owner[i + k] == run)
                        k++;
                if (pfd[i].fd == -1)
                        k = 0; /* nothing polled: the exit is checked */
                if (pd_runner_handle(run->rn, pfd + i, (int)k))
                        sup_run_end(srv, run);
                else
                        sup_progress_send(srv, run, 0);
                i += k ? k : 1;
        }
}

void pd__sup_runs_end_all(pd_sup_server_t *srv) {
        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];

                if (!run->rn)
                        continue;
                run->cancel = 1;
                /* Watches it until it exits (SIGTERM, then SIGKILL). */
                sup_run_end(srv, run);
        }
}

void pd__sup_lease_check(pd_sup_server_t *srv, int64_t now) {
        size_t cut = 0;

        if (!srv->lease_ms || !srv->running || srv->stopping ||
            now - srv->heard_ms < srv->lease_ms)
                return;
        for (size_t i = 0; i < srv->run_cnt; i++) {
                pd_sup_run_t *run = srv->runs[i];

                if (!run->rn || run->cancel)
                        continue;
                /* SIGTERM to its group now, SIGKILL after the grace
                 * (pd_runner_prepare), as a cancel. */
                run->cancel       = 1;
                run->lease_cut_ms = srv->lease_ms;
                cut++;
        }
        if (cut)
                pd_log(PD_LOG_WARN,
                       "the reactor has been silent for %" PRId64
                       " ms, past its lease of %" PRId64
                       " ms: stopping its %zu run(s)",
                       now - srv->heard_ms, srv->lease_ms, cut);
}
