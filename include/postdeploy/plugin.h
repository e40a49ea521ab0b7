/*
 * postdeploy/plugin.h - in-process C actions for postdeploy-reactor.
 *
 * A plugin is a shared object listed in the reactor's configuration
 * ([reactor] plugins = /path/a.so, /path/b.so). At start-up the reactor
 * loads each one and calls its init function, which registers actions. A
 * plugin action is the C counterpart of a command [action NAME] section, and
 * of django_post_deploy's @register_post_deploy(auto=True): a name, auto or
 * manual, a policy, a description, the actions it runs after, and a function
 * the reactor calls inside its own process for each tenant it runs for.
 *
 * A plugin needs this header and nothing else from postdeploy: whatever the
 * reactor offers (registering, logging, asking whether to stop) reaches it
 * as a function pointer in a struct, so a plugin links against no symbol of
 * the reactor and builds with `cc -shared -fPIC`.
 *
 *   #include <postdeploy/plugin.h>
 *
 *   static int hello(const pd_action_ctx_t *ctx, char *errstr,
 *                    size_t errstr_size) {
 *           (void)errstr;
 *           (void)errstr_size;
 *           ctx->log(ctx, "hello, %s", ctx->tenant);
 *           return 0;
 *   }
 *
 *   PD_PLUGIN_INIT(reg) {
 *           return PD_ACTION(reg, "example.hello", PD_AUTO, hello,
 *                            "Says hello");
 *   }
 *
 * ABI: PD_PLUGIN_ABI numbers the layout of everything below; any change to
 * it is a new number. PD_PLUGIN_INIT stores the number the plugin was built
 * with, and the reactor refuses a plugin built for a number it does not
 * know, with an error, before calling any of its code. ABI 2 and ABI 3
 * appended members to the end of pd_action_ctx_s, after _private: a plugin
 * built for ABI 1 or 2, which never allocates a context and never reads
 * past the members it knows, still loads and runs. The number still goes
 * up with each, so that a plugin can tell (ctx->abi) whether the reactor
 * running it has the new member: a plugin built for ABI 3 that calls
 * ctx->progress on a reactor of ABI 2 would read past its context.
 *
 * Only standard headers are used, so this file compiles alone, in C99 and
 * later (PD_ACTION needs C99 compound literals) and in C++ (without
 * PD_ACTION).
 */
#ifndef POSTDEPLOY_PLUGIN_H
#define POSTDEPLOY_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PD_PLUGIN_ABI 3

#if defined(__GNUC__)
#define PD_PLUGIN_EXPORT __attribute__((visibility("default")))
#define PD_PLUGIN_PRINTF(fmt_arg, first_arg)                                   \
        __attribute__((format(printf, fmt_arg, first_arg)))
#else
#define PD_PLUGIN_EXPORT
#define PD_PLUGIN_PRINTF(fmt_arg, first_arg)
#endif

/* Values of pd_plugin_action_t.is_auto. */
#define PD_MANUAL 0 /* runs only with `deploy --all` or `--one NAME` */
#define PD_AUTO   1 /* also runs with `deploy --auto` */

typedef struct pd_action_ctx_s pd_action_ctx_t;

/*
 * What one run of an action gets. The reactor owns the context and every
 * string in it; all of it is valid until the action's function returns,
 * and not after (do not keep pointers to it).
 */
struct pd_action_ctx_s {
        int abi;                 /* the reactor's PD_PLUGIN_ABI */
        const char *action;      /* this action's name */
        const char *tenant;      /* the tenant to act for */
        const char *release;     /* the release deployed, e.g. "4.2.0" */
        const char *environment; /* e.g. "production"; "" if not given */
        const char *event_id;    /* ce_id of the release.deployed event */
        int attempt;             /* 1, then 2 for the first retry, ... */
        void *opaque;            /* pd_plugin_action_t.opaque, as given */

        /*
         * Writes one line of output, formatted like printf; a '\n' is added
         * when the text does not end with one. The line goes where a
         * command action's stdout goes: the last 4 KiB travel with the
         * result, and all of it goes to the run's log file when the
         * reactor has a log_dir. May be called from threads the function
         * starts, as long as they stop before it returns.
         */
        void (*log)(const pd_action_ctx_t *ctx, const char *fmt, ...)
            PD_PLUGIN_PRINTF(2, 3);

        /*
         * Returns non-zero when the function should stop now: the reactor
         * is shutting down, or the action's timeout has passed. It costs a
         * clock read; call it between units of work and, when it says
         * stop, return non-zero. The reactor cannot stop a function that
         * does not ask: it runs on, and its result is recorded when it
         * returns. A function that returns 0 after being told to stop has
         * succeeded.
         */
        int (*cancelled)(const pd_action_ctx_t *ctx);

        void *_private; /* the reactor's; do not touch */

        /* ---- ABI 2 (check ctx->abi >= 2 to run on an older reactor) ---- */

        /*
         * Returns the value the deploy gave parameter name (deploy --one
         * NAME --param name=VALUE; the action declares it with
         * `params = ...`), or NULL when it was not given. The string is
         * the reactor's, valid until the function returns.
         */
        const char *(*param)(const pd_action_ctx_t *ctx, const char *name);

        /* ---- ABI 3 (check ctx->abi >= 3 to run on an older reactor) ---- */

        /*
         * Says how far the run has got: done units of work out of total
         * (0: not known). The newest value reaches the results topic as
         * an action.progress record, at most once per the reactor's
         * progress_interval (default 1 s) and once more just before the
         * action.finished, so calling it for every unit is cheap. A value
         * with done < 0, total < 0, or done > total when total > 0 is
         * ignored. May be called from threads the function starts, as
         * long as they stop before it returns.
         */
        void (*progress)(const pd_action_ctx_t *ctx, long long done,
                         long long total);
};

/*
 * An action's function. Returns 0 on success. On failure it returns
 * non-zero and writes why, in a sentence, into errstr (errstr_size bytes,
 * "" on entry), e.g. snprintf(errstr, errstr_size, "no invoices table");
 * left empty, the error reads "failed with status N". After a stop asked
 * by ctx->cancelled(), a non-zero return is recorded TIMED_OUT or
 * INTERRUPTED rather than FAILED.
 *
 * It runs on one of the reactor's worker threads, and may run on several
 * at once for different tenants (never twice at once for the same tenant):
 * whatever it shares between calls must be thread-safe. It runs inside the
 * reactor's process: a crash, abort() or exit() takes the reactor down
 * (the run is then recorded INTERRUPTED and runs again), and it must not
 * change what the process shares: signal handlers and masks, the working
 * folder, the environment.
 */
typedef int pd_action_fn_t(const pd_action_ctx_t *ctx, char *errstr,
                           size_t errstr_size);

/* One action, as a plugin registers it. */
typedef struct pd_plugin_action_s {
        const char *name;         /* ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$,
                                   * unique among all the reactor's actions */
        int is_auto;              /* PD_AUTO or PD_MANUAL */
        const char *policy;       /* "once": runs until it succeeds once per
                                   * tenant (NULL means "once"); "always":
                                   * on every deploy that selects it */
        const char *description;  /* one line for `postdeploy report`; may be
                                   * NULL */
        const char *const *after; /* NULL-terminated names of actions this
                                   * one runs after (it is skipped if one of
                                   * them failed); may be NULL */
        pd_action_fn_t *fn;       /* required */
        void *opaque;             /* handed back as ctx->opaque; the plugin
                                   * owns what it points to */
} pd_plugin_action_t;

typedef struct pd_plugin_registry_s pd_plugin_registry_t;

/* What the init function registers with. Valid only during the init call,
 * on the thread that made it. */
struct pd_plugin_registry_s {
        int abi; /* the reactor's PD_PLUGIN_ABI */

        /*
         * Registers one action. The reactor copies *act and the strings
         * it points to, so they may live on the stack; fn and opaque are
         * kept as they are. Returns 0, or -1 if the action is refused
         * (invalid name, policy or `after` name, no fn, a name already
         * registered): the reactor then refuses the whole plugin, whatever
         * init returns, and its start-up error says why.
         */
        int (*add)(pd_plugin_registry_t *reg, const pd_plugin_action_t *act);

        void *_private; /* the reactor's; do not touch */
};

/*
 * Every plugin defines its init function with PD_PLUGIN_INIT(reg) { ... }.
 * The reactor calls it once, at start-up, on its main thread, before any
 * action runs; it returns 0, or non-zero when the plugin cannot work, which
 * stops the reactor's start-up with "init failed (returned N)". The reactor
 * unloads the plugin (dlclose) when it stops, after every action returned:
 * a plugin that needs to release something at that point can use a
 * function marked __attribute__((destructor)).
 *
 * The macro also defines postdeploy_plugin_abi, the ABI the plugin was
 * built for, which the reactor checks before it calls init. Both symbols
 * are exported even with -fvisibility=hidden, and have C linkage in C++:
 * the declarations below say so, and the definitions inherit it.
 */
#define PD_PLUGIN_INIT(reg)                                                    \
        const int postdeploy_plugin_abi = PD_PLUGIN_ABI;                       \
        int postdeploy_plugin_init(pd_plugin_registry_t *reg)

typedef int pd_plugin_init_fn_t(pd_plugin_registry_t *reg);

PD_PLUGIN_EXPORT extern const int postdeploy_plugin_abi;
PD_PLUGIN_EXPORT int postdeploy_plugin_init(pd_plugin_registry_t *reg);

/*
 * Registers the common case in one line: a "once" action with no `after`
 * and no opaque. Returns what reg->add returns; reg is evaluated twice.
 *   PD_ACTION(reg, "billing.fix_invoices", PD_MANUAL, fix_invoices,
 *             "Recompute the rounding of open invoices");
 */
#define PD_ACTION(reg, name_, is_auto_, fn_, description_)                     \
        ((reg)->add((reg), &(const pd_plugin_action_t){                        \
                               .name        = (name_),                         \
                               .is_auto     = (is_auto_),                      \
                               .description = (description_),                  \
                               .fn          = (fn_),                           \
                           }))

#ifdef __cplusplus
}
#endif

#endif
