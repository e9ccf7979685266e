/*
 * sdnotify - tell systemd (Type=notify) where start-up, reloads and the
 * shutdown are, without linking libsystemd: the protocol is one datagram
 * of "KEY=value" lines to the unix socket named in $NOTIFY_SOCKET (a path,
 * or "@name" for an abstract socket). See sd_notify(3).
 *
 *   READY=1       the listeners accept and root is dropped
 *   RELOADING=1   SIGHUP: loading the configuration again (then READY=1)
 *   STOPPING=1    SIGTERM: draining
 */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

/*
 * sd_notify_state - send state (lines "KEY=value", without a trailing
 * newline) to $NOTIFY_SOCKET. 1 sent, 0 not under systemd (no
 * NOTIFY_SOCKET), -1 on error (logged as a warning, errno set). Callers
 * carry on: systemd times a start-up or reload out by itself.
 */
int sd_notify_state(const char *state);

/* sd_notify_reloading - RELOADING=1 with MONOTONIC_USEC= (systemd >= 253
 * wants the time the reload began); same results as sd_notify_state(). */
int sd_notify_reloading(void);

#endif
