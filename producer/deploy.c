/*
 * deploy.c - `postdeploy deploy`: publishes one release.deployed per tenant
 * and, with --wait, follows the results topic until every action the
 * reactors planned for those events has a final outcome.
 *
 * The wait starts reading the results topic at its end offsets taken
 * *before* publishing, so no result can slip past, however fast the reactor.
 * What a reactor will run is only known to it (pending depends on its
 * state): it says so in a deploy.planned per event, and each planned action
 * then ends with exactly one action.finished whose `retrying` is false.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka.h"
#include "common/log.h"
#include "producer/cli.h"
#include "schemas/event.h"

/* One published event and what became of it. Results travel keyed by
 * tenant/action and the plan keyed by tenant, so they can arrive in any
 * order: outcomes are kept whether or not the plan has been seen yet. */
typedef struct pd_trigger_s {
        char *tenant;       /* as shown; the reactor's default if NULL */
        char *ce_id;
        int planned;
        pd_strv_t actions;  /* planned */
        pd_strv_t finished; /* actions with a final outcome */
        pd_status_t *status; /* per finished action */
} pd_trigger_t;

typedef struct pd_deploy_s {
        pd_cli_t *cli;
        pd_trigger_t *triggers;
        size_t trigger_cnt;
        int delivery_failed;
        char delivery_error[256];
        int tty;
        size_t total, done, failed; /* over planned actions */
} pd_deploy_t;

static void pd_deploy_usage(FILE *fp) {
        fprintf(fp,
                "Usage: postdeploy deploy (--auto | --all | --one NAME...) "
                "--release V [options]\n"
                "\n"
                "Publishes a release.deployed event per tenant; the reactors "
                "run the selected\n"
                "actions. Exactly one selection:\n"
                "      --auto            pending auto actions\n"
                "      --all             pending auto and manual actions\n"
                "      --one NAME...     the named actions, whatever their "
                "state (the way to\n"
                "                        re-run); repeatable, and any "
                "further arguments are names\n"
                "\n"
                "Options:\n"
                "  -r, --release V       the release deployed (required)\n"
                "  -e, --environment E   the environment (default "
                "$POSTDEPLOY_ENVIRONMENT or\n"
                "                        \"production\")\n"
                "  -t, --tenant T        a tenant (repeatable); without it "
                "the reactor's\n"
                "                        default tenant\n"
                "      --all-tenants     every tenant of [cli] tenants in "
                "the config\n"
                "      --requested-by W  who asks (default $USER@host)\n"
                "  -w, --wait            wait until every selected action "
                "has finished; the exit\n"
                "                        status then says how they went\n"
                "      --timeout D       how long --wait waits (default 30m; "
                "500ms, 30s, 5m, 1h)\n" PD_CLI_COMMON_HELP
                "\n"
                "Exit status: 0 published (with --wait: every action "
                "succeeded); 1 an action\n"
                "failed, timed out or was rejected; 2 usage or "
                "configuration error; 3 --wait\n"
                "timed out; 4 Kafka could not be reached or the publish "
                "failed.\n");
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

static void pd_deploy_progress(pd_deploy_t *d) {
        if (!d->tty)
                return;
        fprintf(stderr, "\r\033[K[%zu/%zu done", d->done, d->total);
        if (d->failed)
                fprintf(stderr, ", %zu failed", d->failed);
        fprintf(stderr, "]");
        fflush(stderr);
}

/* Prints a line on stdout, keeping the progress line intact. */
static void pd_deploy_say(pd_deploy_t *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void pd_deploy_say(pd_deploy_t *d, const char *fmt, ...) {
        va_list ap;

        if (d->tty)
                fprintf(stderr, "\r\033[K");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fflush(stdout);
        pd_deploy_progress(d);
}

static void pd_deploy_on_event(pd_deploy_t *d, const pd_event_t *ev) {
        pd_trigger_t *t = pd_deploy_trigger(d, ev->trigger_id);

        if (!t)
                return;
        if (ev->type == PD_EVT_DEPLOY_PLANNED && !t->planned) {
                t->planned = 1;
                if (!t->tenant)
                        t->tenant = strdup(ev->tenant);
                for (size_t i = 0; i < ev->actions.cnt; i++)
                        pd_strv_add(&t->actions, ev->actions.v[i]);
                pd_deploy_count(d);
                pd_deploy_say(d, "%s: %zu action(s) to run for release %s\n",
                              ev->tenant, t->actions.cnt, ev->release);
        } else if (ev->type == PD_EVT_ACTION_FINISHED) {
                char detail[64] = "";

                if (ev->has_exit_code && ev->exit_code)
                        snprintf(detail, sizeof(detail), " (exit %d)",
                                 (int)ev->exit_code);
                if (!ev->retrying &&
                    pd_strv_find(&t->finished, ev->action) < 0) {
                        t->status = realloc(t->status, (t->finished.cnt + 1) *
                                                           sizeof(*t->status));
                        if (!t->status)
                                abort();
                        t->status[t->finished.cnt] = ev->status;
                        pd_strv_add(&t->finished, ev->action);
                        pd_deploy_count(d);
                }
                pd_deploy_say(d, "%s: %-30s %s%s in %" PRId64 " ms%s%s%s\n",
                              ev->tenant, ev->action,
                              pd_status_name(ev->status), detail,
                              ev->duration_ms, ev->error ? ": " : "",
                              ev->error ? ev->error : "",
                              ev->retrying ? " (will retry)" : "");
        }
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

static int pd_deploy_wait(pd_deploy_t *d, rd_kafka_t *rkc,
                          int64_t timeout_ms) {
        int64_t deadline = pd_now_ms() + timeout_ms;
        char errstr[256];

        pd_deploy_progress(d);
        while (!pd_deploy_complete(d)) {
                rd_kafka_message_t *rkm;
                int64_t left = deadline - pd_now_ms();
                pd_event_t *ev;

                if (left <= 0) {
                        if (d->tty)
                                fprintf(stderr, "\n");
                        pd_cli_error(d->cli,
                                     "timed out after %" PRId64
                                     " ms waiting for results (%zu/%zu "
                                     "done)",
                                     timeout_ms, d->done, d->total);
                        return PD_EXIT_TIMEOUT;
                }
                rkm = rd_kafka_consumer_poll(rkc, left < 200 ? (int)left : 200);
                if (!rkm)
                        continue;
                if (rkm->err) {
                        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                pd_log(PD_LOG_DEBUG, "results: %s",
                                       rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                ev = pd_event_from_message(rkm, errstr, sizeof(errstr));
                rd_kafka_message_destroy(rkm);
                if (ev)
                        pd_deploy_on_event(d, ev);
                pd_event_destroy(ev);
        }
        if (d->tty)
                fprintf(stderr, "\n");
        printf("%zu action(s) finished, %zu failed\n", d->done, d->failed);
        return d->failed ? PD_EXIT_FAILED : PD_EXIT_OK;
}

int pd_cmd_deploy(pd_cli_t *cli, int argc, char **argv) {
        static const struct option longopts[] = {
            {"auto", no_argument, NULL, 'A'},
            {"all", no_argument, NULL, 'L'},
            {"one", required_argument, NULL, 'O'},
            {"release", required_argument, NULL, 'r'},
            {"environment", required_argument, NULL, 'e'},
            {"tenant", required_argument, NULL, 't'},
            {"all-tenants", no_argument, NULL, 'T'},
            {"requested-by", required_argument, NULL, 'R'},
            {"wait", no_argument, NULL, 'w'},
            {"timeout", required_argument, NULL, 'W'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        static const char *const producer_defaults[] = {
            "enable.idempotence", "true",
            "linger.ms", "0",
            /* Unreachable brokers fail the publish instead of hanging. */
            "message.timeout.ms", "15000",
            NULL};
        static const char *const consumer_defaults[] = {
            "enable.auto.commit", "false",
            "enable.partition.eof", "false",
            "group.id", "postdeploy-cli-wait", /* never joins nor commits */
            NULL};
        pd_deploy_t d      = {.cli = cli};
        pd_strv_t names    = {0};
        pd_strv_t tenants  = {0};
        const char *release = NULL, *environment = NULL, *requested_by = NULL;
        int selections = 0, wait = 0, all_tenants = 0, opt, r;
        int ret = PD_EXIT_USAGE;
        pd_selection_t selection = PD_SEL_AUTO;
        int64_t timeout_ms = 30 * 60 * 1000;
        rd_kafka_t *rkp = NULL, *rkc = NULL;
        char errstr[512], who[300], source[300], host[200];

        optind = 1;
        while ((opt = getopt_long(argc, argv, "r:e:t:w" PD_CLI_COMMON_SHORTOPTS,
                                  longopts, NULL)) != -1) {
                switch (opt) {
                case 'A':
                        selection = PD_SEL_AUTO;
                        selections++;
                        break;
                case 'L':
                        selection = PD_SEL_ALL;
                        selections++;
                        break;
                case 'O':
                        if (selection != PD_SEL_ONE || !names.cnt)
                                selections++;
                        selection = PD_SEL_ONE;
                        pd_strv_add(&names, optarg);
                        break;
                case 'r':
                        release = optarg;
                        break;
                case 'e':
                        environment = optarg;
                        break;
                case 't':
                        pd_strv_add(&tenants, optarg);
                        break;
                case 'T':
                        all_tenants = 1;
                        break;
                case 'R':
                        requested_by = optarg;
                        break;
                case 'w':
                        wait = 1;
                        break;
                case 'W':
                        if (pd_duration_parse(optarg, &timeout_ms) ||
                            timeout_ms <= 0) {
                                pd_cli_error(cli,
                                             "--timeout: '%s' is not a "
                                             "duration (500ms, 30s, 5m, 1h)",
                                             optarg);
                                goto done;
                        }
                        break;
                case 'h':
                        pd_deploy_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        if ((r = pd_cli_common_opt(cli, opt, optarg)) == 1)
                                break;
                        if (!r)
                                fprintf(stderr, "Try 'postdeploy deploy "
                                                "--help'.\n");
                        goto done;
                }
        }
        for (; optind < argc; optind++) {
                if (selection != PD_SEL_ONE || !names.cnt) {
                        pd_cli_error(cli, "unexpected argument '%s'",
                                     argv[optind]);
                        goto done;
                }
                pd_strv_add(&names, argv[optind]);
        }
        if (selections != 1) {
                pd_cli_error(cli, "give exactly one of --auto, --all or "
                                  "--one NAME...\nTry 'postdeploy deploy "
                                  "--help'.");
                goto done;
        }
        if (!release || !*release) {
                pd_cli_error(cli, "--release V is required");
                goto done;
        }
        for (size_t i = 0; i < names.cnt; i++)
                if (!pd_action_name_valid(names.v[i])) {
                        pd_cli_error(cli, "'%s' is not a valid action name",
                                     names.v[i]);
                        goto done;
                }
        if (pd_cli_finish(cli))
                goto done;
        if (all_tenants) {
                if (!cli->conf->tenants.cnt) {
                        pd_cli_error(cli, "--all-tenants needs [cli] "
                                          "tenants = ... in the config "
                                          "(-c FILE)");
                        goto done;
                }
                for (size_t i = 0; i < cli->conf->tenants.cnt; i++)
                        if (pd_strv_find(&tenants, cli->conf->tenants.v[i]) < 0)
                                pd_strv_add(&tenants, cli->conf->tenants.v[i]);
        }
        for (size_t i = 0; i < tenants.cnt; i++)
                if (!pd_tenant_valid(tenants.v[i])) {
                        pd_cli_error(cli,
                                     "'%s' is not a valid tenant name (1-63 "
                                     "of A-Z a-z 0-9 _ . -, not starting "
                                     "with . or -)",
                                     tenants.v[i]);
                        goto done;
                }
        if (!environment)
                environment = getenv("POSTDEPLOY_ENVIRONMENT");
        if (!environment || !*environment)
                environment = "production";
        if (gethostname(host, sizeof(host)))
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if (!requested_by) {
                const char *user = getenv("USER");
                snprintf(who, sizeof(who), "%s@%s", user ? user : "unknown",
                         host);
                requested_by = who;
        }
        snprintf(source, sizeof(source), "postdeploy-cli/%s", host);

        ret = PD_EXIT_KAFKA;
        {
                rd_kafka_conf_t *kconf;
                kconf = pd_kafka_conf(cli->conf, producer_defaults,
                                      cli->brokers, errstr, sizeof(errstr));
                if (!kconf) {
                        pd_cli_error(cli, "%s", errstr);
                        ret = PD_EXIT_USAGE;
                        goto done;
                }
                rd_kafka_conf_set_dr_msg_cb(kconf, pd_deploy_dr_cb);
                rd_kafka_conf_set_opaque(kconf, &d);
                rkp = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr,
                                   sizeof(errstr));
                if (!rkp) {
                        rd_kafka_conf_destroy(kconf);
                        pd_cli_error(cli, "%s", errstr);
                        ret = PD_EXIT_USAGE;
                        goto done;
                }
        }
        /* The topics are made here too, so that the first deploy can
         * come before the first reactor, with the right settings. */
        if (pd_kafka_ping(rkp, cli->brokers, 10000, errstr, sizeof(errstr)) ||
            pd_kafka_topics_ensure(rkp, cli->conf, 10000, errstr,
                                   sizeof(errstr))) {
                pd_cli_error(cli, "%s", errstr);
                goto done;
        }
        if (wait) {
                rkc = pd_cli_kafka(cli, RD_KAFKA_CONSUMER, consumer_defaults);
                if (!rkc || pd_deploy_follow(&d, rkc))
                        goto done;
        }

        /* One event per tenant: each is its own trigger, keyed by tenant so
         * a tenant's events stay in order. */
        d.trigger_cnt = tenants.cnt ? tenants.cnt : 1;
        d.triggers    = calloc(d.trigger_cnt, sizeof(*d.triggers));
        for (size_t i = 0; i < d.trigger_cnt; i++) {
                pd_event_t *ev  = pd_event_new(PD_EVT_RELEASE_DEPLOYED);
                const char *key = tenants.cnt ? tenants.v[i]
                                              : cli->conf->default_tenant;
                rd_kafka_resp_err_t err;

                ev->tenant       = tenants.cnt ? strdup(tenants.v[i]) : NULL;
                ev->release      = strdup(release);
                ev->environment  = strdup(environment);
                ev->selection    = selection;
                ev->requested_by = strdup(requested_by);
                ev->deployed_at  = pd_now_ms();
                for (size_t j = 0; j < names.cnt; j++)
                        pd_strv_add(&ev->actions, names.v[j]);
                pd_event_stamp(ev, source);
                d.triggers[i].ce_id  = strdup(ev->ce_id);
                d.triggers[i].tenant = ev->tenant ? strdup(ev->tenant) : NULL;
                err = pd_event_produce(rkp, cli->conf->topic_events, key, ev,
                                       NULL, errstr, sizeof(errstr));
                if (!err)
                        printf("published %s %s for tenant %s (release %s)\n",
                               pd_selection_name(selection), ev->ce_id,
                               ev->tenant ? ev->tenant : "(default)",
                               release);
                pd_event_destroy(ev);
                if (err) {
                        pd_cli_error(cli, "cannot publish: %s", errstr);
                        goto done;
                }
        }
        fflush(stdout);
        if (rd_kafka_flush(rkp, 20000) || d.delivery_failed) {
                pd_cli_error(cli, "publish to %s failed: %s",
                             cli->conf->topic_events,
                             d.delivery_failed ? d.delivery_error
                                               : "timed out");
                goto done;
        }
        if (!wait) {
                ret = PD_EXIT_OK;
                goto done;
        }
        d.tty = isatty(STDERR_FILENO);
        ret   = pd_deploy_wait(&d, rkc, timeout_ms);

done:
        for (size_t i = 0; i < d.trigger_cnt; i++) {
                free(d.triggers[i].tenant);
                free(d.triggers[i].ce_id);
                pd_strv_clear(&d.triggers[i].actions);
                pd_strv_clear(&d.triggers[i].finished);
                free(d.triggers[i].status);
        }
        free(d.triggers);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        if (rkp)
                rd_kafka_destroy(rkp);
        pd_strv_clear(&names);
        pd_strv_clear(&tenants);
        return ret;
}
