"""PostgreSQL types for DuckDB's Arrow results and for clients' parameters, in text and binary formats.

Results are encoded a column at a time (Arrow casts where they match PostgreSQL's text form); parameters are
decoded by the type OID the client sent, in whichever format it chose.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import re
import struct
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PG_EPOCH = _dt.datetime(2000, 1, 1)
PG_EPOCH_DATE = _dt.date(2000, 1, 1)
PG_EPOCH_UTC = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)

# name -> (oid, array oid, typlen)
TYPES = {
    "bool": (16, 1000, 1), "bytea": (17, 1001, -1), "int8": (20, 1016, 8), "int2": (21, 1005, 2),
    "int4": (23, 1007, 4), "text": (25, 1009, -1), "oid": (26, 1028, 4), "json": (114, 199, -1),
    "float4": (700, 1021, 4), "float8": (701, 1022, 8), "varchar": (1043, 1015, -1), "date": (1082, 1182, 4),
    "time": (1083, 1183, 8), "timestamp": (1114, 1115, 8), "timestamptz": (1184, 1185, 8),
    "interval": (1186, 1187, 16), "numeric": (1700, 1231, -1), "uuid": (2950, 2951, 16), "name": (19, 1003, 64),
    "char": (18, 1002, 1), "jsonb": (3802, 3807, -1), "bpchar": (1042, 1014, -1), "unknown": (705, 0, -2),
}
OID_NAME = {oid: name for name, (oid, _, _) in TYPES.items()}
ARRAY_ELEMENT = {arr: name for name, (_, arr, _) in TYPES.items() if arr}


def type_name(t: pa.DataType) -> str:
    """The PostgreSQL type (name in TYPES) a DuckDB result column of Arrow type ``t`` is sent as."""
    if pa.types.is_dictionary(t):
        return type_name(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "int2"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int4"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "int8"
    if pa.types.is_uint64(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float4"
    if pa.types.is_float64(t):
        return "float8"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_interval(t) or pa.types.is_duration(t):
        return "interval"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytea"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "json"
    return "text"


def _list_value_type(t: pa.DataType) -> pa.DataType | None:
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = t.value_type
        while pa.types.is_list(inner) or pa.types.is_large_list(inner) or pa.types.is_fixed_size_list(inner):
            inner = inner.value_type
        return inner
    return None


# DuckDB types whose Arrow form (a string) hides what they are: told by DuckDB's own type name
_BY_DUCKDB_NAME = {"UUID": "uuid", "JSON": "json", "UUID[]": "uuid[]", "JSON[]": "json[]"}


def column_oid(t: pa.DataType, duckdb_type: str | None = None) -> tuple[int, int]:
    """(type OID, typlen) announced in RowDescription for a result column."""
    named = _BY_DUCKDB_NAME.get(duckdb_type or "")
    if named:
        name = named.rstrip("[]")
        return (TYPES[name][1], -1) if named.endswith("[]") else (TYPES[name][0], TYPES[name][2])
    inner = _list_value_type(t)
    if inner is not None:
        name = type_name(inner)
        return (TYPES[name][1] if name != "json" else TYPES["json"][0]), -1
    oid, _, size = TYPES[type_name(t)]
    return oid, size


# -- text ------------------------------------------------------------------------------------------------------
def _float_text(v: float, single: bool = False) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return str(np.float32(v)) if single else repr(v)


def _interval_text(months: int, days: int, micros: int) -> str:
    parts = []
    years, mons = divmod(abs(months), 12)
    sign = "-" if months < 0 else ""
    if years:
        parts.append(f"{sign}{years} year{'s' if years != 1 else ''}")
    if mons:
        parts.append(f"{sign}{mons} mon{'s' if mons != 1 else ''}")
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if micros or not parts:
        neg, micros = micros < 0, abs(micros)
        secs, frac = divmod(micros, 1_000_000)
        h, rest = divmod(secs, 3600)
        text = f"{'-' if neg else ''}{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
        parts.append(text + (f".{frac:06d}".rstrip("0") if frac else ""))
    return " ".join(parts)


def _interval_parts(v) -> tuple[int, int, int]:
    if isinstance(v, _dt.timedelta):
        return 0, v.days, v.seconds * 1_000_000 + v.microseconds
    return v.months, v.days, v.nanoseconds // 1000


def _json_value(v):
    if isinstance(v, list) and v and isinstance(v[0], tuple) and len(v[0]) == 2:  # a MAP
        return {str(k): _json_value(x) for k, x in v}
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (_dt.date, _dt.datetime, _dt.time, decimal.Decimal, uuid.UUID, _dt.timedelta)):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


_ARRAY_PLAIN = re.compile(r'^[^{}",\\\s]+$')


def _array_text(values: list, scalar) -> str:
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, list):
            out.append(_array_text(v, scalar))
        else:
            s = scalar(v)
            out.append(s if _ARRAY_PLAIN.match(s) and s.upper() != "NULL" else
                       '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def _scalar_text(name: str, t: pa.DataType):
    """Python value -> PostgreSQL text, for one type (used for array elements and odd columns)."""
    if name == "bool":
        return lambda v: "t" if v else "f"
    if name in ("float4", "float8"):
        return lambda v: _float_text(v, name == "float4")
    if name == "date":
        return lambda v: v.isoformat()
    if name == "timestamp":
        return lambda v: v.isoformat(sep=" ")
    if name == "timestamptz":
        return lambda v: v.astimezone(_dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ") + "+00"
    if name == "bytea":
        return lambda v: "\\x" + v.hex()
    if name == "interval":
        return lambda v: _interval_text(*_interval_parts(v))
    if name == "json":
        return lambda v: json.dumps(_json_value(v))
    return str


def text_column(arr: pa.Array) -> list:
    """A result column as PostgreSQL text values (bytes, or None for NULL)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return text_column(arr.dictionary_decode())
    name = type_name(t)
    inner = _list_value_type(t)
    if inner is not None:
        if type_name(inner) == "json":
            return [None if v is None else json.dumps(_json_value(v)).encode() for v in arr.to_pylist()]
        scalar = _scalar_text(type_name(inner), inner)
        return [None if v is None else _array_text(v, scalar).encode() for v in arr.to_pylist()]
    if name in ("int2", "int4", "int8", "numeric", "text", "date", "time") and not pa.types.is_time32(t):
        try:
            return pc.cast(pc.cast(arr, pa.string()), pa.binary()).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    scalar = _scalar_text(name, t)
    return [None if v is None else scalar(v).encode() for v in arr.to_pylist()]


# -- binary ----------------------------------------------------------------------------------------------------
def numeric_binary(text: bytes) -> bytes:
    """A decimal's text form (b'-123.4500') -> PostgreSQL's binary numeric (base-10000 digits)."""
    if text in (b"NaN", b"nan"):
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    negative = text.startswith(b"-")
    whole, _, frac = text.lstrip(b"-+").partition(b".")
    whole = whole.lstrip(b"0")
    whole = b"0" * (-len(whole) % 4) + whole
    padded = frac + b"0" * (-len(frac) % 4)
    groups = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    weight = len(groups) - 1
    groups += [int(padded[i:i + 4]) for i in range(0, len(padded), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHh{len(groups)}H", len(groups), weight, 0x4000 if negative else 0, len(frac), *groups)


def _scalar_binary(name: str):
    """Python value -> PostgreSQL binary for one type."""
    return {
        "bool": lambda v: b"\x01" if v else b"\x00",
        "int2": lambda v: struct.pack("!h", v),
        "int4": lambda v: struct.pack("!i", v),
        "int8": lambda v: struct.pack("!q", v),
        "numeric": lambda v: numeric_binary(str(v).encode()),
        "uuid": lambda v: uuid.UUID(str(v)).bytes,
        "float4": lambda v: struct.pack("!f", v),
        "float8": lambda v: struct.pack("!d", v),
        "text": lambda v: str(v).encode(),
        "json": lambda v: json.dumps(_json_value(v)).encode(),
        "bytea": bytes,
        "date": lambda v: struct.pack("!i", (v - PG_EPOCH_DATE).days),
        "time": lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond),
        "timestamp": lambda v: struct.pack("!q", _micros(v - PG_EPOCH)),
        "timestamptz": lambda v: struct.pack("!q", _micros(v - PG_EPOCH_UTC)),
        "interval": lambda v: (lambda m, d, us: struct.pack("!qii", us, d, m))(*_interval_parts(v)),
    }.get(name)


def _micros(delta: _dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def binary_column(arr: pa.Array, duckdb_type: str | None = None) -> list:
    """A result column in PostgreSQL binary format (every type has one: a client that prepared a statement
    reads its results in the formats it asked for)."""
    if duckdb_type == "UUID":
        return [None if v is None else uuid.UUID(v).bytes for v in arr.to_pylist()]
    if duckdb_type == "JSON":
        return [None if v is None else v.encode() for v in arr.to_pylist()]
    t = arr.type
    if pa.types.is_dictionary(t):
        return binary_column(arr.dictionary_decode())
    inner = _list_value_type(t)
    if inner is not None:
        name = {"UUID[]": "uuid", "JSON[]": "json"}.get(duckdb_type or "", type_name(inner))
        if name == "json" and duckdb_type != "JSON[]":  # lists of structs are sent as one json value
            return [None if v is None else json.dumps(_json_value(v)).encode() for v in arr.to_pylist()]
        enc, oid = _scalar_binary(name), TYPES[name][0]
        return [None if v is None else _array_binary(v, enc, oid) for v in arr.to_pylist()]
    name = type_name(t)
    if pa.types.is_timestamp(t) and t.unit != "us":
        arr = pc.cast(arr, pa.timestamp("us", t.tz))
    if name in ("timestamp", "timestamptz"):  # microseconds since 2000-01-01 (UTC), straight from the integers
        us = arr.cast(pa.int64()).to_numpy(zero_copy_only=False) - 946684800_000000
        return _fixed(arr, us.astype(">i8"), 8)
    if name in ("int2", "int4", "int8", "float4", "float8") and arr.null_count == 0:
        dtype = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8"}[name]
        np_arr = arr.to_numpy(zero_copy_only=False).astype(dtype)
        return _fixed(arr, np_arr, np_arr.itemsize)
    if name == "numeric":  # Arrow writes the text in bulk; the digits are regrouped from it
        return [None if v is None else numeric_binary(v) for v in pc.cast(pc.cast(arr, pa.string()), pa.binary()).to_pylist()]
    enc = _scalar_binary(name)
    return [None if v is None else enc(v) for v in arr.to_pylist()]


def _array_binary(value: list, enc, oid: int) -> bytes:
    """A (possibly nested, rectangular) list -> PostgreSQL's binary array."""
    dims, level = [], value
    while isinstance(level, list):
        dims.append(len(level))
        level = level[0] if level else None
    flat = value
    for _ in range(len(dims) - 1):
        flat = [x for sub in flat for x in (sub or [])]
    if len(dims) > 1 and len(flat) != math.prod(dims):
        raise ValueError("a nested list with rows of different lengths has no PostgreSQL array form")
    has_null = any(x is None for x in flat)
    parts = [struct.pack("!iiI", len(dims) if dims[0] else 0, int(has_null), oid)]
    if dims[0]:
        parts += [struct.pack("!ii", d, 1) for d in dims]
    for x in flat:
        if x is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            b = enc(x)
            parts.append(struct.pack("!i", len(b)) + b)
    return b"".join(parts)


def _fixed(arr: pa.Array, values: np.ndarray, size: int) -> list:
    raw = values.tobytes()
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    return [raw[i * size:(i + 1) * size] if valid is None or valid[i] else None for i in range(len(arr))]


# -- parameters ------------------------------------------------------------------------------------------------
_TZ_SUFFIX = re.compile(r"\s*([+-]\d\d(?::?\d\d)?|Z)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d\d-\d\d(?:\s*[+-]\d\d(?::?\d\d)?)?$")


def _parse_date(s: str) -> _dt.date:
    return _dt.date.fromisoformat(_TZ_SUFFIX.sub("", s.strip()) if len(s.strip()) > 10 else s.strip())


def _parse_timestamp(s: str) -> _dt.datetime:
    s = s.strip()
    m = _TZ_SUFFIX.search(s) if len(s) > 10 else None
    if m and m.group(1) != "Z" and ":" not in m.group(1) and len(m.group(1)) == 3:
        s = s + ":00"  # "+00" -> "+00:00" for fromisoformat
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


_INTERVAL_PART = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(year|mon|week|day|hour|min|sec|microsecond|millisecond)\w*", re.I)
_INTERVAL_TIME = re.compile(r"([+-])?(\d+):(\d\d)(?::(\d\d(?:\.\d+)?))?")


def _parse_interval(s: str):
    """PostgreSQL interval text ('2 days 01:00:05', '1 day', '90 seconds') -> timedelta; text with months or
    years stays text (DuckDB casts it)."""
    seconds = 0.0
    units = {"week": 7 * 86400, "day": 86400, "hour": 3600, "min": 60, "sec": 1, "microsecond": 1e-6,
             "millisecond": 1e-3}
    rest = s
    for m in _INTERVAL_PART.finditer(s):
        unit = m.group(2).lower()
        if unit in ("year", "mon"):
            return s
        seconds += float(m.group(1)) * units[unit]
        rest = rest.replace(m.group(0), " ")
    t = _INTERVAL_TIME.search(rest)
    if t:
        sign = -1 if t.group(1) == "-" else 1
        seconds += sign * (int(t.group(2)) * 3600 + int(t.group(3)) * 60 + float(t.group(4) or 0))
    return _dt.timedelta(seconds=seconds)


def _parse_bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("t", "true", "1", "yes", "on", "y"):
        return True
    if v in ("f", "false", "0", "no", "off", "n"):
        return False
    raise ValueError(f"invalid input syntax for type boolean: {s!r}")


def _parse_bytea(s: str) -> bytes:
    return bytes.fromhex(s[2:]) if s.startswith("\\x") else s.encode()


def _parse_unknown(s: str):
    """A text parameter the client sent without a type: kept as text, except the date and timestamp forms
    with a zone suffix that pgjdbc's setDate/setTimestamp send ("2024-01-01 +00"), which DuckDB cannot cast."""
    if _DATE_ONLY.match(s) and len(s) > 10:
        return _parse_date(s)
    if re.match(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?\s*([+-]\d\d(:?\d\d)?|Z)$", s):
        return _parse_timestamp(s)
    return s


_TEXT_PARSERS = {
    "bool": _parse_bool, "int2": int, "int4": int, "int8": int, "oid": int, "float4": float, "float8": float,
    "numeric": decimal.Decimal, "date": _parse_date, "timestamp": lambda s: _parse_timestamp(s).replace(tzinfo=None)
    if _parse_timestamp(s).tzinfo is None else _parse_timestamp(s), "timestamptz": _parse_timestamp,
    "time": _dt.time.fromisoformat, "bytea": _parse_bytea, "interval": _parse_interval, "uuid": uuid.UUID, "unknown": _parse_unknown,
}


def _parse_array_text(s: str, element) -> list:
    """PostgreSQL array text (``{1,2,NULL}``, nested, quoted) -> a Python list."""
    pos = 0

    def parse() -> list:
        nonlocal pos
        assert s[pos] == "{"
        pos += 1
        out = []
        while pos < len(s):
            c = s[pos]
            if c == "}":
                pos += 1
                return out
            if c in ", ":
                pos += 1
            elif c == "{":
                out.append(parse())
            elif c == '"':
                pos += 1
                buf = []
                while s[pos] != '"':
                    if s[pos] == "\\":
                        pos += 1
                    buf.append(s[pos])
                    pos += 1
                pos += 1
                out.append(element("".join(buf)))
            else:
                end = pos
                while s[end] not in ",}":
                    end += 1
                token = s[pos:end].strip()
                out.append(None if token.upper() == "NULL" else element(token))
                pos = end
        raise ValueError(f"malformed array literal: {s!r}")

    if not s.startswith("{"):
        s = s[s.index("="):] if "=" in s and s.startswith("[") else s
    return parse()


def _binary_decoders():
    def numeric(b: bytes):
        n, weight, sign, dscale = struct.unpack_from("!hhHh", b)
        if sign == 0xC000:
            return decimal.Decimal("NaN")
        digits = struct.unpack_from(f"!{n}H", b, 8)
        value = decimal.Decimal(0)
        for i, d in enumerate(digits):
            value += decimal.Decimal(d).scaleb(4 * (weight - i))
        value = value.quantize(decimal.Decimal(1).scaleb(-dscale)) if dscale else value.to_integral_value()
        return -value if sign == 0x4000 else value

    def interval(b: bytes):
        us, days, months = struct.unpack("!qii", b)
        if months:
            raise ValueError("binary intervals with months are not supported; send the parameter as text")
        return _dt.timedelta(days=days, microseconds=us)

    return {
        "bool": lambda b: b != b"\x00", "int2": lambda b: struct.unpack("!h", b)[0],
        "int4": lambda b: struct.unpack("!i", b)[0], "int8": lambda b: struct.unpack("!q", b)[0],
        "oid": lambda b: struct.unpack("!I", b)[0],
        "float4": lambda b: struct.unpack("!f", b)[0], "float8": lambda b: struct.unpack("!d", b)[0],
        "numeric": numeric, "bytea": bytes, "text": lambda b: b.decode(), "varchar": lambda b: b.decode(),
        "name": lambda b: b.decode(), "bpchar": lambda b: b.decode(), "char": lambda b: b.decode(),
        "json": lambda b: b.decode(), "jsonb": lambda b: b[1:].decode(), "unknown": lambda b: b.decode(),
        "date": lambda b: PG_EPOCH_DATE + _dt.timedelta(days=struct.unpack("!i", b)[0]),
        "time": lambda b: (_dt.datetime.min + _dt.timedelta(microseconds=struct.unpack("!q", b)[0])).time(),
        "timestamp": lambda b: PG_EPOCH + _dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
        "timestamptz": lambda b: PG_EPOCH_UTC + _dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
        "uuid": lambda b: uuid.UUID(bytes=b), "interval": interval,
    }


_BINARY = _binary_decoders()


def _binary_array(b: bytes, decode) -> list:
    ndim, _flags, _elem = struct.unpack_from("!iiI", b)
    if ndim == 0:
        return []
    dims = [struct.unpack_from("!ii", b, 12 + 8 * i)[0] for i in range(ndim)]
    pos = 12 + 8 * ndim

    def read(level: int) -> list:
        nonlocal pos
        out = []
        for _ in range(dims[level]):
            if level + 1 < ndim:
                out.append(read(level + 1))
                continue
            (size,) = struct.unpack_from("!i", b, pos)
            pos += 4
            if size < 0:
                out.append(None)
            else:
                out.append(decode(b[pos:pos + size]))
                pos += size
        return out

    return read(0)


def decode_parameter(raw: bytes, oid: int, binary: bool):
    """A client's parameter value as the Python object DuckDB binds (date, Decimal, bytes, list, ...)."""
    name = OID_NAME.get(oid, "unknown" if oid == 0 else None)
    element = ARRAY_ELEMENT.get(oid)
    if binary:
        if element is not None:
            return _binary_array(raw, _BINARY.get(element, lambda b: b.decode()))
        if name not in _BINARY:
            raise ValueError(f"binary parameters of type OID {oid} are not supported; send this parameter as text")
        return _BINARY[name](raw)
    text = raw.decode("utf-8")
    if element is not None:
        return _parse_array_text(text, _TEXT_PARSERS.get(element, str))
    return _TEXT_PARSERS.get(name, str)(text)
