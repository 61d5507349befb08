"""An ONNX-backend server imports only what serving needs: no pandas, scipy, sklearn, skl2onnx,
nor Evidently (the offline report's, an optional extra).

Their shared libraries, touched while importing, stay private pages of gunicorn's master
(docs/performance.md: memory). Checked in a fresh interpreter, since this test session has
imported all of them already; a few requests are served too, so a lazy import on the request
path would be caught as well.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "scipy", "sklearn", "skl2onnx", "onnx", "joblib", "evidently")

_SCRIPT = """
import json, sys
from accident_api import create_app
from accident_api.schemas import SEED_RECORD

app = create_app({"TESTING": True, "MODEL_PATH": sys.argv[1], "MODEL_BACKEND": sys.argv[2],
                  "DATA_DIR": sys.argv[4]})
client = app.test_client()
statuses = [
    client.post("/predict", json=SEED_RECORD).status_code,
    client.post("/predict/batch", json={"records": [SEED_RECORD] * 3}).status_code,
    client.get("/model").status_code,
    client.get("/health/ready").status_code,
]
heavy = set(sys.argv[3].split(","))
print(json.dumps({"statuses": statuses,
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}))
"""


def _start_app(model_dir, backend, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(model_dir), backend,
                           ",".join(HEAVY), str(tmp_path / "data")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_onnx_backend_app_imports_no_training_libraries(trained_model_dir, tmp_path):
    result = _start_app(trained_model_dir, "onnx", tmp_path)
    assert result["statuses"] == [200, 200, 200, 200]
    assert result["heavy"] == []


def test_sklearn_backend_still_imports_what_it_unpickles(trained_model_dir, tmp_path):
    """The control: the same check sees joblib and scikit-learn when the forest is served."""
    result = _start_app(trained_model_dir, "sklearn", tmp_path)
    assert result["statuses"] == [200, 200, 200, 200]
    assert {"joblib", "sklearn"} <= set(result["heavy"])


def test_the_cli_parser_imports_no_training_libraries():
    """`accident-api serve` runs gunicorn in the process that built the whole parser."""
    script = ("import sys\nfrom accident_api.cli import build_parser\n"
              "build_parser().parse_args(['serve'])\n"
              f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
