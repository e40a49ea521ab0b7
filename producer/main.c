/*
 * main.c - `postdeploy`, the command line of release engineers and CI:
 * publishes requests to the reactors over Kafka and reads their results.
 * Each command lives in its own file; this one dispatches and holds what
 * they share (cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
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
    {"report", pd_cmd_report,
     "show every action's state per tenant, read from the results topic"},
    {"actions", pd_cmd_actions,
     "list the registered actions (from the reactors' registry)"},
};

static void pd_usage(FILE *fp) {
        fprintf(fp, "Usage: postdeploy COMMAND [options]\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(pd_commands) / sizeof(pd_commands[0]);
             i++)
                fprintf(fp, "  %-8s %s\n", pd_commands[i].name,
                        pd_commands[i].summary);
        fprintf(fp,
                "\nRun 'postdeploy COMMAND --help' for a command's options.\n"
                "\nExit status: 0 success; 1 an action failed, timed out or "
                "was rejected, or the\n"
                "output could not be written; 2 usage or configuration "
                "error; 3 --wait timed\n"
                "out; 4 Kafka unreachable or a publish failed.\n");
}

void pd_cli_error(const pd_cli_t *cli, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "postdeploy %s: ", cli->cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* stdio keeps only a flag when a write fails, and by the time a command
 * ends the reason (errno) is long gone: the first one is kept here. */
static int pd_cli_out_errno;

void pd_cli_out_error(int err) {
        if (!pd_cli_out_errno)
                pd_cli_out_errno = err;
}

/*
 * Output that did not reach stdout (a full disk, an I/O error) must
 * not end in exit 0: a pipeline would take a report it never got for an
 * empty one. Flushes and closes stdout; a failed write, now or earlier, is
 * said on stderr and makes a successful command exit 1. Returns ret or
 * PD_EXIT_FAILED.
 */
static int pd_cli_exit(int ret) {
        int failed = ferror(stdout);

        errno = 0;
        if (fclose(stdout)) {
                failed = 1;
                pd_cli_out_error(errno);
        }
        if (!failed && !pd_cli_out_errno)
                return ret;
        if (pd_cli_out_errno)
                fprintf(stderr, "postdeploy: cannot write output: %s\n",
                        strerror(pd_cli_out_errno));
        else
                fprintf(stderr, "postdeploy: cannot write output\n");
        return ret == PD_EXIT_OK ? PD_EXIT_FAILED : ret;
}

int pd_cli_common_opt(pd_cli_t *cli, int opt, const char *arg) {
        const char *eq;

        switch (opt) {
        case 'c':
                cli->config_path = arg;
                return 1;
        case 'b':
                pd_strv_add(&cli->kafka_overrides, "bootstrap.servers");
                pd_strv_add(&cli->kafka_overrides, arg);
                return 1;
        case 'X':
                eq = strchr(arg, '=');
                if (!eq || eq == arg) {
                        pd_cli_error(cli, "-X wants NAME=VALUE, got '%s'",
                                     arg);
                        return -1;
                }
                {
                        char *name = strndup(arg, (size_t)(eq - arg));
                        pd_strv_add(&cli->kafka_overrides, name);
                        pd_strv_add(&cli->kafka_overrides, eq + 1);
                        free(name);
                }
                return 1;
        default:
                return 0;
        }
}

int pd_cli_finish(pd_cli_t *cli) {
        char errstr[1024];
        const char *path = cli->config_path;

        if (!path && getenv("POSTDEPLOY_CONFIG") && *getenv("POSTDEPLOY_CONFIG"))
                path = getenv("POSTDEPLOY_CONFIG");
        if (path && pd_config_load(cli->conf, path, errstr, sizeof(errstr))) {
                pd_cli_error(cli, "%s", errstr);
                return -1;
        }
        for (size_t i = 0; i + 1 < cli->kafka_overrides.cnt; i += 2)
                if (pd_config_set(cli->conf, "kafka",
                                  cli->kafka_overrides.v[i],
                                  cli->kafka_overrides.v[i + 1], errstr,
                                  sizeof(errstr))) {
                        pd_cli_error(cli, "%s", errstr);
                        return -1;
                }
        pd_kafka_brokers(cli->conf, 1, cli->brokers, sizeof(cli->brokers));
        if (cli->conf->cli_signing_key && *cli->conf->cli_signing_key &&
            pd_sign_key_load(cli->conf->cli_signing_key, &cli->secret,
                             &cli->secret_len, errstr, sizeof(errstr))) {
                pd_cli_error(cli, "%s", errstr);
                return -1;
        }
        return 0;
}

rd_kafka_t *pd_cli_kafka(pd_cli_t *cli, rd_kafka_type_t type,
                         const char *const *defaults) {
        char errstr[512];
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        kconf = pd_kafka_conf(cli->conf, defaults, cli->brokers, errstr,
                              sizeof(errstr));
        if (!kconf) {
                pd_cli_error(cli, "%s", errstr);
                return NULL;
        }
        rk = rd_kafka_new(type, kconf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(kconf);
                pd_cli_error(cli, "%s", errstr);
        }
        return rk;
}

int main(int argc, char **argv) {
        pd_cli_t cli = {0};
        int ret;

        pd_log_set_program("postdeploy");
        pd_log_level = PD_LOG_ERROR; /* librdkafka's chatter stays quiet */
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                pd_usage(argc < 2 ? stderr : stdout);
                return pd_cli_exit(argc < 2 ? PD_EXIT_USAGE : PD_EXIT_OK);
        }
        if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
                pd_version_print(stdout, "postdeploy");
                return pd_cli_exit(PD_EXIT_OK);
        }
        for (size_t i = 0; i < sizeof(pd_commands) / sizeof(pd_commands[0]);
             i++) {
                if (strcmp(argv[1], pd_commands[i].name))
                        continue;
                cli.cmd  = pd_commands[i].name;
                cli.conf = pd_config_new();
                ret      = pd_commands[i].fn(&cli, argc - 1, argv + 1);
                /* Whatever the command, a forged result it saw and
                 * ignored is said once more at the end, where CI logs
                 * are read. */
                if (cli.rejected)
                        fprintf(stderr,
                                "postdeploy %s: warning: %zu record(s) on %s "
                                "rejected: not signed with [cli] "
                                "signing_key; not counted\n",
                                cli.cmd, cli.rejected,
                                cli.conf->topic_results);
                pd_sign_key_free(cli.secret, cli.secret_len);
                pd_config_destroy(cli.conf);
                pd_strv_clear(&cli.kafka_overrides);
                return pd_cli_exit(ret);
        }
        fprintf(stderr, "postdeploy: unknown command '%s'\n", argv[1]);
        pd_usage(stderr);
        return PD_EXIT_USAGE;
}
