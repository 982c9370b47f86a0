"""The AWS event-stream encoding, for ``InvokeEndpointWithResponseStream`` answers.

Each message is a prelude (total length, headers length, CRC32 of those 8 bytes), headers,
the payload, and a CRC32 of everything before it; every number is big-endian. This is what
botocore's ``EventStreamBuffer`` parses.

>>> from botocore.eventstream import EventStreamBuffer
>>> buffer = EventStreamBuffer()
>>> buffer.add_data(payload_part(b'{"y": [[1.5]]}'))
>>> message = next(iter(buffer))
>>> message.headers[":event-type"], message.payload
('PayloadPart', b'{"y": [[1.5]]}')
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["encode_message", "payload_part"]

_STRING = 7  # header value type: a UTF-8 string with a 2-byte length


def _header(name: str, value: str) -> bytes:
    key, text = name.encode(), value.encode()
    return struct.pack(">B", len(key)) + key + struct.pack(">BH", _STRING, len(text)) + text


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string ``headers`` and ``payload``."""
    head = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event carrying ``data`` (the runtime's ``PayloadPart.Bytes``)."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )
