"""Column roles: what an identifier, a user, an item, a date, an event, a variant, a label, a price... looks like.

Every function that guesses a column nobody named asks here, so each meaning is written once. Pure: column
names and SQL type names in, answers out (no DuckDB), so a second engine guesses the same way. Where two roles
look alike they differ on purpose, and each says why (a key that must never be imputed is narrower than an
identifier that must never be a feature).
"""
from __future__ import annotations

import re

import pyarrow as pa

# --- who and what a row is about -------------------------------------------------------------------------
#: An identifier: never a model feature (keys, uuids, contact details).
ID = re.compile(r"(^|_)(id|uuid|guid|key|email|phone)$|^id_|_id_", re.IGNORECASE)
#: A key column whose missing values drop a row instead of being filled (contact details are not keys here).
KEY = re.compile(r"(^id$|_id$|^id_|uuid|guid|(^|_)key$)", re.IGNORECASE)
#: A running number (row, seq, no, ...): with all-distinct integers, an identifier.
SEQUENCE = re.compile(r"(^|_)(id|no|num|number|seq|index|row)$", re.IGNORECASE)
#: Whom a row is about: rows sharing its value are one group in a hold-out split.
ENTITY = re.compile(r"^(id|(.*_)?(user|customer|client|member|account|visitor|person|patient|player|subscriber)"
                    r"(_?(id|key|uuid|guid|no|number))?)$", re.IGNORECASE)
#: The user of an interaction, a sequence or a segment.
USER = re.compile(r"^(.*_)?(user|customer|client|visitor|member|account|buyer|shopper|person|cust)(_?(id|no|key|code))?$",
                  re.IGNORECASE)
#: The item a user interacts with (recommendations, sequences).
ITEM = re.compile(r"^(.*_)?(item|product|sku|article|asin|movie|track|song|book|listing|offer|prod|variant)"
                  r"(_?(id|no|key|code))?$", re.IGNORECASE)
#: The product a price belongs to (price elasticity): names as well as codes.
PRODUCT = re.compile(r"(^|_)(sku|item|product|article|asset)(_?(id|code|key|name))?$", re.IGNORECASE)
#: The key of a demand series (a product, a store, a code): never the demand itself.
SERIES_KEY = re.compile(r"(^|_)(id|key|sku|code|item|product|store|article|ean|upc)s?$", re.IGNORECASE)
#: A text column a report draws one forecast per value of.
SERIES_NAME = re.compile(r"(sku|item|product|store|series|article)(_?id)?$", re.IGNORECASE)

# --- what happened, and when ----------------------------------------------------------------------------
#: The time of an event, when several DATE/TIMESTAMP columns compete.
TIME = re.compile(r"^(.*_)?(ts|time|timestamp|date|datetime|at|created|occurred|event_time|event_date)$", re.IGNORECASE)
#: The kind of an event (view, cart, purchase).
EVENT = re.compile(r"^(.*_)?(event|event_type|action|interaction|interaction_type|activity|behaviou?r|type|kind)$",
                   re.IGNORECASE)
#: The arm of an experiment.
VARIANT = re.compile(r"^(variant|variation|group|arm|treatment|bucket|cohort|experiment_group|test_group)$",
                     re.IGNORECASE)
#: An outcome to predict (churned, converted, label): not a behaviour to describe users by.
LABEL = re.compile(r"^(is_|has_)?(churn|churned|converted|conversion|purchased|clicked|click|label|target|"
                   r"outcome|response|defaulted|fraud|y)$|_(label|target|outcome)$", re.IGNORECASE)
#: A pre-experiment measure (a covariate), not an outcome.
PRE_PERIOD = re.compile(r"^pre_", re.IGNORECASE)

# --- amounts ---------------------------------------------------------------------------------------------
#: A price.
PRICE = re.compile(r"price", re.IGNORECASE)
#: Units sold at a price.
UNITS = re.compile(r"(^|_)(units?|qty|quantity|quantities|demand|sold|volume)(_sold|_count|_total)?$", re.IGNORECASE)
#: A demand measure worth forecasting in a report (sales and orders count too).
DEMAND = re.compile(r"(units|qty|quantity|sales|demand|volume|orders)$", re.IGNORECASE)
#: A money or quantity amount, where negative values deserve a question (refunds or errors?).
AMOUNT = re.compile(r"(amount|price|revenue|cost|qty|quantity|units|sales|spend|total|discount|value)", re.IGNORECASE)

_DATE_TYPE = re.compile(r"^(DATE|TIMESTAMP.*)$", re.IGNORECASE)


def is_date_type(sql_type: str) -> bool:
    """A DATE or TIMESTAMP of any precision or zone: a point in calendar time (a TIME of day is not one)."""
    return bool(_DATE_TYPE.match(sql_type))


def id_by_name(name: str) -> bool:
    """Whether an integer column named ``name`` can look like an ID (``looks_like_id``) at all: only a key's or
    a running number's name makes distinct integers an identifier, so other integers need no distinct count."""
    return bool(ID.search(name) or SEQUENCE.search(name))


def looks_like_id(name: str, t: pa.DataType, distinct: int, non_null: int) -> bool:
    """A column is ID-like when nearly every value is distinct and it is named like a key, or is free text."""
    ratio = distinct / max(non_null, 1)
    if non_null < 20:
        return bool(ID.search(name)) and ratio > 0.95
    if ID.search(name) and ratio > 0.5 and (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return True
    if (pa.types.is_string(t) or pa.types.is_large_string(t)) and ratio > 0.9:
        return True
    return pa.types.is_integer(t) and ratio > 0.999 and bool(SEQUENCE.search(name))


def looks_like_label(name: str) -> bool:
    """A column named like an outcome (churned, converted, label, ...): not a behaviour to describe users by."""
    return bool(LABEL.search(name))
