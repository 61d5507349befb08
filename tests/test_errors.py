"""accident_api.errors: webargs' nested messages walked into fields (metrics) and paths (V2)."""
from accident_api.errors import _flatten, _paths

MESSAGES = {"json": {"records": {"3": {"vma": ["Must be between 1 and 130."]},
                                 "5": {"catu": ["Unknown field."]}},
                     "inputs": {"0": {"shape": {"1": ["Not a valid integer."]}}},
                     "_schema": ["Invalid input type."]}}


def test_fields_are_the_innermost_names_not_indices():
    assert sorted(_flatten(MESSAGES)) == [
        ("_schema", "Invalid input type."), ("catu", "Unknown field."),
        ("shape", "Not a valid integer."), ("vma", "Must be between 1 and 130.")]
    assert list(_flatten({"json": ["Invalid JSON body."]})) == [
        ("_schema", "Invalid JSON body.")]


def test_paths_are_dotted_without_the_location():
    assert sorted(_paths(MESSAGES)) == [
        ("_schema", "Invalid input type."), ("inputs.0.shape.1", "Not a valid integer."),
        ("records.3.vma", "Must be between 1 and 130."), ("records.5.catu", "Unknown field.")]
    assert list(_paths({"json": ["Invalid JSON body."]})) == [("body", "Invalid JSON body.")]
