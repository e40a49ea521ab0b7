/*
 * kafka.h - creating Kafka clients the same way in the reactor and the CLI.
 *
 * Properties are applied in this order, later ones winning: postdeploy's
 * defaults for the client type, the [kafka] section of the config (which the
 * command line's -X and -b have already been merged into), then the broker
 * list chosen by pd_kafka_brokers(). librdkafka's logs go to pd_log.
 */
#ifndef PD_KAFKA_H
#define PD_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/*
 * The broker list to use: the [kafka] bootstrap.servers if set (from -b, -X
 * or the file), else $POSTDEPLOY_BROKERS, else the address a running
 * `postdeploy-reactor --dev` wrote (when use_dev_file), else
 * "127.0.0.1:9092". Returns buf.
 */
const char *pd_kafka_brokers(const pd_config_t *conf, int use_dev_file,
                             char *buf, size_t size);

/* Where pd_kafka_brokers_source found the broker list. */
typedef enum pd_brokers_from_e {
        PD_BROKERS_FROM_CONFIG,   /* [kafka] bootstrap.servers (-b, -X, file) */
        PD_BROKERS_FROM_ENV,      /* $POSTDEPLOY_BROKERS */
        PD_BROKERS_FROM_DEV_FILE, /* pd_kafka_dev_file() */
        PD_BROKERS_FROM_DEFAULT,  /* 127.0.0.1:9092 */
} pd_brokers_from_t;

/*
 * pd_kafka_brokers, also saying where the list came from, so that a
 * message about brokers that do not answer can name it. *dev_pid (if
 * dev_pid is not NULL) is the pid on the dev file's second line, or 0.
 */
pd_brokers_from_t pd_kafka_brokers_source(const pd_config_t *conf,
                                          int use_dev_file, char *buf,
                                          size_t size, long *dev_pid);

/* Where `postdeploy-reactor --dev` writes its broker address:
 * $XDG_CACHE_HOME/postdeploy/dev-brokers (or ~/.cache/...). Returns buf. */
const char *pd_kafka_dev_file(char *buf, size_t size);

/*
 * A new configuration holding `defaults` (NULL-terminated name, value,
 * name, value, ... list), then conf's [kafka] properties, then
 * bootstrap.servers = brokers. The log callback is set to pd_log.
 * Returns NULL with errstr naming the bad property.
 */
rd_kafka_conf_t *pd_kafka_conf(const pd_config_t *conf,
                               const char *const *defaults, const char *brokers,
                               char *errstr, size_t errstr_size);

/*
 * Creates each topic that does not exist yet: events and dlq with
 * conf->partitions, results with cleanup.policy=compact (a results topic
 * keyed tenant/action keeps every action's latest state). Existing topics
 * are left as they are. Returns 0 or -1 with errstr.
 */
int pd_kafka_topics_ensure(rd_kafka_t *rk, const pd_config_t *conf,
                           int timeout_ms, char *errstr, size_t errstr_size);

/* Whether topics a and b have as many partitions. Returns 0 if so, 1 if
 * not (errstr names both and their counts), -1 if the broker did not
 * answer or does not list both yet (errstr). */
int pd_kafka_partitions_match(rd_kafka_t *rk, const char *a, const char *b,
                              int timeout_ms, char *errstr, size_t errstr_size);

/* Whether `topic` is in md (a metadata answer for all topics) with at
 * least one partition. */
struct rd_kafka_metadata;
int pd_kafka_topic_exists(const struct rd_kafka_metadata *md,
                          const char *topic);

/*
 * Checks that a broker answers within timeout_ms (a metadata request).
 * Returns 0 or -1 with a message naming the brokers.
 */
int pd_kafka_ping(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                  char *errstr, size_t errstr_size);

/* One partition's low and high watermarks (first and next offsets). */
typedef struct pd_kafka_wm_s {
        int32_t partition;
        int64_t lo, hi;
} pd_kafka_wm_t;

/*
 * Reads the watermarks of every partition of `topic` into a malloc'ed array
 * (*wmp, caller frees; *cntp entries). Errors a new topic shows while its
 * leaders are being elected are retried until timeout_ms. Returns 0, or -1
 * with errstr (the topic does not exist, the broker does not answer).
 */
int pd_kafka_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        pd_kafka_wm_t **wmp, size_t *cntp, char *errstr,
                        size_t errstr_size);

#endif
