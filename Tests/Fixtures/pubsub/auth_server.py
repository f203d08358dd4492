#!/usr/bin/env python3
"""Test peer for fashiond's Pub/Sub authentication (Python standard library only).

One HTTP/1.1 server on 127.0.0.1 that plays three parts:

* an OAuth token endpoint (POST /token): checks the RS256 JWT assertion's signature with the
  public half of the test's throwaway key and its claims (iss, scope, aud, iat, exp <= 1 h), then
  issues an opaque access token;
* a GCE metadata server (GET /computeMetadata/v1/...): requires `Metadata-Flavor: Google`;
* an authenticating proxy in front of the real Pub/Sub emulator (/v1/...): requires a token it
  issued (when --require-auth), then forwards the request unchanged.

It also injects faults for the retry tests (POST /_control) and reports counters (GET /_stats).
Prints `port=N` once listening.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.parse

SCOPE = "https://www.googleapis.com/auth/pubsub"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rs256_valid(signing_input, signature, n, e):
    """Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature with the public key (n, e)."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.n = int(args.public_key_n, 16) if args.public_key_n else None
        self.e = args.public_key_e
        self.token_lifetime = args.token_lifetime
        self.tokens = {}  # token -> expiry (epoch seconds)
        self.faults = []  # {"match", "times", "http", "status", "message"}
        self.ack_to_nack = 0
        self.stats = {"token_requests": 0, "token_refusals": [], "metadata_requests": 0, "proxied": 0,
                      "unauthenticated": 0, "faults_injected": 0, "acks_converted": 0, "connections": 0,
                      "authorization_seen": 0}

    def issue(self):
        token = "test-token-" + secrets.token_hex(12)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def token_valid(self, header):
        if not header or not header.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self.tokens.get(header[len("Bearer "):])
        return expiry is not None and expiry > time.time()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *args):
        if self.state.args.verbose:
            sys.stderr.write("auth_server: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        with self.state.lock:
            self.state.stats["connections"] += 1

    def send_json(self, code, obj, content_type="application/json"):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def refuse_token(self, reason):
        with self.state.lock:
            self.state.stats["token_refusals"].append(reason)
        self.send_json(400, {"error": "invalid_grant", "error_description": reason})

    # -- dispatch ---------------------------------------------------------------------------------
    def do_GET(self):
        if self.path == "/_stats":
            with self.state.lock:
                return self.send_json(200, dict(self.state.stats))
        if self.path.startswith("/computeMetadata/"):
            return self.metadata()
        if self.path.startswith("/v1/"):
            return self.proxy(b"")
        self.send_json(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such path"}})

    def do_PUT(self):
        self.proxy(self.read_body())

    def do_POST(self):
        body = self.read_body()
        if self.path == "/token":
            return self.token(body)
        if self.path == "/_control":
            return self.control(json.loads(body or b"{}"))
        if self.path.startswith("/v1/"):
            return self.proxy(body)
        self.send_json(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such path"}})

    # -- token endpoint ---------------------------------------------------------------------------
    def token(self, body):
        with self.state.lock:
            self.state.stats["token_requests"] += 1
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self.refuse_token("content type must be application/x-www-form-urlencoded")
        form = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
        if form.get("grant_type") != [JWT_BEARER]:
            return self.refuse_token("grant_type must be " + JWT_BEARER)
        assertion = (form.get("assertion") or [""])[0]
        parts = assertion.split(".")
        if len(parts) != 3:
            return self.refuse_token("assertion is not a JWT")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return self.refuse_token("assertion is not valid base64url JSON")
        if header.get("alg") != "RS256":
            return self.refuse_token("alg must be RS256")
        if self.state.args.key_id and header.get("kid") != self.state.args.key_id:
            return self.refuse_token("kid does not name the key")
        if not rs256_valid((parts[0] + "." + parts[1]).encode(), signature, self.state.n, self.state.e):
            return self.refuse_token("signature does not verify with the service account's public key")
        now = time.time()
        expected_aud = "http://127.0.0.1:%d/token" % self.server.server_address[1]
        if claims.get("iss") != self.state.args.client_email:
            return self.refuse_token("iss is not the service account")
        if claims.get("scope") != SCOPE:
            return self.refuse_token("scope is not " + SCOPE)
        if claims.get("aud") != expected_aud:
            return self.refuse_token("aud is not the token endpoint")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return self.refuse_token("iat and exp must be integers")
        if abs(iat - now) > 300:
            return self.refuse_token("iat is not now")
        if exp <= now or exp - iat > 3600:
            return self.refuse_token("exp must be in the future and at most an hour after iat")
        self.send_json(200, self.state.issue())

    # -- metadata server --------------------------------------------------------------------------
    def metadata(self):
        with self.state.lock:
            self.state.stats["metadata_requests"] += 1
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.send_json(403, b"missing Metadata-Flavor: Google", "text/plain")
        path, _, query = self.path.partition("?")
        if path == "/computeMetadata/v1/project/project-id":
            return self.send_json(200, self.state.args.project.encode(), "application/text")
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            scopes = urllib.parse.parse_qs(query).get("scopes", [""])[0].split(",")
            if SCOPE not in scopes:
                return self.send_json(400, {"error": "invalid_scope", "error_description": "pubsub scope not requested"})
            return self.send_json(200, self.state.issue())
        self.send_json(404, b"not found", "text/plain")

    # -- control ----------------------------------------------------------------------------------
    def control(self, command):
        with self.state.lock:
            if "fail" in command:
                self.state.faults.extend(command["fail"])
            if "ackToNack" in command:
                self.state.ack_to_nack = int(command["ackToNack"])
            if command.get("revokeAll"):
                self.state.tokens.clear()
            if "tokenLifetime" in command:
                self.state.token_lifetime = int(command["tokenLifetime"])
        self.send_json(200, {})

    # -- proxy to the emulator --------------------------------------------------------------------
    def proxy(self, body):
        state = self.state
        authorization = self.headers.get("Authorization")
        if authorization:
            with state.lock:
                state.stats["authorization_seen"] += 1
        if state.args.require_auth and not state.token_valid(authorization):
            with state.lock:
                state.stats["unauthenticated"] += 1
            return self.send_json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                  "message": "Request had invalid authentication credentials."}})
        with state.lock:
            fault = next((f for f in state.faults if f["match"] in self.path and f["times"] > 0), None)
            if fault:
                fault["times"] -= 1
                state.stats["faults_injected"] += 1
        if fault:
            return self.send_json(fault["http"], {"error": {"code": fault["http"], "status": fault["status"],
                                                            "message": fault.get("message", "injected fault")}})
        path = self.path
        with state.lock:
            convert = path.endswith(":acknowledge") and state.ack_to_nack > 0
            if convert:
                state.ack_to_nack -= 1
                state.stats["acks_converted"] += 1
        if convert:
            # The acknowledgement is lost and the lease cut short: Pub/Sub redelivers at once.
            request = json.loads(body)
            path = path[: -len(":acknowledge")] + ":modifyAckDeadline"
            body = json.dumps({"ackIds": request["ackIds"], "ackDeadlineSeconds": 0}).encode()
        upstream = http.client.HTTPConnection(state.args.emulator, timeout=120)
        headers = {"Content-Type": self.headers.get("Content-Type")} if self.headers.get("Content-Type") else {}
        try:
            upstream.request(self.command, path, body=body if self.command != "GET" else None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            with state.lock:
                state.stats["proxied"] += 1
            self.send_json(response.status, payload, response.getheader("Content-Type") or "application/json")
        finally:
            upstream.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True, help="host:port of the Pub/Sub emulator")
    parser.add_argument("--public-key-n", help="modulus of the service account's public key, hex")
    parser.add_argument("--public-key-e", type=int, default=65537)
    parser.add_argument("--key-id", default="")
    parser.add_argument("--client-email", default="")
    parser.add_argument("--project", default="metadata-project")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--require-auth", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    Handler.state = State(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("port=%d" % server.server_address[1], flush=True)
    # Stop when the test closes our stdin (or exits).
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
