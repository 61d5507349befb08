"""Launcher of bench/configs.py's proxied server: service instances behind the repo's nginx.

    python -m bench.proxied PORT REPLICAS WORK_DIR     (the service's environment: MODEL_PATH...)

Starts REPLICAS instances of the service (`gunicorn -c gunicorn.conf.py wsgi:app`, each on a
free loopback port with its own metrics port and multiprocess directory), waits until each
answers /health/ready, then becomes nginx on 127.0.0.1:PORT in front of them
(deploy/nginx/nginx.conf, configured by scripts/native_stack.py as `make stack` does). The
process tree is then nginx's with the instances under it: bench/memory.py measures the lot
and bench/servers.py stops the whole process group as for any other server.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.servers import REPO, free_port
from scripts import native_stack

READY_TIMEOUT = 120


def start_instances(count, work_dir):
    """`count` service instances on free ports; their "127.0.0.1:PORT" addresses."""
    addresses = []
    for index in range(count):
        port = free_port()
        metrics_dir = work_dir / f"instance-{index}-metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PORT": str(port), "METRICS_PORT": str(free_port()),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                          "wsgi:app"], cwd=REPO, env=env)
        addresses.append(f"127.0.0.1:{port}")
    return addresses


def wait_ready(addresses):
    """Poll every instance's /health/ready until each answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT
    for address in addresses:
        while True:
            try:
                if requests.get(f"http://{address}/health/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"instance {address} not ready after {READY_TIMEOUT}s")
            time.sleep(0.25)


def main(argv):
    port, replicas, work_dir = int(argv[0]), int(argv[1]), Path(argv[2])
    addresses = start_instances(replicas, work_dir)
    wait_ready(addresses)
    nginx_dir = work_dir / f"nginx-{port}"
    conf = native_stack.write_nginx_config(nginx_dir, f"127.0.0.1:{port}", addresses)
    command = native_stack.nginx_argv(nginx_dir, conf)
    os.execv(command[0], command)  # nginx takes this pid: the instances are its children now


if __name__ == "__main__":
    main(sys.argv[1:])
