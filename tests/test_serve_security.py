"""End-to-end: `kiln serve` security over real sockets on loopback: JWT bearer tokens
(HS256 and RS256, made with PyJWT), API keys, HTTPS with a self-signed certificate made by
`openssl req`, and the limit on open connections. (gRPC's share of --auth is in
test_serve_grpc.py.)

What is open without credentials: /v2/health/live and /v2/health/ready only; everything
else (the model APIs, /v2, /metrics) answers 401 without them."""
import base64
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import jwt  # PyJWT
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from test_serve import Server, train

ROW = {"mean_radius": 14.1, "mean_texture": 19.3}
ISSUER, AUDIENCE = "https://idp.kiln.test", "kiln-serve"
SECRET = "kiln-e2e-hs256-secret-" + "0123456789abcdef" * 3  # 71 bytes


def call(server, path, body=None, headers=None, context=None):
    """(HTTP status, parsed JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{server.scheme}://127.0.0.1:{server.port}{path}", data=data,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as r:
            status, raw, ctype = r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers["Content-Type"]
    return status, json.loads(raw) if ctype == "application/json" else raw.decode()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def run_serve(kiln, *args):
    """Runs a `kiln serve` that must fail at start-up; returns (exit code, stderr)."""
    p = kiln("serve", "--rest_api_port", "0", *args, check=False)
    assert p.stdout == "", p.stdout
    return p.returncode, p.stderr


@pytest.fixture
def model(kiln, tmp_path):
    base = tmp_path / "models" / "cancer"
    train(kiln, base / "1", rounds=5)
    return ["--model_name", "cancer", "--model_base_path", base]


@pytest.fixture
def rsa_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt_public.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, pem


def claims(**overrides):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "e2e", "iat": now, "exp": now + 300}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def test_jwt_hs256_and_rs256(kiln_bin, model, rsa_key, tmp_path):
    key, pem = rsa_key
    (tmp_path / "hs256.secret").write_text(SECRET + "\n")  # the trailing newline is not key
    s = Server(kiln_bin, *model, "--auth=jwt", "--jwt_hs256_secret_file", tmp_path / "hs256.secret",
               "--jwt_rs256_public_key_file", pem, "--jwt_issuer", ISSUER,
               "--jwt_audience", AUDIENCE, "--jwt_clock_skew_seconds", "5")
    try:
        hs = jwt.encode(claims(), SECRET, algorithm="HS256")
        rs = jwt.encode(claims(aud=["other", AUDIENCE]), key, algorithm="RS256")
        for token in (hs, rs):
            assert call(s, "/v1/models/cancer", headers=bearer(token))[0] == 200
            code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]}, bearer(token))
            assert code == 200 and 0 <= out["predictions"][0]["scores"] <= 1, out
            code, text = call(s, "/metrics", headers=bearer(token))
            assert code == 200 and "kiln_requests_total" in text

        # The health probes are open; everything else needs a token.
        assert call(s, "/v2/health/live") == (200, {})
        assert call(s, "/v2/health/ready") == (200, {})
        for path in ("/v1/models/cancer", "/v2", "/v2/models/cancer/ready", "/metrics",
                     "/monitoring/prometheus/metrics"):
            code, out = call(s, path)
            assert code == 401, (path, out)
            assert "missing Authorization header" in out["error"]
        code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]})
        assert code == 401 and "missing Authorization header" in out["error"]

        pub = pem.read_bytes()
        body = b64url(json.dumps(claims()).encode())
        signing_input = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + body
        confused = signing_input + "." + b64url(hmac.new(pub, signing_input.encode(),
                                                         hashlib.sha256).digest())
        unsigned = b64url(b'{"alg":"none"}') + "." + body + "."
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        hs_head, hs_body, hs_sig = hs.split(".")
        forged_body = b64url(json.dumps(claims(sub="admin")).encode())
        rejected = [
            (f"Basic {hs}", "not 'Bearer <JWT>'"),
            ("Bearer not-a-jwt", "not a JWT"),
            (f"Bearer {hs_head}.{forged_body}.{hs_sig}", "signature does not verify"),
            (f"Bearer {jwt.encode(claims(), SECRET[::-1], algorithm='HS256')}",
             "signature does not verify"),
            (f"Bearer {jwt.encode(claims(), other_key, algorithm='RS256')}",
             "signature does not verify"),
            (f"Bearer {confused}", "signature does not verify"),  # HMAC keyed with the PEM
            (f"Bearer {unsigned}", "alg none"),
            (f"Bearer {jwt.encode(claims(), SECRET, algorithm='HS384')}", "algorithm is not accepted"),
            (f"Bearer {jwt.encode(claims(exp=now - 10), SECRET, algorithm='HS256')}", "expired"),
            (f"Bearer {jwt.encode(claims(exp=None), SECRET, algorithm='HS256')}", "\"exp\""),
            (f"Bearer {jwt.encode(claims(nbf=now + 120), key, algorithm='RS256')}", "not valid yet"),
            (f"Bearer {jwt.encode(claims(aud='someone-else'), SECRET, algorithm='HS256')}",
             "audience"),
            (f"Bearer {jwt.encode(claims(aud=None), SECRET, algorithm='HS256')}", "audience"),
            (f"Bearer {jwt.encode(claims(iss='https://evil.test'), key, algorithm='RS256')}",
             "issuer"),
        ]
        for header, why in rejected:
            code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]},
                             {"Authorization": header})
            assert code == 401, (header, out)
            assert why in out["error"], (header, out)
            token = header.split(" ", 1)[1]
            assert all(part not in out["error"] for part in token.split(".") if len(part) >= 8)
            assert "evil" not in out["error"] and "someone-else" not in out["error"]
        # Within the skew (5 s) a just-expired token still passes; beyond it, not.
        assert call(s, "/v1/models/cancer", headers=bearer(
            jwt.encode(claims(exp=now - 1), SECRET, algorithm="HS256")))[0] == 200
        # Refused requests are not served, and the server keeps going.
        assert call(s, "/v1/models/cancer", headers=bearer(hs))[0] == 200
    finally:
        assert s.stop() == 0


def test_api_keys(kiln_bin, model, tmp_path):
    keys = tmp_path / "api_keys.txt"
    keys.write_text("# kiln e2e clients\nk-alpha-1f0c9a\n\n  k-beta-77d2e1  \n# k-retired-0000\n")
    s = Server(kiln_bin, *model, "--auth=api_key", "--api_keys_file", keys)
    try:
        for key in ("k-alpha-1f0c9a", "k-beta-77d2e1"):
            code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]}, {"x-api-key": key})
            assert code == 200, out
            assert call(s, "/metrics", headers={"X-Api-Key": key})[0] == 200
        for headers, why in [({}, "missing x-api-key header"),
                             ({"x-api-key": "k-alpha-1f0c9"}, "API key is not accepted"),
                             ({"x-api-key": "k-retired-0000"}, "API key is not accepted"),
                             ({"x-api-key": "# kiln e2e clients"}, "API key is not accepted"),
                             ({"Authorization": "Bearer k-alpha-1f0c9a"}, "missing x-api-key")]:
            code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]}, headers)
            assert code == 401 and why in out["error"], (headers, out)
            assert "k-alpha" not in out["error"] and "retired" not in out["error"]
        assert call(s, "/v2/health/live") == (200, {})
        assert call(s, "/metrics")[0] == 401
    finally:
        assert s.stop() == 0


def test_auth_settings_that_cannot_work_stop_the_server(kiln, model, rsa_key, tmp_path):
    _, pem = rsa_key
    (tmp_path / "short.secret").write_text("too short\n")
    (tmp_path / "empty_keys.txt").write_text("# none yet\n")
    cases = [
        (["--auth=jwt"], "needs an HS256 secret file or an RS256 public key file"),
        (["--auth=jwt", "--jwt_hs256_secret_file", tmp_path / "short.secret"],
         "short.secret': the secret has 9 bytes; HS256 needs at least 32"),
        (["--auth=jwt", "--jwt_rs256_public_key_file", tmp_path / "short.secret"],
         "short.secret': not a PEM public key"),
        (["--auth=jwt", "--jwt_rs256_public_key_file", tmp_path / "absent.pem"], "absent.pem"),
        (["--auth=api_key"], "needs an API keys file"),
        (["--auth=api_key", "--api_keys_file", tmp_path / "empty_keys.txt"],
         "empty_keys.txt': holds no keys"),
        # Settings the chosen mode would ignore.
        (["--jwt_rs256_public_key_file", pem], "the auth mode is not jwt"),
        (["--auth=api_key", "--api_keys_file", tmp_path / "empty_keys.txt", "--jwt_audience", "x"],
         "the auth mode is not jwt"),
    ]
    for args, message in cases:
        code, err = run_serve(kiln, *model, *args)
        assert code == 2 and message in err, (args, code, err)
    code, err = run_serve(kiln, *model, "--auth=basic")
    assert code != 0 and "--auth" in err, err


def make_cert(tmp_path, name="server"):
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_with_a_self_signed_certificate(kiln_bin, model, tmp_path):
    cert, key = make_cert(tmp_path)
    (tmp_path / "hs256.secret").write_text(SECRET)
    s = Server(kiln_bin, *model, "--ssl_cert_file", cert, "--ssl_key_file", key,
               "--auth=jwt", "--jwt_hs256_secret_file", tmp_path / "hs256.secret",
               "--rest_api_timeout_in_ms", "1500")
    try:
        assert s.scheme == "https"
        trust = ssl.create_default_context(cafile=str(cert))
        token = jwt.encode(claims(), SECRET, algorithm="HS256")
        code, out = call(s, "/v1/models/cancer:predict", {"instances": [ROW]}, bearer(token), trust)
        assert code == 200 and len(out["predictions"]) == 1, out
        assert call(s, "/v1/models/cancer", context=trust)[0] == 401
        assert call(s, "/v2/health/live", context=trust) == (200, {})

        # Keep-alive over TLS: several requests on one connection, TLS 1.2 or newer.
        conn = http.client.HTTPSConnection("127.0.0.1", s.port, context=trust, timeout=30)
        for _ in range(3):
            conn.request("GET", "/v1/models/cancer", headers=bearer(token))
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["model_version_status"][0]["version"] == "1"
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.close()
        # TLS 1.2 is enough (and is offered).
        tls12 = ssl.create_default_context(cafile=str(cert))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
            with tls12.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == "TLSv1.2"

        # A client that does not trust the certificate refuses it.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"https://127.0.0.1:{s.port}/v2/health/live", timeout=30)
        # Plain HTTP to the TLS port gets no HTTP answer; the connection is closed.
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as plain:
            plain.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            try:
                while chunk := plain.recv(4096):
                    reply += chunk
            except ConnectionResetError:
                pass
        assert not reply.startswith(b"HTTP/"), reply
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            c.request("GET", "/v2/health/live")
            c.getresponse()
        # A client that never starts the handshake is cut off at the read timeout (1.5 s).
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as idle:
            start = time.time()
            assert idle.recv(100) == b""
            assert 1.0 < time.time() - start < 5
        # Still serving HTTPS.
        assert call(s, "/v2/health/live", context=trust) == (200, {})
    finally:
        assert s.stop() == 0


def test_tls_files_that_cannot_be_used_stop_the_server(kiln, model, tmp_path):
    cert, key = make_cert(tmp_path)
    _, other_key = make_cert(tmp_path, "other")
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cases = [
        (["--ssl_cert_file", tmp_path / "absent.crt", "--ssl_key_file", key],
         f"TLS certificate file '{tmp_path / 'absent.crt'}': No such file or directory"),
        (["--ssl_cert_file", tmp_path / "garbage.pem", "--ssl_key_file", key],
         f"TLS certificate file '{tmp_path / 'garbage.pem'}': not a PEM certificate"),
        (["--ssl_cert_file", cert, "--ssl_key_file", tmp_path / "garbage.pem"],
         f"TLS key file '{tmp_path / 'garbage.pem'}': not a PEM private key"),
        (["--ssl_cert_file", cert, "--ssl_key_file", other_key],
         f"TLS key file '{other_key}' does not match the certificate in '{cert}'"),
        (["--ssl_cert_file", cert], "TLS needs both a certificate file and a key file"),
    ]
    for args, message in cases:
        code, err = run_serve(kiln, *model, *args)
        assert code == 2 and message in err, (args, code, err)


def get_health(sock):
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.endswith(b"{}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def test_connections_beyond_the_limit_are_closed(kiln_bin, model):
    s = Server(kiln_bin, *model, "--max_connections", "2")
    try:
        first = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(2)]
        for c in first:  # both open, answered, and kept alive
            assert get_health(c).startswith(b"HTTP/1.1 200")
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        assert extra.recv(4096) == b""  # closed without a response
        extra.close()
        for c in first:  # the open ones are unaffected
            assert get_health(c).startswith(b"HTTP/1.1 200")
        first[0].close()
        # Once one closes, a new connection is served.
        deadline = time.time() + 10
        while True:
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            try:
                reply = get_health(c)
            except ConnectionResetError:
                reply = b""
            c.close()
            if reply.startswith(b"HTTP/1.1 200") or time.time() > deadline:
                break
            time.sleep(0.05)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        first[1].close()
    finally:
        assert s.stop() == 0
