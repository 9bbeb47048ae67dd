"""A local web page that colours tokens as you type, for one or more tokenizers side by side.

    python -m tokenizer.playground                          # cl100k (+ gpt2 if it loads offline)
    python -m tokenizer.playground tokenizers/shakespeare.model cl100k --port 8000

Why a page: tokenization is easiest to understand by looking at it: where the words split, how
spaces attach to the following word, how digits group, how an emoji costs several tokens.
The server is the standard library's http.server: one HTML file (no build step, no CDN) and
one JSON endpoint, POST /encode. It listens on 127.0.0.1 only unless told otherwise, because it
is a learning tool with no authentication, not a service.
"""
import ipaddress
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .bpe import fix_surrogates
from .cli import ArgumentParser
from .report import load_tokenizers

PAGE = Path(__file__).with_name("playground.html")
MAX_REQUEST_BYTES = 100_000  # a page of text is a few KB; more than this is a mistake or abuse


def encode_for_display(tok, text):
    """Token ids plus what the page needs to draw each token honestly.

    A token is a byte string, and BPE may cut a multi-byte UTF-8 character between two tokens.
    Such a token has no text of its own, so `text` decodes with U+FFFD replacement and
    `partial` flags it; the page then shows its raw bytes (`hex`) instead of pretending.
    Special-token text is encoded as ordinary text: typing "<|endoftext|>" shows its pieces.
    A lone surrogate (JSON allows "\\ud800") becomes U+FFFD, as the encoder itself does.
    """
    text = fix_surrogates(text)
    ids = tok.encode_ordinary(text)
    tokens = []
    for i in ids:
        b = tok.decode_bytes([i])
        try:
            s, partial = b.decode("utf-8"), False
        except UnicodeDecodeError:
            s, partial = b.decode("utf-8", errors="replace"), True
        tokens.append({"id": i, "text": s, "hex": b.hex(" "), "partial": partial})
    n_bytes = len(text.encode("utf-8"))
    return {"ids": ids, "tokens": tokens, "n_tokens": len(ids), "n_bytes": n_bytes,
            "bytes_per_token": round(n_bytes / len(ids), 4) if ids else None}


class RequestError(Exception):
    """Bad request from the page or a client; becomes a JSON error with this HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def handle_encode(body, tokenizers):
    """Validate a POST /encode body and encode it; RequestError names what is wrong."""
    try:
        req = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(400, f"request body is not valid UTF-8 JSON: {e}") from e
    except RecursionError:
        raise RequestError(400, "request body is JSON nested too deeply") from None
    if not isinstance(req, dict) or not isinstance(req.get("text"), str):
        raise RequestError(400, 'expected a JSON object {"text": "...", "tokenizers": ["name", ...]}')
    names = req.get("tokenizers", list(tokenizers))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError(400, '"tokenizers" must be a list of names')
    unknown = [n for n in names if n not in tokenizers]
    if unknown:
        raise RequestError(400, f"unknown tokenizer(s) {unknown}; this server has {list(tokenizers)}")
    return {"results": {n: encode_for_display(tokenizers[n], req["text"]) for n in names}}


def make_handler(tokenizers, page_path=PAGE):
    """A request handler class bound to these tokenizers (http.server wants a class, not an object)."""
    lock = threading.Lock()  # tokenizers may keep caches; one encode at a time keeps them simple

    class Handler(BaseHTTPRequestHandler):
        server_version = "vocablab-playground"

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status, obj):
            self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                       "application/json; charset=utf-8")

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                self._send(200, page_path.read_bytes(), "text/html; charset=utf-8")
            elif self.path == "/tokenizers":
                self._json(200, {"tokenizers": list(tokenizers)})
            else:
                self._json(404, {"error": f"no page at {self.path}; try / or POST /encode"})

        def do_POST(self):
            if self.path != "/encode":
                return self._json(404, {"error": f"no endpoint at {self.path}; POST /encode"})
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._json(411, {"error": "Content-Length header required"})
            if length < 0:  # rfile.read(-1) would wait for the client to close the connection
                self.close_connection = True
                return self._json(400, {"error": f"Content-Length must be >= 0, got {length}"})
            if length > MAX_REQUEST_BYTES:
                # Drain a moderately large body so the client sees our answer instead of a reset
                # connection; anything huge we simply stop reading and hang up on.
                if length <= 100 * MAX_REQUEST_BYTES:
                    left = length
                    while left > 0:
                        left -= len(self.rfile.read(min(65536, left))) or left
                self.close_connection = True
                return self._json(413, {"error": f"request is {length} bytes; the limit is "
                                                  f"{MAX_REQUEST_BYTES} bytes"})
            body = self.rfile.read(length)
            try:
                with lock:
                    result = handle_encode(body, tokenizers)
            except RequestError as e:
                return self._json(e.status, {"error": str(e)})
            except Exception as e:  # a bug must still answer, not drop the connection
                return self._json(500, {"error": f"internal error: {type(e).__name__}: {e}"})
            self._json(200, result)

        def log_message(self, fmt, *args):  # quiet: one line per request would drown the console
            pass

    return Handler


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(tokenizers, host="127.0.0.1", port=8000):
    """Create (not start) the server; port 0 picks a free port (see server.server_address)."""
    return ThreadingHTTPServer((host, port), make_handler(tokenizers))


def default_tokenizers(specs):
    """The tokenizers named, or cl100k plus gpt2 when none are; report and skip any that fail."""
    return load_tokenizers(specs or ["cl100k", "gpt2"])


def main(argv=None):
    p = ArgumentParser(
        prog="python -m tokenizer.playground",
        description="Serve a local page that shows how text splits into tokens, as you type, "
                    "for several tokenizers side by side. Open the printed address in a browser.")
    p.add_argument("tokenizers", nargs="*", metavar="TOKENIZER",
                   help="a tokenizer file or folder (.model, tokenizer.json, .tiktoken, tekken, "
                        "GPT-2's files), or gpt2 / cl100k / tekken (default: cl100k and gpt2)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: only this machine can connect)")
    args = p.parse_args(argv)
    if not is_loopback(args.host):
        print(f"WARNING: binding {args.host}, not loopback: anyone who can reach this machine can use "
              "the playground. It has no authentication; use it only on a network you trust.",
              file=sys.stderr)
    toks = default_tokenizers(args.tokenizers)
    if not toks:
        p.error("none of the tokenizers could be loaded (see messages above)")
    try:
        server = make_server(toks, args.host, args.port)
    except OSError as e:  # most often: the port is in use (another playground still running?)
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}; pick another "
              f"port with --port (0 = any free port)", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    print(f"playground with {', '.join(toks)} at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
