#!/bin/sh
# One-shot trainer (compose service `trainer`): trains into $MODEL_PATH unless a model card
# is already there, then exits 0 so the API (depends_on: service_completed_successfully)
# starts. TRAIN_SOURCE=synthetic (default, offline), baac:YEAR or baac:FIRST-LAST (downloads
# the real BAAC files of those years from data.gouv.fr, needs internet, then trains on all of
# them). FORCE_TRAIN=1 retrains anyway.
set -eu

model_dir="${MODEL_PATH:-/models}"
source="${TRAIN_SOURCE:-synthetic}"
raw="${DATA_DIR:-/data}/raw"

if [ -f "$model_dir/model_card.json" ] && [ "${FORCE_TRAIN:-0}" != "1" ]; then
  echo "trainer: model already in $model_dir (set FORCE_TRAIN=1 to retrain)"
  exit 0
fi

case "$source" in
  synthetic)
    echo "trainer: training on synthetic BAAC-format data into $model_dir"
    exec accident-api train --synthetic --out "$model_dir"
    ;;
  baac:[0-9][0-9][0-9][0-9])
    year="${source#baac:}"
    echo "trainer: downloading BAAC $year into $raw, then training into $model_dir"
    accident-api data download --year "$year" --dest "$raw"
    exec accident-api train --raw-dir "$raw" --year "$year" --out "$model_dir"
    ;;
  baac:[0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9])
    years="${source#baac:}"
    echo "trainer: downloading BAAC $years into $raw, then training into $model_dir"
    accident-api data download --years "$years" --dest "$raw"
    exec accident-api train --raw-dir "$raw" --years "$years" --out "$model_dir"
    ;;
  *)
    echo "trainer: TRAIN_SOURCE must be 'synthetic', 'baac:YEAR' or 'baac:FIRST-LAST'" \
      "(e.g. baac:2021, baac:2019-2023), got '$source'" >&2
    exit 2
    ;;
esac
