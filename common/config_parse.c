/*
 * config_parse.c - the INI file parser (pd_config_load).
 *
 * The parser is hand-written rather than inih because we want '#' inline
 * comments, exact line numbers in every message and shell-aware comments in
 * `run`. It reads one line at a time into a fixed buffer, so a hostile file
 * cannot make it allocate more than PD_CONFIG_LINE_MAX per line. What a
 * value means is config_value.c's business; which keys exist, the table's
 * (config_keys.c).
 */
#include "common/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strerror.h"
#include "common/xalloc.h"

/* Longest line we accept, newline excluded. */
#define PD_CONFIG_LINE_MAX 4096

/* Where the parser is in one file. */
typedef struct pd_config_parser_s {
        pd_config_t *conf;
        int line;
        const char *section; /* a pd_config_keys[] section, NULL before one */
        size_t act_idx;      /* current action, valid if section is "action" */
        size_t first_action; /* actions before this index came earlier */
        pd_strv_t seen;      /* keys of the current action section ... */
        int *seen_lines;     /* ... and the lines they were set on */
        size_t seen_cap;     /* room in seen_lines */
} pd_config_parser_t;

/*
 * Cuts the inline comment off value (the text after '='), trims it, and
 * returns where it starts. A '#' or ';' after a blank starts a comment. With
 * `shell` (for `run`) one inside shell quotes or after a backslash does
 * not, since it belongs to the command. Without `shell`, a value that
 * starts with '"' runs to the next '"', blanks and '#' included.
 */
static char *config_value_clean(char *value, int shell, char *msg,
                                size_t msg_size) {
        char quote      = 0;
        int after_blank = 0;
        char *p;

        if (!shell) {
                char *start = value, *close, *rest;

                while (pd__config_is_blank(*start))
                        start++;
                if (*start == '"') {
                        if (!(close = strchr(start + 1, '"'))) {
                                pd_errf(msg, msg_size,
                                        "unterminated double quote");
                                return NULL;
                        }
                        for (rest = close + 1; pd__config_is_blank(*rest);
                             rest++)
                                ;
                        if (*rest && !(rest > close + 1 &&
                                       (*rest == '#' || *rest == ';'))) {
                                pd_errf(msg, msg_size,
                                        "unexpected text after the "
                                        "closing quote");
                                return NULL;
                        }
                        *close = '\0';
                        return start + 1;
                }
        }
        for (p = value; *p; p++) {
                if (quote == '\'') {
                        if (*p == '\'')
                                quote = 0;
                } else if (shell && *p == '\\' && p[1]) {
                        p++;
                        after_blank = 0;
                } else if (quote == '"') {
                        if (*p == '"')
                                quote = 0;
                } else if (shell && (*p == '\'' || *p == '"')) {
                        quote       = *p;
                        after_blank = 0;
                } else if ((*p == '#' || *p == ';') && after_blank) {
                        *p = '\0';
                        break;
                } else {
                        after_blank = pd__config_is_blank(*p);
                }
        }
        return pd__config_trim(value);
}

/*
 * Closes the current section. Returns -1 with msg when it was an action
 * without `run`, and moves p->line back to that action's header, which is
 * the line to report (parsing stops at the first error).
 */
static int config_section_end(pd_config_parser_t *p, char *msg,
                              size_t msg_size) {
        const pd_action_def_t *act;

        pd_strv_clear(&p->seen);
        if (!p->section || strcmp(p->section, "action"))
                return 0;
        act = &p->conf->actions[p->act_idx];
        if (act->run)
                return 0;
        /* Until plugins exist, a command is the only thing an action can
         * run: say so on the section's own line. */
        p->line = act->line;
        pd_errf(msg, msg_size, "action '%s': run is required", act->name);
        return -1;
}

/* Handles "[section]" or "[action NAME]" (the line starts at '['). */
static int config_parse_section(pd_config_parser_t *p, char *s, char *msg,
                                size_t msg_size) {
        const pd_action_def_t *dup;
        char *close, *rest, *name;
        int line = p->line;

        if (config_section_end(p, msg, msg_size))
                return -1;
        p->section = NULL;
        if (!(close = strchr(s, ']'))) {
                pd_errf(msg, msg_size, "expected ']' to close %s", s);
                return -1;
        }
        for (rest = close + 1; pd__config_is_blank(*rest); rest++)
                ;
        if (*rest && *rest != '#' && *rest != ';') {
                pd_errf(msg, msg_size,
                        "unexpected text after the section name");
                return -1;
        }
        *close = '\0';
        s      = pd__config_trim(s + 1);
        if (strncmp(s, "action", 6) || (s[6] && !pd__config_is_blank(s[6]))) {
                for (size_t i = 0; i < PD_CONFIG_KEY_CNT; i++) {
                        /* Point at the table's string: it outlives s. */
                        if (strcmp(pd_config_keys[i].section, "action") &&
                            !strcmp(pd_config_keys[i].section, s)) {
                                p->section = pd_config_keys[i].section;
                                return 0;
                        }
                }
                pd_errf(msg, msg_size, "unknown section [%s]", s);
                return -1;
        }
        name = pd__config_trim(s + 6);
        if (!*name) {
                pd_errf(msg, msg_size, "[action] needs a name: [action NAME]");
                return -1;
        }
        if (!pd_action_name_valid(name)) {
                pd_errf(msg, msg_size,
                        "invalid action name '%s' (letters, digits, "
                        "'_', '.', '-', at most 128, not starting "
                        "with '.' or '-')",
                        name);
                return -1;
        }
        if ((dup = pd_config_action(p->conf, name))) {
                if ((size_t)(dup - p->conf->actions) >= p->first_action)
                        pd_errf(msg, msg_size,
                                "action '%s' already defined at line "
                                "%d",
                                name, dup->line);
                else
                        pd_errf(msg, msg_size,
                                "action '%s' already defined at line "
                                "%d of an earlier file",
                                name, dup->line);
                return -1;
        }
        pd__config_action_add(p->conf, name, line);
        p->act_idx = p->conf->action_cnt - 1;
        p->section = "action";
        return 0;
}

/* Handles "key = value". */
static int config_parse_key(pd_config_parser_t *p, char *s, char *msg,
                            size_t msg_size) {
        const pd_config_key_t *ck;
        pd_action_def_t *act = NULL;
        char *eq, *key, *value;
        char inner[256];

        if (!(eq = strchr(s, '='))) {
                pd_errf(msg, msg_size, "expected [section] or key = value");
                return -1;
        }
        *eq = '\0';
        key = pd__config_trim(s);
        if (!*key) {
                pd_errf(msg, msg_size, "missing key before '='");
                return -1;
        }
        if (!p->section) {
                pd_errf(msg, msg_size, "key '%s' outside any section", key);
                return -1;
        }
        if (!strcmp(p->section, "action"))
                act = &p->conf->actions[p->act_idx];
        if (!(ck = pd__config_key_find(p->section, key))) {
                pd__config_unknown_key(p->section, act, key, msg, msg_size);
                return -1;
        }
        if (!(value = config_value_clean(eq + 1, ck->type == PD_CONFIG_COMMAND,
                                         inner, sizeof(inner)))) {
                pd__config_value_error(p->section, act, key, inner, msg,
                                       msg_size);
                return -1;
        }
        if (act) {
                /* Two values for one key of one action is a mistake, not
                 * an override: say where the first one is. */
                int i = pd_strv_find(&p->seen, key);

                if (i >= 0) {
                        pd_errf(msg, msg_size,
                                "action '%s': %s already set at line "
                                "%d",
                                act->name, key, p->seen_lines[i]);
                        return -1;
                }
                p->seen_lines =
                    pd_xgrow(p->seen_lines, &p->seen_cap, p->seen.cnt + 1,
                             sizeof(*p->seen_lines));
                p->seen_lines[p->seen.cnt] = p->line;
                pd_strv_add(&p->seen, key);
        }
        return pd__config_assign(p->conf, act, ck, key, value, msg, msg_size);
}

static int config_parse_line(pd_config_parser_t *p, char *line, char *msg,
                             size_t msg_size) {
        char *s = line;

        while (pd__config_is_blank(*s))
                s++;
        if (!*s || *s == '#' || *s == ';')
                return 0;
        if (*s == '[')
                return config_parse_section(p, s, msg, msg_size);
        return config_parse_key(p, s, msg, msg_size);
}

/*
 * Reads one line into buf (size PD_CONFIG_LINE_MAX + 1) without its line
 * ending. Returns its length, -1 at end of file or on a read error, -2 when
 * it is too long, -3 when it holds a NUL byte (which C strings cannot
 * carry, so the rest of the line would silently vanish).
 */
static int config_read_line(FILE *fp, char *buf) {
        int c, len = 0;

        while ((c = getc(fp)) != EOF && c != '\n') {
                if (c == '\0')
                        return -3;
                if (len == PD_CONFIG_LINE_MAX)
                        return -2;
                buf[len++] = (char)c;
        }
        if (c == EOF && len == 0)
                return -1;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        buf[len] = '\0';
        return len;
}

int pd_config_load(pd_config_t *conf, const char *path, char *errstr,
                   size_t errstr_size) {
        pd_config_parser_t p = {0};
        char line[PD_CONFIG_LINE_MAX + 1];
        char msg[1024];
        FILE *fp;
        int len, err = -1;

        p.conf         = conf;
        p.first_action = conf->action_cnt;
        if (!(fp = fopen(path, "r"))) {
                pd_errf(errstr, errstr_size, "%s: %s", path,
                        pd_strerror(errno));
                goto done;
        }
        free(conf->path);
        conf->path = pd_xstrdup(path);

        while ((len = config_read_line(fp, line)) != -1) {
                char *s = line;

                p.line++;
                if (len < 0) {
                        if (len == -2)
                                pd_errf(errstr, errstr_size,
                                        "%s:%d: line longer than %d "
                                        "bytes",
                                        path, p.line, PD_CONFIG_LINE_MAX);
                        else
                                pd_errf(errstr, errstr_size,
                                        "%s:%d: NUL byte in line", path,
                                        p.line);
                        goto done;
                }
                /* Editors on some systems start files with a UTF-8 BOM. */
                if (p.line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
                        s += 3;
                if (config_parse_line(&p, s, msg, sizeof(msg))) {
                        pd_errf(errstr, errstr_size, "%s:%d: %s", path, p.line,
                                msg);
                        goto done;
                }
        }
        if (ferror(fp)) {
                /* Reading a directory fails here, not in fopen. */
                pd_errf(errstr, errstr_size, "%s: %s", path,
                        pd_strerror(errno));
                goto done;
        }
        if (config_section_end(&p, msg, sizeof(msg))) {
                pd_errf(errstr, errstr_size, "%s:%d: %s", path, p.line, msg);
                goto done;
        }
        err = 0;
done:
        pd_strv_clear(&p.seen);
        free(p.seen_lines);
        if (fp)
                fclose(fp);
        return err;
}
