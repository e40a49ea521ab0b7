/*
 * cli.h - what the `postdeploy` commands share: the options every command
 * takes (-c, -b, -X), the exit codes CI relies on, and client set-up.
 */
#ifndef PD_CLI_H
#define PD_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/* Exit codes: part of the contract with CI pipelines. */
#define PD_EXIT_OK      0 /* every selected action succeeded */
#define PD_EXIT_FAILED  1 /* an action failed, timed out or was rejected */
#define PD_EXIT_USAGE   2 /* bad usage or configuration */
#define PD_EXIT_TIMEOUT 3 /* --wait ran out of time */
#define PD_EXIT_KAFKA                                                          \
        4 /* the broker could not be reached, or a publish                     \
           * failed */

typedef struct pd_cli_s {
        const char *cmd;   /* "deploy", "report" */
        pd_config_t *conf; /* defaults, then -c FILE, then -b/-X */
        const char *config_path;
        pd_strv_t kafka_overrides; /* name, value pairs from -b and -X */
        char brokers[1024];        /* resolved by pd_cli_finish */
        /* Where the brokers came from, for the message when none answers:
         * the option that set them ("-b", "-X bootstrap.servers"; NULL:
         * not an option), and what pd_kafka_brokers_source said. */
        const char *brokers_opt;
        int brokers_from; /* pd_brokers_from_t */
        long dev_pid;     /* the dev file's reactor, 0 if unknown */
        /* How long to wait for a broker's first answer: 10 s, or less
         * when a command's --timeout is shorter. */
        int connect_ms;
        /* [cli] signing_key, loaded by pd_cli_finish (main frees it): signs
         * what the CLI publishes and checks what it reads from the results
         * topic. NULL: neither. */
        unsigned char *secret;
        size_t secret_len;
        size_t rejected; /* result records refused (pd_results_check) */
} pd_cli_t;

/* The getopt_long entries and help text of the common options. */
/* Commands put ':' first in their short options, so that getopt leaves
 * the messages to pd_cli_common_opt, which says which command failed. */
#define PD_CLI_COMMON_SHORTOPTS "c:b:X:vh"
/* Left as written: clang-format reads the initialisers as one block. */
// clang-format off
#define PD_CLI_COMMON_LONGOPTS                                                 \
        {"config", required_argument, NULL, 'c'},                              \
        {"brokers", required_argument, NULL, 'b'},                             \
        {"verbose", no_argument, NULL, 'v'},                                   \
        {"help", no_argument, NULL, 'h'}
// clang-format on
#define PD_CLI_COMMON_HELP                                                     \
        "  -c, --config FILE    read [kafka], [topics] and [cli] from FILE\n"  \
        "                       (default $POSTDEPLOY_CONFIG if set)\n"         \
        "  -b, --brokers LIST   Kafka bootstrap servers (default "             \
        "$POSTDEPLOY_BROKERS,\n"                                               \
        "                       then the running dev reactor's, then "         \
        "127.0.0.1:9092)\n"                                                    \
        "  -X NAME=VALUE        set a librdkafka property (repeatable)\n"      \
        "  -v, --verbose        print librdkafka's own log lines too\n"        \
        "  -h, --help           this help\n"

/*
 * Handles a common option, and getopt's complaints ('?': an unknown
 * option, ':' a missing value) in the command's name. Returns 1 if it was
 * a common option and it was fine, -1 otherwise, with the message and a
 * "Try 'postdeploy CMD --help'." printed. argv is the command's.
 */
int pd_cli_common_opt(pd_cli_t *cli, int opt, const char *arg, char **argv);

/*
 * Whether the option getopt just returned took the next argument as its
 * value although that is an option itself (`--one --release 1`,
 * `--release -c x.ini`): 1 after a message naming both, else 0. A value
 * that starts with '-' can still be given as --name=VALUE.
 */
int pd_cli_swallowed(pd_cli_t *cli, char **argv);

/* The edit distance of a and b if it is small enough for b to be what a
 * user who typed a meant, else -1 (for "did you mean"). */
int pd_cli_near(const char *a, const char *b);

/*
 * Checks that a broker answers within cli->connect_ms and that the topics
 * of [topics] the command uses exist: the results topic, and with
 * `create` (deploy, skip, reset) the events topic as well. With create,
 * topics that are all missing are created (a first deploy can come before
 * the first reactor); one missing while the other is there means this
 * [topics] is not the reactors', and nothing is created. Returns 0, or
 * the exit status after a one-line message that says what to check.
 */
int pd_cli_connect(pd_cli_t *cli, rd_kafka_t *rk, int create);

/* Makes pd_cli_connect wait at most timeout_ms (a command's --timeout)
 * rather than 10 s, but at least 1 s: a healthy broker answers in
 * milliseconds, yet not in none, and a wait that ran out is for the
 * command to report, not an unreachable broker. */
void pd_cli_connect_within(pd_cli_t *cli, int64_t timeout_ms);

/*
 * Loads the config file (-c or $POSTDEPLOY_CONFIG), applies -b/-X,
 * resolves the brokers and loads [cli] signing_key into cli->secret.
 * Returns 0, or -1 with the error printed.
 */
int pd_cli_finish(pd_cli_t *cli);

/* After getopt: 0, or -1 with a usage error printed when an operand is
 * left over (the reading commands take none). */
int pd_cli_no_operands(pd_cli_t *cli, int argc, char **argv);

/*
 * What every reading command does after its options: pd_cli_finish, then a
 * results consumer (pd_results_consumer) connected to the brokers. The
 * consumer, or NULL with the error printed and *retp set to the exit
 * status (usage, or Kafka unreachable).
 */
rd_kafka_t *pd_cli_results_open(pd_cli_t *cli, int *retp);

/*
 * A Kafka client of `type` for the CLI, with `defaults` (NULL-terminated
 * name/value list) under the user's properties. NULL with an error printed.
 */
rd_kafka_t *pd_cli_kafka(pd_cli_t *cli, rd_kafka_type_t type,
                         const char *const *defaults);

/* Prints "postdeploy CMD: " and the message to stderr. */
void pd_cli_error(const pd_cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records that writing stdout failed with errno err, for the message main
 * prints when the command ends: stdio keeps only a flag, and a write whose
 * buffer it dropped leaves nothing for the final fclose to report. */
void pd_cli_out_error(int err);

/*
 * Flushes and closes stdout as a command ends: output that did not reach
 * it (now or earlier, pd_cli_out_error) is said on stderr ("cannot write
 * output: ...") and turns a successful ret into PD_EXIT_FAILED. Returns
 * the exit status. For main only: stdout is closed after it.
 */
int pd_cli_exit(int ret);

/* The commands; each returns the exit status. */
int pd_cmd_deploy(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_skip(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_cancel(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_pause(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_resume(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_reset(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_report(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_actions(pd_cli_t *cli, int argc, char **argv);
int pd_cmd_serve(pd_cli_t *cli, int argc, char **argv);

#endif
