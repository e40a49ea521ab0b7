/*
 * cli.c - what the `postdeploy` commands share (cli.h): the common
 * options, messages, the check that a broker answers and the topics exist,
 * Kafka clients, and the exit status when stdout could not be written.
 * main.c only dispatches; this file is part of the pd_cli library that the
 * commands and their unit tests link.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/sign.h"
#include "common/strerror.h"
#include "common/xalloc.h"
#include "producer/cli.h"
#include "producer/results.h"

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
static int cli_out_errno;

void pd_cli_out_error(int err) {
        if (!cli_out_errno)
                cli_out_errno = err;
}

/*
 * Output that did not reach stdout (a full disk, an I/O error) must
 * not end in exit 0: a pipeline would take a report it never got for an
 * empty one. Flushes and closes stdout; a failed write, now or earlier, is
 * said on stderr and makes a successful command exit 1. Returns ret or
 * PD_EXIT_FAILED.
 */
int pd_cli_exit(int ret) {
        int failed = ferror(stdout);

        errno = 0;
        if (fclose(stdout)) {
                failed = 1;
                pd_cli_out_error(errno);
        }
        if (!failed && !cli_out_errno)
                return ret;
        if (cli_out_errno)
                fprintf(stderr, "postdeploy: cannot write output: %s\n",
                        pd_strerror(cli_out_errno));
        else
                fprintf(stderr, "postdeploy: cannot write output\n");
        return ret == PD_EXIT_OK ? PD_EXIT_FAILED : ret;
}

int pd_cli_common_opt(pd_cli_t *cli, int opt, const char *arg, char **argv) {
        const char *eq;

        switch (opt) {
        case 'c':
                cli->config_path = arg;
                return 1;
        case 'b':
                /* An empty list would leave librdkafka nothing to try and
                 * the user a 10 s wait for a message about Kafka. */
                if (!arg[strspn(arg, " \t,")]) {
                        pd_cli_error(cli,
                                     "-b wants HOST:PORT[,HOST:PORT...], "
                                     "got '%s'",
                                     arg);
                        break;
                }
                pd_strv_add(&cli->kafka_overrides, "bootstrap.servers");
                pd_strv_add(&cli->kafka_overrides, arg);
                cli->brokers_opt = "-b";
                return 1;
        case 'X':
                eq = strchr(arg, '=');
                if (!eq || eq == arg) {
                        pd_cli_error(cli, "-X wants NAME=VALUE, got '%s'", arg);
                        break;
                }
                {
                        char *name = pd_xstrndup(arg, (size_t)(eq - arg));
                        pd_strv_add(&cli->kafka_overrides, name);
                        pd_strv_add(&cli->kafka_overrides, eq + 1);
                        if (!strcmp(name, "bootstrap.servers") ||
                            !strcmp(name, "metadata.broker.list"))
                                cli->brokers_opt = "-X bootstrap.servers";
                        free(name);
                }
                return 1;
        case 'v':
                pd_log_level = PD_LOG_DEBUG;
                return 1;
        case ':':
                pd_cli_error(cli, "%s needs a value", argv[optind - 1]);
                break;
        default:
                /* optopt names an unknown short option; an unknown long
                 * one is only in argv. */
                if (optopt && optopt != '?')
                        pd_cli_error(cli, "unknown option '-%c'", optopt);
                else
                        pd_cli_error(cli, "unknown option '%s'",
                                     argv[optind - 1]);
                break;
        }
        fprintf(stderr, "Try 'postdeploy %s --help'.\n", cli->cmd);
        return -1;
}

int pd_cli_swallowed(pd_cli_t *cli, char **argv) {
        /* Only a value in its own argument can have been meant as an
         * option: `--release=-x` says what it means. */
        if (!optarg || optind < 2 || optarg != argv[optind - 1] ||
            optarg[0] != '-' || !optarg[1])
                return 0;
        pd_cli_error(cli, "%s needs a value, not the option '%s'",
                     argv[optind - 2], optarg);
        fprintf(stderr, "Try 'postdeploy %s --help'.\n", cli->cmd);
        return 1;
}

int pd_cli_near(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), i, j;
        size_t row[130], diag, up; /* names are at most 128 */
        int max;

        if (la >= sizeof(row) / sizeof(row[0]) ||
            lb >= sizeof(row) / sizeof(row[0]))
                return -1;
        /* Levenshtein distance, one row at a time. */
        for (j = 0; j <= lb; j++)
                row[j] = j;
        for (i = 1; i <= la; i++) {
                diag   = row[0];
                row[0] = i;
                for (j = 1; j <= lb; j++) {
                        up     = row[j];
                        row[j] = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < row[j])
                                row[j] = up + 1;
                        if (row[j - 1] + 1 < row[j])
                                row[j] = row[j - 1] + 1;
                        diag = up;
                }
        }
        /* A third of the word may be wrong, and at least 1, at most 3:
         * "dpl" is no "deploy", "deplyo" is. */
        max = (int)(la / 3);
        max = max < 1 ? 1 : max > 3 ? 3 : max;
        return row[lb] <= (size_t)max ? (int)row[lb] : -1;
}

int pd_cli_finish(pd_cli_t *cli) {
        char errstr[1024];
        const char *path = cli->config_path;

        if (!path && getenv("POSTDEPLOY_CONFIG") &&
            *getenv("POSTDEPLOY_CONFIG"))
                path = getenv("POSTDEPLOY_CONFIG");
        if (path && pd_config_load(cli->conf, path, errstr, sizeof(errstr))) {
                pd_cli_error(cli, "%s", errstr);
                return -1;
        }
        for (size_t i = 0; i + 1 < cli->kafka_overrides.cnt; i += 2)
                if (pd_config_set(cli->conf, "kafka", cli->kafka_overrides.v[i],
                                  cli->kafka_overrides.v[i + 1], errstr,
                                  sizeof(errstr))) {
                        pd_cli_error(cli, "%s", errstr);
                        return -1;
                }
        cli->brokers_from = pd_kafka_brokers_source(
            cli->conf, 1, cli->brokers, sizeof(cli->brokers), &cli->dev_pid);
        if (!cli->connect_ms)
                cli->connect_ms = 10000;
        if (cli->conf->cli_signing_key && *cli->conf->cli_signing_key &&
            pd_sign_key_load(cli->conf->cli_signing_key, &cli->secret,
                             &cli->secret_len, errstr, sizeof(errstr))) {
                pd_cli_error(cli, "%s", errstr);
                return -1;
        }
        return 0;
}

int pd_cli_no_operands(pd_cli_t *cli, int argc, char **argv) {
        if (optind >= argc)
                return 0;
        pd_cli_error(cli, "unexpected argument '%s'", argv[optind]);
        return -1;
}

rd_kafka_t *pd_cli_results_open(pd_cli_t *cli, int *retp) {
        rd_kafka_t *rkc;

        *retp = PD_EXIT_USAGE;
        if (pd_cli_finish(cli) || !(rkc = pd_results_consumer(cli)))
                return NULL;
        if ((*retp = pd_cli_connect(cli, rkc, 0))) {
                rd_kafka_destroy(rkc);
                return NULL;
        }
        return rkc;
}

/* Says that no broker answered, where the list came from and what to
 * check, in one line: librdkafka's own lines are not shown (unless -v). */
static void cli_unreachable(const pd_cli_t *cli, rd_kafka_resp_err_t err) {
        char from[1200], why[512], file[1024];
        const char *home = getenv("HOME"), *path = cli->config_path;
        const char *hint = "is a broker running there? try -b HOST:PORT";

        if (!path && getenv("POSTDEPLOY_CONFIG") &&
            *getenv("POSTDEPLOY_CONFIG"))
                path = getenv("POSTDEPLOY_CONFIG");
        pd_log_rdkafka_last(why, sizeof(why));
        if (!*why)
                snprintf(why, sizeof(why), "%s", rd_kafka_err2str(err));
        switch (cli->brokers_from) {
        case PD_BROKERS_FROM_CONFIG:
                if (cli->brokers_opt)
                        snprintf(from, sizeof(from), "from %s",
                                 cli->brokers_opt);
                else
                        snprintf(from, sizeof(from),
                                 "from [kafka] bootstrap.servers in %s",
                                 path ? path : "the config");
                break;
        case PD_BROKERS_FROM_ENV:
                snprintf(from, sizeof(from), "from $POSTDEPLOY_BROKERS");
                break;
        case PD_BROKERS_FROM_DEV_FILE:
                pd_kafka_dev_file(file, sizeof(file));
                /* ~ for $HOME: the path as a user would type it. */
                if (home && *home && !strncmp(file, home, strlen(home)) &&
                    file[strlen(home)] == '/') {
                        memmove(file + 1, file + strlen(home),
                                strlen(file + strlen(home)) + 1);
                        file[0] = '~';
                }
                if (cli->dev_pid > 0 && kill((pid_t)cli->dev_pid, 0) &&
                    errno == ESRCH)
                        snprintf(from, sizeof(from),
                                 "from %s, written by a reactor that is gone "
                                 "(pid %ld)",
                                 file, cli->dev_pid);
                else if (cli->dev_pid > 0)
                        snprintf(from, sizeof(from),
                                 "from %s, written by the dev reactor pid %ld",
                                 file, cli->dev_pid);
                else
                        snprintf(from, sizeof(from),
                                 "from %s, written by a `postdeploy-reactor "
                                 "--dev` that seems to be gone",
                                 file);
                hint =
                    "start `postdeploy-reactor --dev` again, remove that "
                    "file, or try -b HOST:PORT";
                break;
        default:
                snprintf(from, sizeof(from),
                         "the default: no -b, [kafka] bootstrap.servers, "
                         "$POSTDEPLOY_BROKERS nor dev reactor");
                break;
        }
        pd_cli_error(cli, "cannot reach Kafka at %s (%s): %s: %s", cli->brokers,
                     from, why, hint);
}

/* Says that a topic of [topics] is not on the broker, and where its name
 * came from. */
static void cli_no_topic(const pd_cli_t *cli, const char *key,
                         const char *topic) {
        const char *path = cli->config_path;

        if (!path && getenv("POSTDEPLOY_CONFIG") &&
            *getenv("POSTDEPLOY_CONFIG"))
                path = getenv("POSTDEPLOY_CONFIG");
        if (path)
                pd_cli_error(cli,
                             "topic '%s' does not exist on the broker (from "
                             "[topics] %s in %s): is that the reactors' "
                             "[topics]?",
                             topic, key, path);
        else
                pd_cli_error(cli,
                             "topic '%s' does not exist on the broker (the "
                             "default [topics] %s; no -c FILE): do the "
                             "reactors use other [topics]?",
                             topic, key);
}

int pd_cli_connect(pd_cli_t *cli, rd_kafka_t *rk, int create) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        char errstr[512];
        int events, results, ret = PD_EXIT_USAGE;

        /* One topic without the other is most often a reactor creating
         * them this very moment: asked again for up to 3 s before it is
         * taken for [topics] that differ from the reactors'. */
        for (int tries = 0;; tries++) {
                err = rd_kafka_metadata(rk, 1, NULL, &md, cli->connect_ms);
                if (err) {
                        cli_unreachable(cli, err);
                        return PD_EXIT_KAFKA;
                }
                events  = pd_kafka_topic_exists(md, cli->conf->topic_events);
                results = pd_kafka_topic_exists(md, cli->conf->topic_results);
                rd_kafka_metadata_destroy(md);
                if (events == results || tries == 15)
                        break;
                poll(NULL, 0, 200);
        }
        if (create && !events && !results) {
                /* The broker has answered: its time to create topics is
                 * no part of the wait for an answer. */
                if (pd_kafka_topics_ensure(rk, cli->conf, 10000, errstr,
                                           sizeof(errstr))) {
                        pd_cli_error(cli, "%s", errstr);
                        return PD_EXIT_KAFKA;
                }
                ret = 0;
        } else if (!results) {
                cli_no_topic(cli, "results", cli->conf->topic_results);
        } else if (create && !events) {
                cli_no_topic(cli, "events", cli->conf->topic_events);
        } else {
                ret = 0;
        }
        return ret;
}

void pd_cli_connect_within(pd_cli_t *cli, int64_t timeout_ms) {
        cli->connect_ms = timeout_ms < 1000    ? 1000
                          : timeout_ms < 10000 ? (int)timeout_ms
                                               : 10000;
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
