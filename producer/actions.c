/*
 * actions.c - `postdeploy actions`: the registered actions, as the newest
 * registry.published on the results topic says, so any machine can see what
 * the reactors would run without their config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "producer/cli.h"
#include "producer/results.h"
#include "producer/term.h"
#include "schemas/event.h"

static void actions_usage(FILE *fp) {
        fprintf(
            fp,
            "Usage: postdeploy actions [--format table|json|names] [options]\n"
            "\n"
            "Lists the registered actions, in the order they run, with "
            "auto or manual,\n"
            "policy, dependencies and description, from the newest "
            "registry.published.\n"
            "\n"
            "Options:\n"
            "  -f, --format F       table (default), json, or names: "
            "one name per line\n"
            "                       (what shell completion reads)\n" PD_CLI_COMMON_HELP
            "\n"
            "Exit status: 0 listed; 1 no reactor has published its "
            "registry yet, or the\n"
            "output could not be written; 2 usage or configuration "
            "error; 4 Kafka\n"
            "unreachable.\n");
}

/* Every string in the table came from an event: it is shown with its
 * control characters escaped, so a description cannot drive the terminal
 * (the JSON keeps the exact text). */
static void actions_table(const pd_event_t *reg) {
        char when[40], *reactor = pd_term_escape_dup(reg->reactor);

        pd_time_format(reg->published_at, when, sizeof(when));
        printf("%zu action(s), published by %s at %s\n\n", reg->registry_cnt,
               reactor ? reactor : "", when);
        free(reactor);
        printf("%-32s %-6s %-6s %-24s %s\n", "ACTION", "WHEN", "POLICY",
               "AFTER", "DESCRIPTION");
        for (size_t i = 0; i < reg->registry_cnt; i++) {
                const pd_regentry_t *re = &reg->registry[i];
                char after[256]         = "-", *id, *policy, *after_e, *desc;
                size_t off              = 0;

                for (size_t j = 0; j < re->after.cnt && off < sizeof(after);
                     j++)
                        off += (size_t)snprintf(after + off,
                                                sizeof(after) - off, "%s%s",
                                                j ? "," : "", re->after.v[j]);
                id      = pd_term_escape_dup(re->id ? re->id : "");
                policy  = pd_term_escape_dup(re->policy ? re->policy : "");
                after_e = pd_term_escape_dup(after);
                desc =
                    pd_term_escape_dup(re->description ? re->description : "");
                printf("%-32s %-6s %-6s %-24s %s\n", id,
                       re->is_auto ? "auto" : "manual", policy, after_e, desc);
                free(id);
                free(policy);
                free(after_e);
                free(desc);
        }
}

static void actions_json(const pd_event_t *reg) {
        json_t *arr = json_array();
        char *text;

        for (size_t i = 0; i < reg->registry_cnt; i++) {
                const pd_regentry_t *re = &reg->registry[i];
                json_t *o               = json_object();
                json_t *after           = json_array();

                for (size_t j = 0; j < re->after.cnt; j++)
                        json_array_append_new(after,
                                              json_string(re->after.v[j]));
                json_object_set_new(o, "action", json_string(re->id));
                json_object_set_new(o, "auto", json_boolean(re->is_auto));
                json_object_set_new(o, "policy", json_string(re->policy));
                json_object_set_new(o, "after", after);
                json_object_set_new(o, "description",
                                    json_string(re->description));
                json_array_append_new(arr, o);
        }
        text = json_dumps(arr, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        printf("%s\n", text);
        free(text);
        json_decref(arr);
}

int pd_cmd_actions(pd_cli_t *cli, int argc, char **argv) {
        static const struct option longopts[] = {
            {"format", required_argument, NULL, 'f'},
            PD_CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0}};
        pd_event_t *reg = NULL;
        rd_kafka_t *rkc = NULL;
        int json = 0, names = 0, opt, ret = PD_EXIT_USAGE;

        optind = 1;
        while ((opt = getopt_long(argc, argv, ":f:" PD_CLI_COMMON_SHORTOPTS,
                                  longopts, NULL)) != -1) {
                if (pd_cli_swallowed(cli, argv))
                        goto done;
                switch (opt) {
                case 'f':
                        if (!strcmp(optarg, "names"))
                                names = 1;
                        else if (strcmp(optarg, "json") &&
                                 strcmp(optarg, "table")) {
                                pd_cli_error(cli,
                                             "--format: 'table', 'json' or "
                                             "'names', not '%s'",
                                             optarg);
                                goto done;
                        }
                        json = !strcmp(optarg, "json");
                        break;
                case 'h':
                        actions_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        if (pd_cli_common_opt(cli, opt, optarg, argv) != 1)
                                goto done;
                        break;
                }
        }
        if (pd_cli_no_operands(cli, argc, argv) ||
            !(rkc = pd_cli_results_open(cli, &ret)))
                goto done;
        if ((ret = pd_results_registry(cli, rkc, 60000, &reg)))
                goto done;
        if (!reg) {
                pd_cli_error(cli,
                             "no reactor has published its registry on "
                             "%s yet",
                             cli->conf->topic_results);
                ret = PD_EXIT_FAILED;
                goto done;
        }
        if (names)
                for (size_t i = 0; i < reg->registry_cnt; i++)
                        printf("%s\n", reg->registry[i].id);
        else if (json)
                actions_json(reg);
        else
                actions_table(reg);
        ret = PD_EXIT_OK;

done:
        pd_event_destroy(reg);
        if (rkc) {
                rd_kafka_consumer_close(rkc);
                rd_kafka_destroy(rkc);
        }
        return ret;
}
