/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vMitosis selftests' own "no warning" checks: reports in the kernel log
 * and the taint flags, before and after what a test provokes.
 */
#ifndef VMITOSIS_KLOG_H
#define VMITOSIS_KLOG_H

#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>

#include "vmitosis_util.h"

/*
 * Reports in the kernel log ("WARNING:", "BUG:"), or -1 if the log cannot be
 * read: the caller must not take that for "none".
 */
static inline int kernel_log_warnings(void)
{
	int len = klogctl(10, NULL, 0), count = 0;
	char *buf, *p;

	if (len <= 0)
		return -1;
	buf = malloc(len + 1);
	if (!buf)
		return -1;
	len = klogctl(3, buf, len);
	if (len < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	for (p = buf; (p = strstr(p, "WARNING:")) != NULL; p++)
		count++;
	for (p = buf; (p = strstr(p, "BUG:")) != NULL; p++)
		count++;
	free(buf);
	return count;
}

/* /proc/sys/kernel/tainted, or -1: a WARN, a BUG or a bad page taints the kernel. */
static inline long kernel_taint(void)
{
	char buf[32];

	if (read_file("/proc/sys/kernel/tainted", buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 10);
}

#endif /* VMITOSIS_KLOG_H */
