/*
 * deploy.c - the commands that send requests to the reactors: `deploy`
 * (release.deployed), `skip` (actions.skip_requested) and `reset`
 * (actions.reset_requested). Each publishes one event per tenant and, with
 * --wait, follows the results topic until every action the reactors planned
 * for those events has a final outcome.
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
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/strerror.h"
#include "common/xalloc.h"
#include "common/sign.h"
#include "producer/cli.h"
#include "producer/results.h"
#include "producer/term.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"

/* A line of --wait's output that waits for its turn: the lines of one
 * tenant are printed in its plan's run order (see pd_wait_flush). */
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
        char *tenant;       /* as shown; the reactor's default if NULL */
        char *ce_id;
        int planned;
        pd_strv_t actions;  /* planned, in the order they run */
        pd_strv_t finished; /* actions with a final outcome */
        pd_status_t *status; /* per finished action */
        char *plan_line;     /* the plan's line, until printed */
        size_t next;         /* the first planned action not yet printed
                              * to its end */
        pd_wait_line_t *lines; /* waiting for their turn, as they came */
        size_t line_cnt;
} pd_trigger_t;

/* An action that has started and not finished (an attempt of it). */
typedef struct pd_wait_run_s {
        char *tenant, *action;
        int64_t since; /* when this CLI saw it start */
} pd_wait_run_t;

typedef struct pd_deploy_s {
        pd_cli_t *cli;
        pd_trigger_t *triggers;
        size_t trigger_cnt;
        int delivery_failed;
        char delivery_error[256];
        int live;  /* a status line redrawn in place on stderr */
        int color; /* failures in red on stdout */
        size_t tenant_width; /* of the longest tenant, to align actions */
        size_t total, done, failed; /* over planned actions */
        pd_wait_run_t *running;
        size_t running_cnt;
        int64_t quiet_since; /* last line printed, for the heartbeat */
        int64_t heartbeat_ms;
} pd_deploy_t;

/* What one command asks for, from its options. */
typedef struct pd_request_s {
        pd_evtype_t type;
        int selections;           /* deploy: how many of --auto/--all/--one */
        pd_selection_t selection; /* deploy */
        int all;                  /* skip --all-pending, reset --all */
        pd_strv_t names;
        const char *release, *environment, *requested_by, *tenants_file;
        pd_strv_t tenants;
        int all_tenants, wait, no_check;
        int64_t timeout_ms;
        const char *timeout; /* --timeout as given, NULL if not */
} pd_request_t;

static void pd_request_usage(pd_evtype_t type, FILE *fp) {
        if (type == PD_EVT_RELEASE_DEPLOYED)
                fprintf(fp,
                        "Usage: postdeploy deploy (--auto | --all | --one "
                        "NAME...) --release V [options]\n"
                        "\n"
                        "Publishes a release.deployed event per tenant; the "
                        "reactors run the selected\n"
                        "actions. Exactly one selection:\n"
                        "      --auto            pending auto actions\n"
                        "      --all             pending auto and manual "
                        "actions\n"
                        "      --one NAME...     the named actions, whatever "
                        "their state (the way to\n"
                        "                        re-run); repeatable, and "
                        "any further arguments are names\n"
                        "\n"
                        "Options:\n"
                        "  -r, --release V       the release deployed "
                        "(required): 1-128 of A-Z a-z\n"
                        "                        0-9 _ . + ~ -, starting "
                        "with a letter or digit\n"
                        "  -e, --environment E   the environment (default "
                        "$POSTDEPLOY_ENVIRONMENT or\n"
                        "                        \"production\")\n");
        else
                fprintf(fp,
                        "Usage: postdeploy %s (NAME... | %s) [options]\n"
                        "\n"
                        "%s\n"
                        "Sent over Kafka like a deploy: auditable, and "
                        "ordered with the tenant's deploys.\n"
                        "\n"
                        "Options:\n"
                        "      %-18s%s\n"
                        "  -r, --release V       recorded with the request "
                        "(optional)\n",
                        type == PD_EVT_SKIP_REQUESTED ? "skip" : "reset",
                        type == PD_EVT_SKIP_REQUESTED ? "--all-pending"
                                                      : "--all",
                        type == PD_EVT_SKIP_REQUESTED
                            ? "Records the named actions as done for each "
                              "tenant without running them\n(e.g. a fresh "
                              "environment that needs no backfill): they are "
                              "no longer\npending, and the report shows "
                              "them skipped."
                            : "Forgets that the named actions ran for each "
                              "tenant: they are pending again\nand run on "
                              "the next deploy --auto (or --all). Their "
                              "history is kept.",
                        type == PD_EVT_SKIP_REQUESTED ? "--all-pending"
                                                      : "--all",
                        type == PD_EVT_SKIP_REQUESTED
                            ? "every pending action (policy once) instead "
                              "of names"
                            : "every action that is not pending, instead "
                              "of names");
        fprintf(fp,
                "  -t, --tenant T        a tenant (repeatable; once each); "
                "without any, the\n"
                "                        reactor's default tenant\n"
                "      --all-tenants     every tenant of [cli] tenants in "
                "the config\n"
                "      --tenants-file F  every tenant listed in F, one per "
                "line ('#' comments)\n"
                "      --requested-by W  who asks (default $USER@host, or "
                "the account's name)\n"
                "  -w, --wait            %s\n"
                "      --timeout D       how long --wait waits (default "
                "30m; 500ms, 30s, 5m, 1h);\n"
                "                        also the longest wait for a "
                "broker's first answer\n"
                "      --no-check        send names the latest "
                "registry.published does not know\n"
                "                        (the reactor rejects the "
                "unknown ones)\n" PD_CLI_COMMON_HELP
                "\n"
                "Exit status: 0 published (with --wait: %s);\n"
                "1 %s,\n"
                "or the output could not be written; 2 usage or "
                "configuration error; 3 --wait\n"
                "timed out; 4 Kafka could not be reached or the publish "
                "failed;\n130 --wait interrupted (Ctrl-C; 143 for SIGTERM). "
                "A wait that ends early stops\nnothing: the actions keep "
                "running on the reactors.\n",
                type == PD_EVT_RELEASE_DEPLOYED
                    ? "wait until every selected action has finished; the "
                      "exit\n                        status then says how "
                      "they went"
                    : type == PD_EVT_SKIP_REQUESTED
                          ? "wait until the reactors have recorded the "
                            "skips"
                          : "wait until the reactors have forgotten the "
                            "runs",
                type == PD_EVT_RELEASE_DEPLOYED ? "every action succeeded"
                : type == PD_EVT_SKIP_REQUESTED ? "every action recorded "
                                                  "skipped"
                                                : "every action reset",
                type == PD_EVT_RELEASE_DEPLOYED
                    ? "an action failed, timed out or was rejected"
                    : "an action was rejected (unknown to the reactor)");
}

static void pd_deploy_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                            void *opaque) {
        pd_deploy_t *d = opaque;
        (void)rk;
        if (rkm->err && !d->delivery_failed) {
                d->delivery_failed = 1;
                snprintf(d->delivery_error, sizeof(d->delivery_error), "%s",
                         rd_kafka_err2str(rkm->err));
        }
}

/* Assigns every partition of the results topic at its current end. */
static int pd_deploy_follow(pd_deploy_t *d, rd_kafka_t *rkc) {
        const char *topic = d->cli->conf->topic_results;
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        pd_kafka_wm_t *wm;
        size_t cnt;
        char errstr[512];

        if (pd_kafka_watermarks(rkc, topic, 10000, &wm, &cnt, errstr,
                                sizeof(errstr))) {
                pd_cli_error(d->cli, "%s", errstr);
                return -1;
        }
        parts = rd_kafka_topic_partition_list_new((int)cnt);
        for (size_t i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic,
                                                  wm[i].partition)
                    ->offset = wm[i].hi;
        free(wm);
        err = rd_kafka_assign(rkc, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                pd_cli_error(d->cli, "cannot read %s: %s", topic,
                             rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static pd_trigger_t *pd_deploy_trigger(pd_deploy_t *d, const char *ce_id) {
        for (size_t i = 0; ce_id && i < d->trigger_cnt; i++)
                if (!strcmp(d->triggers[i].ce_id, ce_id))
                        return &d->triggers[i];
        return NULL;
}

static int pd_status_is_failure(pd_status_t st) {
        return st == PD_ST_FAILED || st == PD_ST_TIMED_OUT ||
               st == PD_ST_REJECTED || st == PD_ST_INTERRUPTED;
}

/* Counts planned actions that are done, and failed, over all triggers. */
static void pd_deploy_count(pd_deploy_t *d) {
        d->total = d->done = d->failed = 0;
        for (size_t i = 0; i < d->trigger_cnt; i++) {
                const pd_trigger_t *t = &d->triggers[i];
                for (size_t j = 0; t->planned && j < t->actions.cnt; j++) {
                        int k = pd_strv_find(&t->finished, t->actions.v[j]);
                        d->total++;
                        if (k < 0)
                                continue;
                        d->done++;
                        d->failed += pd_status_is_failure(t->status[k]);
                }
        }
}

/*
 * Every string that came from an event (a tenant, an action's name, a
 * release, an error) reaches the terminal through here and nowhere else:
 * an action's output or a forged record must not be able to drive the
 * operator's terminal: control characters are shown escaped
 * (pd_term_escape). Writes s to fp.
 */
static void pd_wait_text(FILE *fp, const char *s) {
        pd_term_escape(s, strlen(s), fp);
}

/* ms in the unit a person reads at a glance: "850 ms", "15.0 s",
 * "2 min 3 s", "1 h 5 min". Tenths are cut, not rounded, so 59,999 ms is
 * never "60.0 s". */
static void pd_wait_duration(int64_t ms, char *buf, size_t size) {
        if (ms < 0)
                ms = 0;
        if (ms < 1000)
                snprintf(buf, size, "%" PRId64 " ms", ms);
        else if (ms < 60 * 1000)
                snprintf(buf, size, "%" PRId64 ".%" PRId64 " s", ms / 1000,
                         ms % 1000 / 100);
        else if (ms < 3600 * 1000)
                snprintf(buf, size, "%" PRId64 " min %" PRId64 " s",
                         ms / 60000, ms % 60000 / 1000);
        else
                snprintf(buf, size, "%" PRId64 " h %" PRId64 " min",
                         ms / 3600000, ms % 3600000 / 60000);
}

/* Writes s and then spaces up to width columns, so that what follows
 * lines up from one line to the next. */
static void pd_wait_column(FILE *fp, const char *s, long width) {
        long at = ftell(fp), len;

        pd_wait_text(fp, s);
        for (len = ftell(fp) - at; len < width; len++)
                fputc(' ', fp);
}

/* The line ev makes, '\n' included; the caller frees it. */
static char *pd_wait_line_new(const pd_deploy_t *d, const pd_event_t *ev) {
        char *text = NULL, dur[32];
        size_t size;
        FILE *fp = pd_xalloc(open_memstream(&text, &size));

        pd_wait_text(fp, ev->tenant ? ev->tenant : "");
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
                        pd_wait_text(fp, ev->release);
                }
        } else if (ev->type == PD_EVT_ACTION_STARTED) {
                pd_wait_column(fp, ev->action, 30);
                fprintf(fp, " started (attempt %" PRId32 ")", ev->attempt);
        } else {
                int red = d->color && pd_status_is_failure(ev->status);

                pd_wait_column(fp, ev->action, 30);
                fprintf(fp, " %s%s%s", red ? "\033[1;31m" : "",
                        pd_status_name(ev->status), red ? "\033[0m" : "");
                if (ev->has_exit_code && ev->exit_code)
                        fprintf(fp, " (exit %d)", (int)ev->exit_code);
                pd_wait_duration(ev->duration_ms, dur, sizeof(dur));
                fprintf(fp, " in %s", dur);
                if (ev->error) {
                        fputs(": ", fp);
                        pd_wait_text(fp, ev->error);
                }
                if (ev->retrying)
                        fputs(" (will retry)", fp);
        }
        fputc('\n', fp);
        if (fclose(fp))
                abort();
        return text;
}

/* The terminal's width, for a status line that must fit on one row. */
static size_t pd_wait_columns(void) {
        struct winsize ws;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) || ws.ws_col < 20)
                return 80;
        return ws.ws_col;
}

/* Writes "[done/total, failed] running: TENANT ACTION 12.3 s (+N more)"
 * to fp: the action running longest is the one a person waits for. */
static void pd_wait_status(const pd_deploy_t *d, FILE *fp) {
        const pd_wait_run_t *oldest = NULL;
        size_t unplanned = 0;
        char dur[32];

        fprintf(fp, "[%zu/%zu done", d->done, d->total);
        if (d->failed)
                fprintf(fp, ", %zu failed", d->failed);
        fputc(']', fp);
        for (size_t i = 0; i < d->running_cnt; i++)
                if (!oldest || d->running[i].since < oldest->since)
                        oldest = &d->running[i];
        for (size_t i = 0; i < d->trigger_cnt; i++)
                unplanned += !d->triggers[i].planned;
        if (oldest) {
                pd_wait_duration(pd_now_ms() - oldest->since, dur,
                                 sizeof(dur));
                fputs(" running: ", fp);
                pd_wait_text(fp, oldest->tenant);
                fputc(' ', fp);
                pd_wait_text(fp, oldest->action);
                fprintf(fp, " %s", dur);
                if (d->running_cnt > 1)
                        fprintf(fp, " (+%zu more)", d->running_cnt - 1);
        } else if (unplanned) {
                fprintf(fp, " waiting for the plan of %zu tenant(s)",
                        unplanned);
        }
}

/* Redraws the status line in place (a terminal only). It is cut to the
 * terminal's width: a line that wrapped could not be erased with \r. */
static void pd_wait_progress(const pd_deploy_t *d) {
        size_t cols = pd_wait_columns();
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
        pd_wait_status(d, fp);
        fclose(fp);
        line[cols - 1] = '\0';
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
}

/* Prints one line on stdout, keeping the status line intact. */
static void pd_wait_print(pd_deploy_t *d, const char *text) {
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
static void pd_wait_flush(pd_deploy_t *d, pd_trigger_t *t, int all) {
        if (t->plan_line) {
                pd_wait_print(d, t->plan_line);
                free(t->plan_line);
                t->plan_line = NULL;
        }
        if (!t->planned && !all)
                return;
        for (;;) {
                const char *head = t->next < t->actions.cnt
                                       ? t->actions.v[t->next]
                                       : NULL;
                size_t kept = 0;

                for (size_t i = 0; i < t->line_cnt; i++) {
                        pd_wait_line_t *l = &t->lines[i];

                        /* An action outside the plan has no turn to wait
                         * for. */
                        if (all || (head && !strcmp(l->action, head)) ||
                            pd_strv_find(&t->actions, l->action) < 0) {
                                pd_wait_print(d, l->text);
                                free(l->action);
                                free(l->text);
                        } else {
                                t->lines[kept++] = *l;
                        }
                }
                t->line_cnt = kept;
                if (!head || pd_strv_find(&t->finished, head) < 0)
                        break;
                t->next++;
        }
}

/* Keeps track of what runs, for the status line. */
static void pd_wait_running(pd_deploy_t *d, const pd_event_t *ev) {
        size_t i;

        for (i = 0; i < d->running_cnt; i++)
                if (!strcmp(d->running[i].tenant, ev->tenant) &&
                    !strcmp(d->running[i].action, ev->action))
                        break;
        if (ev->type == PD_EVT_ACTION_STARTED && i == d->running_cnt) {
                d->running = pd_xrealloc(d->running, (d->running_cnt + 1) *
                                                         sizeof(*d->running));
                /* This machine's clock, not the reactor's started_at: two
                 * machines' clocks need not agree, and an elapsed time
                 * must never run backwards or jump by their skew. */
                d->running[d->running_cnt++] = (pd_wait_run_t){
                    pd_xstrdup(ev->tenant), pd_xstrdup(ev->action),
                    pd_now_ms()};
        } else if (ev->type == PD_EVT_ACTION_FINISHED &&
                   i < d->running_cnt) {
                free(d->running[i].tenant);
                free(d->running[i].action);
                d->running[i] = d->running[--d->running_cnt];
        }
}

/* Everything printed here that came from an event goes through
 * pd_term_escape: an action's error must not drive the terminal. */
static void pd_deploy_on_event(pd_deploy_t *d, const pd_event_t *ev) {
        pd_trigger_t *t = pd_deploy_trigger(d, ev->trigger_id);
        pd_wait_line_t *l;

        if (!t || !ev->tenant)
                return;
        if (ev->type == PD_EVT_DEPLOY_PLANNED) {
                if (t->planned)
                        return;
                t->planned = 1;
                if (!t->tenant)
                        t->tenant = pd_xstrdup(ev->tenant);
                for (size_t i = 0; i < ev->actions.cnt; i++)
                        pd_strv_add(&t->actions, ev->actions.v[i]);
                t->plan_line = pd_wait_line_new(d, ev);
                pd_deploy_count(d);
                pd_wait_flush(d, t, 0);
                pd_wait_progress(d);
                return;
        }
        if ((ev->type != PD_EVT_ACTION_STARTED &&
             ev->type != PD_EVT_ACTION_FINISHED) ||
            !ev->action)
                return;
        pd_wait_running(d, ev);
        if (ev->type == PD_EVT_ACTION_FINISHED && !ev->retrying &&
            pd_strv_find(&t->finished, ev->action) < 0) {
                t->status = pd_xrealloc(t->status, (t->finished.cnt + 1) *
                                                       sizeof(*t->status));
                t->status[t->finished.cnt] = ev->status;
                pd_strv_add(&t->finished, ev->action);
                pd_deploy_count(d);
        }
        t->lines  = pd_xrealloc(t->lines, (t->line_cnt + 1) * sizeof(*t->lines));
        l         = &t->lines[t->line_cnt++];
        l->action = pd_xstrdup(ev->action);
        l->text   = pd_wait_line_new(d, ev);
        pd_wait_flush(d, t, 0);
        pd_wait_progress(d);
}

static int pd_deploy_complete(const pd_deploy_t *d) {
        for (size_t i = 0; i < d->trigger_cnt; i++) {
                const pd_trigger_t *t = &d->triggers[i];
                if (!t->planned)
                        return 0;
                for (size_t j = 0; j < t->actions.cnt; j++)
                        if (pd_strv_find(&t->finished, t->actions.v[j]) < 0)
                                return 0;
        }
        return 1;
}

/* The signal that ends a wait early (SIGINT, SIGTERM), 0 until one comes. */
static volatile sig_atomic_t pd_wait_signal;

static void pd_wait_on_signal(int sig) {
        pd_wait_signal = sig;
}

/* Appends s to fp, single-quoted for a shell if it needs to be. */
static void pd_wait_shell_word(FILE *fp, const char *s) {
        if (*s && !s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
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
static void pd_wait_left_behind(const pd_deploy_t *d) {
        const pd_cli_t *cli = d->cli;
        const char *brokers = NULL;
        size_t open = 0;

        for (size_t i = 0; i + 1 < cli->kafka_overrides.cnt; i += 2)
                if (!strcmp(cli->kafka_overrides.v[i], "bootstrap.servers"))
                        brokers = cli->kafka_overrides.v[i + 1];
        for (size_t i = 0; i < d->trigger_cnt; i++)
                open += !d->triggers[i].planned ||
                        d->triggers[i].finished.cnt <
                            d->triggers[i].actions.cnt;
        fprintf(stderr,
                "postdeploy %s: the actions keep running on the reactors; "
                "see them with:\n  postdeploy report",
                cli->cmd);
        for (size_t i = 0; open <= PD_WAIT_REPORT_TENANTS &&
                           i < d->trigger_cnt;
             i++) {
                const pd_trigger_t *t = &d->triggers[i];
                const char *tenant =
                    t->tenant ? t->tenant : cli->conf->default_tenant;

                if (t->planned && t->finished.cnt >= t->actions.cnt)
                        continue;
                fputs(" --tenant ", stderr);
                pd_wait_text(stderr, tenant);
        }
        if (cli->config_path) {
                fputs(" -c ", stderr);
                pd_wait_shell_word(stderr, cli->config_path);
        }
        if (brokers) {
                fputs(" -b ", stderr);
                pd_wait_shell_word(stderr, brokers);
        }
        fputc('\n', stderr);
}

/* Ends the status line and prints what was held back for its turn. */
static void pd_wait_finish(pd_deploy_t *d) {
        if (d->live)
                fputs("\r\033[K", stderr);
        d->live = 0;
        for (size_t i = 0; i < d->trigger_cnt; i++)
                pd_wait_flush(d, &d->triggers[i], 1);
}

/*
 * How the wait shows itself: a status line redrawn in place when stderr is
 * a terminal that can erase a line (TERM set and not "dumb"), red failures
 * when stdout is such a terminal and NO_COLOR (no-color.org) is unset or
 * empty. Anything else (a CI log, a pipe) gets plain lines only, never a
 * carriage return or an escape sequence.
 */
static void pd_wait_looks(pd_deploy_t *d) {
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
        d->color = capable && isatty(STDOUT_FILENO) &&
                   !(no_color && *no_color);
        /* A minute of silence is under every CI's no-output limit; the
         * variable is for the tests, which cannot wait that long. */
        d->heartbeat_ms = beat && atoll(beat) > 0 ? atoll(beat) : 60000;
}

static int pd_deploy_wait(pd_deploy_t *d, rd_kafka_t *rkc,
                          int64_t timeout_ms) {
        int64_t deadline = pd_now_ms() + timeout_ms;
        struct sigaction sa = {0}, old_int, old_term;
        char errstr[256], dur[32];
        int ret = PD_EXIT_OK;

        /* Ctrl-C ends the wait, not the actions: the handler only sets a
         * flag, and the loop says so before it exits. A signal ignored by
         * whoever started us (a shell's background job) stays ignored. */
        pd_wait_signal = 0;
        sa.sa_handler  = pd_wait_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, NULL, &old_int);
        sigaction(SIGTERM, NULL, &old_term);
        if (old_int.sa_handler != SIG_IGN)
                sigaction(SIGINT, &sa, NULL);
        if (old_term.sa_handler != SIG_IGN)
                sigaction(SIGTERM, &sa, NULL);
        d->quiet_since = pd_now_ms();
        pd_wait_progress(d);
        while (!pd_deploy_complete(d)) {
                rd_kafka_message_t *rkm;
                int64_t left = deadline - pd_now_ms();
                pd_event_t *ev;

                if (pd_wait_signal) {
                        pd_wait_finish(d);
                        pd_cli_error(d->cli,
                                     "interrupted (%s) while waiting; %zu "
                                     "of %zu action(s) had finished",
                                     strsignal(pd_wait_signal), d->done,
                                     d->total);
                        pd_wait_left_behind(d);
                        ret = 128 + pd_wait_signal;
                        goto done;
                }
                if (left <= 0) {
                        pd_wait_finish(d);
                        pd_wait_duration(timeout_ms, dur, sizeof(dur));
                        pd_cli_error(d->cli,
                                     "timed out after %s waiting for results "
                                     "(%zu/%zu done)",
                                     dur, d->done, d->total);
                        pd_wait_left_behind(d);
                        ret = PD_EXIT_TIMEOUT;
                        goto done;
                }
                /* Without a terminal nothing redraws a status line: a
                 * plain one after a quiet spell shows a CI job's log that
                 * the wait is alive, whether an action runs long or the
                 * reactors have not planned yet. */
                if (!d->live &&
                    pd_now_ms() - d->quiet_since >= d->heartbeat_ms) {
                        pd_wait_status(d, stderr);
                        fputc('\n', stderr);
                        d->quiet_since = pd_now_ms();
                }
                rkm = rd_kafka_consumer_poll(rkc, left < 100 ? (int)left : 100);
                if (!rkm) {
                        pd_wait_progress(d); /* the running time moves on */
                        continue;
                }
                if (rkm->err) {
                        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                pd_log(PD_LOG_DEBUG, "results: %s",
                                       rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                /* A forged SUCCEEDED must not end the wait with 0. */
                if (pd_results_check(d->cli, rkm)) {
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
                rd_kafka_message_destroy(rkm);
                if (ev)
                        pd_deploy_on_event(d, ev);
                pd_event_destroy(ev);
        }
        pd_wait_finish(d);
        printf("%zu action(s) finished, %zu failed\n", d->done, d->failed);
        ret = d->failed ? PD_EXIT_FAILED : PD_EXIT_OK;

done:
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return ret;
}

/* Adds the tenants listed in path, one per line. Returns 0 or -1. */
static int pd_tenants_file(pd_cli_t *cli, const char *path, pd_strv_t *out) {
        char line[512];
        int lineno = 0, ret = 0;
        FILE *fp   = fopen(path, "r");

        if (!fp) {
                pd_cli_error(cli, "--tenants-file %s: %s", path,
                             pd_strerror(errno));
                return -1;
        }
        while (fgets(line, sizeof(line), fp)) {
                char *s = line, *e;

                lineno++;
                s[strcspn(s, "#\r\n")] = '\0';
                while (*s == ' ' || *s == '\t')
                        s++;
                for (e = s + strlen(s); e > s && (e[-1] == ' ' ||
                                                  e[-1] == '\t');)
                        *--e = '\0';
                if (!*s)
                        continue;
                if (!pd_tenant_valid(s)) {
                        pd_cli_error(cli,
                                     "%s:%d: '%s' is not a valid tenant "
                                     "name",
                                     path, lineno, s);
                        ret = -1;
                        break;
                }
                if (pd_strv_find(out, s) < 0)
                        pd_strv_add(out, s);
        }
        fclose(fp);
        return ret;
}

/* Refuses names the newest registry does not know, when there is one. */
static int pd_request_check_names(pd_cli_t *cli, const pd_request_t *req,
                                  rd_kafka_t *rkc) {
        pd_event_t *reg = NULL;
        int ret;

        if (!req->names.cnt || req->no_check)
                return 0;
        if ((ret = pd_results_registry(cli, rkc, 30000, &reg)))
                return ret;
        if (!reg) {
                fprintf(stderr,
                        "postdeploy %s: warning: no reactor has published "
                        "its registry yet; the names are not checked\n",
                        cli->cmd);
                return 0;
        }
        for (size_t i = 0; i < req->names.cnt && !ret; i++) {
                const char *near = NULL;
                int near_d = 99, d;
                char *reactor, *near_text;
                size_t j;

                for (j = 0; j < reg->registry_cnt; j++)
                        if (!strcmp(reg->registry[j].id, req->names.v[i]))
                                break;
                if (j < reg->registry_cnt)
                        continue;
                for (j = 0; j < reg->registry_cnt; j++) {
                        d = pd_cli_near(req->names.v[i], reg->registry[j].id);
                        if (d >= 0 && d < near_d) {
                                near   = reg->registry[j].id;
                                near_d = d;
                        }
                }
                /* The names in the registry came from an event. */
                reactor   = pd_term_escape_dup(reg->reactor ? reg->reactor
                                                            : "");
                near_text = pd_term_escape_dup(near ? near : "");
                if (near)
                        pd_cli_error(cli,
                                     "unknown action '%s'; did you mean "
                                     "'%s'? (`postdeploy actions` lists "
                                     "them, --no-check sends it anyway)",
                                     req->names.v[i], near_text);
                else
                        pd_cli_error(cli,
                                     "unknown action '%s' (not in the "
                                     "registry reactor %s published; "
                                     "`postdeploy actions` lists them, "
                                     "--no-check sends it anyway)",
                                     req->names.v[i], reactor);
                free(reactor);
                free(near_text);
                ret = PD_EXIT_USAGE;
        }
        pd_event_destroy(reg);
        return ret;
}

/* Parses the options of deploy, skip and reset into req. Returns -1 to go
 * on, or the exit status to end with. */
static int pd_request_parse(pd_cli_t *cli, pd_request_t *req, int argc,
                            char **argv) {
        static const struct option longopts[] = {
            {"auto", no_argument, NULL, 'A'},
            {"all", no_argument, NULL, 'L'},
            {"all-pending", no_argument, NULL, 'P'},
            {"one", required_argument, NULL, 'O'},
            {"release", required_argument, NULL, 'r'},
            {"environment", required_argument, NULL, 'e'},
            {"tenant", required_argument, NULL, 't'},
            {"all-tenants", no_argument, NULL, 'T'},
            {"tenants-file", required_argument, NULL, 'F'},
            {"requested-by", required_argument, NULL, 'R'},
            {"wait", no_argument, NULL, 'w'},
            {"timeout", required_argument, NULL, 'W'},
            {"no-check", no_argument, NULL, 'N'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        int deploy = req->type == PD_EVT_RELEASE_DEPLOYED;
        int opt;

        optind = 1;
        while ((opt = getopt_long(argc, argv,
                                  ":r:e:t:w" PD_CLI_COMMON_SHORTOPTS, longopts,
                                  NULL)) != -1) {
                if (pd_cli_swallowed(cli, argv))
                        return PD_EXIT_USAGE;
                switch (opt) {
                case 'A':
                case 'O':
                case 'e':
                        if (!deploy)
                                goto only_deploy;
                        if (opt == 'e') {
                                if (!*optarg) {
                                        pd_cli_error(cli,
                                                     "--environment wants a "
                                                     "name, not ''");
                                        return PD_EXIT_USAGE;
                                }
                                req->environment = optarg;
                                break;
                        }
                        if (opt == 'A') {
                                req->selection = PD_SEL_AUTO;
                                req->selections++;
                                break;
                        }
                        if (req->selection != PD_SEL_ONE || !req->names.cnt)
                                req->selections++;
                        req->selection = PD_SEL_ONE;
                        pd_strv_add(&req->names, optarg);
                        break;
                case 'L':
                        if (deploy) {
                                req->selection = PD_SEL_ALL;
                                req->selections++;
                        } else if (req->type == PD_EVT_RESET_REQUESTED) {
                                req->all = 1;
                        } else {
                                pd_cli_error(cli, "--all: did you mean "
                                                  "--all-pending?");
                                return PD_EXIT_USAGE;
                        }
                        break;
                case 'P':
                        if (req->type != PD_EVT_SKIP_REQUESTED) {
                                pd_cli_error(cli, "--all-pending is for "
                                                  "`postdeploy skip`");
                                return PD_EXIT_USAGE;
                        }
                        req->all = 1;
                        break;
                case 'r':
                        req->release = optarg;
                        break;
                case 't':
                        /* Twice the same tenant is one deploy, as in a
                         * tenants file or [cli] tenants. */
                        if (pd_strv_find(&req->tenants, optarg) < 0)
                                pd_strv_add(&req->tenants, optarg);
                        break;
                case 'T':
                        req->all_tenants = 1;
                        break;
                case 'F':
                        req->tenants_file = optarg;
                        break;
                case 'R':
                        if (!*optarg) {
                                pd_cli_error(cli, "--requested-by wants a "
                                                  "name, not ''");
                                return PD_EXIT_USAGE;
                        }
                        req->requested_by = optarg;
                        break;
                case 'w':
                        req->wait = 1;
                        break;
                case 'N':
                        req->no_check = 1;
                        break;
                case 'W':
                        if (pd_duration_parse(optarg, &req->timeout_ms) ||
                            req->timeout_ms <= 0) {
                                pd_cli_error(cli,
                                             "--timeout: '%s' is not a "
                                             "duration (500ms, 30s, 5m, 1h)",
                                             optarg);
                                return PD_EXIT_USAGE;
                        }
                        req->timeout = optarg;
                        break;
                case 'h':
                        pd_request_usage(req->type, stdout);
                        return PD_EXIT_OK;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                return PD_EXIT_USAGE;
                        break;
                }
        }
        for (; optind < argc; optind++) {
                if (deploy && (req->selection != PD_SEL_ONE ||
                               !req->names.cnt)) {
                        pd_cli_error(cli, "unexpected argument '%s'",
                                     argv[optind]);
                        return PD_EXIT_USAGE;
                }
                pd_strv_add(&req->names, argv[optind]);
        }
        if (deploy && req->selections != 1) {
                pd_cli_error(cli, "give exactly one of --auto, --all or "
                                  "--one NAME...\nTry 'postdeploy deploy "
                                  "--help'.");
                return PD_EXIT_USAGE;
        }
        if (!deploy && !req->all == !req->names.cnt) {
                pd_cli_error(cli, "give action names or %s, not both nor "
                                  "neither",
                             req->type == PD_EVT_SKIP_REQUESTED
                                 ? "--all-pending"
                                 : "--all");
                return PD_EXIT_USAGE;
        }
        if (req->timeout && !req->wait) {
                pd_cli_error(cli, "--timeout %s is how long --wait waits: "
                                  "add --wait, or drop --timeout",
                             req->timeout);
                return PD_EXIT_USAGE;
        }
        if (deploy && (!req->release || !*req->release)) {
                pd_cli_error(cli, "--release V is required");
                return PD_EXIT_USAGE;
        }
        /* The reactor dead-letters such a release; refusing it here tells
         * the pipeline at once instead. */
        if (req->release && (deploy || *req->release) &&
            !pd_release_valid(req->release)) {
                pd_cli_error(cli, "'%s' is not a valid release (" PD_RELEASE_RULE
                                  ")",
                             req->release);
                return PD_EXIT_USAGE;
        }
        for (size_t i = 0; i < req->names.cnt; i++)
                if (!pd_action_name_valid(req->names.v[i])) {
                        pd_cli_error(cli, "'%s' is not a valid action name",
                                     req->names.v[i]);
                        return PD_EXIT_USAGE;
                }
        return -1;

only_deploy:
        pd_cli_error(cli, "%s is an option of `postdeploy deploy`",
                     opt == 'A' ? "--auto" : opt == 'O' ? "--one"
                                                        : "--environment");
        return PD_EXIT_USAGE;
}

/* Settles the tenant list: --tenant, --all-tenants, --tenants-file. */
static int pd_request_tenants(pd_cli_t *cli, pd_request_t *req) {
        if (req->all_tenants) {
                if (!cli->conf->tenants.cnt) {
                        pd_cli_error(cli, "--all-tenants needs [cli] "
                                          "tenants = ... in the config "
                                          "(-c FILE)");
                        return -1;
                }
                for (size_t i = 0; i < cli->conf->tenants.cnt; i++)
                        if (pd_strv_find(&req->tenants,
                                         cli->conf->tenants.v[i]) < 0)
                                pd_strv_add(&req->tenants,
                                            cli->conf->tenants.v[i]);
        }
        if (req->tenants_file &&
            pd_tenants_file(cli, req->tenants_file, &req->tenants))
                return -1;
        if ((req->all_tenants || req->tenants_file) && !req->tenants.cnt) {
                pd_cli_error(cli, "no tenants listed");
                return -1;
        }
        for (size_t i = 0; i < req->tenants.cnt; i++)
                if (!pd_tenant_valid(req->tenants.v[i])) {
                        pd_cli_error(cli,
                                     "'%s' is not a valid tenant name (1-63 "
                                     "of A-Z a-z 0-9 _ . -, not starting "
                                     "with . or -)",
                                     req->tenants.v[i]);
                        return -1;
                }
        return 0;
}

/* The event for one tenant (NULL: the reactor's default tenant). */
static pd_event_t *pd_request_event(const pd_request_t *req,
                                    const char *tenant, const char *who) {
        pd_event_t *ev = pd_event_new(req->type);

        ev->tenant       = tenant ? pd_xstrdup(tenant) : NULL;
        ev->release      = pd_xstrdup(req->release);
        ev->requested_by = pd_xstrdup(who);
        for (size_t j = 0; j < req->names.cnt; j++)
                pd_strv_add(&ev->actions, req->names.v[j]);
        if (req->type == PD_EVT_RELEASE_DEPLOYED) {
                ev->environment = pd_xstrdup(req->environment);
                ev->selection   = req->selection;
                ev->deployed_at = pd_now_ms();
        } else {
                ev->all_pending  = req->all;
                ev->requested_at = pd_now_ms();
        }
        return ev;
}

static int pd_request_send(pd_cli_t *cli, pd_request_t *req) {
        static const char *const producer_defaults[] = {
            "enable.idempotence", "true",
            "linger.ms", "0",
            /* Unreachable brokers fail the publish instead of hanging. */
            "message.timeout.ms", "15000",
            NULL};
        pd_deploy_t d   = {.cli = cli};
        rd_kafka_t *rkp = NULL, *rkc = NULL;
        rd_kafka_conf_t *kconf;
        char errstr[512], who[300], source[300], host[200];
        int ret = PD_EXIT_USAGE;

        /* A --wait shorter than the wait for a first answer would be
         * ignored while no broker answers. */
        if (req->wait)
                pd_cli_connect_within(cli, req->timeout_ms);
        if (pd_cli_finish(cli) || pd_request_tenants(cli, req))
                goto done;
        if (!req->environment)
                req->environment = getenv("POSTDEPLOY_ENVIRONMENT");
        if (!req->environment || !*req->environment)
                req->environment = "production";
        if (gethostname(host, sizeof(host)))
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if (!req->requested_by) {
                const char *user = getenv("USER");
                struct passwd *pw;

                /* cron and some CI runners leave $USER unset: the account
                 * still has a name. */
                if ((!user || !*user) && (pw = getpwuid(getuid())))
                        user = pw->pw_name;
                snprintf(who, sizeof(who), "%s@%s",
                         user && *user ? user : "unknown", host);
                req->requested_by = who;
        }
        snprintf(source, sizeof(source), "postdeploy-cli/%s", host);

        kconf = pd_kafka_conf(cli->conf, producer_defaults, cli->brokers,
                              errstr, sizeof(errstr));
        if (!kconf) {
                pd_cli_error(cli, "%s", errstr);
                goto done;
        }
        rd_kafka_conf_set_dr_msg_cb(kconf, pd_deploy_dr_cb);
        rd_kafka_conf_set_opaque(kconf, &d);
        rkp = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
        if (!rkp) {
                rd_kafka_conf_destroy(kconf);
                pd_cli_error(cli, "%s", errstr);
                goto done;
        }
        /* The topics are made here too, so that the first deploy can
         * come before the first reactor, with the right settings. */
        if ((ret = pd_cli_connect(cli, rkp, 1)))
                goto done;
        ret = PD_EXIT_KAFKA;
        if (req->wait || (req->names.cnt && !req->no_check)) {
                if (!(rkc = pd_results_consumer(cli)))
                        goto done;
                if ((ret = pd_request_check_names(cli, req, rkc)))
                        goto done;
                ret = PD_EXIT_KAFKA;
        }
        if (req->wait && pd_deploy_follow(&d, rkc))
                goto done;

        /* One event per tenant: each is its own trigger, keyed by tenant so
         * a tenant's events stay in order. */
        d.trigger_cnt = req->tenants.cnt ? req->tenants.cnt : 1;
        d.triggers    = pd_xcalloc(d.trigger_cnt, sizeof(*d.triggers));
        for (size_t i = 0; i < d.trigger_cnt; i++) {
                const char *tenant = req->tenants.cnt ? req->tenants.v[i]
                                                      : NULL;
                pd_event_t *ev = pd_request_event(req, tenant,
                                                  req->requested_by);
                rd_kafka_resp_err_t err;

                pd_event_stamp(ev, source);
                d.triggers[i].ce_id  = pd_xstrdup(ev->ce_id);
                d.triggers[i].tenant = tenant ? pd_xstrdup(tenant) : NULL;
                err = pd_event_produce_signed(
                    rkp, cli->conf->topic_events,
                    tenant ? tenant : cli->conf->default_tenant, ev,
                    cli->secret, cli->secret_len, NULL, errstr, sizeof(errstr));
                if (!err)
                        printf("published %s %s for tenant %s\n",
                               pd_evtype_name(ev->type), ev->ce_id,
                               tenant ? tenant : "(default)");
                pd_event_destroy(ev);
                if (err) {
                        pd_cli_error(cli, "cannot publish: %s", errstr);
                        goto done;
                }
        }
        /* A failed flush drops what it could not write, and errno with it:
         * the reason must be kept now for the message at exit. */
        if (fflush(stdout))
                pd_cli_out_error(errno);
        if (rd_kafka_flush(rkp, 20000) || d.delivery_failed) {
                pd_cli_error(cli, "publish to %s failed: %s",
                             cli->conf->topic_events,
                             d.delivery_failed ? d.delivery_error
                                               : "timed out");
                goto done;
        }
        if (!req->wait) {
                ret = PD_EXIT_OK;
                goto done;
        }
        pd_wait_looks(&d);
        ret   = pd_deploy_wait(&d, rkc, req->timeout_ms);

done:
        for (size_t i = 0; i < d.trigger_cnt; i++) {
                free(d.triggers[i].tenant);
                free(d.triggers[i].ce_id);
                pd_strv_clear(&d.triggers[i].actions);
                pd_strv_clear(&d.triggers[i].finished);
                free(d.triggers[i].status);
                free(d.triggers[i].plan_line);
                for (size_t j = 0; j < d.triggers[i].line_cnt; j++) {
                        free(d.triggers[i].lines[j].action);
                        free(d.triggers[i].lines[j].text);
                }
                free(d.triggers[i].lines);
        }
        free(d.triggers);
        for (size_t i = 0; i < d.running_cnt; i++) {
                free(d.running[i].tenant);
                free(d.running[i].action);
        }
        free(d.running);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        if (rkp)
                rd_kafka_destroy(rkp);
        return ret;
}

static int pd_request_cmd(pd_cli_t *cli, pd_evtype_t type, int argc,
                          char **argv) {
        pd_request_t req = {.type = type, .timeout_ms = 30 * 60 * 1000};
        int ret          = pd_request_parse(cli, &req, argc, argv);

        if (ret < 0)
                ret = pd_request_send(cli, &req);
        pd_strv_clear(&req.names);
        pd_strv_clear(&req.tenants);
        return ret;
}

int pd_cmd_deploy(pd_cli_t *cli, int argc, char **argv) {
        return pd_request_cmd(cli, PD_EVT_RELEASE_DEPLOYED, argc, argv);
}

int pd_cmd_skip(pd_cli_t *cli, int argc, char **argv) {
        return pd_request_cmd(cli, PD_EVT_SKIP_REQUESTED, argc, argv);
}

int pd_cmd_reset(pd_cli_t *cli, int argc, char **argv) {
        return pd_request_cmd(cli, PD_EVT_RESET_REQUESTED, argc, argv);
}
