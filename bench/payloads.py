"""The request bodies every benchmark posts: the seed's example record, and batches of it."""
import json

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


def batch_body(size):
    """The JSON text of `{"records": [...]}` with `size` varied copies of the record.

    Hours and ages vary so the batch is not `size` identical rows (which could flatter any
    cache); all values stay inside the API's valid ranges.
    """
    records = []
    for i in range(size):
        record = dict(SEED_RECORD)
        record["hour"] = i % 24
        record["victim_age"] = 18 + i % 60
        records.append(record)
    return json.dumps({"records": records}, separators=(",", ":"))
