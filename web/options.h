/*
 * options.h: the command-line and environment options of spaces-server,
 * from one table (web/main.c).
 *
 * Each option is one web_opt: its long flag, its environment variable
 * (SPACES_ and the flag's name in capitals with '_' for '-': --ping-interval
 * is SPACES_PING_INTERVAL; an older name may be given as alias), its default
 * and a setter that checks the text and stores it. A value comes from, by
 * precedence: the flag, the environment variable, its alias, the default.
 * An empty environment variable counts as unset. --help and `config check`
 * are generated from the same table, so an option added there is documented
 * and printed without more code.
 */
#ifndef WEB_OPTIONS_H
#define WEB_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef struct web_opt web_opt;

/**
 * Stores val (never NULL) for option o into cfg. where names its origin for
 * error messages ("--db-pool", "SPACES_DB_POOL"). Prints a message naming
 * where and returns -1 on a bad value; returns 0 otherwise.
 */
typedef int (*web_opt_set)(void *cfg, const web_opt *o, const char *val, const char *where);

enum {
	WEB_OPT_SECRET = 1,     /* never printed: `config check` shows **** */
	WEB_OPT_SECRET_URL = 2, /* printed with the password of the URL or conninfo masked */
};

struct web_opt {
	const char *name;  /* long flag without "--" */
	char letter;       /* short flag, or 0 */
	const char *arg;   /* the argument's name in --help; NULL for a switch */
	const char *def;   /* default (text given to set), or NULL for none */
	const char *alias; /* another environment variable, read when the first is unset */
	unsigned flags;    /* WEB_OPT_SECRET... */
	web_opt_set set;
	size_t off, size;       /* the field set by the generic setters below */
	unsigned long min, max; /* bounds for web_opt_uint */
	const char *help;       /* one sentence or two; wrapped by --help */
};

/* Generic setters: the field at o->off (of o->size bytes for numbers). */
int web_opt_str(void *cfg, const web_opt *o, const char *val, const char *where);
/* A decimal number in o->min..o->max into an unsigned, unsigned long or size_t. */
int web_opt_uint(void *cfg, const web_opt *o, const char *val, const char *where);
/* An int set to 1 by the flag or by 1/yes/true/on, to 0 by 0/no/false/off. */
int web_opt_switch(void *cfg, const web_opt *o, const char *val, const char *where);

#define WEB_OPTS_MAX 96

/** Where each option's value came from, for `config check`. */
typedef struct {
	const web_opt *opts;
	size_t n;
	const char *value[WEB_OPTS_MAX]; /* NULL: unset */
	char source[WEB_OPTS_MAX][64];   /* "default", "env SPACES_X", "flag --x" */
} web_opt_state;

enum { WEB_OPTS_RUN = 0, WEB_OPTS_HELP = 1, WEB_OPTS_VERSION = 2, WEB_OPTS_BAD = -1 };

/**
 * Applies the defaults, then the environment, then argv (getopt_long from
 * argv[1]; a non-option argument is an error). Returns WEB_OPTS_RUN,
 * WEB_OPTS_HELP or WEB_OPTS_VERSION (-h, -V seen; nothing printed), or
 * WEB_OPTS_BAD after printing the reason to stderr. n <= WEB_OPTS_MAX.
 */
int web_opts_parse(const web_opt *opts, size_t n, void *cfg, int argc, char **argv,
                   web_opt_state *st);

/** The environment variable of o into buf ("SPACES_..."). */
const char *web_opt_env(const web_opt *o, char *buf, size_t cap);

/** Index of the option named name, or -1. */
int web_opts_find(const web_opt_state *st, const char *name);

/** Prints the options part of --help: flags, help, environment variables, defaults. */
void web_opts_help(FILE *f, const web_opt *opts, size_t n);

/**
 * Prints one line per option, "name = value [source]", secrets masked
 * (switches as on/off, unset values as "(unset)").
 */
void web_opts_print(FILE *f, const web_opt_state *st, const void *cfg);

/** val with the password of a URL or conninfo string replaced by ****, into out. */
void web_opt_mask_url(const char *val, char *out, size_t cap);

#endif
