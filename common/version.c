/*
 * version.c - see version.h.
 */
#include "common/version.h"

#include <librdkafka/rdkafka.h>
#include <sqlite3.h>

/* Set by CMake from project() and `pkg-config --modversion avro-c`. */
#ifndef PD_VERSION
#define PD_VERSION "unknown"
#endif
#ifndef PD_AVRO_VERSION
#define PD_AVRO_VERSION "unknown"
#endif

int pd_version_print(FILE *fp, const char *program) {
        fprintf(fp, "%s %s\n", program, PD_VERSION);
        return fprintf(fp,
                       "librdkafka %s, SQLite %s, libavro-c %s (built "
                       "against; it has no run-time version call)\n",
                       rd_kafka_version_str(), sqlite3_libversion(),
                       PD_AVRO_VERSION);
}
