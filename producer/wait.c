/*
 * wait.c - `deploy --wait` (and skip's, reset's): follows the results topic
 * (pd_results_follow_*) until every action the reactors planned for the
 * published events has a final outcome, and shows it.
 *
 * The wait starts reading the results topic at its end offsets taken
 * *before* publishing, so no result can slip past, however fast the reactor.
 * What a reactor will do is only known to it (pending depends on its
 * state): it says so in a deploy.planned per event, and each planned action
 * then ends with exactly one action.finished whose `retrying` is false.
 *
 * What the wait prints is for a person (or a CI log): each tenant's plan,
 * then a line per start and per outcome, in the order they happened, which
 * is not the order they arrive in; a status line on a terminal, a plain
 * one after a quiet minute elsewhere; and, when it ends early (Ctrl-C, the
 * timeout), that the actions go on and how to see them.
 */
#include "producer/wait.h"

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "common/log.h"
#include "common/map.h"
#include "producer/report_model.h" /* pd_progress_text */
#include "producer/results.h"
#include "producer/term.h"
#include "schemas/event.h"

/* A line of --wait's output that waits for its turn: the lines of one
 * tenant are printed in its plan's run order (see wait_flush). */
typedef struct pd_wait_line_s {
        char *action; /* whose line it is */
        char *text;   /* the whole line, '\n' included */
} pd_wait_line_t;

/* One published event and what became of it. Results travel keyed by
 * tenant/action and the plan keyed by tenant, so they arrive from different
 * partitions in any order: a dependent's outcome can come before the
 * outcome of the action it ran after, and any outcome before the plan.
 * What arrives is counted at once, but printed only in run order. */
typedef struct pd_trigger_s {
        char *tenant; /* as shown; the reactor's default if NULL */
        char *ce_id;
        int planned;
        pd_strv_t actions;   /* planned, in the order they run */
        pd_strv_t finished;  /* actions with a final outcome */
        pd_status_t *status; /* per finished action */
        /* Name -> position + 1 in actions, in finished: a wait over
         * thousands of actions looks a name up for each result, and a scan
         * per look-up made it quadratic (1,000 actions: 3 s of strcmp in
         * the CLI). */
        pd_map_t *actions_idx, *finished_idx;
        char *plan_line;       /* the plan's line, until printed */
        size_t next;           /* the first planned action not yet printed
                                * to its end */
        pd_wait_line_t *lines; /* waiting for their turn, as they came */
        size_t line_cnt;
} pd_trigger_t;

/* Off a terminal, a running action's progress is printed at most this
 * often (ms): a CI log gets a line per action per 10 s, not one per
 * action.progress. */
#define PD_WAIT_PROGRESS_EVERY_MS 10000

/* An action that has started and not finished (an attempt of it). */
typedef struct pd_wait_run_s {
        char *tenant, *action;
        int64_t since; /* when this CLI saw it start */
        /* Its newest action.progress, if one came: */
        int has_progress;
        int64_t done, total;
        int64_t printed_at; /* when a line said it (off a terminal) */
} pd_wait_run_t;

/* The wait of one command: its published events and what is shown. */
struct pd_deploy_s {
        pd_cli_t *cli;
        pd_trigger_t *triggers;
        size_t trigger_cnt;
        size_t trigger_cap;
        pd_map_t *trigger_idx; /* ce_id -> index in triggers + 1 */
        int live;              /* a status line redrawn in place on stderr */
        int color;             /* failures in red on stdout */
        size_t tenant_width;   /* of the longest tenant, to align actions */
        size_t total, done, failed; /* over planned actions */
        size_t planned;             /* triggers whose plan has come */
        pd_wait_run_t *running;
        size_t running_cnt;
        int64_t quiet_since; /* last line printed, for the heartbeat */
        int64_t heartbeat_ms;
        pd_results_follow_t *follow; /* from the end, taken before publishing */
        int dry_run;          /* 0; 1 dry runs' plans as text; 2 as JSON */
        pd_map_t *tenant_idx; /* tenants of the triggers (the default
                               * one's name for NULL) -> 1 */
        pd_map_t *paused;     /* of those, said paused (-> 1) */
        int all_paused;       /* every tenant said paused */
};

/* The trigger a result answers (its trigger_id), or NULL: one of another
 * command's. Looked up, not scanned: a --wait over a million tenants reads
 * millions of results. */
static pd_trigger_t *deploy_trigger(pd_deploy_t *d, const char *ce_id) {
        uintptr_t i =
            ce_id ? (uintptr_t)pd_map_get(d->trigger_idx, ce_id, strlen(ce_id))
                  : 0;

        return i ? &d->triggers[i - 1] : NULL;
}

static int status_is_failure(pd_status_t st) {
        return st == PD_ST_FAILED || st == PD_ST_TIMED_OUT ||
               st == PD_ST_REJECTED || st == PD_ST_INTERRUPTED ||
               st == PD_ST_CANCELLED;
}

/* The position of name in the vector idx indexes, -1 if it is not
 * there. */
static long index_find(const pd_map_t *idx, const char *name) {
        return (long)(uintptr_t)pd_map_get(idx, name, strlen(name)) - 1;
}

/* Indexes name at pos; a name already indexed keeps its first position,
 * the one pd_strv_find would find. Returns 1 if name was new, else 0. */
static int index_add(pd_map_t **idxp, const char *name, size_t pos) {
        void **vp;

        if (!*idxp)
                *idxp = pd_map_new();
        vp = pd_map_put(*idxp, name, strlen(name));
        if (*vp)
                return 0;
        *vp = (void *)(uintptr_t)(pos + 1);
        return 1;
}

/* Counts the outcome of action, one of t's plan, if it has one. Each
 * result adds to the counts once, instead of every trigger's plan being
 * counted again per result (quadratic: 3 s for 1,000 actions). */
static void deploy_count(pd_deploy_t *d, const pd_trigger_t *t,
                         const char *action) {
        long k = index_find(t->finished_idx, action);

        if (k < 0)
                return;
        d->done++;
        d->failed += status_is_failure(t->status[k]);
}

/*
 * Every string that came from an event (a tenant, an action's name, a
 * release, an error) reaches the terminal through here and nowhere else:
 * an action's output or a forged record must not be able to drive the
 * operator's terminal: control characters are shown escaped
 * (pd_term_escape). Writes s to fp.
 */
static void wait_text(FILE *fp, const char *s) {
        pd_term_escape(s, strlen(s), fp);
}

/* ms in the unit a person reads at a glance: "850 ms", "15.0 s",
 * "2 min 3 s", "1 h 5 min". Tenths are cut, not rounded, so 59,999 ms is
 * never "60.0 s". */
static void wait_duration(int64_t ms, char *buf, size_t size) {
        if (ms < 0)
                ms = 0;
        if (ms < 1000)
                snprintf(buf, size, "%" PRId64 " ms", ms);
        else if (ms < 60 * 1000)
                snprintf(buf, size, "%" PRId64 ".%" PRId64 " s", ms / 1000,
                         ms % 1000 / 100);
        else if (ms < 3600 * 1000)
                snprintf(buf, size, "%" PRId64 " min %" PRId64 " s", ms / 60000,
                         ms % 60000 / 1000);
        else
                snprintf(buf, size, "%" PRId64 " h %" PRId64 " min",
                         ms / 3600000, ms % 3600000 / 60000);
}

/* Writes s and then spaces up to width columns, so that what follows
 * lines up from one line to the next. */
static void wait_column(FILE *fp, const char *s, long width) {
        long at = ftell(fp), len;

        wait_text(fp, s);
        for (len = ftell(fp) - at; len < width; len++)
                fputc(' ', fp);
}

/* The line ev makes, '\n' included; the caller frees it. */
static char *wait_line_new(const pd_deploy_t *d, const pd_event_t *ev) {
        char *text = NULL, dur[32];
        size_t size;
        FILE *fp = pd_xalloc(open_memstream(&text, &size));

        wait_text(fp, ev->tenant ? ev->tenant : "");
        fputc(':', fp);
        for (size_t n = strlen(ev->tenant ? ev->tenant : "");
             n <= d->tenant_width; n++)
                fputc(' ', fp);
        if (ev->type == PD_EVT_DEPLOY_PLANNED) {
                /* skip and reset run nothing, and may name no release. */
                fprintf(fp, "%zu action(s) to %s", ev->actions.cnt,
                        strcmp(d->cli->cmd, "deploy") ? d->cli->cmd : "run");
                if (ev->release && *ev->release) {
                        fputs(" for release ", fp);
                        wait_text(fp, ev->release);
                }
        } else if (ev->type == PD_EVT_ACTION_STARTED && ev->queued) {
                wait_column(fp, ev->action, 30);
                fputs(" queued (its concurrency is reached)", fp);
        } else if (ev->type == PD_EVT_ACTION_STARTED) {
                wait_column(fp, ev->action, 30);
                fprintf(fp, " started (attempt %" PRId32 ")", ev->attempt);
        } else if (ev->type == PD_EVT_ACTION_PROGRESS) {
                char pg[64];

                wait_column(fp, ev->action, 30);
                pd_progress_text(ev->done, ev->total, pg, sizeof(pg));
                fprintf(fp, " %s", pg);
        } else {
                int red = d->color && status_is_failure(ev->status);

                wait_column(fp, ev->action, 30);
                fprintf(fp, " %s%s%s", red ? "\033[1;31m" : "",
                        pd_status_name(ev->status), red ? "\033[0m" : "");
                if (ev->has_exit_code && ev->exit_code)
                        fprintf(fp, " (exit %d)", (int)ev->exit_code);
                wait_duration(ev->duration_ms, dur, sizeof(dur));
                fprintf(fp, " in %s", dur);
                if (ev->error) {
                        fputs(": ", fp);
                        wait_text(fp, ev->error);
                }
                if (ev->retrying)
                        fputs(" (will retry)", fp);
        }
        fputc('\n', fp);
        if (fclose(fp))
                abort();
        return text;
}

/* Appends s to fp as a JSON string. */
static void wait_json_string(FILE *fp, const char *s) {
        fputc('"', fp);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(fp, "\\%c", c);
                else if (c < 0x20)
                        fprintf(fp, "\\u%04x", c);
                else
                        fputc(c, fp);
        }
        fputc('"', fp);
}

/*
 * The text of a dry run's plan (deploy --dry-run), '\n' included; the
 * caller frees it. As text, a line per decision, each starting with the
 * tenant like --wait's lines: what would run, numbered in run order, then
 * what would not and why. As JSON, one object on one line.
 */
static char *wait_dry_text(const pd_deploy_t *d, const pd_event_t *ev) {
        char *text = NULL;
        size_t size;
        FILE *fp = pd_xalloc(open_memstream(&text, &size));

        if (d->dry_run == 2) {
                fputs("{\"tenant\":", fp);
                wait_json_string(fp, ev->tenant);
                fputs(",\"release\":", fp);
                wait_json_string(fp, ev->release ? ev->release : "");
                fputs(",\"reactor\":", fp);
                wait_json_string(fp, ev->reactor ? ev->reactor : "");
                fputs(",\"would_run\":[", fp);
                for (size_t i = 0; i < ev->actions.cnt; i++) {
                        if (i)
                                fputc(',', fp);
                        wait_json_string(fp, ev->actions.v[i]);
                }
                fputs("],\"skipped\":[", fp);
                for (size_t i = 0; i < ev->skipped.cnt; i++) {
                        fputs(i ? ",{\"action\":" : "{\"action\":", fp);
                        wait_json_string(fp, ev->skipped.v[i]);
                        fputs(",\"why\":", fp);
                        wait_json_string(fp, i < ev->skipped_why.cnt
                                                 ? ev->skipped_why.v[i]
                                                 : "");
                        fputc('}', fp);
                }
                fputs("]}\n", fp);
        } else {
                size_t pad = d->tenant_width + 1 - strlen(ev->tenant);

                wait_text(fp, ev->tenant);
                fprintf(fp, ":%*s dry run: %zu action(s) would run", (int)pad,
                        "", ev->actions.cnt);
                if (ev->release && *ev->release) {
                        fputs(" for release ", fp);
                        wait_text(fp, ev->release);
                }
                fprintf(fp, ", %zu would not\n", ev->skipped.cnt);
                for (size_t i = 0; i < ev->actions.cnt; i++) {
                        wait_text(fp, ev->tenant);
                        fprintf(fp, ":%*s %zu. ", (int)pad, "", i + 1);
                        wait_text(fp, ev->actions.v[i]);
                        fputs(" would run\n", fp);
                }
                for (size_t i = 0; i < ev->skipped.cnt; i++) {
                        wait_text(fp, ev->tenant);
                        fprintf(fp, ":%*s -  ", (int)pad, "");
                        wait_text(fp, ev->skipped.v[i]);
                        fputs(" would not run: ", fp);
                        wait_text(fp, i < ev->skipped_why.cnt
                                          ? ev->skipped_why.v[i]
                                          : "");
                        fputc('\n', fp);
                }
        }
        if (fclose(fp))
                abort();
        return text;
}

/* The terminal's width, for a status line that must fit on one row. */
static size_t wait_columns(void) {
        struct winsize ws;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) || ws.ws_col < 20)
                return 80;
        return ws.ws_col;
}

/* Writes "[done/total, failed] running: TENANT ACTION 12.3 s (+N more)"
 * to fp: the action running longest is the one a person waits for. */
static void wait_status(const pd_deploy_t *d, FILE *fp) {
        const pd_wait_run_t *oldest = NULL;
        size_t unplanned            = d->trigger_cnt - d->planned;
        char dur[32];

        fprintf(fp, "[%zu/%zu done", d->done, d->total);
        if (d->failed)
                fprintf(fp, ", %zu failed", d->failed);
        fputc(']', fp);
        for (size_t i = 0; i < d->running_cnt; i++)
                if (!oldest || d->running[i].since < oldest->since)
                        oldest = &d->running[i];
        if (oldest) {
                wait_duration(pd_now_ms() - oldest->since, dur, sizeof(dur));
                fputs(" running: ", fp);
                wait_text(fp, oldest->tenant);
                fputc(' ', fp);
                wait_text(fp, oldest->action);
                fprintf(fp, " %s", dur);
                if (oldest->has_progress) {
                        char pg[64];

                        pd_progress_text(oldest->done, oldest->total, pg,
                                         sizeof(pg));
                        fprintf(fp, " %s", pg);
                }
                if (d->running_cnt > 1)
                        fprintf(fp, " (+%zu more)", d->running_cnt - 1);
        } else if (unplanned) {
                fprintf(fp, " waiting for the plan of %zu tenant(s)",
                        unplanned);
        }
}

/* Redraws the status line in place (a terminal only). It is cut to the
 * terminal's width: a line that wrapped could not be erased with \r. */
static void wait_progress(const pd_deploy_t *d) {
        size_t cols = wait_columns();
        char line[512];
        FILE *fp;

        if (!d->live)
                return;
        if (cols > sizeof(line))
                cols = sizeof(line);
        /* fmemopen drops what does not fit: the cut is done by stdio. */
        if (!(fp = fmemopen(line, cols, "w")))
                return;
        setbuf(fp, NULL);
        wait_status(d, fp);
        fclose(fp);
        line[cols - 1] = '\0';
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
}

/* Prints one line on stdout, keeping the status line intact. */
static void wait_print(pd_deploy_t *d, const char *text) {
        if (d->live)
                fputs("\r\033[K", stderr);
        fputs(text, stdout);
        fflush(stdout);
        d->quiet_since = pd_now_ms();
}

/*
 * Prints what of t may be printed: nothing before its plan line, then the
 * lines of each planned action in run order, an action's lines once every
 * action before it has been printed to its final outcome. An action runs
 * only after those before it have finished, so this is the order things
 * happened in. With all, prints everything left, as it came (the wait is
 * over: an outcome out of order beats one never shown).
 */
static void wait_flush(pd_deploy_t *d, pd_trigger_t *t, int all) {
        if (t->plan_line) {
                wait_print(d, t->plan_line);
                free(t->plan_line);
                t->plan_line = NULL;
        }
        if (!t->planned && !all)
                return;
        for (;;) {
                const char *head =
                    t->next < t->actions.cnt ? t->actions.v[t->next] : NULL;
                size_t kept = 0;

                for (size_t i = 0; i < t->line_cnt; i++) {
                        pd_wait_line_t *l = &t->lines[i];

                        /* An action outside the plan has no turn to wait
                         * for. */
                        if (all || (head && !strcmp(l->action, head)) ||
                            index_find(t->actions_idx, l->action) < 0) {
                                wait_print(d, l->text);
                                free(l->action);
                                free(l->text);
                        } else {
                                t->lines[kept++] = *l;
                        }
                }
                t->line_cnt = kept;
                if (!head || index_find(t->finished_idx, head) < 0)
                        break;
                t->next++;
        }
}

/* Keeps track of what runs, for the status line. */
static void wait_running(pd_deploy_t *d, const pd_event_t *ev) {
        size_t i;

        for (i = 0; i < d->running_cnt; i++)
                if (!strcmp(d->running[i].tenant, ev->tenant) &&
                    !strcmp(d->running[i].action, ev->action))
                        break;
        /* A queued run is not running yet: its own started follows. */
        if (ev->type == PD_EVT_ACTION_STARTED && !ev->queued &&
            i == d->running_cnt) {
                d->running = pd_xrealloc(
                    d->running, (d->running_cnt + 1) * sizeof(*d->running));
                /* This machine's clock, not the reactor's started_at: two
                 * machines' clocks need not agree, and an elapsed time
                 * must never run backwards or jump by their skew. */
                d->running[d->running_cnt++] =
                    (pd_wait_run_t){pd_xstrdup(ev->tenant),
                                    pd_xstrdup(ev->action),
                                    pd_now_ms(),
                                    0,
                                    0,
                                    0,
                                    0};
        } else if (ev->type == PD_EVT_ACTION_FINISHED && i < d->running_cnt) {
                free(d->running[i].tenant);
                free(d->running[i].action);
                d->running[i] = d->running[--d->running_cnt];
        }
}

/* An action.progress of a run we wait for: the status line shows it on a
 * terminal; elsewhere a line says it, at most every 10 s per action. A
 * progress is not an outcome: it takes no turn in the run order. */
static void wait_on_progress(pd_deploy_t *d, const pd_trigger_t *t,
                             const pd_event_t *ev) {
        pd_wait_run_t *run = NULL;
        int64_t now        = pd_now_ms();

        /* After its final outcome: a late one says nothing new. */
        if (index_find(t->finished_idx, ev->action) >= 0)
                return;
        for (size_t i = 0; i < d->running_cnt; i++)
                if (!strcmp(d->running[i].tenant, ev->tenant) &&
                    !strcmp(d->running[i].action, ev->action))
                        run = &d->running[i];
        if (!run) {
                /* Before its action.started, which waits for the reactor's
                 * commit while progress is produced at once: it runs. */
                d->running = pd_xrealloc(
                    d->running, (d->running_cnt + 1) * sizeof(*d->running));
                run  = &d->running[d->running_cnt++];
                *run = (pd_wait_run_t){pd_xstrdup(ev->tenant),
                                       pd_xstrdup(ev->action),
                                       now,
                                       0,
                                       0,
                                       0,
                                       0};
        }
        run->has_progress = 1;
        run->done         = ev->done;
        run->total        = ev->total;
        if (!d->live && (!run->printed_at ||
                         now - run->printed_at >= PD_WAIT_PROGRESS_EVERY_MS)) {
                char *line = wait_line_new(d, ev);

                run->printed_at = now;
                wait_print(d, line);
                free(line);
        }
        wait_progress(d);
}

/* Everything printed here that came from an event goes through
 * pd_term_escape: an action's error must not drive the terminal. */
static void deploy_on_event(pd_deploy_t *d, const pd_event_t *ev) {
        pd_trigger_t *t = deploy_trigger(d, ev->trigger_id);
        pd_wait_line_t *l;

        if (!t || !ev->tenant)
                return;
        if (ev->type == PD_EVT_DEPLOY_PLANNED) {
                if (t->planned)
                        return;
                t->planned = 1;
                d->planned++;
                if (!t->tenant)
                        t->tenant = pd_xstrdup(ev->tenant);
                /* A dry run's plan has nothing to wait for after it. */
                if (d->dry_run) {
                        t->plan_line = wait_dry_text(d, ev);
                        wait_flush(d, t, 0);
                        wait_progress(d);
                        return;
                }
                for (size_t i = 0; i < ev->actions.cnt; i++) {
                        pd_strv_add(&t->actions, ev->actions.v[i]);
                        /* A name planned twice is one action to wait
                         * for. */
                        if (!index_add(&t->actions_idx, ev->actions.v[i], i))
                                continue;
                        d->total++;
                        deploy_count(d, t, ev->actions.v[i]);
                }
                t->plan_line = wait_line_new(d, ev);
                wait_flush(d, t, 0);
                wait_progress(d);
                return;
        }
        if (ev->type == PD_EVT_ACTION_PROGRESS && ev->action) {
                wait_on_progress(d, t, ev);
                return;
        }
        if ((ev->type != PD_EVT_ACTION_STARTED &&
             ev->type != PD_EVT_ACTION_FINISHED) ||
            !ev->action)
                return;
        wait_running(d, ev);
        if (ev->type == PD_EVT_ACTION_FINISHED && !ev->retrying &&
            index_find(t->finished_idx, ev->action) < 0) {
                t->status = pd_xrealloc(
                    t->status, (t->finished.cnt + 1) * sizeof(*t->status));
                t->status[t->finished.cnt] = ev->status;
                pd_strv_add(&t->finished, ev->action);
                index_add(&t->finished_idx, ev->action, t->finished.cnt - 1);
                /* Before its plan, the plan's arrival counts it. */
                if (t->planned && index_find(t->actions_idx, ev->action) >= 0)
                        deploy_count(d, t, ev->action);
        }
        t->lines = pd_xrealloc(t->lines, (t->line_cnt + 1) * sizeof(*t->lines));
        l        = &t->lines[t->line_cnt++];
        l->action = pd_xstrdup(ev->action);
        l->text   = wait_line_new(d, ev);
        wait_flush(d, t, 0);
        wait_progress(d);
}

/* A pause or resume of one of our tenants (or of every tenant): said once
 * per change, so that a wait on held events says why nothing comes. */
static void deploy_on_pause(pd_deploy_t *d, const pd_event_t *ev) {
        int pause = ev->type == PD_EVT_PAUSE_REQUESTED;
        char *who, *line;
        size_t len;
        FILE *fp;
        void **vp;

        if (ev->all_tenants) {
                if (d->all_paused == pause)
                        return;
                d->all_paused = pause;
        } else {
                if (!ev->tenant ||
                    !pd_map_get(d->tenant_idx, ev->tenant, strlen(ev->tenant)))
                        return;
                if (!d->paused)
                        d->paused = pd_map_new();
                vp = pd_map_put(d->paused, ev->tenant, strlen(ev->tenant));
                if ((*vp != NULL) == pause)
                        return;
                *vp = pause ? (void *)1 : NULL;
        }
        fp = open_memstream(&line, &len);
        if (!fp)
                return;
        who = pd_term_escape_dup(ev->requested_by ? ev->requested_by : "");
        if (pause)
                fprintf(fp,
                        "%s: paused by %s: its actions wait for `postdeploy "
                        "resume`\n",
                        ev->all_tenants ? "every tenant" : ev->tenant, who);
        else
                fprintf(fp, "%s: resumed by %s\n",
                        ev->all_tenants ? "every tenant" : ev->tenant, who);
        fclose(fp);
        wait_print(d, line);
        wait_progress(d);
        free(line);
        free(who);
}

/* Each event the follow reads (pd_results_cb_t). */
static void deploy_on_result(pd_event_t *ev, void *opaque) {
        if (ev->type == PD_EVT_PAUSE_REQUESTED ||
            ev->type == PD_EVT_RESUME_REQUESTED)
                deploy_on_pause(opaque, ev);
        else
                deploy_on_event(opaque, ev);
        pd_event_destroy(ev);
}

/* Every trigger planned and each planned action finished: the counts say
 * so, each action having been counted once, when both its plan and its
 * outcome had come. */
static int deploy_complete(const pd_deploy_t *d) {
        return d->planned == d->trigger_cnt && d->done == d->total;
}

/* The signal that ends a wait early (SIGINT, SIGTERM), 0 until one comes. */
static volatile sig_atomic_t wait_signal;

static void wait_on_signal(int sig) {
        wait_signal = sig;
}

/* Appends s to fp, single-quoted for a shell if it needs to be. */
static void wait_shell_word(FILE *fp, const char *s) {
        if (*s && !s[strspn(s,
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
                            "rstuvwxyz0123456789_.,:/@%+=-")]) {
                fputs(s, fp);
                return;
        }
        fputc('\'', fp);
        for (; *s; s++)
                if (*s == '\'')
                        fputs("'\\''", fp);
                else
                        fputc(*s, fp);
        fputc('\'', fp);
}

/* Tenants named in the report command; past this many it shows them all. */
#define PD_WAIT_REPORT_TENANTS 8

/*
 * Says, when the wait ends before the actions do, that they go on without
 * this command, and the command that shows them: a person who pressed
 * Ctrl-C must not think it stopped anything. The tenants named are those
 * with actions not finished.
 */
static void wait_left_behind(const pd_deploy_t *d) {
        const pd_cli_t *cli = d->cli;
        const char *brokers = NULL;
        size_t open         = 0;

        for (size_t i = 0; i + 1 < cli->kafka_overrides.cnt; i += 2)
                if (!strcmp(cli->kafka_overrides.v[i], "bootstrap.servers"))
                        brokers = cli->kafka_overrides.v[i + 1];
        for (size_t i = 0; i < d->trigger_cnt; i++)
                open +=
                    !d->triggers[i].planned ||
                    d->triggers[i].finished.cnt < d->triggers[i].actions.cnt;
        fprintf(stderr,
                "postdeploy %s: the actions keep running on the reactors; "
                "see them with:\n  postdeploy report",
                cli->cmd);
        for (size_t i = 0; open <= PD_WAIT_REPORT_TENANTS && i < d->trigger_cnt;
             i++) {
                const pd_trigger_t *t = &d->triggers[i];
                const char *tenant =
                    t->tenant ? t->tenant : cli->conf->default_tenant;

                if (t->planned && t->finished.cnt >= t->actions.cnt)
                        continue;
                fputs(" --tenant ", stderr);
                wait_text(stderr, tenant);
        }
        if (cli->config_path) {
                fputs(" -c ", stderr);
                wait_shell_word(stderr, cli->config_path);
        }
        if (brokers) {
                fputs(" -b ", stderr);
                wait_shell_word(stderr, brokers);
        }
        fputc('\n', stderr);
}

/* Ends the status line and prints what was held back for its turn. */
static void wait_finish(pd_deploy_t *d) {
        if (d->live)
                fputs("\r\033[K", stderr);
        d->live = 0;
        for (size_t i = 0; i < d->trigger_cnt; i++)
                wait_flush(d, &d->triggers[i], 1);
}

/*
 * How the wait shows itself: a status line redrawn in place when stderr is
 * a terminal that can erase a line (TERM set and not "dumb"), red failures
 * when stdout is such a terminal and NO_COLOR (no-color.org) is unset or
 * empty. Anything else (a CI log, a pipe) gets plain lines only, never a
 * carriage return or an escape sequence.
 */
static void wait_looks(pd_deploy_t *d) {
        const char *term     = getenv("TERM");
        const char *no_color = getenv("NO_COLOR");
        const char *beat     = getenv("PD_WAIT_HEARTBEAT_MS");
        int capable          = term && *term && strcmp(term, "dumb");

        for (size_t i = 0; i < d->trigger_cnt; i++) {
                const char *t = d->triggers[i].tenant
                                    ? d->triggers[i].tenant
                                    : d->cli->conf->default_tenant;
                if (t && strlen(t) > d->tenant_width)
                        d->tenant_width = strlen(t);
        }
        d->live  = capable && isatty(STDERR_FILENO);
        d->color = capable && isatty(STDOUT_FILENO) && !(no_color && *no_color);
        /* A minute of silence is under every CI's no-output limit; the
         * variable is for the tests, which cannot wait that long. */
        d->heartbeat_ms = beat && atoll(beat) > 0 ? atoll(beat) : 60000;
}

static int deploy_wait(pd_deploy_t *d, int64_t timeout_ms) {
        int64_t deadline    = pd_now_ms() + timeout_ms;
        struct sigaction sa = {0}, old_int, old_term;
        char dur[32];
        int ret = PD_EXIT_OK;

        /* Ctrl-C ends the wait, not the actions: the handler only sets a
         * flag, and the loop says so before it exits. A signal ignored by
         * whoever started us (a shell's background job) stays ignored. */
        wait_signal   = 0;
        sa.sa_handler = wait_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, NULL, &old_int);
        sigaction(SIGTERM, NULL, &old_term);
        if (old_int.sa_handler != SIG_IGN)
                sigaction(SIGINT, &sa, NULL);
        if (old_term.sa_handler != SIG_IGN)
                sigaction(SIGTERM, &sa, NULL);
        d->quiet_since = pd_now_ms();
        wait_progress(d);
        while (!deploy_complete(d)) {
                int64_t left = deadline - pd_now_ms();

                if (wait_signal) {
                        wait_finish(d);
                        pd_cli_error(d->cli,
                                     "interrupted (%s) while waiting; %zu "
                                     "of %zu action(s) had finished",
                                     strsignal(wait_signal), d->done, d->total);
                        wait_left_behind(d);
                        ret = 128 + wait_signal;
                        goto done;
                }
                if (left <= 0) {
                        wait_finish(d);
                        wait_duration(timeout_ms, dur, sizeof(dur));
                        pd_cli_error(d->cli,
                                     "timed out after %s waiting for results "
                                     "(%zu/%zu done)",
                                     dur, d->done, d->total);
                        wait_left_behind(d);
                        ret = PD_EXIT_TIMEOUT;
                        goto done;
                }
                /* Without a terminal nothing redraws a status line: a
                 * plain one after a quiet spell shows a CI job's log that
                 * the wait is alive, whether an action runs long or the
                 * reactors have not planned yet. */
                if (!d->live &&
                    pd_now_ms() - d->quiet_since >= d->heartbeat_ms) {
                        wait_status(d, stderr);
                        fputc('\n', stderr);
                        d->quiet_since = pd_now_ms();
                }
                if (!pd_results_follow_poll(d->follow,
                                            left < 100 ? (int)left : 100,
                                            deploy_on_result, d))
                        wait_progress(d); /* the running time moves on */
        }
        wait_finish(d);
        if (d->dry_run == 1)
                printf("dry run: %zu tenant(s) planned, nothing ran\n",
                       d->planned);
        else if (!d->dry_run)
                printf("%zu action(s) finished, %zu failed\n", d->done,
                       d->failed);
        ret = d->failed ? PD_EXIT_FAILED : PD_EXIT_OK;

done:
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return ret;
}

pd_deploy_t *pd_wait_new(pd_cli_t *cli, rd_kafka_t *rkc) {
        pd_deploy_t *d = pd_xcalloc(1, sizeof(*d));

        d->cli = cli;
        if (!(d->follow = pd_results_follow_new(cli, rkc, 1))) {
                free(d);
                return NULL;
        }
        return d;
}

void pd_wait_trigger(pd_deploy_t *d, const char *tenant, const char *ce_id) {
        pd_trigger_t *t;

        d->triggers = pd_xgrow(d->triggers, &d->trigger_cap, d->trigger_cnt + 1,
                               sizeof(*d->triggers));
        t           = &d->triggers[d->trigger_cnt++];
        memset(t, 0, sizeof(*t));
        t->ce_id  = pd_xstrdup(ce_id);
        t->tenant = tenant ? pd_xstrdup(tenant) : NULL;
        if (!d->trigger_idx)
                d->trigger_idx = pd_map_new();
        *pd_map_put(d->trigger_idx, ce_id, strlen(ce_id)) =
            (void *)(uintptr_t)d->trigger_cnt;
        if (!tenant)
                tenant = d->cli->conf->default_tenant;
        if (!d->tenant_idx)
                d->tenant_idx = pd_map_new();
        *pd_map_put(d->tenant_idx, tenant, strlen(tenant)) = (void *)1;
}

void pd_wait_dry_run(pd_deploy_t *d, int json) {
        d->dry_run = json ? 2 : 1;
}

int pd_wait_run(pd_deploy_t *d, int64_t timeout_ms) {
        wait_looks(d);
        return deploy_wait(d, timeout_ms);
}

void pd_wait_destroy(pd_deploy_t *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->trigger_cnt; i++) {
                free(d->triggers[i].tenant);
                free(d->triggers[i].ce_id);
                pd_strv_clear(&d->triggers[i].actions);
                pd_strv_clear(&d->triggers[i].finished);
                pd_map_destroy(d->triggers[i].actions_idx, NULL);
                pd_map_destroy(d->triggers[i].finished_idx, NULL);
                free(d->triggers[i].status);
                free(d->triggers[i].plan_line);
                for (size_t j = 0; j < d->triggers[i].line_cnt; j++) {
                        free(d->triggers[i].lines[j].action);
                        free(d->triggers[i].lines[j].text);
                }
                free(d->triggers[i].lines);
        }
        free(d->triggers);
        pd_map_destroy(d->trigger_idx, NULL);
        pd_map_destroy(d->tenant_idx, NULL);
        pd_map_destroy(d->paused, NULL);
        for (size_t i = 0; i < d->running_cnt; i++) {
                free(d->running[i].tenant);
                free(d->running[i].action);
        }
        free(d->running);
        pd_results_follow_destroy(d->follow);
        free(d);
}
