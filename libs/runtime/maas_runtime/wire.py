"""Finds which field of a serialized protobuf message holds invalid UTF-8.

The protobuf runtime refuses such a message as a whole; the server answers INVALID_ARGUMENT naming the
field (e.g. ``texts[2]``) instead of grpc's generic "Exception deserializing request" (INTERNAL).
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _repeated(field: FieldDescriptor) -> bool:
    rep = getattr(field, "is_repeated", None)
    return bool(rep) if rep is not None else field.label == FieldDescriptor.LABEL_REPEATED


def invalid_utf8_field(descriptor: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """The path of the first string field that is not valid UTF-8, or None."""
    pos, seen = 0, {}
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
                continue
            if wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
                continue
            if wire_type != 2:
                return None
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                return None  # truncated: not a UTF-8 problem
            chunk, pos = data[pos:pos + length], pos + length
            field = descriptor.fields_by_number.get(number)
            if field is None:
                continue
            index = seen.get(number, 0)
            seen[number] = index + 1
            path = f"{prefix}{field.name}[{index}]" if _repeated(field) else f"{prefix}{field.name}"
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return path
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                found = invalid_utf8_field(field.message_type, chunk, path + ".")
                if found:
                    return found
    except ValueError:
        return None
    return None


def string_field(data: bytes, number: int) -> str | None:
    """The value of string field ``number`` of a serialized message, read without parsing the rest.

    Other fields are skipped over by length (a large tensor payload costs a jump, not a copy). As protobuf does,
    the last occurrence wins. None when the field is absent; ValueError when the bytes are not a valid message
    or the value is not UTF-8. The gateway routes KServe calls by model name with this.
    """
    pos, found, end = 0, None, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if field == number:
                if pos + length > end:
                    raise ValueError("truncated length-delimited field")
                found = data[pos:pos + length].decode("utf-8")
            pos += length
        else:  # groups (3, 4) are not used by proto3 messages
            raise ValueError(f"unsupported wire type {wire_type}")
        if pos > end:
            raise ValueError("truncated message")
    return found
