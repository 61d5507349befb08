"""Process management: gunicorn's hooks and start-up (hooks, startup), the graceful drain
(gunicorn_compat) and the chunked-body guard (chunked). HTTP itself is the app's."""
