/* SPDX-License-Identifier: MIT */
/*
 * log: priority filtering and the journal-or-terminal choice, decided once at start-up.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

static int max_prio = LOG_NOTICE;
static bool to_journal;
static const char *ident = "gmemd";

static const char *const names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",   [LOG_ERR] = "err",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_init(const char *name)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long dev, ino;

	ident = name;
	/* Only trust $JOURNAL_STREAM if stderr really is that stream (it is inherited by children). */
	if (js && sscanf(js, "%lu:%lu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    st.st_dev == dev && st.st_ino == ino)
		to_journal = true;
}

int log_parse_level(const char *s)
{
	for (int i = 0; i < (int)ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	if (strcmp(s, "error") == 0)
		return LOG_ERR;
	return -EINVAL;
}

void log_set_level(int prio)
{
	max_prio = prio;
}

int log_get_level(void)
{
	return max_prio;
}

/* Lines quote what clients sent (a refusal's reason, a name): a control character would let a client
 * start a forged line, or drive the terminal of whoever reads the log. Each one, C0, DEL and C1 (U+0080..
 * U+009F, which terminals in UTF-8 mode obey too), is written as \xNN instead; so is a backslash, so an
 * escape in the log always means an escaped byte. */
static void escape_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;
#ifdef GMEM_TEST_RAW_TEXT
	/* gmemd-rawtext, the control of test-hostile's escape check: no escaping at all. */
	snprintf(dst, size, "%s", src);
	return;
#endif
	for (const unsigned char *s = (const unsigned char *)src; *s && n + 9 < size; s++) {
		if (*s < 0x20 || *s == 0x7f || *s == '\\')
			n += (size_t)snprintf(dst + n, size - n, "\\x%02x", *s);
		else if (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
			n += (size_t)snprintf(dst + n, size - n, "\\xc2\\x%02x", *++s);
		else
			dst[n++] = (char)*s;
	}
	dst[n] = '\0';
}

_printf_(3, 0) static void vlog(int prio, int err, const char *fmt, va_list ap)
{
	char line[1024], clean[4 * sizeof(line)];
	int saved = errno;

	if (prio > max_prio)
		return;
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (err && n >= 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err < 0 ? -err : err));
	escape_line(clean, sizeof(clean), line);
	/* One write per line, so lines from a crashing daemon are never interleaved mid-line. */
	if (to_journal)
		fprintf(stderr, "<%d>%s\n", prio, clean);
	else
		fprintf(stderr, "%s: %s: %s\n", ident, names[prio], clean);
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(prio, 0, fmt, ap);
	va_end(ap);
}

int log_errno(int prio, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(prio, err, fmt, ap);
	va_end(ap);
	return err < 0 ? err : -err;
}

void log_struct(int prio, const struct log_fields *f, const char *fmt, ...)
{
	char msg[768], guest[96] = "", conv[48] = "", pid[32] = "";
	va_list ap;
	int saved = errno;

	if (prio > max_prio)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->guest)
		snprintf(guest, sizeof(guest), "GUEST=%s", f->guest);
	if (f->conversion_id)
		snprintf(conv, sizeof(conv), "CONVERSION_ID=%llu", (unsigned long long)f->conversion_id);
	if (f->client_pid)
		snprintf(pid, sizeof(pid), "CLIENT_PID=%d", (int)f->client_pid);
	/* Journal fields are what an operator filters on (journalctl GUEST=vm1); a field left out is one
	 * the record is not about. A NULL format ends sd_journal_send's list, so unused slots end it. */
	if (to_journal) {
		const char *fields[3];
		int n = 0;
		if (guest[0])
			fields[n++] = guest;
		if (conv[0])
			fields[n++] = conv;
		if (pid[0])
			fields[n++] = pid;
		int r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio, "SYSLOG_IDENTIFIER=%s", ident,
					n > 0 ? "%s" : NULL, n > 0 ? fields[0] : NULL, n > 1 ? "%s" : NULL,
					n > 1 ? fields[1] : NULL, n > 2 ? "%s" : NULL, n > 2 ? fields[2] : NULL, NULL);
		if (r >= 0) {
			errno = saved;
			return;
		}
		/* No journal socket after all: the stream still reaches someone. */
	}
	log_msg(prio, "%s%s%s%s%s%s%s", msg, guest[0] ? " " : "", guest, conv[0] ? " " : "", conv, pid[0] ? " " : "",
		pid);
	errno = saved;
}
