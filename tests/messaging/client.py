"""A messaging test client: end-to-end encryption with per-device envelopes against a
real sealbox server, using only `cryptography` and the standard library.

    python client.py BASE_URL ADA_TOKEN BOB_TOKEN DATA_DIR

The scheme (a test client's, not a ratchet): each device has an Ed25519 identity key and
an X25519 signed pre-key. A message is AES-256-GCM under a random message key (AAD: the
chat id); each recipient device's envelope header is an ephemeral X25519 public key, a
nonce and the message key sealed by AES-256-GCM under HKDF-SHA256(ECDH(ephemeral, the
device's signed pre-key)). Senders verify each bundle's pre-key signature first.

It checks the issue's "done when": three devices of two users exchange messages that
each decrypts; the data directory holds no plaintext; a fourth device added later gets
only later messages; a file encrypted on one device, uploaded through the presigned files
routes and named in a message's `attachments`, is downloaded and decrypted by a
recipient; a removed device stops receiving at once; a stream resumes after a dropped
connection with no gap and no duplicate; a self-destructing message is gone from the
database after its time. Prints ALL CHECKS PASSED at the end.
"""

import base64
import datetime
import http.client
import json
import os
import queue
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

BASE, ADA_TOKEN, BOB_TOKEN, DATA_DIR = sys.argv[1:5]
URL = urllib.parse.urlparse(BASE)
ENVELOPE_INFO = b"sealbox-test/v1/envelope/"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def raw(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def api(method, path, token, device=None, body=None, expect=None):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    if device:
        headers["X-Device-Id"] = device
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    parsed = json.loads(data) if data else None
    if expect is not None and response.status != expect:
        raise AssertionError(f"{method} {path}: {response.status} {data!r}, wanted {expect}")
    return response.status, parsed


def fetch(method, url, body=None):
    """A request to a byte route (upload or download URL): status and body bytes."""
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    conn.request(method, parsed.path, body=body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def upload_sealed(token, plaintext):
    """Encrypts a file under a fresh key (AES-256-GCM) and uploads the ciphertext through
    the presigned files routes (client encryption: stored as sent). Returns the file id
    and the key, which travels inside the end-to-end encrypted message."""
    file_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(file_key).encrypt(nonce, plaintext, None)
    _, presigned = api("POST", "/v1/files/presign", token, body={
        "filename": "attachment.bin", "size": len(sealed), "encryption": "client"}, expect=201)
    status, _ = fetch("PUT", presigned["uploadUrl"], sealed)
    assert status == 200, status
    api("POST", f"/v1/files/{presigned['fileId']}/finalize", token, expect=200)
    return presigned["fileId"], file_key


def kek(shared: bytes, device_id: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, ENVELOPE_INFO + device_id.encode()).derive(shared)


class Device:
    """One device: its private keys stay here; the server gets the public bundle."""

    def __init__(self, name, token):
        self.token = token
        self.identity = Ed25519PrivateKey.generate()
        self.prekey = X25519PrivateKey.generate()
        self.one_time = [X25519PrivateKey.generate() for _ in range(5)]
        spk = raw(self.prekey.public_key())
        _, created = api("POST", "/v1/devices", token, body={
            "name": name,
            "identityKey": {"alg": "ed25519", "publicKey": b64(raw(self.identity.public_key()))},
            "signedPreKey": {"keyId": 1, "alg": "x25519", "publicKey": b64(spk),
                             "signature": b64(self.identity.sign(spk))},
            "oneTimePreKeys": [{"keyId": i + 1, "alg": "x25519", "publicKey": b64(raw(k.public_key()))}
                               for i, k in enumerate(self.one_time)],
        }, expect=201)
        self.id = created["id"]
        self.user = created["userId"]

    def call(self, method, path, body=None, expect=None):
        return api(method, path, self.token, self.id, body, expect)

    def bundles(self, chat_id):
        """Every current device of the chat, each bundle's signature checked; this device's
        own key too, so it can read its messages back from the list (optional for the
        server)."""
        _, chat = self.call("GET", f"/v1/chats/{chat_id}", expect=200)
        keys = {}
        for participant in chat["participants"]:
            _, devices = self.call("GET", f"/v1/users/{participant['userId']}/devices", expect=200)
            for d in devices:
                identity = Ed25519PublicKey.from_public_bytes(unb64(d["identityKey"]["publicKey"]))
                spk = unb64(d["signedPreKey"]["publicKey"])
                identity.verify(unb64(d["signedPreKey"]["signature"]), spk)  # raises if forged
                keys[d["id"]] = X25519PublicKey.from_public_bytes(spk)
        assert self.id not in keys, "the server leaves the caller's own device out"
        keys[self.id] = self.prekey.public_key()
        expected = {d for p in chat["participants"] for d in p["deviceIds"]}
        assert set(keys) == expected, (keys.keys(), expected)
        return keys

    def send(self, chat_id, text, expires_at=None, attachments=None):
        message_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = nonce + AESGCM(message_key).encrypt(nonce, text.encode(), chat_id.encode())
        envelopes = []
        for device_id, public in self.bundles(chat_id).items():
            ephemeral = X25519PrivateKey.generate()
            wrap_nonce = os.urandom(12)
            sealed = AESGCM(kek(ephemeral.exchange(public), device_id)).encrypt(
                wrap_nonce, message_key, device_id.encode())
            envelopes.append({"deviceId": device_id,
                              "header": b64(raw(ephemeral.public_key()) + wrap_nonce + sealed)})
        body = {"chatId": chat_id, "contentType": "text/plain", "ciphertext": b64(ciphertext),
                "envelopes": envelopes}
        if expires_at:
            body["expiresAt"] = expires_at
        if attachments:
            body["attachments"] = attachments
        _, sent = self.call("POST", "/v1/messages", body, expect=201)
        return sent["id"]

    def decrypt(self, message):
        (envelope,) = message["envelopes"]
        assert envelope["deviceId"] == self.id
        header = unb64(envelope["header"])
        ephemeral, wrap_nonce, sealed = header[:32], header[32:44], header[44:]
        shared = self.prekey.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        message_key = AESGCM(kek(shared, self.id)).decrypt(wrap_nonce, sealed, self.id.encode())
        body = unb64(message["ciphertext"])
        return AESGCM(message_key).decrypt(body[:12], body[12:], message["chatId"].encode()).decode()


class Stream:
    """A device's Server-Sent Events, read by a thread into a queue."""

    def __init__(self, device, last_event_id=None):
        self.events = queue.Queue()
        self.last = last_event_id
        self.ended = threading.Event()
        self.conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
        headers = {"Authorization": f"Bearer {device.token}", "X-Device-Id": device.id,
                   "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/v1/stream", headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if not line:
                    if "id" in event:
                        self.events.put(event)
                    event = {}
                elif line.startswith("id:"):
                    event["id"] = int(line[3:].strip())
                elif line.startswith("event:"):
                    event["type"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"] = json.loads(line[5:].strip())
        except (OSError, AttributeError, ValueError):
            pass
        self.ended.set()

    def next(self, timeout=5.0):
        event = self.events.get(timeout=timeout)
        self.last = event["id"]
        return event

    def quiet(self, wait=0.5):
        """The events that arrive within `wait`."""
        out = []
        deadline = time.time() + wait
        while True:
            left = deadline - time.time()
            if left <= 0:
                return out
            try:
                out.append(self.next(timeout=left))
            except queue.Empty:
                return out

    def drop(self):
        """Drops the connection as a network failure would."""
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def wait_for(stream, kind, message_id, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        event = stream.next(timeout=max(0.01, deadline - time.time()))
        if event["type"] == kind and event["data"].get("messageId") == message_id:
            return event
    raise AssertionError(f"no {kind} for {message_id}")


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print("ok:", what)


def main():
    secrets = []
    a1 = Device("Ada's laptop", ADA_TOKEN)
    a2 = Device("Ada's phone", ADA_TOKEN)
    b1 = Device("Bob's phone", BOB_TOKEN)
    _, chat = a1.call("POST", "/v1/chats", {"memberIds": [b1.user]}, expect=201)
    chat_id = chat["id"]
    s_a2, s_b1 = Stream(a2), Stream(b1)

    # Three devices, two users: each decrypts what is meant for it.
    text = "hello Bob, from Ada's laptop " + os.urandom(8).hex()
    secrets.append(text)
    started = time.time()
    m1 = a1.send(chat_id, text)
    event = wait_for(s_b1, "message.created", m1)
    latency = time.time() - started
    check(b1.decrypt(event["data"]["message"]) == text, "Bob's phone decrypts Ada's message")
    check(a2.decrypt(wait_for(s_a2, "message.created", m1)["data"]["message"]) == text,
          "Ada's other device decrypts it too")
    check(latency < 2, f"sent (bundles fetched, sealed, posted) and delivered in {latency * 1000:.1f} ms")
    reply = "hi Ada, Bob here " + os.urandom(8).hex()
    secrets.append(reply)
    m2 = b1.send(chat_id, reply)
    _, listed = a1.call("GET", f"/v1/chats/{chat_id}/messages", expect=200)
    check([m["id"] for m in listed] == [m2, m1], "the list is newest first")
    check(a1.decrypt(listed[0]) == reply, "Ada's laptop decrypts Bob's reply from the list")
    check(a2.decrypt(wait_for(s_a2, "message.created", m2)["data"]["message"]) == reply,
          "and Ada's phone from its stream")
    # A message is refused while a device is left out.
    status, error = a1.call("POST", "/v1/messages", {
        "chatId": chat_id, "contentType": "text/plain", "ciphertext": b64(b"x"),
        "envelopes": [{"deviceId": b1.id, "header": b64(b"y")}]})
    check(status == 409 and [d["message"] for d in error["error"]["details"] if d["path"] == "missing"] == [a2.id],
          "leaving out a device is 409 naming it")

    # A fourth device, added later, gets only what is sent after it joined.
    b2 = Device("Bob's laptop", BOB_TOKEN)
    later = "after Bob's laptop joined " + os.urandom(8).hex()
    secrets.append(later)
    m3 = a1.send(chat_id, later)
    _, seen_by_b2 = b2.call("GET", f"/v1/chats/{chat_id}/messages", expect=200)
    check([m["id"] for m in seen_by_b2] == [m3], "the new device lists only the later message")
    check(b2.decrypt(seen_by_b2[0]) == later, "and decrypts it")
    check(b1.decrypt(wait_for(s_b1, "message.created", m3)["data"]["message"]) == later,
          "Bob's phone still decrypts")

    # A file: encrypted on Ada's laptop, its key inside the message, its id in
    # `attachments`; Bob's laptop decrypts the message, downloads the file and opens it.
    marker = "a document for Bob " + os.urandom(8).hex()
    secrets.append(marker)
    document = marker.encode() * 50
    file_id, file_key = upload_sealed(ADA_TOKEN, document)
    m_file = a1.send(chat_id, json.dumps({"text": "the report", "fileKey": b64(file_key)}),
                     attachments=[file_id])
    _, seen_by_b2 = b2.call("GET", f"/v1/chats/{chat_id}/messages?limit=1", expect=200)
    check(seen_by_b2[0]["id"] == m_file and seen_by_b2[0]["attachments"] == [file_id],
          "the message lists its attachment")
    key_for_bob = unb64(json.loads(b2.decrypt(seen_by_b2[0]))["fileKey"])
    _, link = b2.call("GET", f"/v1/files/{file_id}/download", expect=200)
    status, downloaded = fetch("GET", link["url"])
    check(status == 200 and document not in downloaded, "the download is the ciphertext as uploaded")
    check(AESGCM(key_for_bob).decrypt(downloaded[:12], downloaded[12:], None) == document,
          "Bob's laptop decrypts the attached file")
    wait_for(s_b1, "message.created", m_file)

    # A dropped connection resumes with no gap and no duplicate.
    s_b1.quiet(0.3)
    last = s_b1.last
    s_b1.drop()
    offline = []
    for i in range(3):
        t = f"while Bob's phone was offline {i} " + os.urandom(8).hex()
        secrets.append(t)
        offline.append((a1.send(chat_id, t), t))
    s_b1 = Stream(b1, last_event_id=last)
    got = [s_b1.next() for _ in offline]
    got += s_b1.quiet(0.5)
    check([e["id"] for e in got] == [last + 1, last + 2, last + 3], "resumed ids follow on, no gap")
    check([e["data"]["messageId"] for e in got] == [m for m, _ in offline], "no duplicate, in order")
    check([b1.decrypt(e["data"]["message"]) for e in got] == [t for _, t in offline],
          "each resumed message decrypts")

    # A removed device stops receiving at once.
    removed_at = time.time()
    api("DELETE", f"/v1/devices/{a2.id}", ADA_TOKEN, expect=204)
    check(s_a2.ended.wait(3), f"the removed device's stream ended in {time.time() - removed_at:.2f} s")
    status, _ = a2.call("GET", "/v1/chats")
    check(status == 401, "its next call is 401")
    after = "after Ada's phone was removed " + os.urandom(8).hex()
    secrets.append(after)
    m4 = a1.send(chat_id, after)  # sealed to Bob's two devices only
    check(b2.decrypt(b2.call("GET", f"/v1/chats/{chat_id}/messages?limit=1", expect=200)[1][0]) == after,
          "messages flow without the removed device")

    # A self-destructing message is gone from the database after its time.
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)).isoformat()
    fleeting = "this message self-destructs " + os.urandom(8).hex()
    secrets.append(fleeting)
    m5 = a1.send(chat_id, fleeting, expires_at=soon)
    wait_for(s_b1, "message.created", m4)
    check(b1.decrypt(wait_for(s_b1, "message.created", m5)["data"]["message"]) == fleeting,
          "the self-destructing message arrives")
    gone = wait_for(s_b1, "message.deleted", m5, timeout=6)
    check(gone["data"]["reason"] == "expired", "then its expiry is streamed")
    db = sqlite3.connect(f"file:{os.path.join(DATA_DIR, 'sealbox.db')}?mode=ro", uri=True)
    rows = db.execute("SELECT COUNT(*) FROM messages WHERE id = ?", (m5,)).fetchone()[0]
    envs = db.execute("SELECT COUNT(*) FROM message_envelopes WHERE message_id = ?", (m5,)).fetchone()[0]
    db.close()
    check(rows == 0 and envs == 0, "and it is gone from the database")

    # The data directory holds no plaintext.
    found = []
    for root, _, files in os.walk(DATA_DIR):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                content = f.read()
            for secret in secrets:
                if secret.encode() in content:
                    found.append((name, secret))
    check(not found, f"no plaintext in the data directory ({len(secrets)} messages searched)")
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    main()
