"""gunicorn settings and hooks: `gunicorn -c gunicorn.conf.py wsgi:app` (`accident-api serve`
runs the same), configured by environment variables through accident_api.service.Config."""
from accident_api.server.startup import prepared_config

service = prepared_config()  # one line and exit 1 on a bad setting; metrics directory wiped

from accident_api.server import hooks  # noqa: E402  (after the directory: imports prometheus_client)

bind = f"{service.HOST}:{service.PORT}"
workers = service.WEB_CONCURRENCY
worker_class = "sync"
preload_app = True  # the model is loaded and verified once, in the master
timeout = service.GUNICORN_TIMEOUT
graceful_timeout = service.GRACEFUL_TIMEOUT
max_requests = service.MAX_REQUESTS
max_requests_jitter = service.MAX_REQUESTS_JITTER
# HTTP limits gunicorn enforces before the app sees a request: request line (414 above),
# header count and header size (431 above). Body and batch sizes are the app's (413).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-" if service.ACCESS_LOG else None
errorlog = "-"
loglevel = service.LOG_LEVEL
proc_name = "accident-api"
control_socket_disable = True  # not used; one socket path per host would collide

on_starting = hooks.on_starting
when_ready = hooks.when_ready
pre_fork = hooks.pre_fork
post_fork = hooks.post_fork
post_worker_init = hooks.post_worker_init
worker_exit = hooks.worker_exit
child_exit = hooks.child_exit
on_reload = hooks.on_reload
