/*
 * deploy.c - the commands that send requests to the reactors: `deploy`
 * (release.deployed), `skip` (actions.skip_requested) and `reset`
 * (actions.reset_requested), `cancel` (actions.cancel_requested), `pause`
 * and `resume` (actions.pause_requested, actions.resume_requested). Each
 * publishes one event per tenant and, with
 * --wait, follows the results topic until every action the reactors planned
 * for those events has a final outcome.
 *
 * How the wait follows and shows the results is wait.c's.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/map.h"
#include "common/strerror.h"
#include "common/xalloc.h"
#include "producer/cancel.h"
#include "producer/cli.h"
#include "producer/results.h"
#include "producer/term.h"
#include "producer/wait.h"
#include "schemas/cloudevents.h"
#include "schemas/event.h"

/* What a publish went through: the first delivery error. */
typedef struct pd_delivery_s {
        FILE *out; /* where "published ..." goes */
        int failed;
        char error[256];
} pd_delivery_t;

/* What one command asks for, from its options. */
typedef struct pd_request_s {
        pd_evtype_t type;
        int selections;           /* deploy: how many of --auto/--all/--one */
        pd_selection_t selection; /* deploy */
        int all; /* skip --all-pending, reset --all, cancel --all-running */
        pd_strv_t names;
        const char *release, *environment, *requested_by, *tenants_file;
        pd_strv_t tenants;
        int all_tenants, wait, no_check;
        int dry_run, json; /* deploy --dry-run [--format json] */
        pd_strv_t params;  /* deploy --param: name, value, ... */
        int64_t timeout_ms;
        const char *timeout; /* --timeout as given, NULL if not */
} pd_request_t;

static void request_usage(pd_evtype_t type, FILE *fp) {
        if (type == PD_EVT_PAUSE_REQUESTED || type == PD_EVT_RESUME_REQUESTED) {
                int pause = type == PD_EVT_PAUSE_REQUESTED;

                fprintf(
                    fp,
                    "Usage: postdeploy %s (--tenant T... | --all-tenants) "
                    "[options]\n"
                    "\n"
                    "%s"
                    "Sent over Kafka like a deploy: auditable, and handled "
                    "as soon as a reactor\nreads it, not behind the "
                    "tenant's deploys.\n"
                    "\n"
                    "Options:\n"
                    "  -t, --tenant T        a tenant (repeatable); without "
                    "any, the reactor's\n"
                    "                        default tenant\n"
                    "      --all-tenants     %s\n"
                    "      --tenants-file F  every tenant listed in F, one "
                    "per line\n"
                    "      --requested-by W  who asks (default $USER@host)\n"
                    "  -w, --wait            wait until the reactors say "
                    "the tenants are %s\n"
                    "      --timeout D       how long --wait waits (default "
                    "30m)\n" PD_CLI_COMMON_HELP
                    "\n"
                    "Exit status: 0 published (with --wait: %s); 2 usage "
                    "or configuration\nerror; 3 --wait timed out; 4 Kafka "
                    "could not be reached or the publish\nfailed.\n",
                    pause ? "pause" : "resume",
                    pause ? "Holds new runs for each tenant until `postdeploy "
                            "resume`: actions running now\nfinish, the "
                            "next ones wait (an event under way stops "
                            "between two\nactions). The pause outlives a "
                            "reactor restart. `report` and `deploy --wait`\n"
                            "say \"paused\". For incidents: `postdeploy "
                            "pause --all-tenants` holds every\ntenant, "
                            "including those no config lists.\n"
                          : "Ends a pause: the held events of each tenant "
                            "run, in order.\n`postdeploy resume "
                            "--all-tenants` ends every pause, of every "
                            "tenant and\neach one's own.\n",
                    pause ? "every tenant, known or not (one request; not "
                            "[cli] tenants)"
                          : "every pause: of every tenant, and each "
                            "tenant's own",
                    pause ? "paused" : "resumed",
                    pause ? "the reactors hold the tenants"
                          : "the reactors run them again");
                return;
        }
        if (type == PD_EVT_CANCEL_REQUESTED) {
                fprintf(
                    fp,
                    "Usage: postdeploy cancel (NAME... | --all-running) "
                    "[options]\n"
                    "\n"
                    "Stops the named actions where they are running now "
                    "for each tenant: a\ncommand's process group gets "
                    "SIGTERM, then SIGKILL 2 s later; an in-process\n"
                    "action sees cancelled(). Each stopped run is recorded "
                    "CANCELLED, with who\nasked, and is pending again; the "
                    "rest of its deploy goes on (what comes\nafter it is "
                    "skipped). A cancel of something not running changes "
                    "nothing,\nand the reactor answers so.\n"
                    "Sent over Kafka like a deploy: auditable, and handled "
                    "as soon as a reactor\nreads it, not behind the "
                    "tenant's deploys.\n"
                    "\n"
                    "Options:\n"
                    "      --all-running     whatever action is running for "
                    "the tenant, instead of\n"
                    "                        names\n"
                    "  -t, --tenant T        a tenant (repeatable); without "
                    "any, the reactor's\n"
                    "                        default tenant\n"
                    "      --all-tenants     every tenant of [cli] tenants "
                    "in the config\n"
                    "      --tenants-file F  every tenant listed in F, one "
                    "per line\n"
                    "      --requested-by W  who asks (default $USER@host)\n"
                    "  -w, --wait            wait for the reactors' answers "
                    "and print, per action,\n"
                    "                        CANCELLED or \"not running: "
                    "nothing to cancel\"\n"
                    "      --timeout D       how long --wait waits (default "
                    "30m)\n"
                    "      --no-check        send names the registry does "
                    "not know\n" PD_CLI_COMMON_HELP
                    "\n"
                    "Exit status: 0 published (with --wait: every named "
                    "action was running and\nis CANCELLED); 1 with --wait: "
                    "one was not running (nothing changed for\nit) or "
                    "ended otherwise; 2 usage or configuration error; 3 "
                    "--wait timed out;\n4 Kafka could not be reached or "
                    "the publish failed.\n");
                return;
        }
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
                        "                        \"production\")\n"
                        "      --param N=V       a parameter of the --one "
                        "actions (repeatable): fills\n"
                        "                        {param.N} and "
                        "POSTDEPLOY_PARAM_N; an action refuses one it\n"
                        "                        does not declare "
                        "(params = ...) or a required one missing\n"
                        "      --dry-run         run nothing: the reactors "
                        "answer with their plan per\n"
                        "                        tenant (what would run, in "
                        "order; what would not, and\n"
                        "                        why), printed when all have "
                        "come (implies --wait)\n"
                        "      --format F        with --dry-run: text "
                        "(default) or json, an object\n"
                        "                        per tenant and line\n");
        else
                fprintf(
                    fp,
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
                    type == PD_EVT_SKIP_REQUESTED ? "--all-pending" : "--all",
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
                    type == PD_EVT_SKIP_REQUESTED ? "--all-pending" : "--all",
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

/*
 * An event's delivery report: its "published ..." line (the message's
 * opaque, made when it was queued) is printed only now that the broker
 * has it, so a line on stdout always means an event on the topic. Served
 * by rd_kafka_poll/flush in the command's thread.
 */
static void deploy_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                         void *opaque) {
        pd_delivery_t *dl = opaque;
        char *line        = rkm->_private;

        (void)rk;
        if (rkm->err && !dl->failed) {
                dl->failed = 1;
                snprintf(dl->error, sizeof(dl->error), "%s",
                         rd_kafka_err2str(rkm->err));
        }
        if (!rkm->err && line)
                fputs(line, dl->out);
        free(line);
}

/* The line deploy_dr_cb prints once the broker has ev (malloc'ed). */
static char *published_line(const pd_event_t *ev, const char *tenant) {
#define PD_PUBLISHED_FMT "published %s %s for tenant %s\n"
        const char *type = pd_evtype_name(ev->type);
        const char *who  = tenant ? tenant : "(default)";
        int n      = snprintf(NULL, 0, PD_PUBLISHED_FMT, type, ev->ce_id, who);
        char *line = pd_xmalloc((size_t)n + 1);

        snprintf(line, (size_t)n + 1, PD_PUBLISHED_FMT, type, ev->ce_id, who);
        return line;
#undef PD_PUBLISHED_FMT
}

/* Adds the tenants listed in path, one per line, each once. Returns 0 or
 * -1. */
static int read_tenants_file(pd_cli_t *cli, const char *path, pd_strv_t *out) {
        pd_map_t *seen = NULL;
        char line[512];
        int lineno = 0, ret = 0;
        FILE *fp = fopen(path, "r");

        if (!fp) {
                pd_cli_error(cli, "--tenants-file %s: %s", path,
                             pd_strerror(errno));
                return -1;
        }
        /* Each name is looked up among those before it: through a map, or
         * a file of a million lines took hours (a scan per line). */
        seen = pd_map_new();
        for (size_t i = 0; i < out->cnt; i++)
                *pd_map_put(seen, out->v[i], strlen(out->v[i])) = out->v[i];
        while (fgets(line, sizeof(line), fp)) {
                void **vp;

                char *s = line, *e;

                lineno++;
                s[strcspn(s, "#\r\n")] = '\0';
                while (*s == ' ' || *s == '\t')
                        s++;
                for (e = s + strlen(s);
                     e > s && (e[-1] == ' ' || e[-1] == '\t');)
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
                vp = pd_map_put(seen, s, strlen(s));
                if (!*vp) {
                        pd_strv_add(out, s);
                        *vp = out->v[out->cnt - 1];
                }
        }
        pd_map_destroy(seen, NULL);
        fclose(fp);
        return ret;
}

/* Refuses --param values action re does not declare, and a required one
 * left out: the reactor would record the run REJECTED. Returns 0 or
 * PD_EXIT_USAGE. */
static int request_check_params(pd_cli_t *cli, const pd_request_t *req,
                                const pd_regentry_t *re) {
        char *name = pd_term_escape_dup(re->id);
        int ret    = 0;

        if (pd_strv_find(&re->params, "*") >= 0)
                goto done; /* a plugin's action checks its own */
        for (size_t i = 0; i < req->params.cnt && !ret; i += 2) {
                const char *p = req->params.v[i];
                char opt[80];

                snprintf(opt, sizeof(opt), "%s?", p);
                if (pd_strv_find(&re->params, p) < 0 &&
                    pd_strv_find(&re->params, opt) < 0) {
                        pd_cli_error(cli,
                                     "action %s declares no parameter '%s' "
                                     "(--no-check sends it anyway; the "
                                     "reactor refuses it)",
                                     name, p);
                        ret = PD_EXIT_USAGE;
                }
        }
        for (size_t i = 0; i < re->params.cnt && !ret; i++) {
                const char *d = re->params.v[i];
                size_t j;

                if (d[strlen(d) - 1] == '?')
                        continue;
                for (j = 0; j < req->params.cnt; j += 2)
                        if (!strcmp(req->params.v[j], d))
                                break;
                if (j >= req->params.cnt) {
                        char *dn = pd_term_escape_dup(d);

                        pd_cli_error(cli, "action %s needs --param %s=VALUE",
                                     name, dn);
                        free(dn);
                        ret = PD_EXIT_USAGE;
                }
        }
done:
        free(name);
        return ret;
}

/* Refuses names the newest registry does not know, when there is one. */
static int request_check_names(pd_cli_t *cli, const pd_request_t *req,
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
                int near_d       = 99, d;
                char *reactor, *near_text;
                size_t j;

                for (j = 0; j < reg->registry_cnt; j++)
                        if (!strcmp(reg->registry[j].id, req->names.v[i]))
                                break;
                if (j < reg->registry_cnt) {
                        ret = request_check_params(cli, req, &reg->registry[j]);
                        continue;
                }
                for (j = 0; j < reg->registry_cnt; j++) {
                        d = pd_cli_near(req->names.v[i], reg->registry[j].id);
                        if (d >= 0 && d < near_d) {
                                near   = reg->registry[j].id;
                                near_d = d;
                        }
                }
                /* The names in the registry came from an event. */
                reactor = pd_term_escape_dup(reg->reactor ? reg->reactor : "");
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

/* pause and resume: requests about tenants, not actions; their
 * --all-tenants is every tenant, not [cli] tenants. */
static int pausing(const pd_request_t *req) {
        return req->type == PD_EVT_PAUSE_REQUESTED ||
               req->type == PD_EVT_RESUME_REQUESTED;
}

/* Parses the options of deploy, skip and reset into req. Returns -1 to go
 * on, or the exit status to end with. */
static int request_parse(pd_cli_t *cli, pd_request_t *req, int argc,
                         char **argv) {
        static const struct option longopts[] = {
            {"auto", no_argument, NULL, 'A'},
            {"all", no_argument, NULL, 'L'},
            {"all-pending", no_argument, NULL, 'P'},
            {"all-running", no_argument, NULL, 'U'},
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
            {"dry-run", no_argument, NULL, 'D'},
            {"param", required_argument, NULL, 'p'},
            {"format", required_argument, NULL, 'f'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        int deploy = req->type == PD_EVT_RELEASE_DEPLOYED;
        int opt;

        optind = 1;
        while (
            (opt = getopt_long(argc, argv, ":r:e:t:w" PD_CLI_COMMON_SHORTOPTS,
                               longopts, NULL)) != -1) {
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
                                pd_cli_error(cli,
                                             "--all: did you mean "
                                             "--all-pending?");
                                return PD_EXIT_USAGE;
                        }
                        break;
                case 'U':
                        if (req->type != PD_EVT_CANCEL_REQUESTED) {
                                pd_cli_error(cli,
                                             "--all-running is for "
                                             "`postdeploy cancel`");
                                return PD_EXIT_USAGE;
                        }
                        req->all = 1;
                        break;
                case 'P':
                        if (req->type != PD_EVT_SKIP_REQUESTED) {
                                pd_cli_error(cli,
                                             "--all-pending is for "
                                             "`postdeploy skip`");
                                return PD_EXIT_USAGE;
                        }
                        req->all = 1;
                        break;
                case 'r':
                        if (req->type == PD_EVT_PAUSE_REQUESTED ||
                            req->type == PD_EVT_RESUME_REQUESTED) {
                                pd_cli_error(cli,
                                             "--release: a pause holds "
                                             "every release");
                                return PD_EXIT_USAGE;
                        }
                        if (req->type == PD_EVT_CANCEL_REQUESTED) {
                                pd_cli_error(cli,
                                             "--release: a cancel stops "
                                             "what runs, of any release");
                                return PD_EXIT_USAGE;
                        }
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
                                pd_cli_error(cli,
                                             "--requested-by wants a "
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
                case 'p': {
                        const char *eq = strchr(optarg, '=');
                        char name[80];

                        if (!deploy)
                                goto only_deploy;
                        snprintf(name, sizeof(name), "%.*s",
                                 eq ? (int)(eq - optarg) : 0, optarg);
                        if (!eq || (size_t)(eq - optarg) >= sizeof(name) ||
                            !pd_param_name_valid(name)) {
                                pd_cli_error(cli,
                                             "--param wants NAME=VALUE, NAME "
                                             "a-z first, then a-z 0-9 _ (at "
                                             "most 64); got '%s'",
                                             optarg);
                                return PD_EXIT_USAGE;
                        }
                        for (size_t i = 0; i < req->params.cnt; i += 2)
                                if (!strcmp(req->params.v[i], name)) {
                                        pd_cli_error(cli,
                                                     "--param %s given "
                                                     "twice",
                                                     name);
                                        return PD_EXIT_USAGE;
                                }
                        if (strlen(eq + 1) > PD_PARAM_VALUE_MAX ||
                            req->params.cnt / 2 >= PD_PARAMS_MAX) {
                                pd_cli_error(cli,
                                             "--param: at most %d, each "
                                             "value at most %d bytes",
                                             PD_PARAMS_MAX, PD_PARAM_VALUE_MAX);
                                return PD_EXIT_USAGE;
                        }
                        pd_strv_add(&req->params, name);
                        pd_strv_add(&req->params, eq + 1);
                        break;
                }
                case 'D':
                case 'f':
                        if (!deploy)
                                goto only_deploy;
                        if (opt == 'D') {
                                req->dry_run = 1;
                                break;
                        }
                        if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                                pd_cli_error(cli,
                                             "--format: '%s' is not text "
                                             "or json",
                                             optarg);
                                return PD_EXIT_USAGE;
                        }
                        req->json = !strcmp(optarg, "json");
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
                        request_usage(req->type, stdout);
                        return PD_EXIT_OK;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                return PD_EXIT_USAGE;
                        break;
                }
        }
        for (; optind < argc; optind++) {
                if (deploy &&
                    (req->selection != PD_SEL_ONE || !req->names.cnt)) {
                        pd_cli_error(cli, "unexpected argument '%s'",
                                     argv[optind]);
                        return PD_EXIT_USAGE;
                }
                pd_strv_add(&req->names, argv[optind]);
        }
        if (deploy && req->selections != 1) {
                pd_cli_error(cli,
                             "give exactly one of --auto, --all or "
                             "--one NAME...\nTry 'postdeploy deploy "
                             "--help'.");
                return PD_EXIT_USAGE;
        }
        if (pausing(req)) {
                if (req->names.cnt) {
                        pd_cli_error(cli,
                                     "a pause holds every action of a "
                                     "tenant: no action names ('%s')",
                                     req->names.v[0]);
                        return PD_EXIT_USAGE;
                }
                if (req->all_tenants &&
                    (req->tenants.cnt || req->tenants_file)) {
                        pd_cli_error(cli,
                                     "--all-tenants is every tenant: "
                                     "no --tenant nor --tenants-file "
                                     "with it");
                        return PD_EXIT_USAGE;
                }
        } else if (!deploy && !req->all == !req->names.cnt) {
                pd_cli_error(
                    cli,
                    "give action names or %s, not both nor "
                    "neither",
                    req->type == PD_EVT_SKIP_REQUESTED     ? "--all-pending"
                    : req->type == PD_EVT_CANCEL_REQUESTED ? "--all-running"
                                                           : "--all");
                return PD_EXIT_USAGE;
        }
        if (req->params.cnt && req->selection != PD_SEL_ONE) {
                pd_cli_error(cli,
                             "--param is for the actions named with --one");
                return PD_EXIT_USAGE;
        }
        if (req->json && !req->dry_run) {
                pd_cli_error(cli, "--format is for --dry-run's plan");
                return PD_EXIT_USAGE;
        }
        /* The plan is the answer: a dry run waits for it. */
        if (req->dry_run)
                req->wait = 1;
        if (req->timeout && !req->wait) {
                pd_cli_error(cli,
                             "--timeout %s is how long --wait waits: "
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
                pd_cli_error(
                    cli, "'%s' is not a valid release (" PD_RELEASE_RULE ")",
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
                     opt == 'A'   ? "--auto"
                     : opt == 'O' ? "--one"
                     : opt == 'D' ? "--dry-run"
                     : opt == 'p' ? "--param"
                     : opt == 'f' ? "--format"
                                  : "--environment");
        return PD_EXIT_USAGE;
}

/* Settles the tenant list: --tenant, --all-tenants, --tenants-file. */
static int request_tenants(pd_cli_t *cli, pd_request_t *req) {
        if (req->all_tenants && !pausing(req)) {
                if (!cli->conf->tenants.cnt) {
                        pd_cli_error(cli,
                                     "--all-tenants needs [cli] "
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
            read_tenants_file(cli, req->tenants_file, &req->tenants))
                return -1;
        if (((req->all_tenants && !pausing(req)) || req->tenants_file) &&
            !req->tenants.cnt) {
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
static pd_event_t *request_event(const pd_request_t *req, const char *tenant,
                                 const char *who) {
        pd_event_t *ev = pd_event_new(req->type);

        ev->tenant = tenant ? pd_xstrdup(tenant) : NULL;
        if (req->type != PD_EVT_CANCEL_REQUESTED && !pausing(req))
                ev->release = pd_xstrdup(req->release);
        ev->requested_by = pd_xstrdup(who);
        if (pausing(req)) {
                ev->all_tenants  = req->all_tenants;
                ev->requested_at = pd_now_ms();
                return ev;
        }
        for (size_t j = 0; j < req->names.cnt; j++)
                pd_strv_add(&ev->actions, req->names.v[j]);
        if (req->type == PD_EVT_RELEASE_DEPLOYED) {
                ev->environment = pd_xstrdup(req->environment);
                ev->selection   = req->selection;
                ev->deployed_at = pd_now_ms();
                ev->dry_run     = req->dry_run;
                for (size_t j = 0; j < req->params.cnt; j++)
                        pd_strv_add(&ev->params, req->params.v[j]);
        } else {
                ev->all_pending  = req->all;
                ev->requested_at = pd_now_ms();
        }
        return ev;
}

static int request_send(pd_cli_t *cli, pd_request_t *req) {
        static const char *const producer_defaults[] = {
            "enable.idempotence", "true", "linger.ms", "0",
            /* Unreachable brokers fail the publish instead of hanging. */
            "message.timeout.ms", "15000", NULL};
        pd_delivery_t dl     = {.out = req->json ? stderr : stdout};
        pd_deploy_t *w       = NULL;
        pd_cancel_wait_t *cw = NULL;
        rd_kafka_t *rkp = NULL, *rkc = NULL;
        rd_kafka_conf_t *kconf;
        char errstr[512], who[300], source[300], host[200];
        int ret = PD_EXIT_USAGE;

        /* A --wait shorter than the wait for a first answer would be
         * ignored while no broker answers. */
        if (req->wait)
                pd_cli_connect_within(cli, req->timeout_ms);
        if (pd_cli_finish(cli) || request_tenants(cli, req))
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
        rd_kafka_conf_set_dr_msg_cb(kconf, deploy_dr_cb);
        rd_kafka_conf_set_opaque(kconf, &dl);
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
                if ((ret = request_check_names(cli, req, rkc)))
                        goto done;
                ret = PD_EXIT_KAFKA;
        }
        if (req->wait && (req->type == PD_EVT_CANCEL_REQUESTED || pausing(req))
                ? !(cw = pd_cancel_wait_new(cli, rkc))
                : req->wait && !(w = pd_wait_new(cli, rkc)))
                goto done;
        if (req->dry_run)
                pd_wait_dry_run(w, req->json);

        /* One event per tenant: each is its own trigger, keyed by tenant so
         * a tenant's events stay in order. */
        for (size_t i = 0; i < (req->tenants.cnt ? req->tenants.cnt : 1); i++) {
                const char *tenant =
                    req->tenants.cnt ? req->tenants.v[i] : NULL;
                pd_event_t *ev = request_event(req, tenant, req->requested_by);
                rd_kafka_resp_err_t err;
                char *line;

                pd_event_stamp(ev, source);
                line = published_line(ev, tenant);
                if (w)
                        pd_wait_trigger(w, tenant, ev->ce_id);
                if (cw && pausing(req))
                        pd_cancel_wait_pause(cw, req->type,
                                             req->all_tenants ? NULL
                                             : tenant
                                                 ? tenant
                                                 : cli->conf->default_tenant);
                else if (cw)
                        pd_cancel_wait_request(cw, ev->ce_id, tenant);
                /* A full queue (queue.buffering.max.messages, 100,000 by
                 * default: a big tenants file) empties as the broker
                 * acknowledges: wait for that rather than fail. */
                while ((err = pd_event_produce_signed(
                            rkp, cli->conf->topic_events,
                            tenant ? tenant : cli->conf->default_tenant, ev,
                            cli->secret, cli->secret_len, line, errstr,
                            sizeof(errstr))) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rkp, 100);
                if (err)
                        free(line); /* not queued: no report will come */
                pd_event_destroy(ev);
                if (err) {
                        pd_cli_error(cli, "cannot publish: %s", errstr);
                        goto done;
                }
        }
        if (rd_kafka_flush(rkp, 20000) || dl.failed) {
                pd_cli_error(cli, "publish to %s failed: %s",
                             cli->conf->topic_events,
                             dl.failed ? dl.error : "timed out");
                goto done;
        }
        /* A failed flush drops what it could not write, and errno with it:
         * the reason must be kept now for the message at exit. */
        if (fflush(stdout))
                pd_cli_out_error(errno);
        if (!req->wait) {
                ret = PD_EXIT_OK;
                goto done;
        }
        ret = cw ? pd_cancel_wait_run(cw, req->timeout_ms)
                 : pd_wait_run(w, req->timeout_ms);

done:
        /* Before the consumer it reads with. */
        pd_wait_destroy(w);
        pd_cancel_wait_destroy(cw);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        if (rkp) {
                /* What is still queued is dropped: its reports free the
                 * lines it carries, and print none. */
                rd_kafka_purge(
                    rkp, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(rkp, 0);
                rd_kafka_destroy(rkp);
        }
        fflush(stdout);
        return ret;
}

static int request_cmd(pd_cli_t *cli, pd_evtype_t type, int argc, char **argv) {
        pd_request_t req = {.type = type, .timeout_ms = 30 * 60 * 1000};
        int ret          = request_parse(cli, &req, argc, argv);

        if (ret < 0)
                ret = request_send(cli, &req);
        pd_strv_clear(&req.names);
        pd_strv_clear(&req.params);
        pd_strv_clear(&req.tenants);
        return ret;
}

int pd_cmd_deploy(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_RELEASE_DEPLOYED, argc, argv);
}

int pd_cmd_skip(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_SKIP_REQUESTED, argc, argv);
}

int pd_cmd_reset(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_RESET_REQUESTED, argc, argv);
}

int pd_cmd_cancel(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_CANCEL_REQUESTED, argc, argv);
}

int pd_cmd_pause(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_PAUSE_REQUESTED, argc, argv);
}

int pd_cmd_resume(pd_cli_t *cli, int argc, char **argv) {
        return request_cmd(cli, PD_EVT_RESUME_REQUESTED, argc, argv);
}
