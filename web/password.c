/*
 * password.c: the password policy of new passwords (registration, password
 * change; `spaces-server user add/passwd` only warn).
 *
 * At least WEB_PASSWORD_MIN characters, not the user's own name, and (with
 * the full policy) not one of the most common passwords: the list is
 * web/common-passwords.txt, compiled in. Comparisons ignore letter case, so
 * "Password1" is as common as "password1".
 */
#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

#include "web_internal.h"

extern const char *const web_common_passwords[];

int web_password_is_common(const char *password)
{
	for (size_t i = 0; web_common_passwords[i]; i++) {
		if (strcasecmp(password, web_common_passwords[i]) == 0)
			return 1;
	}
	return 0;
}

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

const char *web_password_problem(const char *username, const char *password, int check_common)
{
	if (!password || !*password)
		return "Please choose a password";
	if (strlen(password) > WEB_PASSWORD_MAX)
		return "That password is too long (at most 1024 characters)";
	if (utf8_chars(password) < WEB_PASSWORD_MIN)
		return "The password must have at least 8 characters";
	if (username && strcasecmp(username, password) == 0)
		return "The password must not be your user name";
	if (check_common && web_password_is_common(password))
		return "That password is one of the most common ones: please choose another";
	return NULL;
}
