/*
 * config_int.h - what the files of the configuration share, private to
 * them: the key table's types, the table itself, and the calls one file
 * makes into another. config.c holds the config objects and the
 * cross-checks, config_keys.c the table and the docs made from it,
 * config_value.c how a value is read into its field, config_parse.c the
 * INI file parser.
 */
#ifndef PD_CONFIG_INT_H
#define PD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef enum pd_config_type_e {
        PD_CONFIG_STRING,
        PD_CONFIG_TENANT, /* a string that must be a valid tenant name */
        PD_CONFIG_INT,    /* within [min, max] */
        PD_CONFIG_BOOL,
        PD_CONFIG_DURATION, /* stored in milliseconds, within [min, max];
                             * a negative min, -m: 0 (off) or [m, max] */
        PD_CONFIG_LIST,     /* comma-separated, into a pd_strv_t */
        PD_CONFIG_TENANTS,  /* a list of valid tenant names */
        PD_CONFIG_POLICY,
        PD_CONFIG_LOG_LEVEL,
        PD_CONFIG_LOG_FORMAT,
        PD_CONFIG_COMMAND, /* `run`: kept as written and split into argv */
        PD_CONFIG_ENV,     /* env.NAME = VALUE, stored "NAME=VALUE" */
        PD_CONFIG_UMASK,   /* octal 0..0777 into an int; "" = -1 */
        PD_CONFIG_PASS,    /* [kafka]: any name, stored as a pair */
} pd_config_type_t;

typedef struct pd_config_key_s {
        const char *section; /* "action" means every [action NAME] */
        const char *name;
        pd_config_type_t type;
        const char *def;  /* as written in a file; NULL leaves it unset */
        size_t offset;    /* in pd_config_t, or pd_action_def_t */
        int64_t min, max; /* PD_CONFIG_INT; PD_CONFIG_DURATION in ms */
        const char *help;
} pd_config_key_t;

/* The key table (config_keys.c), in the order --help lists it. */
extern const pd_config_key_t pd_config_keys[];
extern const size_t pd_config_key_cnt;
#define PD_CONFIG_KEY_CNT pd_config_key_cnt

/* config_keys.c: looking keys up in the table, and the defaults. */
int pd__config_section_known(const char *section);
/* The table's entry for key in section ("action" for every [action NAME]),
 * or NULL. */
const pd_config_key_t *pd__config_key_find(const char *section,
                                           const char *key);
/*
 * Sets every key of `section` that has a default to that default, parsed
 * like any value. A default that does not parse is a bug in the table,
 * hence the assert.
 */
void pd__config_defaults(pd_config_t *conf, pd_action_def_t *act,
                         const char *section);

/* config_value.c: reading a value into its field. */
int pd__config_is_blank(char c);
/* Trims blanks from both ends of s, in place; returns the new start. */
char *pd__config_trim(char *s);
/*
 * Stores value into the field ck describes, of conf or (section "action")
 * of act. Returns 0, or -1 with "key 'k' in [section]: why" in errstr; the
 * field then keeps its previous value.
 */
int pd__config_assign(pd_config_t *conf, pd_action_def_t *act,
                      const pd_config_key_t *ck, const char *key,
                      const char *value, char *errstr, size_t errstr_size);
/* Writes msg about one value into errstr, naming the key the way a reader
 * finds it: "reactor.workers: msg" or "action 'x': retries: msg". */
void pd__config_value_error(const char *section, const pd_action_def_t *act,
                            const char *key, const char *msg, char *errstr,
                            size_t errstr_size);
/* "unknown key 'k' in [section]", the same for files and overrides. */
void pd__config_unknown_key(const char *section, const pd_action_def_t *act,
                            const char *key, char *errstr, size_t errstr_size);

/* config.c: appends a new action with its defaults and returns it. The
 * array may move: pointers into conf->actions do not survive this call. */
pd_action_def_t *pd__config_action_add(pd_config_t *conf, const char *name,
                                       int line);

#endif
