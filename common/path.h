/*
 * path.h - folders on the way to a file: the state file, an action's log
 * and the supervisor's files are all created with their missing parent
 * folders, private (0700), by this one call.
 */
#ifndef PD_PATH_H
#define PD_PATH_H

#include <stddef.h>

/*
 * Creates each missing folder above the file at path, mode 0700 (the
 * umask may take more away). A folder that exists is left as it is.
 * Returns 0, or -1 with errno set and, when failed is not NULL, the folder
 * that could not be made written into it.
 */
int pd_mkparents(const char *path, char *failed, size_t failed_size);

#endif
