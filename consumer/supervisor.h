/*
 * supervisor.h - command actions that outlive a crash of the reactor.
 *
 * One supervisor process per reactor state folder DIR spawns and reaps the
 * reactor's command actions and keeps every exit status durable, the way a
 * container runtime's shim does, so a reactor killed at any moment can be
 * restarted and adopt its runs instead of starting them again. It is the
 * reactor binary itself, run as `postdeploy-reactor --supervisor DIR`,
 * detached in a session of its own; one process serves every run of the
 * folder, so an action still costs one spawn, and results that finish
 * together share their fsyncs, which no reply waits for.
 *
 * The reactor reaches it over the Unix stream socket DIR/supervisor.sock
 * (0600; DIR is created 0700 when missing). Each run is named by the id of
 * its row in the state store, committed before the run starts, and the
 * supervisor starts a given id at most once. Ids must therefore never come
 * back for one DIR: a state store created afresh (ids from 1 again) needs
 * a DIR of its own, or it would be handed the old store's outcomes.
 *
 * A finished run's outcome is appended to the log DIR/supervisor/outcomes
 * before anyone is told, and kept until the reactor has recorded it and
 * says FORGET; a supervisor started later (after an upgrade, or a crash of
 * the supervisor) loads it. The append outlives any process (the page
 * cache); it reaches the disk some 10 ms later, synced in groups with the
 * outcomes that ended meanwhile, and the supervisor does not exit while
 * idle before that. Running commands do not survive a restart of the
 * machine: the supervisor then does not know their ids, and the reactor
 * records them INTERRUPTED; so is a run that ended in those last
 * milliseconds, unless the reactor had recorded its outcome durably
 * (state_sync = true).
 *
 * The supervisor exits by itself once it has had, for idle seconds, no
 * connection, no running command and no outcome that is not yet on disk.
 * SIGTERM or SIGINT stops its commands (they end INTERRUPTED, recorded like
 * any other outcome) and then the supervisor.
 *
 * A reactor may give its supervisor a lease (pd_sup_set_lease; shared-group
 * mode): if no connection sends anything for that long while commands run
 * (the reactor was stopped with SIGSTOP, crashed and did not come back, or
 * its host is cut off), the supervisor stops them as a cancel does (SIGTERM
 * to the group, SIGKILL 2 s later) and records each INTERRUPTED with
 * "reactor silent past its lease (N s)". The reactor keeps it alive with
 * pd_sup_ping. A reactor back within the lease adopts its runs as before.
 *
 * A pd_sup_t is one connection, for one thread at a time: the reactor keeps
 * one per worker. A broken connection is reconnected (starting a new
 * supervisor if none answers) and the request asked again; a run that was
 * already sent is never sent again, only waited for, so a command never
 * runs twice for one id.
 *
 * The code is in consumer/supervisor/: proto.c (the wire protocol below),
 * outlog.c (the outcome log), server.c (runs, connections, requests),
 * loop.c (the loop and pd_sup_main), client.c (the calls below).
 */
#ifndef PD_SUPERVISOR_H
#define PD_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "consumer/runner.h"

typedef struct pd_sup_s pd_sup_t;

/*
 * Connects to the supervisor of dir, starting one if none answers: exe is
 * the binary started as `exe --supervisor DIR --idle S` (NULL: this
 * process's own binary, /proc/self/exe), idle_s its idle time (<= 0: the
 * default, 60 s). Tries for up to 10 s. Returns the handle, which the
 * caller frees with pd_sup_close, or NULL with errstr. Strings are copied.
 */
pd_sup_t *pd_sup_connect(const char *dir, const char *exe, int idle_s,
                         char *errstr, size_t errstr_size);

/*
 * How long the supervisor may answer nothing before it is taken for hung
 * (default 30 s, at least 300 ms): a request due at once (STATUS, FORGET)
 * gets that long; while a run is awaited, a silent supervisor is sent a
 * PING after a third of it. A hung supervisor is killed (SIGKILL), and the
 * next request starts a new one, which kills the process groups of the
 * runs the old one left and reports them INTERRUPTED.
 */
void pd_sup_set_timeout(pd_sup_t *sup, int64_t ms);

/*
 * Stops the supervisor of dir, if one runs (SIGTERM: its commands end
 * INTERRUPTED), and waits until it has exited, for at most timeout_ms.
 * Returns 0 once no supervisor serves dir (also when none ever did), or
 * -1 with errstr. For a reactor that will not need dir again (--dev).
 */
int pd_sup_shutdown(const char *dir, int64_t timeout_ms, char *errstr,
                    size_t errstr_size);

/*
 * Tells the supervisor the reactor's lease, lease_ms (0: none, runs go on
 * without the reactor for ever, as before leases), now and again on each
 * reconnect of sup: the last lease told holds for the whole supervisor.
 * Returns 0, or -1 (logged) if the supervisor cannot be reached or is older
 * than leases (it refuses the frame): then sup reconnects without one and
 * the runs go on without the reactor; that supervisor exits once idle and
 * its successor understands leases.
 */
int pd_sup_set_lease(pd_sup_t *sup, int64_t lease_ms);

/*
 * Tells the supervisor that the reactor is there (a PING), without waiting
 * for its PONG: the PONGs are read, never waited for, by the next ping.
 * For the reactor's own handle, between requests (never while another
 * thread uses sup). A broken connection is reconnected first (lease sent
 * again). Returns 0, or -1 if the PING could not go (a supervisor that
 * reads nothing, or none reachable); the next call tries again.
 */
int pd_sup_ping(pd_sup_t *sup);

/* Whether res is the outcome of a run the supervisor stopped because its
 * reactor was silent past its lease. Such a run is not started again at
 * once: the reactor may have lost the run's partition meanwhile. */
int pd_sup_lease_cut(const pd_runner_result_t *res);

/* Closes the connection and frees sup; NULL is fine. Runs go on. */
void pd_sup_close(pd_sup_t *sup);

/*
 * Runs job under the supervisor as run_id, like pd_runner_run: blocks until
 * the run has ended, fills *res and returns 0, or -1 with res->error when
 * the runner or the supervisor failed. *job->cancel (may be NULL) is polled
 * every 100 ms; once set, the run is cancelled (-> INTERRUPTED). job's
 * strings are copied to the supervisor; job->envp NULL sends our environ.
 * Without job->has_umask the command gets the umask the supervisor was
 * started with (that of the reactor that started it).
 * A run_id the supervisor already knows is not started again: its outcome
 * is awaited. If the connection breaks, it is reconnected and the run
 * awaited there; a run the supervisor lost (it was killed) comes back
 * INTERRUPTED, with -1.
 */
int pd_sup_run(pd_sup_t *sup, int64_t run_id, const pd_runner_job_t *job,
               pd_runner_result_t *res);

enum { PD_SUP_UNKNOWN = 0, PD_SUP_RUNNING, PD_SUP_FINISHED };

/*
 * What the supervisor knows of run_id: PD_SUP_FINISHED with *res filled,
 * PD_SUP_RUNNING, or PD_SUP_UNKNOWN (never started, already forgotten, or
 * lost with the machine); -1 if the supervisor cannot be asked. UNKNOWN is
 * only answered once every request sent before this one, on any connection
 * (a crashed reactor's included), has been read, so a START that a dead
 * reactor sent is never missed.
 */
int pd_sup_status(pd_sup_t *sup, int64_t run_id, pd_runner_result_t *res);

/*
 * Waits for run_id to finish: PD_SUP_FINISHED with *res, or PD_SUP_UNKNOWN
 * (as pd_sup_status), or -1 on error. cancel as in pd_sup_run (may be NULL).
 * This is how a restarted reactor adopts a run.
 */
int pd_sup_wait(pd_sup_t *sup, int64_t run_id, volatile int *cancel,
                pd_runner_result_t *res);

/*
 * Tells the supervisor that the outcome of run_id is recorded: it drops it
 * from memory and records that in its log; an outcome that survives a
 * crash is never asked for again. Returns 0 (also for an unknown id), or
 * -1 if the run is still running or the supervisor cannot be asked. The
 * runs whose outcome sup received lately (the last 64) are known to have
 * ended: their FORGETs are not sent alone but together with sup's next
 * request (or by pd_sup_forget_flush, pd_sup_close), and 0 is returned at
 * once, which saves a round trip per run.
 */
int pd_sup_forget(pd_sup_t *sup, int64_t run_id);

/* Sends the FORGETs pd_sup_forget holds and reads their answers (one
 * round trip; none if nothing is held): for a worker that goes idle.
 * Returns 0, or -1 if the supervisor cannot be asked (they stay held). */
int pd_sup_forget_flush(pd_sup_t *sup);

/*
 * The supervisor process's main, for `postdeploy-reactor --supervisor DIR
 * [--idle S]` (idle_s < 0: 60 s; 0: exit as soon as idle). It forks: the
 * child detaches and serves, then returns its exit status from here when
 * it ends; the parent returns 0 once the child listens, or finds another
 * supervisor holding DIR, and non-zero (the reason on stderr) if it cannot
 * start. Either way the caller returns the value from main.
 */
int pd_sup_main(const char *dir, int idle_s);

/*
 * The wire protocol, for tools and tests (the reactor uses the calls
 * above). A frame is a little-endian u32 payload length (at most
 * PD_SUP_FRAME_MAX), a u8 type, then the payload: integers little-endian,
 * strings NUL-terminated, a string list as a u32 count then the strings.
 * Every payload starts with the i64 run id. A client sends one request and
 * reads its reply before the next, except that a FORGET may go just before
 * another request (replies come in order); CANCEL has no reply and may be
 * sent while a RESULT is awaited. A frame the supervisor cannot read is
 * answered ERROR (id 0, then why, a string) and the connection closed.
 *
 *   START  id, i64 timeout_ms, list argv, list envp, workdir, log_path
 *          (absolute; "" for none), optionally u32 umask (0..0777; absent:
 *          the umask the supervisor was started with, its starter's)
 *          -> STARTED or RUNNING, then RESULT when it ends; or RESULT at
 *          once if it already ended
 *   STATUS id -> UNKNOWN, RUNNING or RESULT
 *   WAIT   id -> RESULT when it ends (at once if ended), or UNKNOWN
 *   CANCEL id -> (nothing; the awaited RESULT says INTERRUPTED)
 *   FORGET id -> FORGOTTEN, or RUNNING if it still runs
 *   PING   id -> PONG (may be sent while a RESULT is awaited: a client
 *          takes PONGs wherever they come, and a silent supervisor for
 *          a hung one)
 *   LEASE  id (0), i64 lease_ms (>= 0; 0: none) -> LEASED id. The
 *          supervisor notes when any connection last sent any frame;
 *          with a lease, runs going on when that is lease_ms ago are
 *          stopped (INTERRUPTED, "reactor silent past its lease (N s)").
 *          A supervisor older than LEASE answers ERROR and closes the
 *          connection (as for any frame it does not know); the client
 *          then reconnects without it.
 *   PROGRESS id, i64 done, i64 total: the newest progress of a running
 *          command (its lines on POSTDEPLOY_PROGRESS_FD, runner.h), sent
 *          to whoever awaits its RESULT, at most every 100 ms and once
 *          more just before the RESULT if it moved since. A reactor older
 *          than this frame takes it for a broken conversation: stop a
 *          newer supervisor before going back to one (pd_sup_shutdown).
 *   RESULT id, u8 runner_failed, u8 status, u8 has_exit_code,
 *          i32 exit_code, i32 term_signal, i64 duration_ms, error,
 *          u32 tail_len + tail bytes, u64 output_bytes
 *
 * DIR/supervisor/outcomes is a sequence of records: a STARTED frame (id,
 * u32 pid, u64 the process's start time in clock ticks after boot: the
 * command runs), a RESULT frame (an outcome) or a FORGOTTEN frame (id
 * only: that outcome is dropped), each followed by a u32 FNV-1a checksum
 * of the frame. A run whose last record is STARTED was a dead supervisor's:
 * its successor kills that process group (unless the pid now belongs to a
 * process started at another time) and records the run INTERRUPTED. The first
 * record that is cut short or fails its checksum ends the log.
 */
#define PD_SUP_FRAME_MAX (1024 * 1024)

/* How the error of a run stopped for its silent reactor begins. */
#define PD_SUP_LEASE_ERROR "reactor silent past its lease"

typedef enum pd_sup_frame_type_e {
        PD_SUP_F_START     = 1,
        PD_SUP_F_STATUS    = 2,
        PD_SUP_F_WAIT      = 3,
        PD_SUP_F_CANCEL    = 4,
        PD_SUP_F_FORGET    = 5,
        PD_SUP_F_PING      = 6,
        PD_SUP_F_LEASE     = 7,
        PD_SUP_F_STARTED   = 0x81,
        PD_SUP_F_RUNNING   = 0x82,
        PD_SUP_F_UNKNOWN   = 0x83,
        PD_SUP_F_RESULT    = 0x84,
        PD_SUP_F_FORGOTTEN = 0x85,
        PD_SUP_F_ERROR     = 0x86,
        PD_SUP_F_PONG      = 0x87,
        PD_SUP_F_LEASED    = 0x88,
        PD_SUP_F_PROGRESS  = 0x89,
} pd_sup_frame_type_t;

#endif
