"""The Protocol Buffers wire format, just enough to read and write SentencePiece `.model` files.

A protobuf message on disk is a flat run of fields, each a key then a value:

    key   = varint(field_number << 3 | wire_type)
    value = varint                       wire type 0 (int32, uint64, bool, enum)
            8 bytes, little-endian       wire type 1 (double, fixed64)
            varint(length) + bytes       wire type 2 (string, bytes, a nested message)
            4 bytes, little-endian       wire type 5 (float, fixed32)

A varint stores 7 bits per byte, lowest first, with the high bit set on every byte but the last
(300 = 0b10_0101100 -> 0xAC 0x02). A negative int32 is sign-extended to 64 bits first, so it
always takes 10 bytes. A repeated field is simply the same key written again for each value.

The file carries no field names: they live in the `.proto` schema. Here a schema is a dict
{field_number: Field(name, kind, repeated)}, where kind is a scalar type name or, for a nested
message, that message's schema. `decode` returns only the fields present (callers supply the
schema's defaults, which protobuf never writes) and skips unknown fields, as protobuf does.
"""
import struct
from typing import NamedTuple

VARINT, I64, LEN, I32 = 0, 1, 2, 5
SCALAR_KINDS = ("string", "bytes", "float", "double", "int32", "int64", "uint64", "bool", "enum")


class ProtobufError(ValueError):
    """The bytes are not a well-formed message of the expected schema."""


class Field(NamedTuple):
    name: str
    kind: object          # one of SCALAR_KINDS, or a nested schema dict
    repeated: bool = False


def _wire_type(kind):
    if isinstance(kind, dict) or kind in ("string", "bytes"):
        return LEN
    return {"float": I32, "double": I64}.get(kind, VARINT)


# ---- reading ---------------------------------------------------------------------------------

def read_varint(buf, pos):
    """The varint starting at buf[pos] and the position just after it."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ProtobufError(f"truncated varint at byte {pos}")
        if shift >= 70:
            raise ProtobufError(f"varint longer than 10 bytes at byte {pos}")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if byte < 0x80:
            return value, pos


def iter_fields(buf):
    """Yield (field_number, wire_type, value, offset) for each field of one message.

    value is an int for varints and the raw bytes otherwise (a nested message is not parsed
    here: only the schema knows that those bytes are a message and not a string).
    """
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at byte {start}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire in (I64, I32, LEN):
            if wire == LEN:
                size, pos = read_varint(buf, pos)
            else:
                size = 8 if wire == I64 else 4
            if pos + size > len(buf):
                raise ProtobufError(f"field {number} at byte {start}: needs {size} bytes, "
                                    f"only {len(buf) - pos} left (truncated?)")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:  # 3 and 4 are the long-deprecated groups; 6 and 7 do not exist
            raise ProtobufError(f"field {number} at byte {start}: unsupported wire type {wire}")
        yield number, wire, value, start


def _convert(kind, wire, value, number, start):
    if _wire_type(kind) != wire:
        raise ProtobufError(f"field {number} at byte {start}: wire type {wire} does not fit "
                            f"a {kind if isinstance(kind, str) else 'message'}")
    if isinstance(kind, dict):
        return decode(value, kind)
    if kind == "string":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"field {number} at byte {start}: string is not UTF-8") from None
    if kind == "bytes":
        return value
    if kind == "float":
        return struct.unpack("<f", value)[0]
    if kind == "double":
        return struct.unpack("<d", value)[0]
    if kind == "bool":
        return value != 0
    if kind in ("int32", "int64", "enum"):
        value &= (1 << 64) - 1          # a varint may carry more than 64 bits: keep the low 64
        return value - (1 << 64) if value >> 63 else value
    return value & ((1 << 64) - 1)      # uint64


def decode(buf, schema):
    """Parse one message into {name: value} (lists for repeated fields); unknown fields skipped."""
    msg = {}
    for number, wire, value, start in iter_fields(buf):
        field = schema.get(number)
        if field is None:
            continue
        value = _convert(field.kind, wire, value, number, start)
        if field.repeated:
            msg.setdefault(field.name, []).append(value)
        else:
            msg[field.name] = value  # protobuf's rule: the last occurrence wins
    return msg


# ---- writing ---------------------------------------------------------------------------------

def write_varint(value):
    """The varint bytes of a non-negative int < 2**64, or of a negative one as 64-bit two's
    complement (how protobuf writes a negative int32: always 10 bytes)."""
    if value < 0:
        value += 1 << 64
    if not 0 <= value < 1 << 64:
        raise ProtobufError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_value(kind, value):
    if isinstance(kind, dict):
        return encode(value, kind)
    if kind == "string":
        return value.encode("utf-8")
    if kind == "bytes":
        return bytes(value)
    if kind == "float":
        return struct.pack("<f", value)
    if kind == "double":
        return struct.pack("<d", value)
    if kind == "bool":
        return write_varint(int(bool(value)))
    return write_varint(int(value))


def encode(msg, schema):
    """Serialize {name: value} in field-number order (as protobuf does); absent names are
    not written, so the reader sees the schema's defaults."""
    out = bytearray()
    for number in sorted(schema):
        field = schema[number]
        if field.name not in msg:
            continue
        values = msg[field.name] if field.repeated else [msg[field.name]]
        wire = _wire_type(field.kind)
        for value in values:
            out += write_varint(number << 3 | wire)
            payload = _encode_value(field.kind, value)
            if wire == LEN:
                out += write_varint(len(payload))
            out += payload
    return bytes(out)
