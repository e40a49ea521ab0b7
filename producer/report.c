/*
 * report.c - `postdeploy report`: every action's state per tenant, read from
 * the results topic rather than from any reactor's disk, so it works from
 * any machine and with any number of reactors.
 *
 * The command and the table printer; what each row is and says is the
 * model's (report_model.c), the JSON printer is report_json.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "producer/cli.h"
#include "producer/report_model.h"
#include "producer/results.h"
#include "producer/term.h"
#include "schemas/event.h"

static void report_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: postdeploy report [--tenant T]... [--format "
            "table|json] [options]\n"
            "\n"
            "Shows, per tenant: pending auto actions, pending manual "
            "actions, running,\n"
            "failed (with exit code, error and the end of the output) "
            "and completed\n"
            "(newest first). Read from the results topic, so it works "
            "from any machine.\n"
            "Pending is what the reactor runs on the next deploy: "
            "never run, reset, or\n"
            "left out because a dependency failed (with the reason). "
            "Text that came from\n"
            "an event or an action's output is shown with control "
            "characters escaped\n"
            "(\\x1b); --format json keeps it exact. A run waiting for its "
            "action's\n"
            "concurrency is shown as queued with the running ones, and a "
            "running action\n"
            "that reports its progress with the newest it reported.\n"
            "\n"
            "Options:\n"
            "  -t, --tenant T       only this tenant (repeatable); "
            "default every tenant\n"
            "                       seen in the results and listed in "
            "[cli] tenants\n"
            "  -f, --format F       table (default) or json: one array "
            "with an object per\n"
            "                       (tenant, action)\n"
            "      --timeout D      how long to read (default 60s)\n" PD_CLI_COMMON_HELP
            "\n"
            "Exit status: 0 shown; 1 a tenant named with --tenant has "
            "no results (said on\n"
            "stderr with the tenants that have; the others are "
            "shown), or the output could\n"
            "not be written; 2 usage or configuration error; 4 Kafka "
            "unreachable.\n");
}

/* Keeps the newest result of each (tenant, action), and the newest
 * registry. */
static void report_on_event(pd_event_t *ev, void *opaque) {
        pd_report_add(opaque, ev);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *fmt_time(int64_t ms, char *buf, size_t size) {
        if (ms <= 0)
                snprintf(buf, size, "-");
        else
                pd_time_format(ms, buf, size);
        return buf;
}


/* Writes the n bytes at s to stdout with control characters made visible:
 * everything the table shows that came from an event or an action's
 * output goes through here (or print_text). */
static void print_escaped(const char *s, size_t n) {
        if (pd_term_escape(s, n, stdout))
                pd_cli_out_error(errno);
}

static void print_text(const char *s) {
        if (s)
                print_escaped(s, strlen(s));
}

/* s escaped, then blanks up to width columns (at least one). */
static void print_column(const char *s, int width) {
        size_t n = strlen(s);

        print_escaped(s, n);
        printf("%*s", n < (size_t)width ? width - (int)n + 1 : 1, "");
}

/* ", release R" when the result names one: a skip or a reset may carry
 * none, and "release ," tells nothing. */
static void print_release(const pd_result_t *res, const char *sep) {
        if (!res->release || !*res->release)
                return;
        printf("%srelease ", sep);
        print_text(res->release);
}

static void print_output_tail(const char *tail) {
        const char *p = tail;
        int lines     = 0;

        if (!tail || !*tail)
                return;
        /* The last 10 lines are enough to see why; --format json has all. */
        for (const char *q = tail + strlen(tail); q > tail; q--)
                if (q[-1] == '\n' && q[0] && ++lines == 10) {
                        p = q;
                        break;
                }
        while (*p) {
                size_t n = strcspn(p, "\n");
                printf("        | ");
                print_escaped(p, n);
                printf("\n");
                p += n + (p[n] == '\n');
        }
}

/* Prints one row of a section. */
static void report_table_row(const pd_report_t *rp, const pd_row_t *row) {
        const pd_result_t *res = row->res;
        const char *desc       = row->reg ? row->reg->description : NULL;
        const pd_result_progress_t *pg;
        char t1[40], num[64];

        printf("    ");
        if (row->state == PD_STATE_PENDING) {
                /* Never ran, reset, or left out for a failed dependency:
                 * the reason says which. */
                print_column(row->action, 32);
                print_text(desc);
                printf("\n");
                if (res && res->error) {
                        printf("        reason: ");
                        print_text(res->error);
                        printf(" (%s",
                               fmt_time(res->finished_at, t1, sizeof(t1)));
                        print_release(res, ", ");
                        printf(")\n");
                }
                return;
        }
        if (row->state == PD_STATE_RUNNING || row->state == PD_STATE_QUEUED) {
                print_column(row->action, 32);
                printf("%ssince %s, attempt %d, on ",
                       row->state == PD_STATE_QUEUED ? "queued " : "",
                       fmt_time(res->started_at, t1, sizeof(t1)),
                       (int)res->attempt);
                print_text(res->reactor);
                print_release(res, " (");
                printf("%s\n", res->release && *res->release ? ")" : "");
                if ((pg = pd_report_progress(rp, row))) {
                        pd_progress_text(pg->done, pg->total, num, sizeof(num));
                        printf("        progress: %s at %s\n", num,
                               fmt_time(pg->at, t1, sizeof(t1)));
                }
                return;
        }
        print_column(row->action, 32);
        printf("%-11s %s", pd_state_name(row->state),
               fmt_time(res->finished_at, t1, sizeof(t1)));
        if (pd_result_is_verdict(res)) {
                /* A request was recorded, nothing ran: no attempt, no
                 * duration, and its error is the request's reason. */
                print_release(res, "  ");
                printf("\n");
                if (res->error) {
                        printf("        reason: ");
                        print_text(res->error);
                        printf("\n");
                }
                return;
        }
        print_release(res, "  ");
        printf("%sattempt %d, %" PRId64 " ms",
               res->release && *res->release ? ", " : "  ", (int)res->attempt,
               res->duration_ms);
        if (res->has_exit_code && res->exit_code)
                printf(", exit %d", (int)res->exit_code);
        printf("\n");
        if (row->state != PD_STATE_SUCCEEDED) {
                if (res->error) {
                        printf("        error: ");
                        print_text(res->error);
                        printf("\n");
                }
                print_output_tail(res->output_tail);
        }
}

/* The title of each section (report_model.h), in the table's order. */
static const char *const section_titles[PD_SECTION_CNT] = {
    "Pending auto", "Pending manual", "Running",
    "Failed",       "Completed",      "Unavailable (no longer registered)"};

/* Prints the rows of tenant t in section under its title; the unavailable
 * section only when it has rows. */
static void report_table_section(const pd_report_t *rp, size_t t,
                                 pd_section_t section) {
        const pd_row_t **sel;
        size_t cnt = pd_report_section_rows(rp, t, section, &sel);

        if (cnt || section != PD_SECTION_UNAVAILABLE) {
                printf("  %s (%zu)\n", section_titles[section], cnt);
                for (size_t i = 0; i < cnt; i++)
                        report_table_row(rp, sel[i]);
        }
        free(sel);
}

/*
 * Says on stderr which tenants named with --tenant have no results, with
 * the tenants that have (the first ten), so a typo is seen as one. Returns
 * whether there were any.
 */
static int report_say_missing(pd_report_t *rp) {
        const char **known;
        size_t cnt = 0, shown = 0, it = 0;
        void *res;

        if (!rp->missing.cnt)
                return 0;
        known = pd_xcalloc(pd_map_count(rp->results) + 1, sizeof(*known));
        while (pd_map_next(rp->results, &it, NULL, NULL, &res))
                known[cnt++] = ((pd_result_t *)res)->tenant;
        qsort(known, cnt, sizeof(*known), cmp_str);
        for (size_t i = 0; i < cnt; i++)
                if (!shown || strcmp(known[shown - 1], known[i]))
                        known[shown++] = known[i];
        for (size_t m = 0; m < rp->missing.cnt; m++) {
                fprintf(stderr,
                        "postdeploy report: no results for tenant '%s' (",
                        rp->missing.v[m]);
                if (!shown)
                        fprintf(stderr, "no tenant has results yet");
                for (size_t i = 0; i < shown && i < 10; i++)
                        fprintf(stderr, "%s%s",
                                i ? ", " : "known tenants: ", known[i]);
                if (shown > 10)
                        fprintf(stderr, ", ... %zu more", shown - 10);
                fprintf(stderr, ")\n");
        }
        free(known);
        return 1;
}

static void report_table(pd_report_t *rp) {
        if (!rp->registry)
                printf(
                    "No registry.published on %s yet: has a reactor "
                    "started?\n",
                    rp->cli->conf->topic_results);
        if (!rp->tenants.cnt) {
                /* Tenants named but not found are said on stderr. */
                if (!rp->missing.cnt)
                        printf(
                            "No tenant has results yet (name one with "
                            "--tenant T).\n");
                return;
        }
        for (size_t t = 0; t < rp->tenants.cnt; t++) {
                const char *by = pd_report_paused_by(rp, rp->tenants.v[t]);

                printf("%sTenant %s\n", t ? "\n" : "", rp->tenants.v[t]);
                if (by) {
                        fputs("  paused by ", stdout);
                        pd_term_escape(by, strlen(by), stdout);
                        fputs(": new runs wait for `postdeploy resume`\n",
                              stdout);
                }
                for (int sec = 0; sec < PD_SECTION_CNT; sec++)
                        report_table_section(rp, t, (pd_section_t)sec);
        }
}

int pd_cmd_report(pd_cli_t *cli, int argc, char **argv) {
        static const struct option longopts[] = {
            {"tenant", required_argument, NULL, 't'},
            {"format", required_argument, NULL, 'f'},
            {"timeout", required_argument, NULL, 'W'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        pd_report_t *rp = pd_report_new(cli);
        int json = 0, opt, ret = PD_EXIT_USAGE;
        int64_t timeout_ms = 60000;
        rd_kafka_t *rkc    = NULL;

        optind = 1;
        while ((opt = getopt_long(argc, argv, ":t:f:" PD_CLI_COMMON_SHORTOPTS,
                                  longopts, NULL)) != -1) {
                if (pd_cli_swallowed(cli, argv))
                        goto done;
                switch (opt) {
                case 't':
                        if (!pd_tenant_valid(optarg)) {
                                pd_cli_error(cli,
                                             "'%s' is not a valid tenant "
                                             "name",
                                             optarg);
                                goto done;
                        }
                        pd_report_only(rp, optarg);
                        break;
                case 'f':
                        if (!strcmp(optarg, "json"))
                                json = 1;
                        else if (!strcmp(optarg, "table"))
                                json = 0;
                        else {
                                pd_cli_error(cli,
                                             "--format: 'table' or 'json', "
                                             "not '%s'",
                                             optarg);
                                goto done;
                        }
                        break;
                case 'W':
                        if (pd_duration_parse(optarg, &timeout_ms) ||
                            timeout_ms <= 0) {
                                pd_cli_error(cli,
                                             "--timeout: '%s' is not a "
                                             "duration",
                                             optarg);
                                goto done;
                        }
                        break;
                case 'h':
                        report_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                goto done;
                        break;
                }
        }
        if (pd_cli_no_operands(cli, argc, argv))
                goto done;
        pd_cli_connect_within(cli, timeout_ms);
        if (!(rkc = pd_cli_results_open(cli, &ret)))
                goto done;
        if ((ret = pd_results_scan_latest(cli, rkc, &rp->only, timeout_ms,
                                          report_on_event, rp)))
                goto done;
        pd_report_build(rp);
        /* A report cut short must not exit 0: main says why it failed. */
        if (json && pd_report_json(rp, 0, rp->row_cnt, stdout)) {
                ret = PD_EXIT_FAILED;
                goto done;
        }
        if (!json)
                report_table(rp);
        /* In the table, not only on stderr: whoever reads the report must
         * know that someone wrote records the reactors did not sign. */
        if (!json && cli->rejected)
                printf(
                    "\n%zu record(s) on %s rejected (not signed with "
                    "[cli] signing_key): not in this report\n",
                    cli->rejected, cli->conf->topic_results);
        if (rp->missing.cnt) {
                /* The read above kept only the tenants named: to name
                 * those that have results beside a typo, this error path
                 * reads them all again, the results being swapped for the
                 * full set (the rows are printed and point at nothing
                 * report_say_missing reads). */
                pd_report_t *all = pd_report_new(cli);
                pd_map_t *named  = rp->results;

                if (!pd_results_scan_latest(cli, rkc, NULL, timeout_ms,
                                            report_on_event, all)) {
                        rp->results  = all->results;
                        all->results = named;
                }
                pd_report_destroy(all);
        }
        ret = report_say_missing(rp) ? PD_EXIT_FAILED : PD_EXIT_OK;

done:
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        pd_report_destroy(rp);
        return ret;
}
