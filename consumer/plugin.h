/*
 * plugin.h - loads C plugins and runs their in-process actions.
 *
 * The reactor's side of include/postdeploy/plugin.h. pd_plugins_load opens
 * every plugin the configuration lists, checks its ABI, calls its init
 * function and keeps a copy of each action it registers. Loading is all or
 * nothing: the first plugin that cannot be loaded, whose init fails, or that
 * registers an invalid or duplicate action stops it, with an error naming
 * the plugin, and nothing stays loaded.
 *
 * pd_plugins_run calls an action's function in the calling thread and turns
 * its return into a pd_runner_result_t, with the output it logged captured
 * the way a command's output is (runner.h), so the reactor records both
 * kinds of action alike.
 *
 * A loaded set is read-only: pd_plugins_count, _action, _find and _run may
 * be called from any number of threads at once. Load and unload happen on
 * one thread while no action runs.
 */
#ifndef PD_PLUGIN_H
#define PD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"     /* pd_policy_t */
#include "consumer/runner.h"   /* pd_runner_result_t */
#include "postdeploy/plugin.h" /* the public plugin ABI */

typedef struct pd_plugins_s pd_plugins_t;

/* One run of a plugin action. Nothing is copied: every pointer must stay
 * valid until pd_plugins_run returns. */
typedef struct pd_plugin_call_s {
        const char *tenant;
        const char *release;
        const char *event_id;    /* ce_id of the triggering event */
        const char *environment; /* NULL is passed on as "" */
        int attempt;             /* 1 for the first */
        volatile int *cancel;    /* non-zero: stop (shutdown); may be NULL */
        int64_t timeout_ms;      /* 0: none */
        const char *log_path;    /* NULL: output kept as tail only */
        const pd_strv_t *params; /* the deploy's: name, value, ...; may be
                                  * NULL */
        /* Called with each valid value the action gives ctx->progress, on
         * the thread that gave it (may be NULL). */
        void (*progress)(void *opaque, int64_t done, int64_t total);
        void *progress_opaque;
} pd_plugin_call_t;

/*
 * Loads the cnt plugins at paths, in order, and registers their actions.
 * A path must contain a '/' (a bare name would be looked up in the system's
 * library path). Returns the loaded set, owned by the caller (free it with
 * pd_plugins_unload), or NULL with "plugin PATH: why" in errstr; cnt 0
 * gives an empty set. Refused: a file dlopen cannot load, one without
 * postdeploy_plugin_init or postdeploy_plugin_abi, an ABI other than
 * PD_PLUGIN_ABI, a file already listed, an init that returns non-zero, and
 * an action with an invalid name, policy or `after` name, without a
 * function, or with a name another action of any plugin has.
 *
 * Names are checked against each other only: the caller checks them
 * against the configuration's [action] sections, and `after` names exist
 * and form no cycle.
 *
 * running is the set in use when a reload loads this one (NULL at
 * start-up). A path it has open is not read again: dlopen hands back the
 * library already loaded, whatever the file holds now, and runs its init
 * again. If the file changed since (mtime or inode), a warning says the
 * new code needs a restart.
 */
pd_plugins_t *pd_plugins_load(const char *const *paths, size_t cnt,
                              const pd_plugins_t *running, char *errstr,
                              size_t errstr_size);

/* Number of actions registered by all the plugins. */
size_t pd_plugins_count(const pd_plugins_t *pl);

/*
 * Returns the i-th action (i < pd_plugins_count), in registration order.
 * The struct and its strings are pl's copies, valid until
 * pd_plugins_unload: policy is never NULL ("once" or "always"),
 * description never NULL (maybe ""), after never NULL (maybe empty).
 * If policyp is not NULL it receives the policy; if pathp is not NULL it
 * receives the path of the plugin that registered the action, as given to
 * pd_plugins_load.
 */
const pd_plugin_action_t *pd_plugins_action(const pd_plugins_t *pl, size_t i,
                                            pd_policy_t *policyp,
                                            const char **pathp);

/* Returns the action called name, as pd_plugins_action would, or NULL. */
const pd_plugin_action_t *pd_plugins_find(const pd_plugins_t *pl,
                                          const char *name);

/*
 * Runs act (from pd_plugins_action or _find) in the calling thread and
 * fills *res, as pd_runner_run does for a command: 0 returned by the
 * function is SUCCEEDED; non-zero is INTERRUPTED if *call->cancel was set,
 * else TIMED_OUT if the timeout had passed, else FAILED with the
 * function's message (or "failed with status N"). has_exit_code is 0:
 * there is no process. The function is never stopped from outside: it
 * learns of a cancel or timeout from ctx->cancelled() and returns. Returns
 * 0 with the outcome in *res, or -1 when the run could not start (the log
 * file cannot be opened), with res->error.
 */
int pd_plugins_run(const pd_plugin_action_t *act, const pd_plugin_call_t *call,
                   pd_runner_result_t *res);

/* Frees pl and unloads its plugins; no action may be running. NULL is
 * fine. */
void pd_plugins_unload(pd_plugins_t *pl);

#endif
