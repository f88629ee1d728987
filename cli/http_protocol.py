"""uvicorn's httptools protocol, bounding the request head (request line + headers) while it arrives.

httptools (llhttp) buffers a header of any size, and uvicorn sets no limit of its own: a 32 MiB Authorization
header would be read whole before the app could refuse it. Here a head larger than MAX_HEADER_BYTES gets a 431 in
the error envelope and the connection is closed, as soon as that many bytes have arrived without the head ending.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.core.input_policy import MAX_HEADER_BYTES


class HeadTooLarge(Exception):
    """Raised from a parser callback; httptools turns it into a parser error, which uvicorn answers."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_received = 0
        self._head_size = 0

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_received += len(data)
        super().data_received(data)
        if self._head_open and self._head_received > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._refuse_head()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open, self._head_received, self._head_size = True, 0, 0

    def send_400_response(self, msg: str) -> None:
        if self._head_size > MAX_HEADER_BYTES:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEADER_BYTES:
            raise HeadTooLarge

    def _refuse_head(self) -> None:
        body = msgspec.json.encode({"error": {
            "code": "request_header_fields_too_large", "trace_id": str(uuid.uuid4()),
            "message": f"The request line and headers exceed {MAX_HEADER_BYTES} bytes",
            "details": {"limit_bytes": MAX_HEADER_BYTES}}})
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()
