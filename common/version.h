/*
 * version.h - what `--version` says, the same for the reactor and the CLI:
 * postdeploy's version and the versions of the libraries it runs with, so
 * a bug report names them without a second question.
 */
#ifndef PD_VERSION_H
#define PD_VERSION_H

#include <stdio.h>

/*
 * Prints "PROGRAM VERSION" and, on a second line, the librdkafka, SQLite
 * and libavro-c versions to fp. librdkafka and SQLite are asked at run
 * time (the library loaded may be newer than the headers); libavro-c has
 * no call for it, so its version is the one pkg-config reported when this
 * binary was built, and the line says so. Returns what fprintf returns
 * for the last line (negative on a write error).
 */
int pd_version_print(FILE *fp, const char *program);

#endif
