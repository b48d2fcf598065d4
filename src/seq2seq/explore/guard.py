"""What the explorer's web server accepts, before Gradio sees a request: its own page's requests, small.

- Host: on this machine's loopback address, only requests naming it (`127.0.0.1:<port>`, `localhost:<port>`):
  a web page elsewhere cannot reach the explorer through a name that resolves here (DNS rebinding).
- Origin: a request a browser sends from another page (a cross-site request) names that page's origin, and
  is refused unless it is this page's own.
- Uploads: the page takes no files; Gradio's upload routes are closed.
- Size: a request's body is read whole up to MAX_BODY bytes before the page sees it, larger ones refused
  (413), so no request costs more than that to receive or to log.

Refusals are a status and one line of text; nothing reaches Gradio, nothing is logged as an error.
"""

BLOCKED = ("/upload", "/gradio_api/upload", "/gradio_api/mcp")  # routes of features the page does not use
MAX_BODY = 256 * 1024


class Guard:
    def __init__(self, app, hosts: set[str] | None, max_body: int = MAX_BODY):
        """hosts: the Host headers accepted (None: any, when the page is served to the network on purpose)."""
        self.app, self.hosts, self.max_body = app, hosts, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host, path = headers.get("host", ""), scope.get("path", "")
        refusal = None
        if self.hosts is not None and host not in self.hosts:
            refusal = (421, "this page answers on its own address only")
        elif "origin" in headers and headers["origin"].partition("://")[2] != host:
            refusal = (403, "requests from another page are not taken")
        elif any(path == p or path.startswith(p + "/") for p in BLOCKED):
            refusal = (403, "the explorer takes no uploads")
        elif scope["type"] == "http":
            length = headers.get("content-length", "0")
            if not length.isdigit() or int(length) > self.max_body:
                refusal = (413, f"a request body holds at most {self.max_body:,} bytes")
        if refusal:
            return await deny(scope, receive, send, *refusal)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        body, more = [], True  # read whole, bounded, then handed on as one message
        size = 0
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await deny(scope, receive, send, 413, f"a request body holds at most {self.max_body:,} bytes")
            body.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, while the response streams
            replayed = True
            return {"type": "http.request", "body": b"".join(body), "more_body": False}

        return await self.app(scope, replay, send)


async def deny(scope, receive, send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    payload = (text + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
