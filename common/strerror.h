/*
 * strerror.h - the text of an errno value, safe from any thread.
 */
#ifndef PD_STRERROR_H
#define PD_STRERROR_H

/* The description of err ("No such file or directory"), "Unknown error"
 * for a value that has none. A static string: strerror() may format into a
 * buffer another thread overwrites; this never does. */
const char *pd_strerror(int err);

#endif
