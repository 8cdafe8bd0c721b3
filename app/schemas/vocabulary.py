"""The controlled vocabularies of API.md section 5, as string enums."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    member = "member"
    analyst = "analyst"


class Kind(StrEnum):
    seizure = "seizure"
    pre_alert = "pre_alert"
    request = "request"
    notice = "notice"


class Priority(StrEnum):
    routine = "routine"
    urgent = "urgent"
    flash = "flash"


class TransportMode(StrEnum):
    mail = "mail"
    express_courier = "express_courier"
    air_passenger = "air_passenger"
    air_cargo = "air_cargo"
    sea_container = "sea_container"
    sea_passenger = "sea_passenger"
    sea_vessel = "sea_vessel"
    road_vehicle = "road_vehicle"
    rail = "rail"
    pedestrian = "pedestrian"
    other = "other"


class DetectionMethod(StrEnum):
    risk_profiling = "risk_profiling"
    x_ray = "x_ray"
    detector_dog = "detector_dog"
    physical_inspection = "physical_inspection"
    intelligence = "intelligence"
    random_selection = "random_selection"
    controlled_delivery = "controlled_delivery"
    other = "other"


class ConcealmentMethod(StrEnum):
    tea_packaging = "tea_packaging"
    food_product = "food_product"
    brick_block = "brick_block"
    false_bottom = "false_bottom"
    body_carry = "body_carry"
    swallowed = "swallowed"
    clothing = "clothing"
    luggage = "luggage"
    machinery = "machinery"
    electronics = "electronics"
    cosmetics = "cosmetics"
    documents_mail = "documents_mail"
    vehicle_compartment = "vehicle_compartment"
    container_structure = "container_structure"
    other = "other"


class Commodity(StrEnum):
    methamphetamine = "methamphetamine"
    amphetamine = "amphetamine"
    mdma = "mdma"
    heroin = "heroin"
    opium = "opium"
    cocaine = "cocaine"
    cannabis = "cannabis"
    ketamine = "ketamine"
    fentanyl = "fentanyl"
    nps = "nps"
    tramadol = "tramadol"
    other_drug = "other_drug"
    ephedrine = "ephedrine"
    pseudoephedrine = "pseudoephedrine"
    p2p = "p2p"
    p2np = "p2np"
    apaan = "apaan"
    apaa = "apaa"
    methylamine = "methylamine"
    other_precursor = "other_precursor"


class Form(StrEnum):
    crystal = "crystal"
    powder = "powder"
    tablet = "tablet"
    liquid = "liquid"
    plant = "plant"
    resin = "resin"
    other = "other"


class Unit(StrEnum):
    g = "g"
    kg = "kg"
    ml = "ml"
    l = "l"  # noqa: E741 - the contract's own name for litres
    tablets = "tablets"
    pieces = "pieces"


class IdentifierType(StrEnum):
    tracking_number = "tracking_number"
    container = "container"
    airway_bill = "airway_bill"
    bill_of_lading = "bill_of_lading"
    vehicle = "vehicle"
    vessel = "vessel"
    flight = "flight"
    company = "company"
    other = "other"


class Tlp(StrEnum):
    clear = "CLEAR"
    green = "GREEN"
    amber = "AMBER"
    amber_strict = "AMBER+STRICT"
    red = "RED"


class AlertStatus(StrEnum):
    open = "open"
    withdrawn = "withdrawn"


class AckStatus(StrEnum):
    received = "received"
    actioning = "actioning"
    intercepted = "intercepted"
    no_trace = "no_trace"
    closed = "closed"


class Scope(StrEnum):
    operation = "operation"
    restricted = "restricted"
