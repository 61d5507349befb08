"""The seed's request body: a pydantic model with the 28 features, in training order."""
from pydantic import BaseModel


class Accident(BaseModel):
    """One accident record exactly as the seed's clients post it (field order = feature order)."""

    place: int
    catu: int
    sexe: int
    secu1: float
    year_acc: int
    victim_age: int
    catv: int
    obsm: int
    motor: int
    catr: int
    circ: int
    surf: int
    situ: int
    vma: int
    jour: int
    mois: int
    lum: int
    dep: int
    com: int
    agg_: int
    int_: int
    atm: int
    col: int
    lat: float
    long: float
    hour: int
    nb_victim: int
    nb_vehicules: int
