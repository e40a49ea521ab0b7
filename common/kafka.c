/*
 * kafka.c - see kafka.h.
 */
#include "common/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"

const char *pd_kafka_dev_file(char *buf, size_t size) {
        const char *cache = getenv("XDG_CACHE_HOME");
        const char *home  = getenv("HOME");

        if (cache && *cache)
                snprintf(buf, size, "%s/postdeploy/dev-brokers", cache);
        else
                snprintf(buf, size, "%s/.cache/postdeploy/dev-brokers",
                         home && *home ? home : "/tmp");
        return buf;
}

pd_brokers_from_t pd_kafka_brokers_source(const pd_config_t *conf,
                                          int use_dev_file, char *buf,
                                          size_t size, long *dev_pid) {
        const char *v;
        char path[1024], line[64];
        FILE *fp;

        if (dev_pid)
                *dev_pid = 0;
        if ((v = pd_config_kafka(conf, "bootstrap.servers")) ||
            (v = pd_config_kafka(conf, "metadata.broker.list"))) {
                snprintf(buf, size, "%s", v);
                return PD_BROKERS_FROM_CONFIG;
        }
        if ((v = getenv("POSTDEPLOY_BROKERS")) && *v) {
                snprintf(buf, size, "%s", v);
                return PD_BROKERS_FROM_ENV;
        }
        if (use_dev_file &&
            (fp = fopen(pd_kafka_dev_file(path, sizeof(path)), "r"))) {
                int ok = fgets(buf, (int)size, fp) != NULL;
                /* A second line, when there is one, is the pid of the
                 * reactor that wrote the file. */
                if (ok && dev_pid && fgets(line, sizeof(line), fp))
                        *dev_pid = strtol(line, NULL, 10);
                fclose(fp);
                if (ok) {
                        buf[strcspn(buf, "\r\n")] = '\0';
                        if (*buf)
                                return PD_BROKERS_FROM_DEV_FILE;
                }
        }
        snprintf(buf, size, "127.0.0.1:9092");
        return PD_BROKERS_FROM_DEFAULT;
}

const char *pd_kafka_brokers(const pd_config_t *conf, int use_dev_file,
                             char *buf, size_t size) {
        pd_kafka_brokers_source(conf, use_dev_file, buf, size, NULL);
        return buf;
}

rd_kafka_conf_t *pd_kafka_conf(const pd_config_t *conf,
                               const char *const *defaults, const char *brokers,
                               char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        size_t i;

        rd_kafka_conf_set_log_cb(kconf, pd_log_rdkafka_cb);
        for (i = 0; defaults && defaults[i]; i += 2) {
                if (rd_kafka_conf_set(kconf, defaults[i], defaults[i + 1],
                                      errstr, errstr_size) != RD_KAFKA_CONF_OK)
                        goto err;
        }
        for (i = 0; i + 1 < conf->kafka.cnt; i += 2) {
                const char *name = conf->kafka.v[i];
                char msg[512];

                if (rd_kafka_conf_set(kconf, name, conf->kafka.v[i + 1], msg,
                                      sizeof(msg)) != RD_KAFKA_CONF_OK) {
                        snprintf(errstr, errstr_size, "[kafka] %s: %s", name,
                                 msg);
                        goto err;
                }
        }
        if (rd_kafka_conf_set(kconf, "bootstrap.servers", brokers, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK)
                goto err;
        return kconf;

err:
        rd_kafka_conf_destroy(kconf);
        return NULL;
}

int pd_kafka_ping(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                  char *errstr, size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size,
                         "cannot reach Kafka at %s within %d ms: %s", brokers,
                         timeout_ms, rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_metadata_destroy(md);
        return 0;
}

/*
 * Whether `topic` exists in `md`. A metadata request for all topics is used
 * rather than one for the topic itself: on a broker with
 * auto.create.topics.enable, asking for a single topic can create it, with
 * the broker's defaults instead of ours.
 */
int pd_kafka_topic_exists(const struct rd_kafka_metadata *md,
                          const char *topic) {
        for (int i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, topic))
                        return !md->topics[i].err &&
                               md->topics[i].partition_cnt > 0;
        return 0;
}

/* The partition counts of topics a and b (-1: not in the metadata). */
static int kafka_partition_cnts(rd_kafka_t *rk, const char *a, const char *b,
                                int timeout_ms, int cnt[2], char *errstr,
                                size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        cnt[0] = cnt[1] = -1;
        err             = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size, "cannot list topics: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        for (int i = 0; i < md->topic_cnt; i++) {
                if (!strcmp(md->topics[i].topic, a))
                        cnt[0] = md->topics[i].partition_cnt;
                if (!strcmp(md->topics[i].topic, b))
                        cnt[1] = md->topics[i].partition_cnt;
        }
        rd_kafka_metadata_destroy(md);
        return 0;
}

int pd_kafka_partitions_match(rd_kafka_t *rk, const char *a, const char *b,
                              int timeout_ms, char *errstr,
                              size_t errstr_size) {
        int cnt[2];

        /* A topic created a moment ago may show only some of its
         * partitions in a broker's metadata for a while: a mismatch is
         * believed once it has lasted 3 s. */
        for (int64_t until = pd_mono_ms() + 3000;;) {
                if (kafka_partition_cnts(rk, a, b, timeout_ms, cnt, errstr,
                                         errstr_size))
                        return -1;
                if (cnt[0] < 1 || cnt[1] < 1) {
                        snprintf(errstr, errstr_size,
                                 "topic %s is not in the metadata yet",
                                 cnt[0] < 1 ? a : b);
                        return -1;
                }
                if (cnt[0] == cnt[1])
                        return 0;
                if (pd_mono_ms() >= until)
                        break;
                nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
        }
        snprintf(errstr, errstr_size,
                 "topic %s has %d partition(s) and topic %s has %d: "
                 "a shared group needs as many in both (each "
                 "tenant's results go to the partition number its "
                 "events come from)",
                 a, cnt[0], b, cnt[1]);
        return 1;
}

int pd_kafka_topics_ensure(rd_kafka_t *rk, const pd_config_t *conf,
                           int timeout_ms, char *errstr, size_t errstr_size) {
        const char *topics[] = {conf->topic_events, conf->topic_results,
                                conf->topic_dlq};
        rd_kafka_NewTopic_t *newt[3];
        size_t newt_cnt                    = 0, i;
        rd_kafka_queue_t *rkqu             = NULL;
        rd_kafka_event_t *rkev             = NULL;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        int ret = -1;

        err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (err) {
                snprintf(errstr, errstr_size, "cannot list topics: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        for (i = 0; i < 3; i++) {
                if (pd_kafka_topic_exists(md, topics[i]))
                        continue;
                newt[newt_cnt] = rd_kafka_NewTopic_new(
                    topics[i], conf->partitions, conf->replication, errstr,
                    errstr_size);
                if (!newt[newt_cnt])
                        goto done;
                if (topics[i] == conf->topic_results &&
                    rd_kafka_NewTopic_set_config(newt[newt_cnt],
                                                 "cleanup.policy", "compact")) {
                        newt_cnt++;
                        snprintf(errstr, errstr_size,
                                 "cannot set cleanup.policy");
                        goto done;
                }
                newt_cnt++;
        }
        if (!newt_cnt) {
                ret = 0;
                goto done;
        }

        rkqu = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, newt, newt_cnt, NULL, rkqu);
        rkev = rd_kafka_queue_poll(rkqu, timeout_ms + 1000);
        if (!rkev) {
                snprintf(errstr, errstr_size, "topic creation timed out");
                goto done;
        }
        if (rd_kafka_event_error(rkev)) {
                snprintf(errstr, errstr_size, "cannot create topics: %s",
                         rd_kafka_event_error_string(rkev));
                goto done;
        } else {
                const rd_kafka_CreateTopics_result_t *res =
                    rd_kafka_event_CreateTopics_result(rkev);
                size_t cnt;
                const rd_kafka_topic_result_t **tres =
                    rd_kafka_CreateTopics_result_topics(res, &cnt);

                for (i = 0; i < cnt; i++) {
                        err = rd_kafka_topic_result_error(tres[i]);
                        if (err &&
                            err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                                snprintf(errstr, errstr_size,
                                         "cannot create topic %s: %s",
                                         rd_kafka_topic_result_name(tres[i]),
                                         rd_kafka_topic_result_error_string(
                                             tres[i]));
                                goto done;
                        }
                        pd_log(PD_LOG_INFO, "created topic %s",
                               rd_kafka_topic_result_name(tres[i]));
                }
        }
        ret = 0;

done:
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkev)
                rd_kafka_event_destroy(rkev);
        if (rkqu)
                rd_kafka_queue_destroy(rkqu);
        for (i = 0; i < newt_cnt; i++)
                rd_kafka_NewTopic_destroy(newt[i]);
        return ret;
}

static int kafka_err_transient(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
               err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
               err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
               err == RD_KAFKA_RESP_ERR__TRANSPORT ||
               err == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

int pd_kafka_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        pd_kafka_wm_t **wmp, size_t *cntp, char *errstr,
                        size_t errstr_size) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        int64_t deadline                   = pd_now_ms() + timeout_ms;
        pd_kafka_wm_t *wm                  = NULL;
        rd_kafka_resp_err_t err;
        int backoff = 50, ret = -1, cnt = 0;

        for (;;) {
                int left = (int)(deadline - pd_now_ms());

                if (md)
                        rd_kafka_metadata_destroy(md);
                md  = NULL;
                err = rd_kafka_metadata(rk, 0, rkt, &md, left > 0 ? left : 1);
                if (!err && md->topic_cnt == 1)
                        err = md->topics[0].err;
                if (!err) {
                        cnt = md->topics[0].partition_cnt;
                        free(wm);
                        wm = pd_xcalloc((size_t)cnt + 1, sizeof(*wm));
                        for (int i = 0; i < cnt && !err; i++) {
                                wm[i].partition =
                                    md->topics[0].partitions[i].id;
                                err = rd_kafka_query_watermark_offsets(
                                    rk, topic, wm[i].partition, &wm[i].lo,
                                    &wm[i].hi, left > 0 ? left : 1);
                        }
                }
                if (!err)
                        break;
                if (!kafka_err_transient(err) || pd_now_ms() >= deadline) {
                        /* No answer at all is an outage, and says so
                         * in the words the CLI uses for one. */
                        snprintf(errstr, errstr_size,
                                 err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                                         err == RD_KAFKA_RESP_ERR__TIMED_OUT
                                     ? "cannot reach Kafka (reading the "
                                       "offsets of %s): %s"
                                     : "cannot read the offsets of %s: %s",
                                 topic, rd_kafka_err2str(err));
                        goto done;
                }
                pd_log(PD_LOG_DEBUG, "offsets of %s: %s; retrying", topic,
                       rd_kafka_err2str(err));
                rd_kafka_poll(rk, backoff);
                if (backoff < 1000)
                        backoff *= 2;
        }
        *wmp  = wm;
        *cntp = (size_t)cnt;
        wm    = NULL;
        ret   = 0;

done:
        free(wm);
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return ret;
}
