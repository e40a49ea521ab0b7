/*
 * main.c - `postdeploy-reactor`: the command line around pd_reactor_t.
 *
 * `--dev` starts an embedded Kafka-protocol broker (librdkafka's mock
 * cluster) in this process, writes its address where the CLI looks by
 * default, and keeps its state in a fresh file, so a new user can try
 * everything without Kafka. Only main exits; signals only set a flag.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/path.h"
#include "common/strerror.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "consumer/http.h"
#include "consumer/metrics.h"
#include "consumer/plugin.h"
#include "consumer/reactor.h"
#include "consumer/supervisor.h"
#include "schemas/event.h"

#define PD_EXIT_OK    0
#define PD_EXIT_FAIL  1
#define PD_EXIT_USAGE 2

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig) {
        if (sig == SIGHUP)
                reload_requested = 1;
        else
                stop_requested = 1;
}

static void print_usage(FILE *fp) {
        fprintf(fp,
                "Usage: postdeploy-reactor -c FILE [options]\n"
                "\n"
                "Consumes release.deployed events, runs the selected actions "
                "per tenant,\n"
                "records every run in SQLite and publishes action.started / "
                "action.finished.\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE     the INI configuration (required)\n"
                "  -b, --brokers LIST    Kafka bootstrap servers (overrides "
                "[kafka] bootstrap.servers\n"
                "                        and $POSTDEPLOY_BROKERS)\n"
                "  -X NAME=VALUE         set a librdkafka property "
                "(repeatable)\n"
                "  -s, --set SECTION.KEY=VALUE\n"
                "                        override a config key, e.g. "
                "reactor.workers=8\n"
                "      --dev             run an embedded Kafka-protocol "
                "broker (no Kafka needed);\n"
                "                        its address is written to %s\n"
                "      --check           validate the configuration and "
                "exit\n"
                "  -v, --verbose         log at debug level\n"
                "  -h, --help            this help, with every config key\n"
                "      --help-config-md  the config keys as a Markdown table\n"
                "  -V, --version         print the version\n"
                "\n"
                "Exit status: 0 clean stop, 1 fatal error, 2 usage or "
                "configuration error.\n"
                "Signals: SIGTERM/SIGINT stop cleanly within "
                "reactor.shutdown_grace plus a second\n"
                "(running actions get the grace; a retry backoff is cut "
                "short);\n"
                "SIGHUP reloads the config once running actions finish "
                "(actions, plugins,\n"
                "log level; Kafka, topics, state and workers change at the "
                "next start).\n"
                "\n"
                "Configuration keys:\n",
                "$XDG_CACHE_HOME/postdeploy/dev-brokers");
        pd_config_print_keys(fp, 't');
}

/* Writes `text` to path (0600, folder 0700 created if missing). */
static int write_private(const char *path, const char *text) {
        FILE *fp;
        mode_t old;

        (void)pd_mkparents(path, NULL, 0); /* fopen says what failed */
        old = umask(077);
        fp  = fopen(path, "w");
        umask(old);
        if (!fp)
                return -1;
        fprintf(fp, "%s\n", text);
        return fclose(fp) ? -1 : 0;
}

/*
 * The embedded broker of --dev, and the dev folder (beside the address
 * file, in the user's cache) that one dev reactor at a time owns: its
 * address file, its state, its supervisor's folder. Ownership is a flock
 * on dev.lock held for the process's life, so a reactor killed with -9
 * hands it on by itself.
 */
typedef struct pd_dev_s {
        rd_kafka_t *rk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        int lock_fd;   /* -1 until the folder is ours */
        int announced; /* the address file is ours */
        char file[1024];
        char dir[1024];
} pd_dev_t;

/* nftw callback: removes each entry, the folders' contents first. */
static int dev_rm(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        return remove(path) && errno != ENOENT ? -1 : 0;
}

/*
 * Stops the supervisor of every supervisor-* folder in the dev folder and
 * removes the folder: at stop our own, at start what a dev reactor killed
 * with -9 left. Each dev start makes a fresh store, and with it a folder
 * of its own, so nothing in them is needed again, and they would pile up.
 * Logs what it could not remove.
 */
static void dev_sweep(pd_dev_t *dev) {
        DIR *d = opendir(dev->dir);
        struct dirent *de;
        char path[2100], errstr[512];

        if (!d)
                return;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "supervisor-", 11))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dev->dir, de->d_name);
                if (pd_sup_shutdown(path, 10000, errstr, sizeof(errstr)))
                        pd_log(PD_LOG_WARN, "--dev: %s", errstr);
                else if (nftw(path, dev_rm, 16, FTW_DEPTH | FTW_PHYS))
                        pd_log(PD_LOG_WARN, "--dev: cannot remove %s: %s", path,
                               pd_strerror(errno));
        }
        closedir(d);
}

/*
 * Makes the dev folder ours, or says which process has it. Returns 0, or
 * -1 with errstr.
 */
static int dev_lock(pd_dev_t *dev, char *errstr, size_t errstr_size) {
        char path[1100], pid[32] = "";
        int err;

        pd_kafka_dev_file(dev->file, sizeof(dev->file));
        snprintf(dev->dir, sizeof(dev->dir), "%s", dev->file);
        *strrchr(dev->dir, '/') = '\0';
        snprintf(path, sizeof(path), "%s/dev.lock", dev->dir);
        (void)pd_mkparents(path, NULL, 0); /* open says what failed */
        /* Close-on-exec: a supervisor or an action that outlived us must
         * not keep the folder locked. */
        dev->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (dev->lock_fd == -1)
                return pd_errf(errstr, errstr_size, "cannot open %s: %s", path,
                               pd_strerror(errno));
        if (!flock(dev->lock_fd, LOCK_EX | LOCK_NB)) {
                snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
                if (ftruncate(dev->lock_fd, 0) ||
                    pwrite(dev->lock_fd, pid, strlen(pid), 0) < 0)
                        pd_log(PD_LOG_WARN, "cannot write %s: %s", path,
                               pd_strerror(errno));
                return 0;
        }
        err = errno;
        /* The holder writes its pid right after it locks: an empty file
         * is one that is just starting. */
        if (err == EWOULDBLOCK &&
            pread(dev->lock_fd, pid, sizeof(pid) - 1, 0) > 0)
                pid[strcspn(pid, "\n")] = '\0';
        close(dev->lock_fd);
        dev->lock_fd = -1;
        if (err != EWOULDBLOCK)
                return pd_errf(errstr, errstr_size, "cannot lock %s: %s", path,
                               pd_strerror(err));
        return pd_errf(errstr, errstr_size,
                       "another dev reactor (pid %s) is running: it owns %s "
                       "(its broker address, its state); stop it first "
                       "(kill %s), or run this one without --dev",
                       *pid ? pid : "?", dev->dir, *pid ? pid : "PID");
}

static int dev_start(pd_dev_t *dev, pd_config_t *conf, char *errstr,
                     size_t errstr_size) {
        rd_kafka_conf_t *kconf;
        const char *topics[] = {conf->topic_events, conf->topic_results,
                                conf->topic_dlq};
        char path[1100];

        if (dev_lock(dev, errstr, errstr_size))
                return -1;
        dev_sweep(dev);
        kconf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(kconf, pd_log_rdkafka_cb);
        dev->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
        if (!dev->rk) {
                rd_kafka_conf_destroy(kconf);
                return -1;
        }
        dev->mcluster = rd_kafka_mock_cluster_new(dev->rk, 1);
        if (!dev->mcluster) {
                snprintf(errstr, errstr_size, "cannot start the mock cluster");
                return -1;
        }
        for (int i = 0; i < 3; i++)
                rd_kafka_mock_topic_create(dev->mcluster, topics[i],
                                           conf->partitions, 1);

        /* The dev broker forgets everything when it stops: so does the dev
         * state, or the reactor would remember runs the report cannot see. */
        snprintf(path, sizeof(path), "%s/dev-state.db", dev->dir);
        for (int i = 0; i < 3; i++) {
                static const char *const sfx[] = {"", "-wal", "-shm"};
                char p[1200];
                snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
                unlink(p);
        }
        if (pd_config_set(conf, "reactor", "state", path, errstr,
                          errstr_size) ||
            pd_config_set(conf, "kafka", "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(dev->mcluster),
                          errstr, errstr_size))
                return -1;
        return 0;
}

/* Publishes the dev broker's address once the reactor is ready. */
static int dev_announce(pd_dev_t *dev) {
        const char *brokers = rd_kafka_mock_cluster_bootstraps(dev->mcluster);

        if (write_private(dev->file, brokers)) {
                pd_log(PD_LOG_ERROR, "cannot write %s: %s", dev->file,
                       pd_strerror(errno));
                return -1;
        }
        dev->announced = 1;
        printf("postdeploy-reactor: dev broker on %s (written to %s)\n",
               brokers, dev->file);
        fflush(stdout);
        return 0;
}

/* After the reactor is gone: the address file goes if it is still ours,
 * the supervisor and its folder go, and the folder is free again. */
static void dev_stop(pd_dev_t *dev) {
        if (dev->announced) {
                const char *brokers =
                    rd_kafka_mock_cluster_bootstraps(dev->mcluster);
                char line[1024] = "";
                FILE *fp        = fopen(dev->file, "r");

                if (fp) {
                        if (!fgets(line, sizeof(line), fp))
                                *line = '\0';
                        fclose(fp);
                        line[strcspn(line, "\n")] = '\0';
                        if (!strcmp(line, brokers))
                                unlink(dev->file);
                }
        }
        if (dev->mcluster)
                rd_kafka_mock_cluster_destroy(dev->mcluster);
        if (dev->rk)
                rd_kafka_destroy(dev->rk);
        if (dev->lock_fd != -1) {
                dev_sweep(dev);
                close(dev->lock_fd);
        }
}

/*
 * Loads the plugins the config lists and registers their actions after the
 * config's own, so config order stays run order. *plp owns them and must
 * outlive every use of conf's actions; running is the set in use during a
 * reload (NULL at start-up). Returns 0 or -1 with errstr.
 */
static int reactor_plugins_load(pd_config_t *conf, const pd_plugins_t *running,
                                pd_plugins_t **plp, char *errstr,
                                size_t errstr_size) {
        pd_plugins_t *pl;

        *plp = NULL;
        if (!conf->plugins.cnt)
                return 0;
        pl = pd_plugins_load((const char *const *)conf->plugins.v,
                             conf->plugins.cnt, running, errstr, errstr_size);
        if (!pl)
                return -1;
        *plp = pl;
        for (size_t i = 0; i < pd_plugins_count(pl); i++) {
                pd_policy_t policy;
                const char *path;
                const pd_plugin_action_t *act =
                    pd_plugins_action(pl, i, &policy, &path);
                pd_action_def_t *def;
                char msg[512];

                def = pd_config_action_new(conf, act->name, msg, sizeof(msg));
                if (!def) {
                        snprintf(errstr, errstr_size, "plugin %s: %s", path,
                                 msg);
                        return -1;
                }
                def->is_auto       = act->is_auto;
                def->policy        = policy;
                def->plugin_action = act;
                free(def->description);
                def->description = pd_xstrdup(act->description);
                def->plugin      = pd_xstrdup(path);
                for (size_t j = 0; act->after && act->after[j]; j++)
                        pd_strv_add(&def->after, act->after[j]);
        }
        return 0;
}

/*
 * Splits -s SECTION.KEY into the section and the key. An action's name has
 * dots of its own ("action core.reindex.timeout"), so for actions the
 * longest loaded name that fits wins; elsewhere the first dot splits.
 * Returns the key (inside `raw`) and fills `section`.
 */
static const char *override_split(const pd_config_t *conf, const char *raw,
                                  char *section, size_t size) {
        const char *dot = strchr(raw, '.');
        size_t best     = 0;

        if (!strncmp(raw, "action ", 7)) {
                for (size_t i = 0; i < conf->action_cnt; i++) {
                        size_t n = strlen(conf->actions[i].name);
                        if (n > best &&
                            !strncmp(raw + 7, conf->actions[i].name, n) &&
                            raw[7 + n] == '.')
                                best = n;
                }
                if (best)
                        dot = raw + 7 + best;
        }
        snprintf(section, size, "%.*s", (int)(dot - raw), raw);
        return dot + 1;
}

/*
 * `--supervisor DIR [--idle S] [--log-format text|json]`: this binary as the
 * supervisor of command actions (supervisor.h), which the reactor starts
 * itself with its own log format, so the supervisor's log reads like the
 * reactor's. Hidden from --help: nobody needs to type it.
 */
static int supervisor_main(int argc, char **argv) {
        char *end = NULL;
        long idle = -1; /* the default */
        int ok    = argc >= 3 && argc % 2 == 1;

        for (int i = 3; ok && i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--idle")) {
                        errno = 0;
                        idle  = strtol(argv[i + 1], &end, 10);
                        ok    = !errno && end != argv[i + 1] && !*end &&
                             idle >= 0 && idle <= 86400L * 365;
                } else if (!strcmp(argv[i], "--log-format")) {
                        pd_log_format = pd_log_format_parse(argv[i + 1]);
                        ok            = pd_log_format >= 0;
                } else {
                        ok = 0;
                }
        }
        if (!ok) {
                pd_log_format = PD_LOG_FORMAT_TEXT;
                fprintf(stderr,
                        "Usage: postdeploy-reactor --supervisor DIR "
                        "[--idle SECONDS] [--log-format text|json]\n");
                return PD_EXIT_USAGE;
        }
        return pd_sup_main(argv[2], (int)idle);
}

/* The config in use, and one a reload has loaded but not swapped in yet:
 * each with the plugins its actions come from. */
typedef struct pd_main_s {
        const char *path;
        pd_strv_t overrides; /* section ("" for -s), key, value triples */
        pd_config_t *conf;
        pd_plugins_t *plugins;
        pd_config_t *next;
        pd_plugins_t *next_plugins;
} pd_main_t;

/*
 * Reads the config file, applies the overrides, loads the plugins and
 * validates: what start-up and every reload do. Returns the config and its
 * plugins in *plp, or NULL with errstr.
 */
static pd_config_t *main_load(pd_main_t *m, pd_plugins_t **plp, char *errstr,
                              size_t errstr_size) {
        pd_config_t *conf   = pd_config_new();
        const pd_strv_t *ov = &m->overrides;

        *plp = NULL;
        if (pd_config_load(conf, m->path, errstr, errstr_size))
                goto err;
        for (size_t i = 0; i + 2 < ov->cnt; i += 3) {
                char section[300];
                const char *key = ov->v[i + 1];

                if (!*ov->v[i])
                        key =
                            override_split(conf, key, section, sizeof(section));
                else
                        snprintf(section, sizeof(section), "%s", ov->v[i]);
                if (pd_config_set(conf, section, key, ov->v[i + 2], errstr,
                                  errstr_size))
                        goto err;
        }
        if (reactor_plugins_load(conf, m->plugins, plp, errstr, errstr_size) ||
            pd_config_validate(conf, errstr, errstr_size) ||
            pd_reactor_kafka_check(conf, errstr, errstr_size))
                goto err;
        return conf;

err:
        pd_plugins_unload(*plp);
        *plp = NULL;
        pd_config_destroy(conf);
        return NULL;
}

/* pd_reload_t.load: runs on the reactor's main thread. */
static pd_config_t *main_reload(void *opaque, char *errstr,
                                size_t errstr_size) {
        pd_main_t *m = opaque;

        m->next = main_load(m, &m->next_plugins, errstr, errstr_size);
        return m->next;
}

/* pd_reload_t.release: the reactor no longer uses `old`. */
static void main_release(void *opaque, const pd_config_t *old) {
        pd_main_t *m = opaque;

        if (old == m->conf) {
                /* Swapped: the new config is the one in use now. */
                pd_config_destroy(m->conf);
                pd_plugins_unload(m->plugins);
                m->conf    = m->next;
                m->plugins = m->next_plugins;
        } else {
                /* Stopped before the swap: the new one was never used. */
                pd_config_destroy(m->next);
                pd_plugins_unload(m->next_plugins);
        }
        m->next         = NULL;
        m->next_plugins = NULL;
}

/*
 * Runs the reactor until it stops. One whose state store lost a batch to a
 * fault that may clear, a full disk or an I/O error (pd_reactor_run returns
 * 1), is made again from what is durable, as a restart would make it: the
 * process keeps running, retries with a pause growing from 1 s to 30 s
 * while the store still fails, and resumes when the fault clears.
 */
static int main_serve(pd_main_t *m, pd_reactor_t **rp,
                      const pd_reload_t *reload, const char *brokers) {
        int64_t pause_ms = 1000;
        char errstr[512];

        for (;;) {
                int64_t began = pd_now_ms();
                int rc;

                pd_reactor_set_reload(*rp, reload);
                rc = pd_reactor_run(*rp, &stop_requested);
                if (rc != 1)
                        return rc ? PD_EXIT_FAIL : PD_EXIT_OK;
                pd_reactor_destroy(*rp);
                *rp = NULL;
                if (pd_now_ms() - began > 60000)
                        pause_ms = 1000; /* it had been well for a while */
                while (!*rp) {
                        pd_log(PD_LOG_WARN,
                               "state store fault: starting the reactor "
                               "again in %" PRId64 " s",
                               pause_ms / 1000);
                        for (int64_t end = pd_now_ms() + pause_ms;
                             !stop_requested && pd_now_ms() < end;) {
                                pd_metrics_tick(); /* alive, not ready */
                                poll(NULL, 0, 100);
                        }
                        if (stop_requested)
                                return PD_EXIT_OK;
                        pause_ms = pause_ms * 2 > 30000 ? 30000 : pause_ms * 2;
                        *rp      = pd_reactor_new(m->conf, brokers, errstr,
                                                  sizeof(errstr));
                        if (!*rp)
                                pd_log(PD_LOG_ERROR, "%s", errstr);
                }
        }
}

int main(int argc, char **argv) {
        /* Told apart before anything else: the supervisor reads no config
         * and must not set up what the reactor does. */
        if (argc >= 2 && !strcmp(argv[1], "--supervisor"))
                return supervisor_main(argc, argv);

        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"brokers", required_argument, NULL, 'b'},
            {"set", required_argument, NULL, 's'},
            {"dev", no_argument, NULL, 'D'},
            {"check", no_argument, NULL, 'C'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {"help-config-md", no_argument, NULL, 'M'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0}};
        pd_main_t m       = {0};
        pd_config_t *conf = NULL;
        pd_dev_t dev      = {.lock_fd = -1};
        int dev_mode = 0, check = 0, verbose = 0, opt, ret = PD_EXIT_USAGE;
        pd_reactor_t *r    = NULL;
        pd_http_t *http    = NULL;
        pd_reload_t reload = {&reload_requested, main_reload, main_release, &m};
        char errstr[1024], brokers[1024];
        struct sigaction sa;

        pd_log_set_program("postdeploy-reactor");
        while ((opt = getopt_long(argc, argv, "c:b:X:s:vhV", longopts, NULL)) !=
               -1) {
                char *eq, *dot;
                switch (opt) {
                case 'c':
                        m.path = optarg;
                        break;
                case 'b':
                        pd_strv_add(&m.overrides, "kafka");
                        pd_strv_add(&m.overrides, "bootstrap.servers");
                        pd_strv_add(&m.overrides, optarg);
                        break;
                case 'X':
                case 's':
                        eq  = strchr(optarg, '=');
                        dot = opt == 's' ? strchr(optarg, '.') : NULL;
                        if (!eq || eq == optarg ||
                            (opt == 's' && (!dot || dot > eq))) {
                                fprintf(stderr,
                                        "postdeploy-reactor: -%c wants %s, "
                                        "got '%s'\n",
                                        opt,
                                        opt == 's' ? "SECTION.KEY=VALUE"
                                                   : "NAME=VALUE",
                                        optarg);
                                goto done;
                        }
                        *eq = '\0';
                        /* -s is split into section and key once the config
                         * is loaded: only then are action names known. */
                        pd_strv_add(&m.overrides, opt == 's' ? "" : "kafka");
                        pd_strv_add(&m.overrides, optarg);
                        pd_strv_add(&m.overrides, eq + 1);
                        break;
                case 'D':
                        dev_mode = 1;
                        break;
                case 'C':
                        check = 1;
                        break;
                case 'v':
                        verbose = 1;
                        break;
                case 'h':
                        print_usage(stdout);
                        ret = PD_EXIT_OK;
                        goto done;
                case 'M':
                        pd_config_print_keys(stdout, 'm');
                        ret = PD_EXIT_OK;
                        goto done;
                case 'V':
                        pd_version_print(stdout, "postdeploy-reactor");
                        ret = PD_EXIT_OK;
                        goto done;
                default:
                        fprintf(stderr, "Try 'postdeploy-reactor --help'.\n");
                        goto done;
                }
        }
        if (optind < argc) {
                fprintf(stderr,
                        "postdeploy-reactor: unexpected argument '%s'\n"
                        "Try 'postdeploy-reactor --help'.\n",
                        argv[optind]);
                goto done;
        }
        if (!m.path) {
                fprintf(stderr,
                        "postdeploy-reactor: -c FILE is required\n"
                        "Try 'postdeploy-reactor --help'.\n");
                goto done;
        }
        if (!(conf = m.conf =
                  main_load(&m, &m.plugins, errstr, sizeof(errstr)))) {
                fprintf(stderr, "postdeploy-reactor: %s\n", errstr);
                goto done;
        }
        pd_log_level  = verbose ? PD_LOG_DEBUG : conf->log_level;
        pd_log_format = conf->log_format;
        if (check) {
                printf("%s: OK, %zu action(s)\n", m.path, conf->action_cnt);
                ret = PD_EXIT_OK;
                goto done;
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* Before the reactor: the probes answer (503) while it starts, and
         * an address that is taken is a configuration error. */
        if (conf->http && *conf->http &&
            !(http = pd_http_new(conf->http, errstr, sizeof(errstr)))) {
                fprintf(stderr, "postdeploy-reactor: %s: [reactor] http: %s\n",
                        m.path, errstr);
                goto done;
        }

        ret = PD_EXIT_FAIL;
        if (dev_mode) {
                if (dev_start(&dev, conf, errstr, sizeof(errstr))) {
                        pd_log(PD_LOG_ERROR, "--dev: %s", errstr);
                        goto done;
                }
                /* A reload must find the dev broker and state too. */
                pd_strv_add(&m.overrides, "reactor");
                pd_strv_add(&m.overrides, "state");
                pd_strv_add(&m.overrides, conf->state_path);
                pd_strv_add(&m.overrides, "kafka");
                pd_strv_add(&m.overrides, "bootstrap.servers");
                pd_strv_add(&m.overrides,
                            pd_config_kafka(conf, "bootstrap.servers"));
        }
        pd_kafka_brokers(conf, 0, brokers, sizeof(brokers));
        r = pd_reactor_new(conf, brokers, errstr, sizeof(errstr));
        if (!r) {
                pd_log(PD_LOG_ERROR, "%s", errstr);
                goto done;
        }
        if (dev_mode && dev_announce(&dev))
                goto done;
        ret = main_serve(&m, &r, &reload, brokers);

done:
        pd_reactor_destroy(r);
        pd_http_destroy(http);
        pd_plugins_unload(m.plugins); /* after the workers are gone */
        dev_stop(&dev);
        pd_strv_clear(&m.overrides);
        pd_config_destroy(m.conf);
        return ret;
}
