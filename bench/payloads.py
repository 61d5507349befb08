"""The request bodies every benchmark posts: the seed's example record, and batches of it
(as /predict/batch records, or as one V2 [N, 28] tensor in JSON or binary tensor data)."""
import json

import numpy as np

from model.feature_specs import FEATURES

# The record from the user's first sketch (issue 3); every server under test accepts it.
SEED_RECORD = {
    "place": 10, "catu": 3, "sexe": 1, "secu1": 0.0, "year_acc": 2021, "victim_age": 60,
    "catv": 2, "obsm": 1, "motor": 1, "catr": 3, "circ": 2, "surf": 1, "situ": 1, "vma": 50,
    "jour": 7, "mois": 12, "lum": 5, "dep": 77, "com": 77317, "agg_": 2, "int_": 1, "atm": 0,
    "col": 6, "lat": 48.60, "long": 2.89, "hour": 17, "nb_victim": 2, "nb_vehicules": 1,
}


def record_body():
    """The JSON text of one record, as posted to `/predict`."""
    return json.dumps(SEED_RECORD, separators=(",", ":"))


def batch_records(size):
    """`size` varied copies of the record.

    Hours and ages vary so the batch is not `size` identical rows (which could flatter any
    cache); all values stay inside the API's valid ranges.
    """
    records = []
    for i in range(size):
        record = dict(SEED_RECORD)
        record["hour"] = i % 24
        record["victim_age"] = 18 + i % 60
        records.append(record)
    return records


def batch_body(size):
    """The JSON text of `{"records": [...]}` with `size` varied copies of the record."""
    return json.dumps({"records": batch_records(size)}, separators=(",", ":"))


def v2_json_body(size):
    """A V2 infer body: the batch as one FP64 [size, 28] tensor in JSON, JSON outputs."""
    data = [record[name] for record in batch_records(size) for name in FEATURES]
    return json.dumps({"inputs": [{"name": "input-0", "shape": [size, len(FEATURES)],
                                   "datatype": "FP64", "data": data}]}, separators=(",", ":"))


def v2_binary_body(size):
    """(body, JSON header length) of the same request in binary tensor data, binary outputs."""
    rows = np.array([[record[name] for name in FEATURES] for record in batch_records(size)],
                    dtype="<f8")
    header = json.dumps({"inputs": [{"name": "input-0", "shape": list(rows.shape),
                                     "datatype": "FP64",
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "parameters": {"binary_data_output": True}},
                        separators=(",", ":")).encode()
    return header + rows.tobytes(), len(header)
