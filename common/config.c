/*
 * config.c - the configuration objects: a config holding every default
 * (pd_config_new), its actions (from [action] sections or plugins),
 * command line overrides (pd_config_set), and the cross-checks made once
 * every source is in (pd_config_validate: `after` names exist and form no
 * cycle).
 *
 * The rest lives beside it: the key table and the docs made from it in
 * config_keys.c, reading a value in config_value.c, the file parser in
 * config_parse.c; config_int.h is what they share.
 */
#include "common/config_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

static void action_def_clear(pd_action_def_t *act) {
        free(act->name);
        free(act->run);
        pd_strv_clear(&act->argv);
        free(act->description);
        free(act->workdir);
        pd_strv_clear(&act->env);
        pd_strv_clear(&act->after);
        pd_strv_clear(&act->params);
        free(act->plugin);
}

pd_config_t *pd_config_new(void) {
        pd_config_t *conf = pd_xcalloc(1, sizeof(*conf));

        pd__config_defaults(conf, NULL, "reactor");
        pd__config_defaults(conf, NULL, "topics");
        pd__config_defaults(conf, NULL, "cli");
        return conf;
}

void pd_config_destroy(pd_config_t *conf) {
        if (!conf)
                return;
        free(conf->path);
        pd_strv_clear(&conf->kafka);
        free(conf->group_id);
        free(conf->state_path);
        free(conf->log_dir);
        free(conf->default_tenant);
        free(conf->reactor_name);
        free(conf->instance);
        free(conf->http);
        free(conf->topic_events);
        free(conf->topic_results);
        free(conf->topic_dlq);
        pd_strv_clear(&conf->tenants);
        pd_strv_clear(&conf->plugins);
        free(conf->signing_key);
        free(conf->cli_signing_key);
        for (size_t i = 0; i < conf->action_cnt; i++)
                action_def_clear(&conf->actions[i]);
        free(conf->actions);
        free(conf);
}

const pd_action_def_t *pd_config_action(const pd_config_t *conf,
                                        const char *name) {
        for (size_t i = 0; i < conf->action_cnt; i++)
                if (!strcmp(conf->actions[i].name, name))
                        return &conf->actions[i];
        return NULL;
}

const char *pd_config_kafka(const pd_config_t *conf, const char *name) {
        for (size_t i = 0; i + 1 < conf->kafka.cnt; i += 2)
                if (!strcmp(conf->kafka.v[i], name))
                        return conf->kafka.v[i + 1];
        return NULL;
}

/*
 * Appends a new action with its defaults and returns it. The array may
 * move: pointers into conf->actions do not survive this call.
 */
pd_action_def_t *pd__config_action_add(pd_config_t *conf, const char *name,
                                       int line) {
        pd_action_def_t *act;

        conf->actions = pd_xgrow(conf->actions, &conf->action_cap,
                                 conf->action_cnt + 1, sizeof(*act));
        act           = &conf->actions[conf->action_cnt++];
        memset(act, 0, sizeof(*act));
        act->name = pd_xstrdup(name);
        act->line = line;
        pd__config_defaults(conf, act, "action");
        return act;
}

pd_action_def_t *pd_config_action_new(pd_config_t *conf, const char *name,
                                      char *errstr, size_t errstr_size) {
        pd_action_def_t *act;

        if (!pd_action_name_valid(name)) {
                pd_errf(errstr, errstr_size, "invalid action name '%s'", name);
                return NULL;
        }
        if ((act = (pd_action_def_t *)pd_config_action(conf, name))) {
                if (act->plugin)
                        pd_errf(errstr, errstr_size,
                                "action '%s' is also registered by "
                                "plugin %s",
                                name, act->plugin);
                else
                        pd_errf(errstr, errstr_size,
                                "action '%s' is also defined at "
                                "%s:%d",
                                name, conf->path ? conf->path : "config",
                                act->line);
                return NULL;
        }
        return pd__config_action_add(conf, name, 0);
}

int pd_config_set(pd_config_t *conf, const char *section, const char *key,
                  const char *value, char *errstr, size_t errstr_size) {
        const pd_config_key_t *ck;
        pd_action_def_t *act = NULL;

        if (!strncmp(section, "action ", 7)) {
                act = (pd_action_def_t *)pd_config_action(conf, section + 7);
                if (!act) {
                        pd_errf(errstr, errstr_size, "unknown action '%s'",
                                section + 7);
                        return -1;
                }
                section = "action";
        } else if (!strcmp(section, "action") ||
                   !pd__config_section_known(section)) {
                pd_errf(errstr, errstr_size, "unknown section [%s]", section);
                return -1;
        }
        if (!(ck = pd__config_key_find(section, key))) {
                pd__config_unknown_key(section, act, key, errstr, errstr_size);
                return -1;
        }
        return pd__config_assign(conf, act, ck, key, value, errstr,
                                 errstr_size);
}

/* ---- validation ---- */

/* Where an action was defined: "file:line", or "plugin PATH". */
static const char *config_where(const pd_config_t *conf,
                                const pd_action_def_t *act, char *buf,
                                size_t size) {
        if (act->plugin)
                snprintf(buf, size, "plugin %s", act->plugin);
        else
                snprintf(buf, size, "%s:%d", conf->path ? conf->path : "config",
                         act->line);
        return buf;
}

/*
 * Depth-first search from action i over `after` edges. stack holds the path
 * from the search's root; state[] is 0 unvisited, 1 on the path, 2 done.
 * Returns 0, or -1 with "dependency cycle: a -> b -> a" in errstr.
 */
static int config_cycle_visit(const pd_config_t *conf, size_t i,
                              unsigned char *state, size_t *stack, size_t depth,
                              char *errstr, size_t errstr_size) {
        const pd_action_def_t *act = &conf->actions[i];

        state[i]     = 1;
        stack[depth] = i;
        for (size_t a = 0; a < act->after.cnt; a++) {
                size_t j = (size_t)(pd_config_action(conf, act->after.v[a]) -
                                    conf->actions);

                if (state[j] == 1) {
                        /* The cycle is the path from j's place to here. */
                        size_t from = 0, off;
                        char where[1100];

                        while (stack[from] != j)
                                from++;
                        off = (size_t)snprintf(
                            errstr, errstr_size, "%s: dependency cycle: ",
                            config_where(conf, &conf->actions[j], where,
                                         sizeof(where)));
                        for (size_t k = from; k <= depth; k++) {
                                if (off < errstr_size)
                                        off += (size_t)snprintf(
                                            errstr + off, errstr_size - off,
                                            "%s -> ",
                                            conf->actions[stack[k]].name);
                        }
                        if (off < errstr_size)
                                snprintf(errstr + off, errstr_size - off, "%s",
                                         conf->actions[j].name);
                        return -1;
                }
                if (state[j] == 0 &&
                    config_cycle_visit(conf, j, state, stack, depth + 1, errstr,
                                       errstr_size))
                        return -1;
        }
        state[i] = 2;
        return 0;
}

int pd_config_validate(pd_config_t *conf, char *errstr, size_t errstr_size) {
        char where[1100];
        unsigned char *state = NULL;
        size_t *stack        = NULL;
        int err              = -1;

        /* Names first, so the cycle search only meets known actions. */
        for (size_t i = 0; i < conf->action_cnt; i++) {
                const pd_action_def_t *act = &conf->actions[i];

                for (size_t p = 0; p < act->params.cnt; p++) {
                        char name[80];
                        size_t len = strlen(act->params.v[p]);

                        snprintf(name, sizeof(name), "%.*s",
                                 (int)(len && act->params.v[p][len - 1] == '?'
                                           ? len - 1
                                           : len),
                                 act->params.v[p]);
                        if (len >= sizeof(name) || !pd_param_name_valid(name) ||
                            act->params.cnt > PD_PARAMS_MAX) {
                                pd_errf(errstr, errstr_size,
                                        "%s: action '%s': params: '%s' is "
                                        "not a parameter name (a-z first, "
                                        "then a-z 0-9 _, at most 64, a "
                                        "'?' after an optional one; at "
                                        "most %d)",
                                        config_where(conf, act, where,
                                                     sizeof(where)),
                                        act->name, act->params.v[p],
                                        PD_PARAMS_MAX);
                                goto done;
                        }
                }

                for (size_t a = 0; a < act->after.cnt; a++) {
                        const char *dep = act->after.v[a];

                        if (!strcmp(dep, act->name)) {
                                pd_errf(errstr, errstr_size,
                                        "%s: action '%s': after "
                                        "names the action itself",
                                        config_where(conf, act, where,
                                                     sizeof(where)),
                                        act->name);
                                goto done;
                        }
                        if (!pd_config_action(conf, dep)) {
                                pd_errf(errstr, errstr_size,
                                        "%s: action '%s': after "
                                        "names unknown action '%s'",
                                        config_where(conf, act, where,
                                                     sizeof(where)),
                                        act->name, dep);
                                goto done;
                        }
                }
        }
        if (!conf->action_cnt) {
                err = 0;
                goto done;
        }
        state = pd_xcalloc(conf->action_cnt, sizeof(*state));
        stack = pd_xcalloc(conf->action_cnt, sizeof(*stack));
        for (size_t i = 0; i < conf->action_cnt; i++)
                if (!state[i] && config_cycle_visit(conf, i, state, stack, 0,
                                                    errstr, errstr_size))
                        goto done;
        err = 0;
done:
        free(stack);
        free(state);
        return err;
}
