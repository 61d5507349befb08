# accident-api image: the API (default command), the one-shot trainer and the load generator.
# Pinned base: Python 3.11 on Debian bookworm, slim variant.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    METRICS_PORT=9200 \
    MODEL_PATH=/models \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc

WORKDIR /app

# Dependencies first, from setup.cfg and constraints.txt alone: this layer is rebuilt only
# when the pins change, not on every code edit. constraints.txt pins the transitive
# dependencies too (`make lock`), so a rebuild next month installs the same packages.
# EXTRAS names setup.cfg extras to add (compose's `report` image: EXTRAS=report, Evidently).
COPY setup.cfg pyproject.toml constraints.txt ./
ARG EXTRAS=""
RUN python -c "import configparser, os; c = configparser.ConfigParser(); c.read('setup.cfg'); \
print(c['options']['install_requires']); \
[print(c['options.extras_require'][e]) for e in os.environ.get('EXTRAS', '').split(',') if e]" \
> /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the code (see .dockerignore: no venv, data, models or git history).
COPY . .
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent app \
 && mkdir -p /models /data /prediction-log \
 && chown app:app /models /data /prediction-log

# Non-root. /models, /data and /prediction-log belong to the user so fresh named volumes
# mounted there do too.
USER 10001:10001

EXPOSE 8000 9200

# Readiness, not liveness: 200 only once the model is loaded. No curl in a slim image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health/ready', timeout=2)"]

ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
