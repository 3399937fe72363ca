/*
 * options.c: parsing, --help and `config check` for the option table of
 * web/main.c (see options.h).
 *
 * The environment is read before argv so that a flag always wins; the
 * defaults go through the same setters, so the default --help shows is the
 * one that runs.
 */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int web_opt_str(void *cfg, const web_opt *o, const char *val, const char *where)
{
	(void)where;
	*(const char **)((char *)cfg + o->off) = val;
	return 0;
}

int web_opt_uint(void *cfg, const web_opt *o, const char *val, const char *where)
{
	char *end;
	unsigned long v;
	void *field = (char *)cfg + o->off;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (!errno && !*end && isdigit((unsigned char)val[0]) && v < o->min) {
		fprintf(stderr, "spaces-server: %s must be at least %lu (got '%s')\n", where,
		        o->min, val);
		return -1;
	}
	if (errno || *end || end == val || !isdigit((unsigned char)val[0]) || v > o->max) {
		fprintf(stderr, "spaces-server: invalid value for %s: '%s' (a number, %lu..%lu)\n",
		        where, val, o->min, o->max);
		return -1;
	}
	if (o->size == sizeof(unsigned))
		*(unsigned *)field = (unsigned)v;
	else if (o->size == sizeof(unsigned long))
		*(unsigned long *)field = v;
	else
		return -1; /* a table mistake: no such field size */
	return 0;
}

int web_opt_switch(void *cfg, const web_opt *o, const char *val, const char *where)
{
	static const char *on[] = {"1", "yes", "true", "on"};
	static const char *off[] = {"0", "no", "false", "off"};

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (strcasecmp(val, on[i]) == 0) {
			*(int *)((char *)cfg + o->off) = 1;
			return 0;
		}
		if (strcasecmp(val, off[i]) == 0) {
			*(int *)((char *)cfg + o->off) = 0;
			return 0;
		}
	}
	fprintf(stderr, "spaces-server: invalid value for %s: '%s' (yes or no)\n", where, val);
	return -1;
}

const char *web_opt_env(const web_opt *o, char *buf, size_t cap)
{
	size_t i = 0, j = 0;
	static const char pre[] = "SPACES_";

	for (; pre[i] && j + 1 < cap; i++)
		buf[j++] = pre[i];
	for (i = 0; o->name[i] && j + 1 < cap; i++)
		buf[j++] = o->name[i] == '-' ? '_' : (char)toupper((unsigned char)o->name[i]);
	buf[j] = 0;
	return buf;
}

int web_opts_find(const web_opt_state *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->opts[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int apply(void *cfg, web_opt_state *st, size_t i, const char *val, const char *kind,
                 const char *where)
{
	if (st->opts[i].set(cfg, &st->opts[i], val, where))
		return -1;
	st->value[i] = val;
	snprintf(st->source[i], sizeof(st->source[i]), "%s%s%s", kind, *where ? " " : "", where);
	return 0;
}

int web_opts_parse(const web_opt *opts, size_t n, void *cfg, int argc, char **argv,
                   web_opt_state *st)
{
	struct option lopts[WEB_OPTS_MAX + 3];
	char shorts[2 * WEB_OPTS_MAX + 8], env[96], flag[96];
	size_t ns = 0;
	int c;

	if (n > WEB_OPTS_MAX)
		return WEB_OPTS_BAD;
	memset(st, 0, sizeof(*st));
	st->opts = opts;
	st->n = n;
	for (size_t i = 0; i < n; i++) {
		if (opts[i].def && apply(cfg, st, i, opts[i].def, "default", ""))
			return WEB_OPTS_BAD;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = web_opt_env(&opts[i], env, sizeof(env));
		const char *v = getenv(name);

		if ((!v || !*v) && opts[i].alias) {
			name = opts[i].alias;
			v = getenv(name);
		}
		if (v && *v && apply(cfg, st, i, v, "env", name))
			return WEB_OPTS_BAD;
	}

	for (size_t i = 0; i < n; i++) {
		lopts[i] =
		    (struct option){opts[i].name, opts[i].arg ? required_argument : no_argument,
		                    NULL, 256 + (int)i};
		if (opts[i].letter) {
			shorts[ns++] = opts[i].letter;
			if (opts[i].arg)
				shorts[ns++] = ':';
		}
	}
	lopts[n] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[n + 1] = (struct option){"version", no_argument, NULL, 'V'};
	lopts[n + 2] = (struct option){NULL, 0, NULL, 0};
	memcpy(shorts + ns, "hV", 3);

	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
		size_t i;

		if (c == 'h')
			return WEB_OPTS_HELP;
		if (c == 'V')
			return WEB_OPTS_VERSION;
		if (c >= 256 && c < 256 + (int)n) {
			i = (size_t)(c - 256);
		} else {
			for (i = 0; i < n && opts[i].letter != c; i++)
				;
			if (i == n) { /* getopt printed why */
				fprintf(stderr, "spaces-server: see --help\n");
				return WEB_OPTS_BAD;
			}
		}
		snprintf(flag, sizeof(flag), "--%s", opts[i].name);
		if (apply(cfg, st, i, opts[i].arg ? optarg : "1", "flag", flag))
			return WEB_OPTS_BAD;
	}
	if (optind < argc) {
		fprintf(stderr, "spaces-server: unexpected argument '%s' (see --help)\n",
		        argv[optind]);
		return WEB_OPTS_BAD;
	}
	return WEB_OPTS_RUN;
}

/* Prints text from column col on, wrapped at 79 columns, every line but the
 * first indented to col. */
static void wrap(FILE *f, int at, int col, const char *text)
{
	const char *p = text;

	while (*p) {
		const char *w = p;
		int len;

		while (*w == ' ')
			w++;
		if (!*w)
			break;
		len = (int)strcspn(w, " ");
		if (at > col && at + 1 + len > 79) {
			fprintf(f, "\n%*s", col, "");
			at = col;
			p = w;
		}
		if (at > col && p != w) {
			fputc(' ', f);
			at++;
		}
		fprintf(f, "%.*s", len, w);
		at += len;
		p = w + len;
	}
	fputc('\n', f);
}

void web_opts_help(FILE *f, const web_opt *opts, size_t n)
{
	enum { COL = 30 };
	char left[128], env[96], text[1024];

	for (size_t i = 0; i < n; i++) {
		const web_opt *o = &opts[i];
		int len;

		if (o->letter)
			len = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->letter, o->name,
			               o->arg ? " " : "", o->arg ? o->arg : "");
		else
			len = snprintf(left, sizeof(left), "      --%s%s%s", o->name,
			               o->arg ? " " : "", o->arg ? o->arg : "");
		fputs(left, f);
		if (len + 2 > COL) {
			fprintf(f, "\n%*s", COL, "");
		} else {
			fprintf(f, "%*s", COL - len, "");
		}
		snprintf(text, sizeof(text), "%s [%s%s%s%s%s]", o->help,
		         web_opt_env(o, env, sizeof(env)), o->alias ? " or " : "",
		         o->alias ? o->alias : "", o->def && *o->def ? "; default " : "",
		         o->def && *o->def ? o->def : "");
		wrap(f, COL, COL, text);
	}
	fprintf(f, "  -h, --help%*sshow this help and exit\n", COL - 12, "");
	fprintf(f, "  -V, --version%*sshow the version and exit\n", COL - 15, "");
}

/* Replaces the value of every "password=" (a conninfo keyword or a URL
 * query parameter) in out, in place. */
static void mask_keyword(char *out, size_t cap)
{
	static const char key[] = "password=";
	char *p = out;

	while ((p = strstr(p, key)) != NULL) {
		char *v = p + sizeof(key) - 1, *end = v;

		if (*end == '\'') {
			for (end++; *end && *end != '\''; end++)
				if (*end == '\\' && end[1])
					end++;
			if (*end)
				end++;
		} else {
			end += strcspn(end, " &#");
		}
		size_t tail = strlen(end);
		if ((size_t)(v - out) + 4 + tail + 1 > cap)
			return;
		memmove(v + 4, end, tail + 1);
		memcpy(v, "****", 4);
		p = v + 4;
	}
}

void web_opt_mask_url(const char *val, char *out, size_t cap)
{
	const char *scheme = strstr(val, "://");

	snprintf(out, cap, "%s", val);
	if (scheme) {
		const char *auth = scheme + 3;
		size_t alen = strcspn(auth, "/?#");
		const char *at = NULL, *colon;

		for (const char *q = auth; q < auth + alen; q++)
			if (*q == '@')
				at = q;
		colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon)
			snprintf(out, cap, "%.*s****%s", (int)(colon + 1 - val), val, at);
	}
	mask_keyword(out, cap);
}

void web_opts_print(FILE *f, const web_opt_state *st, const void *cfg)
{
	char shown[1024];

	for (size_t i = 0; i < st->n; i++) {
		const web_opt *o = &st->opts[i];
		const char *v = st->value[i];

		if (!o->arg)
			v = *(const int *)((const char *)cfg + o->off) ? "on" : "off";
		if (!v) {
			snprintf(shown, sizeof(shown), "(unset)");
		} else if (o->flags & WEB_OPT_SECRET) {
			snprintf(shown, sizeof(shown), "****");
		} else if (o->flags & WEB_OPT_SECRET_URL) {
			web_opt_mask_url(v, shown, sizeof(shown));
		} else {
			snprintf(shown, sizeof(shown), "%s", v);
		}
		fprintf(f, "%s = %s [%s]\n", o->name, shown,
		        st->source[i][0] ? st->source[i] : "default");
	}
}
