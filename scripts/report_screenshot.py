"""Make docs/images/report.png: a screenshot of `accident-api report` on a drifted window.

    .venv/bin/python scripts/report_screenshot.py [--out docs/images/report.png]

Offline and self-contained, in a temporary directory: trains a model on synthetic BAAC data,
serves it in-process (the Flask app, its SQLite prediction log), sends 4,000 synthetic
accidents with the speed limit shifted by +20 km/h and the true outcome of every second one
(the traffic of tests/test_report_acceptance.py), runs `accident-api report` on that log, then
opens the page in Debian's headless chromium (a fresh profile, no network) and saves the
screenshot. Needs the `report` extra (make venv installs it) and chromium
(scripts/install-system-deps.sh).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars")


def serve_drifted_traffic(model_dir: Path, data_dir: Path, accidents: int) -> None:
    """The app on ``model_dir`` logging into ``data_dir``, sent the drifted traffic."""
    from accident_api import create_app
    from accident_api.config import MODEL_EXTENSION
    from accident_api.service import LOG_EXTENSION
    from tests.fixtures.report import accident_records, send_traffic

    app = create_app({"TESTING": True, "MODEL_PATH": str(model_dir), "DATA_DIR": str(data_dir)})
    client = app.test_client()

    def post(path, body):
        response = client.post(path, json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    card = app.extensions[MODEL_EXTENSION].predictor.card
    send_traffic(post, *accident_records(accidents, 102, card["imputation"], {"vma": 20}))
    app.extensions[LOG_EXTENSION].stop()  # everything queued is written


def screenshot(chromium: str, page: Path, out: Path, size: str, profile: Path) -> None:
    """Chromium's screenshot of ``page``, once its scripts have drawn it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--window-size={size}", "--virtual-time-budget=15000",
                    f"--screenshot={out.resolve()}", page.resolve().as_uri()],
                   check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "report.png")
    parser.add_argument("--size", default="1400,2200", help="window WIDTH,HEIGHT in pixels")
    parser.add_argument("--accidents", type=int, default=4000)
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium not found: scripts/install-system-deps.sh installs it", file=sys.stderr)
        return 2
    from model import train

    with tempfile.TemporaryDirectory(prefix="report-screenshot-") as tmp:
        tmp = Path(tmp)
        train.train_synthetic(tmp / "model", 20000, data_seed=42, log=lambda message: None)
        serve_drifted_traffic(tmp / "model", tmp / "data", args.accidents)
        env = {**os.environ, "MODEL_PATH": str(tmp / "model"), "DATA_DIR": str(tmp / "data"),
               "PYTHONPATH": str(ROOT)}
        env.pop("PREDICTION_LOG_URL", None)
        subprocess.run([sys.executable, "-m", "accident_api", "report", "--since", "1h",
                        "--out", str(tmp / "report.html")], check=True, env=env, cwd=ROOT)
        screenshot(chromium, tmp / "report.html", args.out, args.size, tmp / "chromium")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
