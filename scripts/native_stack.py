"""The stack's nginx and Prometheus configured for loopback: what `make stack` and the tests run.

The compose files stay the one source. nginx runs deploy/nginx/nginx.conf itself (linked into
a run directory), beside two environment files written here: the loopback replicas, with
compose's upstream block and server parameters but no DNS, and the listen address. Prometheus
runs prometheus/prometheus.yml with the API job discovering the replicas from a file
(file_sd, rewritten when they change) instead of Docker's DNS, and its own job on loopback.

    python scripts/native_stack.py nginx DIR LISTEN BACKEND...   (configures, then becomes nginx)
    python scripts/native_stack.py prometheus DIR OWN_ADDRESS TARGET...   (prints the config path)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NGINX_DIR = ROOT / "deploy" / "nginx"
PROM_DIR = ROOT / "prometheus"
API_JOB = "accident-api"
# compose's upstream server line: `server api:8000 resolve max_fails=1 fail_timeout=5s;`
_SERVER_LINE = re.compile(r"^(\s*)server\s+\S+\s+(.*);\s*$", re.M)


def nginx_binary() -> str | None:
    """The nginx executable: on PATH, or Debian's /usr/sbin/nginx (not on a non-root PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def loopback_upstream(backends: list[str]) -> str:
    """compose's upstream.conf with one `server` line per loopback backend and no resolver."""
    text = (NGINX_DIR / "upstream.conf").read_text()
    (indent, parameters), = _SERVER_LINE.findall(text)
    parameters = " ".join(p for p in parameters.split() if p != "resolve")
    servers = "".join(f"{indent}server {backend} {parameters};\n" for backend in backends)
    text = _SERVER_LINE.sub(lambda _: servers.rstrip("\n"), text)
    kept = [line for line in text.splitlines()
            if not line.startswith(("#", "resolver ", "resolver_timeout "))]
    return ("# native (scripts/native_stack.py): compose's upstream, replicas on loopback\n"
            + "\n".join(kept).strip() + "\n")


def write_nginx_config(run_dir: Path, listen: str, backends: list[str]) -> Path:
    """Prepare `run_dir` as nginx's prefix; return the path to pass as `-c`."""
    if not backends:
        raise ValueError("nginx needs at least one backend")
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.unlink(missing_ok=True)
    # a link, not a copy: includes resolve beside the link, the text is the repository's
    conf.symlink_to(NGINX_DIR / "nginx.conf")
    (run_dir / "listen.conf").write_text(f"# native (scripts/native_stack.py)\nlisten {listen};\n")
    (run_dir / "upstream.conf").write_text(loopback_upstream(backends))
    return conf


def nginx_argv(run_dir: Path, conf: Path) -> list[str]:
    """nginx in the foreground with `run_dir` as its prefix (pid, temp files).

    Started as root, nginx would run its workers as `nobody`, who cannot enter a private
    run directory; they run as the starting user instead, as they do for any other user.
    """
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx not found: run 'make system-deps' (Debian package nginx)")
    globals_ = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    return [binary, "-p", f"{run_dir}/", "-c", str(conf), "-g", globals_]


def prometheus_config(targets_file: Path, own_address: str) -> dict:
    """prometheus.yml with the API job on file_sd (`targets_file`) and absolute rule paths."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    config["rule_files"] = [str(PROM_DIR / pattern) for pattern in config["rule_files"]]
    for job in config["scrape_configs"]:
        if job["job_name"] == API_JOB:
            job.pop("dns_sd_configs", None)      # compose's discovery through Docker's DNS
            job["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "5s"}]
        else:
            job["static_configs"] = [{"targets": [own_address]}]
    return config


def write_targets(targets_file: Path, targets: list[str]) -> None:
    """The file_sd target list, replaced atomically (Prometheus may read it at any moment)."""
    staging = targets_file.with_name(targets_file.name + ".new")
    staging.write_text(json.dumps([{"targets": list(targets)}]))
    staging.replace(targets_file)


def write_prometheus_config(run_dir: Path, own_address: str, targets: list[str]) -> Path:
    """prometheus.yml and its targets file in `run_dir`; return the config's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    targets_file = run_dir / "accident-api-targets.json"
    write_targets(targets_file, targets)
    config = run_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets_file, own_address),
                                     sort_keys=False))
    return config


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "nginx":
        run_dir = Path(argv[1])
        command = nginx_argv(run_dir, write_nginx_config(run_dir, argv[2], argv[3:]))
        os.execv(command[0], command)  # same pid: the caller waits on and signals nginx itself
    if len(argv) >= 4 and argv[0] == "prometheus":
        print(write_prometheus_config(Path(argv[1]), argv[2], argv[3:]))
        return 0
    print(__doc__.split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
