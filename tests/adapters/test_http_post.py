"""adapters/http_post.py against local servers: keep-alive, body framings, truncation, stale connections, and TLS to
a pinned address verified against the receiver's name."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.http_post import HttpError, PostClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1]


async def post(client: PostClient, port: int, *, tls: bool = False, name: str = "hooks.test") -> tuple[int, bytes]:
    response = await client.post(address="127.0.0.1", port=port, tls=tls, server_name=name, host_header=name,
                                 path="/in?x=1", headers={"x-causeloop-event-id": "evt_1"}, body=b'{"a":1}')
    return response.status, response.body


async def test_one_connection_carries_consecutive_requests_and_the_request_is_as_sent() -> None:
    connections: list[int] = []
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        for _ in range(3):
            head, body = await read_request(reader)
            heads.append(head + body)
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello")
            await writer.drain()
        writer.close()

    server, port = await serve(handler)
    client = PostClient()
    async with server:
        results = [await post(client, port) for _ in range(3)]
    await client.aclose()

    assert results == [(201, b"hello")] * 3 and len(connections) == 1
    assert heads[0].startswith(b"POST /in?x=1 HTTP/1.1\r\nhost: hooks.test\r\n")
    assert b"x-causeloop-event-id: evt_1\r\n" in heads[0] and heads[0].endswith(b'\r\n\r\n{"a":1}')


@pytest.mark.parametrize(("answer", "expected", "reused"), [
    (b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde", True),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 10000\r\n\r\n" + b"x" * 10000, b"x" * 64, False),
    (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", b"ok", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", b"", True),
])
async def test_bodies_are_read_up_to_the_limit_and_connections_kept_only_when_read_to_the_end(
        answer: bytes, expected: bytes, reused: bool) -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                await read_request(reader)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, port = await serve(handler)
    client = PostClient(body_max=64)
    async with server:
        first = await post(client, port)
        await post(client, port)
    await client.aclose()

    assert first[1] == expected[:64]
    assert len(connections) == (1 if reused else 2)


async def test_a_kept_connection_the_server_closed_is_retried_once_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read(1)  # the next request arrives: hang up without answering it
        writer.close()

    server, port = await serve(handler)
    client = PostClient()
    async with server:
        assert await post(client, port) == (200, b"ok")
        assert await post(client, port) == (200, b"ok")
    await client.aclose()


async def test_garbage_and_refused_connections_are_http_errors() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await serve(handler)
    client = PostClient()
    async with server:
        with pytest.raises(HttpError, match=r"not an HTTP/1\.x response"):
            await post(client, port)
    with pytest.raises(HttpError, match="connect"):
        await post(client, port)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    """A TLS receiver whose certificate names `hooks.test`, and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        writer.close()

    server, port = await serve(handler, server_context)
    async with server:
        yield port, client_context


async def test_tls_goes_to_the_pinned_address_and_verifies_the_receivers_name(
        tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, context = tls_server
    client = PostClient(ssl_context=context)

    assert await post(client, port, tls=True, name="hooks.test") == (200, b"secure")
    with pytest.raises(HttpError, match="TLS"):
        await post(client, port, tls=True, name="other.test")
    with pytest.raises(HttpError, match="TLS"):
        await post(PostClient(), port, tls=True, name="hooks.test")  # the system CAs do not trust it
    await client.aclose()
