/*
 * main.c - `postdeploy`, the command line of release engineers and CI:
 * publishes requests to the reactors over Kafka and reads their results.
 * Each command lives in its own file, in the pd_cli library with what they
 * share (cli.h, cli.c); this one only dispatches.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/sign.h"
#include "common/version.h"
#include "producer/cli.h"

static const struct {
        const char *name;
        int (*fn)(pd_cli_t *cli, int argc, char **argv);
        const char *summary;
} pd_commands[] = {
    {"deploy", pd_cmd_deploy,
     "publish release.deployed: run the release's actions (--auto, --all, "
     "--one)"},
    {"skip", pd_cmd_skip,
     "record actions as done without running them (a fresh environment)"},
    {"reset", pd_cmd_reset,
     "forget that actions ran, so they are pending again"},
    {"cancel", pd_cmd_cancel,
     "stop running actions: CANCELLED (SIGTERM, then SIGKILL after 2 s)"},
    {"pause", pd_cmd_pause,
     "hold new runs of tenants (or --all-tenants) until resume"},
    {"resume", pd_cmd_resume, "end a pause: the held runs go"},
    {"report", pd_cmd_report,
     "show every action's state per tenant, read from the results topic"},
    {"actions", pd_cmd_actions,
     "list the registered actions (from the reactors' registry)"},
    {"serve", pd_cmd_serve,
     "serve a live status page and the report as JSON over HTTP"},
};
#define PD_COMMAND_CNT (sizeof(pd_commands) / sizeof(pd_commands[0]))

static void print_usage(FILE *fp) {
        fprintf(fp, "Usage: postdeploy COMMAND [options]\n\nCommands:\n");
        for (size_t i = 0; i < PD_COMMAND_CNT; i++)
                fprintf(fp, "  %-8s %s\n", pd_commands[i].name,
                        pd_commands[i].summary);
        fprintf(fp, "  %-8s %s\n", "help",
                "this list, or with a COMMAND its options");
        fprintf(fp,
                "\nRun 'postdeploy help COMMAND' (or 'postdeploy COMMAND "
                "--help') for a command's\noptions; -V, --version the "
                "version.\n"
                "\nExit status: 0 success; 1 an action failed, timed out or "
                "was rejected, or the\n"
                "output could not be written; 2 usage or configuration "
                "error; 3 --wait timed\n"
                "out; 4 Kafka unreachable or a publish failed; 130 --wait "
                "interrupted (Ctrl-C).\n");
}

/* The command called name, or NULL. */
static int command_find(const char *name) {
        for (size_t i = 0; i < PD_COMMAND_CNT; i++)
                if (!strcmp(name, pd_commands[i].name))
                        return (int)i;
        return -1;
}

/* "unknown command" with the nearest one, if a typo is likely. */
static int command_unknown(const char *name) {
        int best = -1, best_d = 99;

        for (size_t i = 0; i < PD_COMMAND_CNT; i++) {
                int d = pd_cli_near(name, pd_commands[i].name);
                if (d >= 0 && d < best_d) {
                        best   = (int)i;
                        best_d = d;
                }
        }
        if (best >= 0)
                fprintf(stderr,
                        "postdeploy: unknown command '%s'; did you mean "
                        "'%s'?\n",
                        name, pd_commands[best].name);
        else
                fprintf(stderr, "postdeploy: unknown command '%s'\n", name);
        fprintf(stderr, "Try 'postdeploy help'.\n");
        return PD_EXIT_USAGE;
}

int main(int argc, char **argv) {
        pd_cli_t cli = {0};
        char *help_argv[4];
        int ret, i;

        pd_log_set_program("postdeploy");
        /* A fixed threshold: glibc's own rises past the first large block
         * freed, after which librdkafka's fetch buffers come from the heap,
         * interleave with the records a report keeps and pin its pages
         * once freed (8 MB of benchmark 5's peak RSS). */
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        /* librdkafka's own lines stay quiet: each failure ends in one
         * message of ours that says what to check (-v shows them). */
        pd_log_level = -1;
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                print_usage(argc < 2 ? stderr : stdout);
                return pd_cli_exit(argc < 2 ? PD_EXIT_USAGE : PD_EXIT_OK);
        }
        if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
                pd_version_print(stdout, "postdeploy");
                return pd_cli_exit(PD_EXIT_OK);
        }
        /* `postdeploy help deploy` is `postdeploy deploy --help`. */
        if (!strcmp(argv[1], "help")) {
                if (argc == 2) {
                        print_usage(stdout);
                        return pd_cli_exit(PD_EXIT_OK);
                }
                if (argc > 3) {
                        fprintf(stderr,
                                "postdeploy help: one COMMAND at "
                                "most\n");
                        return PD_EXIT_USAGE;
                }
                if (!strcmp(argv[2], "help")) {
                        print_usage(stdout);
                        return pd_cli_exit(PD_EXIT_OK);
                }
                if (command_find(argv[2]) < 0)
                        return command_unknown(argv[2]);
                help_argv[0] = argv[0];
                help_argv[1] = argv[2];
                help_argv[2] = "--help";
                help_argv[3] = NULL;
                argc         = 3;
                argv         = help_argv;
        }
        if ((i = command_find(argv[1])) < 0)
                return command_unknown(argv[1]);
        cli.cmd  = pd_commands[i].name;
        cli.conf = pd_config_new();
        ret      = pd_commands[i].fn(&cli, argc - 1, argv + 1);
        /* Whatever the command, a forged result it saw and ignored is said
         * once more at the end, where CI logs are read. */
        if (cli.rejected)
                fprintf(stderr,
                        "postdeploy %s: warning: %zu record(s) on %s "
                        "rejected: not signed with [cli] signing_key; not "
                        "counted\n",
                        cli.cmd, cli.rejected, cli.conf->topic_results);
        pd_sign_key_free(cli.secret, cli.secret_len);
        pd_config_destroy(cli.conf);
        pd_strv_clear(&cli.kafka_overrides);
        return pd_cli_exit(ret);
}
