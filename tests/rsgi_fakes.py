"""A minimal stand-in for Granian's RSGI scope and protocol objects, to drive dgov.rsgi in tests."""

import asyncio


class Headers:
    """RSGI headers: lower-case names, get() returns the first value, items() every pair."""

    def __init__(self, pairs):
        self.pairs = [(name.lower(), value) for name, value in pairs]

    def get(self, key, default=None):
        return next((value for name, value in self.pairs if name == key), default)

    def items(self):
        return list(self.pairs)


class Scope:
    """An HTTP request as Granian describes it (the path percent-decoded, the query string raw)."""

    proto = "http"
    http_version = "1.1"
    rsgi_version = "1.5"
    scheme = "http"
    server = "127.0.0.1:8000"
    client = "127.0.0.1:50000"
    authority = None

    def __init__(self, method, path, query_string="", headers=()):
        self.method, self.path, self.query_string = method, path, query_string
        self.headers = Headers([("host", "testserver"), *headers])


class Stream:
    """The transport of a streamed answer: collects what is sent."""

    def __init__(self, sink):
        self.sink = sink

    async def send_bytes(self, data):
        self.sink.append(bytes(data))

    async def send_str(self, data):
        self.sink.append(data.encode())


class Protocol:
    """The request body (in chunks) and the answer the application gives."""

    def __init__(self, body=b"", chunk=7):
        self.chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        self.status = None
        self.headers = None
        self.body = None
        self.streamed = []
        self.streaming = False

    async def __call__(self):
        return b"".join(self.chunks)

    def __aiter__(self):
        async def chunks():
            for chunk in self.chunks:
                yield chunk

        return chunks()

    def response_bytes(self, status, headers, body):
        self.status, self.headers, self.body = status, list(headers), bytes(body)

    def response_str(self, status, headers, body):
        self.response_bytes(status, headers, body.encode())

    def response_stream(self, status, headers):
        self.status, self.headers, self.streaming = status, list(headers), True
        return Stream(self.streamed)

    def header(self, name):
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def content(self):
        return b"".join(self.streamed) if self.streaming else self.body


def serve(app, scope, protocol):
    """Run one request through the RSGI application."""
    asyncio.run(app.__rsgi__(scope, protocol))
    return protocol
