"""gunicorn's access log, cheaper: the same line, built from only the fields it shows.

gunicorn's `glogging.Logger.access` builds a dict of ~20 atoms plus one entry per request
header, response header and environ variable, escapes every string in it, formats the
timestamp with strftime, and lets logging %-format the line: ~0.1 ms of CPU per request in a
loaded sync worker. `AccessLogger.access` writes the identical line for gunicorn's default format
(Apache combined: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`, which the
service uses) from the eight fields that format needs, with the timestamp formatted once per
second. When the access log is gunicorn's plain stream alone (stdout or an `accesslog` file: one
handler, gunicorn's `%(message)s` formatter, no filters), the line goes straight to that
handler's stream, under its lock, as `StreamHandler.emit` would write it; anything else
(syslog, a handler or filter added by code, a propagating logger) gets a LogRecord through the
`gunicorn.access` logger as usual. In a loaded sync worker one call costs ~25 us this way, ~40 us
through the logging machinery, ~90 us in gunicorn's `access` (README, Performance).

gunicorn's own implementation still runs, unchanged, when an operator sets another
`access_log_format` (its atoms may be anything) or a logging configuration (`logconfig`,
`logconfig_dict`, `logconfig_json`: its formatters may read gunicorn's atoms from the record's
`args`). With the access log off (`accesslog` None, no syslog or logconfig) nothing is done.
"""
import logging
import time
import traceback

from gunicorn.glogging import Logger

# gunicorn's default access_log_format (gunicorn.config.AccessLogFormat), the only format
# `AccessLogger` writes itself. Spelled out: were gunicorn's default to change, the new one would
# go to gunicorn's own code rather than be written in this one's place.
COMBINED_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
_INFO = logging.INFO
_THIS_FILE = __file__


def _escaped(value) -> str:
    """An atom as gunicorn's SafeAtoms + `%s` render it: strings with `"` escaped, others str()."""
    if isinstance(value, str):
        return value.replace('"', '\\"')
    return str(value)


class AccessLogger(Logger):
    """`gunicorn.glogging.Logger` whose `access` formats the default access-log line directly."""

    def setup(self, cfg):
        super().setup(cfg)
        # setup() runs again on a configuration reload (SIGHUP): the decision follows it
        self._combined = (
            cfg.access_log_format == COMBINED_FORMAT
            and not (cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json))
        self._stamp = (None, None)  # (second, its formatted timestamp), replaced whole
        # gunicorn's own stdout/file handler and its formatter, if that is all it set up
        self._plain = None
        for handler in self.access_log.handlers:
            formatter = handler.formatter
            if (getattr(handler, "_gunicorn", False)
                    and type(handler) in (logging.StreamHandler, logging.FileHandler)
                    and type(formatter) is logging.Formatter
                    and formatter._fmt == "%(message)s"):
                self._plain = (handler, formatter)

    def now(self) -> str:
        """The CLF timestamp (`[26/Nov/2026:06:22:20 +0000]`), formatted once per second."""
        # time.time(): gunicorn's strftime reads C time() (the kernel's per-tick clock), so
        # within a tick of a second boundary the two may name adjacent seconds
        second = int(time.time())
        stamp = self._stamp
        if stamp[0] != second:
            # the call gunicorn makes, for this second's local time; one tuple, so a thread
            # (gthread workers) never pairs one second with another's text
            stamp = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
            self._stamp = stamp
        return stamp[1]

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if not self._combined:
            super().access(resp, req, environ, request_time)
            return
        try:
            log = self.access_log
            if not log.isEnabledFor(_INFO):
                return
            status = resp.status
            if isinstance(status, str):
                status = status.split(None, 1)[0]
            sent = getattr(resp, "sent", None)
            user = self._get_user(environ) if environ.get("HTTP_AUTHORIZATION") else None
            request_line = "%s %s %s" % (environ["REQUEST_METHOD"], environ["RAW_URI"],
                                         environ["SERVER_PROTOCOL"])
            line = '%s - %s %s "%s" %s %s "%s" "%s"' % (
                _escaped(environ.get("REMOTE_ADDR", "-")),
                _escaped(user or "-"),
                self.now(),
                request_line.replace('"', '\\"'),
                _escaped(status),
                "-" if sent is None else str(sent),
                _escaped(environ.get("HTTP_REFERER", "-")),
                _escaped(environ.get("HTTP_USER_AGENT", "-")),
            )
            handler = self._plain_handler(log)
            if handler is None:
                # Logger.info without its stack walk (findCaller): same filters and handlers
                log.handle(self._record(log, line))
            else:
                self._write(handler, log, line)
        except Exception:
            self.error(traceback.format_exc())

    def _plain_handler(self, log):
        """gunicorn's stream handler if logging would do nothing but write the message to it."""
        plain = self._plain
        if plain is None:
            return None
        handler, formatter = plain
        handlers = log.handlers
        if (len(handlers) == 1 and handlers[0] is handler and not log.filters
                and not log.propagate and not handler.filters and handler.level <= _INFO
                and handler.formatter is formatter):
            return handler
        return None

    @staticmethod
    def _record(log, line):
        # the line is already formatted: no args
        return log.makeRecord(log.name, _INFO, _THIS_FILE, 0, line, (), None, "access")

    def _write(self, handler, log, line):
        """What `handler.handle(record)` does for this line (StreamHandler.emit, formatter
        `%(message)s`), without building the record."""
        handler.acquire()
        try:
            stream = handler.stream
            if stream is None:  # a FileHandler not (re)opened yet: its emit opens it
                handler.emit(self._record(log, line))
                return
            try:
                stream.write(line + handler.terminator)
                handler.flush()
            except RecursionError:
                raise
            except Exception:
                handler.handleError(self._record(log, line))
        finally:
            handler.release()
