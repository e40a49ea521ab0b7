/*
 * plugin.c - loads C plugins and runs their in-process actions (plugin.h).
 *
 * Plugins are opened with RTLD_NOW, so a symbol they cannot resolve is an
 * error at start-up rather than a crash in the middle of a deploy, and
 * RTLD_LOCAL, so two plugins may both define postdeploy_plugin_init and
 * their own helpers without one shadowing the other. The reactor is not
 * linked with -rdynamic: a plugin reaches it only through the function
 * pointers in the registry and the context (postdeploy/plugin.h).
 *
 * Registration copies every string a plugin hands over, because a plugin
 * may build names in a stack buffer; only fn and opaque are kept as they
 * are, and they stay valid because the plugin stays loaded until
 * pd_plugins_unload.
 *
 * A run keeps its state on the caller's stack, and a loaded set is never
 * written after pd_plugins_load returns, so runs on several worker threads
 * share nothing but the plugin's own code. Timeouts need no timer thread:
 * ctx->cancelled() compares the clock with the run's deadline when the
 * action asks.
 */
#include "consumer/plugin.h"

#include <assert.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"

/* Lines up to this long are formatted without a heap allocation. */
#define PD_PLUGINS_LINE_MAX 512

/* Which file a library's code was read from. */
typedef struct pd_plugin_file_s {
        int known; /* 0: the file could not be looked at */
        dev_t dev;
        ino_t ino;
        struct timespec mtime;
} pd_plugin_file_t;

typedef struct pd_plugin_lib_s {
        char *path;            /* as given to pd_plugins_load */
        void *handle;          /* from dlopen; NULL if it failed */
        pd_plugin_file_t file; /* where the code in handle came from */
} pd_plugin_lib_t;

/* One registered action: the copy callers see and the memory it uses. */
typedef struct pd_plugin_entry_s {
        pd_plugin_action_t act; /* strings point at the fields below */
        pd_policy_t policy;
        size_t lib; /* index in pd_plugins_t.libs */
        char *name;
        char *description;
        pd_strv_t after;
} pd_plugin_entry_t;

struct pd_plugins_s {
        pd_plugin_lib_t *libs; /* room for every path given */
        size_t lib_cnt;
        pd_plugin_entry_t *entries;
        size_t cnt;
        size_t entry_cap; /* room in entries */
};

/* What the registry's add callback works on while one init runs. */
typedef struct pd_plugins_loader_s {
        pd_plugins_t *pl;
        size_t lib;   /* the plugin whose init is running */
        char *errstr; /* the first refusal, for pd_plugins_load */
        size_t errstr_size;
        int failed; /* an action was refused: the plugin is */
} pd_plugins_loader_t;

/* The state of one pd_plugins_run, behind ctx->_private. */
typedef struct pd_plugin_run_s {
        const pd_plugin_call_t *call;
        int64_t deadline; /* monotonic ms; INT64_MAX: no timeout */
        pd_output_t *out;
        pthread_mutex_t lock; /* ctx->log may be called from threads the
                               * action starts */
} pd_plugin_run_t;

/* `after` of an action that has none, so callers never see NULL. */
static const char *const plugins_no_after[] = {NULL};

/* ---- loading ---- */

static void plugins_entry_clear(pd_plugin_entry_t *e) {
        free(e->name);
        free(e->description);
        pd_strv_clear(&e->after);
}

/* The entry called name, or NULL. */
static const pd_plugin_entry_t *plugins_lookup(const pd_plugins_t *pl,
                                               const char *name) {
        for (size_t i = 0; i < pl->cnt; i++)
                if (!strcmp(pl->entries[i].name, name))
                        return &pl->entries[i];
        return NULL;
}

/*
 * Checks an action a plugin registers, against the rules and the actions
 * registered so far. Returns 0 with *policyp set, or -1 with why in msg.
 */
static int plugins_check(const pd_plugins_t *pl, size_t lib,
                         const pd_plugin_action_t *act, pd_policy_t *policyp,
                         char *msg, size_t msg_size) {
        const pd_plugin_entry_t *other;

        if (!act || !act->name) {
                snprintf(msg, msg_size,
                         "an action was registered without "
                         "a name");
                return -1;
        }
        if (!pd_action_name_valid(act->name)) {
                snprintf(msg, msg_size, "action name '%s' is invalid",
                         act->name);
                return -1;
        }
        if (!act->fn) {
                snprintf(msg, msg_size, "action '%s' has no function",
                         act->name);
                return -1;
        }
        if (!act->policy || !strcmp(act->policy, "once")) {
                *policyp = PD_POLICY_ONCE;
        } else if (!strcmp(act->policy, "always")) {
                *policyp = PD_POLICY_ALWAYS;
        } else {
                snprintf(msg, msg_size,
                         "action '%s': policy '%s' is invalid (expected once "
                         "or always)",
                         act->name, act->policy);
                return -1;
        }
        for (size_t i = 0; act->after && act->after[i]; i++) {
                if (!pd_action_name_valid(act->after[i])) {
                        snprintf(msg, msg_size,
                                 "action '%s': after '%s' is not a valid "
                                 "action name",
                                 act->name, act->after[i]);
                        return -1;
                }
                if (!strcmp(act->after[i], act->name)) {
                        snprintf(msg, msg_size,
                                 "action '%s' cannot run after itself",
                                 act->name);
                        return -1;
                }
        }
        other = plugins_lookup(pl, act->name);
        if (other && other->lib == lib) {
                snprintf(msg, msg_size, "action '%s' registered twice",
                         act->name);
                return -1;
        }
        if (other) {
                snprintf(msg, msg_size,
                         "action '%s' registered twice (also by %s)", act->name,
                         pl->libs[other->lib].path);
                return -1;
        }
        return 0;
}

/* Appends a copy of act to pl. */
static void plugins_copy(pd_plugins_t *pl, size_t lib,
                         const pd_plugin_action_t *act, pd_policy_t policy) {
        pd_plugin_entry_t *e;

        pl->entries = pd_xgrow(pl->entries, &pl->entry_cap, pl->cnt + 1,
                               sizeof(*pl->entries));
        e           = &pl->entries[pl->cnt];
        memset(e, 0, sizeof(*e));

        e->name        = pd_xstrdup(act->name);
        e->description = pd_xstrdup(act->description);
        for (size_t i = 0; act->after && act->after[i]; i++)
                pd_strv_add(&e->after, act->after[i]);

        e->policy          = policy;
        e->lib             = lib;
        e->act.name        = e->name;
        e->act.is_auto     = act->is_auto != 0;
        e->act.policy      = pd_policy_name(policy);
        e->act.description = e->description;
        /* pd_strv_t holds char **; the public struct promises the strings
         * are not written through it. */
        e->act.after =
            e->after.cnt ? (const char *const *)e->after.v : plugins_no_after;
        e->act.fn     = act->fn;
        e->act.opaque = act->opaque;
        pl->cnt++;
}

/* pd_plugin_registry_t.add: runs on the loading thread, inside init. */
static int plugins_add(pd_plugin_registry_t *reg,
                       const pd_plugin_action_t *act) {
        pd_plugins_loader_t *ld = reg->_private;
        const char *path        = ld->pl->libs[ld->lib].path;
        pd_policy_t policy      = PD_POLICY_ONCE;
        char msg[512];

        /* The first refusal is the one reported; whatever the plugin does
         * after it, the plugin is refused. */
        if (ld->failed)
                return -1;
        if (plugins_check(ld->pl, ld->lib, act, &policy, msg, sizeof(msg))) {
                snprintf(ld->errstr, ld->errstr_size, "plugin %s: %s", path,
                         msg);
                ld->failed = 1;
                return -1;
        }
        plugins_copy(ld->pl, ld->lib, act, policy);
        return 0;
}

/*
 * Notes which file lib's code came from. dlopen matches a path it has open
 * by name, so a reload that lists it again gets the running code back even
 * if the file was rebuilt since: that code's file stays the reference, and
 * a changed file is said, since nothing else would tell the operator that
 * the new code is not running.
 */
static void plugins_identify(pd_plugin_lib_t *lib,
                             const pd_plugins_t *running) {
        const pd_plugin_lib_t *old = NULL;
        pd_plugin_file_t now       = {0};
        struct stat st;

        if (!stat(lib->path, &st))
                now = (pd_plugin_file_t){1, st.st_dev, st.st_ino, st.st_mtim};
        for (size_t i = 0; running && i < running->lib_cnt && !old; i++)
                if (running->libs[i].handle == lib->handle)
                        old = &running->libs[i];
        lib->file = old ? old->file : now;
        if (old && old->file.known && now.known &&
            (now.dev != old->file.dev || now.ino != old->file.ino ||
             now.mtime.tv_sec != old->file.mtime.tv_sec ||
             now.mtime.tv_nsec != old->file.mtime.tv_nsec))
                pd_log(PD_LOG_WARN,
                       "plugin %s: the file changed since it was loaded, "
                       "but a reload keeps the code already loaded; "
                       "restart the reactor to run the new code",
                       lib->path);
}

/*
 * Loads the plugin at path into the next slot of pl->libs and runs its
 * init. Returns 0, or -1 with "plugin PATH: why" in errstr; what was
 * opened and registered stays in pl for pd_plugins_unload to undo.
 */
static int plugins_open(pd_plugins_t *pl, const char *path,
                        const pd_plugins_t *running, char *errstr,
                        size_t errstr_size) {
        pd_plugin_lib_t *lib     = &pl->libs[pl->lib_cnt];
        pd_plugins_loader_t ld   = {pl, pl->lib_cnt, errstr, errstr_size, 0};
        pd_plugin_registry_t reg = {PD_PLUGIN_ABI, plugins_add, &ld};
        const size_t registered  = pl->cnt;
        pd_plugin_init_fn_t *init;
        const char *why;
        const int *abi;
        int rc;

        /* dlopen looks a name without a '/' up in the system's library
         * path: a config must say which file it means. */
        if (!strchr(path, '/')) {
                snprintf(errstr, errstr_size,
                         "plugin %s: not a path (write ./%s for a file in "
                         "the current folder)",
                         path, path);
                return -1;
        }
        lib->path = pd_xstrdup(path);
        pl->lib_cnt++;

        lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib->handle) {
                why = dlerror();
                snprintf(errstr, errstr_size, "plugin %s: cannot load: %s",
                         path, why ? why : "unknown error");
                return -1;
        }
        plugins_identify(lib, running);
        /* The same file twice (or through a link) is one library: its
         * init would register every action twice. */
        for (size_t i = 0; i + 1 < pl->lib_cnt; i++) {
                if (pl->libs[i].handle == lib->handle) {
                        snprintf(errstr, errstr_size,
                                 "plugin %s: already loaded as %s", path,
                                 pl->libs[i].path);
                        return -1;
                }
        }

        /* POSIX lets dlsym's object pointer convert to a function
         * pointer. */
        init =
            (pd_plugin_init_fn_t *)dlsym(lib->handle, "postdeploy_plugin_init");
        if (!init) {
                snprintf(errstr, errstr_size,
                         "plugin %s: no postdeploy_plugin_init", path);
                return -1;
        }
        abi = dlsym(lib->handle, "postdeploy_plugin_abi");
        if (!abi) {
                snprintf(errstr, errstr_size,
                         "plugin %s: no postdeploy_plugin_abi (define the "
                         "init function with PD_PLUGIN_INIT)",
                         path);
                return -1;
        }
        /* ABI 2 and 3 only appended to the context: an ABI 1 or 2
         * plugin still runs. */
        if (*abi < 1 || *abi > PD_PLUGIN_ABI) {
                snprintf(errstr, errstr_size,
                         "plugin %s: ABI %d not supported (this reactor has "
                         "%d)",
                         path, *abi, PD_PLUGIN_ABI);
                return -1;
        }

        rc = init(&reg);
        if (ld.failed)
                return -1;
        if (rc) {
                snprintf(errstr, errstr_size,
                         "plugin %s: init failed (returned %d)", path, rc);
                return -1;
        }
        if (pl->cnt == registered)
                pd_log(PD_LOG_WARN, "plugin %s registered no action", path);
        return 0;
}

pd_plugins_t *pd_plugins_load(const char *const *paths, size_t cnt,
                              const pd_plugins_t *running, char *errstr,
                              size_t errstr_size) {
        pd_plugins_t *pl = pd_xcalloc(1, sizeof(*pl));

        pl->libs = pd_xcalloc(cnt, sizeof(*pl->libs));
        for (size_t i = 0; i < cnt; i++)
                if (plugins_open(pl, paths[i], running, errstr, errstr_size))
                        goto fail;
        return pl;
fail:
        pd_plugins_unload(pl);
        return NULL;
}

size_t pd_plugins_count(const pd_plugins_t *pl) {
        return pl->cnt;
}

const pd_plugin_action_t *pd_plugins_action(const pd_plugins_t *pl, size_t i,
                                            pd_policy_t *policyp,
                                            const char **pathp) {
        const pd_plugin_entry_t *e;

        assert(i < pl->cnt);
        e = &pl->entries[i];
        if (policyp)
                *policyp = e->policy;
        if (pathp)
                *pathp = pl->libs[e->lib].path;
        return &e->act;
}

const pd_plugin_action_t *pd_plugins_find(const pd_plugins_t *pl,
                                          const char *name) {
        const pd_plugin_entry_t *e = plugins_lookup(pl, name);

        return e ? &e->act : NULL;
}

void pd_plugins_unload(pd_plugins_t *pl) {
        if (!pl)
                return;
        for (size_t i = 0; i < pl->cnt; i++)
                plugins_entry_clear(&pl->entries[i]);
        free(pl->entries);
        /* In reverse: a plugin loaded later may use one loaded before. */
        for (size_t i = pl->lib_cnt; i-- > 0;) {
                if (pl->libs[i].handle)
                        dlclose(pl->libs[i].handle);
                free(pl->libs[i].path);
        }
        free(pl->libs);
        free(pl);
}

/* ---- running ---- */

/* ctx->cancelled: a shutdown, or the deadline passed. */
static int plugins_cancelled(const pd_action_ctx_t *ctx) {
        const pd_plugin_run_t *run = ctx->_private;

        return (run->call->cancel && *run->call->cancel) ||
               pd_mono_ms() >= run->deadline;
}

/* ctx->param: the deploy's value of parameter name, NULL if none. */
static const char *plugins_param(const pd_action_ctx_t *ctx, const char *name) {
        const pd_plugin_run_t *run = ctx->_private;
        const pd_strv_t *params    = run->call->params;

        for (size_t i = 0; name && params && i + 1 < params->cnt; i += 2)
                if (!strcmp(params->v[i], name))
                        return params->v[i + 1];
        return NULL;
}

/* ctx->progress: handed on if it makes sense (runner.h's rule for a
 * command's lines). */
static void plugins_progress(const pd_action_ctx_t *ctx, long long done,
                             long long total) {
        const pd_plugin_run_t *run = ctx->_private;

        if (done < 0 || total < 0 || (total > 0 && done > total) ||
            !run->call->progress)
                return;
        run->call->progress(run->call->progress_opaque, (int64_t)done,
                            (int64_t)total);
}

/* ctx->log: formats one line into the run's output, '\n' added if
 * missing. A line that cannot be formatted or allocated is dropped: the
 * action's work matters more than its output. */
static void plugins_log(const pd_action_ctx_t *ctx, const char *fmt, ...)
    PD_PLUGIN_PRINTF(2, 3);

static void plugins_log(const pd_action_ctx_t *ctx, const char *fmt, ...) {
        pd_plugin_run_t *run = ctx->_private;
        char stack[PD_PLUGINS_LINE_MAX];
        char *line = stack;
        va_list ap;
        size_t len;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(stack, sizeof(stack), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        len = (size_t)n;
        /* Room for the text, a '\n' and the NUL. */
        if (len + 2 > sizeof(stack)) {
                line = pd_xmalloc(len + 2);
                va_start(ap, fmt);
                vsnprintf(line, len + 1, fmt, ap);
                va_end(ap);
        }
        if (len == 0 || line[len - 1] != '\n')
                line[len++] = '\n';

        pthread_mutex_lock(&run->lock);
        pd_output_add(run->out, line, len);
        pthread_mutex_unlock(&run->lock);
        if (line != stack)
                free(line);
}

/* Fills res->status and res->error from what the function returned. */
static void plugins_outcome(const pd_plugin_run_t *run, int rc, const char *msg,
                            pd_runner_result_t *res) {
        const pd_plugin_call_t *call = run->call;

        if (rc == 0) {
                res->status = PD_ST_SUCCEEDED;
        } else if (call->cancel && *call->cancel) {
                res->status = PD_ST_INTERRUPTED;
                pd_runner_stop_error(res->status, call->timeout_ms, res->error,
                                     sizeof(res->error));
        } else if (pd_mono_ms() >= run->deadline) {
                res->status = PD_ST_TIMED_OUT;
                pd_runner_stop_error(res->status, call->timeout_ms, res->error,
                                     sizeof(res->error));
        } else {
                res->status = PD_ST_FAILED;
                if (*msg)
                        snprintf(res->error, sizeof(res->error), "%s", msg);
                else
                        snprintf(res->error, sizeof(res->error),
                                 "failed with status %d", rc);
        }
}

int pd_plugins_run(const pd_plugin_action_t *act, const pd_plugin_call_t *call,
                   pd_runner_result_t *res) {
        const int64_t start = pd_mono_ms();
        pd_plugin_run_t run = {call, INT64_MAX, NULL,
                               PTHREAD_MUTEX_INITIALIZER};
        pd_action_ctx_t ctx;
        char msg[sizeof(res->error)];
        int ret = -1;
        int rc;

        assert(act && act->fn && call);
        memset(res, 0, sizeof(*res));
        res->status = PD_ST_FAILED;
        if (call->timeout_ms > 0)
                run.deadline = start + call->timeout_ms;

        run.out = pd_output_new(call->log_path, res->error, sizeof(res->error));
        if (!run.out)
                goto out;

        memset(&ctx, 0, sizeof(ctx));
        ctx.abi         = PD_PLUGIN_ABI;
        ctx.action      = act->name;
        ctx.tenant      = call->tenant;
        ctx.release     = call->release;
        ctx.environment = call->environment ? call->environment : "";
        ctx.event_id    = call->event_id;
        ctx.attempt     = call->attempt;
        ctx.opaque      = act->opaque;
        ctx.log         = plugins_log;
        ctx.cancelled   = plugins_cancelled;
        ctx._private    = &run;
        ctx.param       = plugins_param;
        ctx.progress    = plugins_progress;

        msg[0] = '\0';
        rc     = act->fn(&ctx, msg, sizeof(msg));
        /* A plugin that filled the buffer to the brim still gets a
         * string. */
        msg[sizeof(msg) - 1] = '\0';

        plugins_outcome(&run, rc, msg, res);
        pd_output_result(run.out, res);
        ret = 0;
out:
        res->duration_ms = pd_mono_ms() - start;
        pd_output_destroy(run.out);
        pthread_mutex_destroy(&run.lock);
        return ret;
}
