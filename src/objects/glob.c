/* SPDX-License-Identifier: MIT */
/*
 * glob.c - the glob a refusal suggests for a policy rule (`KIND GLOB
 * ACTION`, runtime/policy.c), written from an item's name so that the rule
 * parses and matches it, and matches the same item in the next run too.
 *
 * A policy glob is one word of the policy file, matched by fnmatch(3)
 * without flags: '*', '?', '[' and ']' are wildcards and '\' escapes, so
 * each is written escaped; a name with a blank or a '#' (which starts a
 * comment) is written in double quotes, inside which the escapes still
 * hold (the tokenizer keeps them for fnmatch). A double quote, which no
 * rule can hold, and a control character (a newline would end the rule's
 * line; a message shows it escaped, "\n", which fnmatch reads as 'n') are
 * written '?'.
 *
 * A name that differs from run to run would give a rule that matches once:
 *   - a deleted temporary (mkstemp's random letters in /tmp, /var/tmp or
 *     /dev/shm, O_TMPFILE's inode number anywhere: php's
 *     /tmp/.ZendSem.XARx7Y): its random part becomes '*'
 *     (crac_obj_put_name_glob), but only after a stable part of its own
 *     name that has a letter or a digit: a glob must not cover the
 *     program's other temporaries. A name that is random as a whole
 *     (python's /tmp/tmpk3j_x9a1) would give the glob "/tmp/" '*'
 *     " (deleted)", which matches every deleted file in /tmp (and below:
 *     '*' crosses '/'), and a rule that closes them all
 *     silences real problems: such a name is written as it is (the rule
 *     matches this run only);
 *   - an established connection's ephemeral port: socket.c keeps the
 *     stable end and writes '*' for the other
 *     (crac_obj_put_connection_glob, with the two helpers below).
 *
 * Shared by the safety checks (runtime/checks.c) and the object probes
 * (socket.c), which must suggest the same rule; freestanding, as every
 * file here (objects.h).
 */
#include "objects/objects.h"

/* A character fnmatch(3) takes as a wildcard or an escape. */
static int glob_special(char ch)
{
	return ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\';
}

/* A character a rule cannot hold as it is, written '?': a double quote
 * (a quoted word ends at it, an unquoted one starting with it is quoted)
 * and a control character (a newline or a carriage return ends the rule's
 * line or word, and messages show them escaped). */
static int glob_unwritable(char ch)
{
	return ch == '"' || (unsigned char)ch < 0x20 || ch == 0x7f;
}

/*
 * The longest glob a rule's word holds: policy.c's tokenizer keeps PATH_MAX
 * - 1 bytes of a word and drops the rest without a word. A glob cut after
 * its '*' would match far more than the item ("/tmp/x.*" without its
 * " (deleted)": the live files too), so a glob with a wildcard is written
 * only when it fits; a literal name cut there matches nothing.
 */
#define GLOB_WORD_MAX 4095

/* How many bytes crac_obj_put_glob_literal writes for the first n of s. */
static size_t glob_literal_len(const char *s, size_t n)
{
	size_t len = 0;

	for (size_t k = 0; k < n && s[k]; k++)
		len += !glob_unwritable(s[k]) && glob_special(s[k]) ? 2 : 1;
	return len;
}

int crac_obj_glob_needs_quotes(const char *s)
{
	for (; *s; s++)
		if (*s == ' ' || *s == '\t' || *s == '#')
			return 1;
	return 0;
}

void crac_obj_put_glob_literal(struct crac_img_buf *b, const char *s, size_t n)
{
	char two[3] = { '\\', 0, 0 };

	for (size_t k = 0; k < n && s[k]; k++) {
		two[1] = s[k];
		/* one a rule cannot hold: '?' matches it */
		crac_img_puts(b, glob_unwritable(s[k]) ? "?" : glob_special(s[k]) ? two : two + 1);
	}
}

static int alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

size_t crac_obj_temp_random_part(const char *name, size_t *start)
{
	static const char del[] = " (deleted)";
	size_t len = strlen(name), dl = sizeof(del) - 1;

	if (len <= dl || memcmp(name + len - dl, del, dl))
		return 0;
	len -= dl;
	size_t base = len;
	while (base && name[base - 1] != '/')
		base--;
	if (!base || !name[base] || !memcmp(name, "/SYSV", 5))
		return 0;   /* not a path, or SysV shared memory (its key: stable) */
	/* O_TMPFILE: "DIR/#INODE" */
	if (name[base] == '#' && len - base > 1) {
		size_t k = base + 1;
		while (k < len && name[k] >= '0' && name[k] <= '9')
			k++;
		if (k == len) {
			*start = base + 1;
			return len - base - 1;
		}
	}
	/* mkstemp(3) and the like, in a directory for temporaries (elsewhere
	 * a deleted file is rather one replaced by an upgrade, whose name
	 * stays: /usr/bin/python3): a trailing run of at least six letters,
	 * digits or underscores (a separator or the directory before it) */
	static const char *const tmp_dirs[] = { "/tmp/", "/var/tmp/", "/dev/shm/" };
	int in_tmp = 0;
	for (size_t d = 0; d < sizeof(tmp_dirs) / sizeof(*tmp_dirs); d++)
		in_tmp |= !memcmp(name, tmp_dirs[d], strlen(tmp_dirs[d]));
	if (!in_tmp)
		return 0;
	size_t k = len;
	while (k > base && (alnum(name[k - 1]) || name[k - 1] == '_'))
		k--;
	if (len - k < 6)
		return 0;
	/* the stable part of the name before it, with a letter or a digit
	 * ("/tmp/.XXXXXX" would give every deleted dot file in /tmp) */
	int stable = 0;
	for (size_t j = base; j < k; j++)
		stable |= alnum(name[j]);
	if (!stable)
		return 0;
	*start = k;
	return len - k;
}

int crac_obj_put_name_glob(struct crac_img_buf *b, const char *name)
{
	size_t start = 0, n = crac_obj_temp_random_part(name, &start);
	int quote = crac_obj_glob_needs_quotes(name);

	if (n && glob_literal_len(name, start) + 1 + glob_literal_len(name + start + n, strlen(name + start + n)) >
			 GLOB_WORD_MAX)
		n = 0;   /* it would be cut after its '*' */

	if (quote)
		crac_img_puts(b, "\"");
	if (n) {
		crac_obj_put_glob_literal(b, name, start);
		crac_img_puts(b, "*");
		crac_obj_put_glob_literal(b, name + start + n, strlen(name + start + n));
	} else {
		crac_obj_put_glob_literal(b, name, strlen(name));
	}
	if (quote)
		crac_img_puts(b, "\"");
	return n != 0;
}
