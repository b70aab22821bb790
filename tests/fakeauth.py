"""The stand-in Telegram's login side: the auth key handshake (DH) and accounts with SRP 2FA.

The handshake is MTProto's real one. Telegram's RSA private keys are not ours, so the
server signs with a test key registered in Pyrogram's table of server keys (the one thing
the tests add to Pyrogram). 2FA is Telegram's SRP (SHA256/PBKDF2/ModPow): a correct password
verifies, a wrong one fails, as the server computes it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pyrogram import raw
from pyrogram.crypto import aes, prime, rsa
from pyrogram.raw.core import TLObject
from pyrogram.utils import btoi, compute_password_hash, itob, sha256, xor

# A 2048-bit RSA key made for these tests only (never Telegram's).
_P = int(
    "ddcd0c967b8b7da0fb24efdb4c716f58dba6f478c40e94988842f8bcae9b41ba824b46c5a941c30ca53c9521b8d92d95"
    "b9d3fbd21086a15edce937e4692e0865d09fe2930ddf3e1d94ed1f6837e221464dd75f6766618c34bb6de8f8d79d81c5"
    "8325ae95460cee065e1736fd32e03cee775371c6c1453dbcd625fe9740fc7f1b",
    16,
)
_Q = int(
    "cad0f391afd77cc36d0ddec3b2d73bb327ea1ebec2a087ad8507933cedbc0607d3c2419a79522f469330230ed4860790"
    "f2b792c04c43bd93a1b860ae2a2129def4a6b43f0a768cae0ab76cb55a858a7251761981f7aad1b15450c4690aa910cc"
    "51a3a0f7af53fab16377e41c48b7240f5f20d0db1b77bf6a03a1f799c2da881d",
    16,
)
TEST_RSA_N = _P * _Q
TEST_RSA_E = 65537
TEST_RSA_D = pow(TEST_RSA_E, -1, (_P - 1) * (_Q - 1))
TEST_FINGERPRINT = 0x7E57_0000_7E57_0001

# The 64-bit pq the client factorises: two 32-bit primes.
PQ_P, PQ_Q = 4_294_967_279, 4_294_967_291
DH_G = 3


def register_test_server_key() -> None:
    """Let Pyrogram's handshake accept the fake server's RSA key."""
    rsa.server_public_keys[TEST_FINGERPRINT] = rsa.PublicKey(TEST_RSA_N, TEST_RSA_E)


def _nonce_bytes(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little", signed=True)


class Handshake:
    """One connection's auth key exchange, server side."""

    def __init__(self) -> None:
        self.server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        self.a = int.from_bytes(os.urandom(256), "big")
        self.tmp_key = b""
        self.tmp_iv = b""

    def answer(self, query: Any) -> tuple[Any, bytes | None]:
        """(answer, new auth key or None)."""
        if isinstance(query, raw.functions.ReqPqMulti):
            return raw.types.ResPQ(
                nonce=query.nonce,
                server_nonce=self.server_nonce,
                pq=(PQ_P * PQ_Q).to_bytes(8, "big"),
                server_public_key_fingerprints=[TEST_FINGERPRINT],
            ), None
        if isinstance(query, raw.functions.ReqDHParams):
            plain = pow(int.from_bytes(query.encrypted_data, "big"), TEST_RSA_D, TEST_RSA_N)
            data = plain.to_bytes(256, "big")[1:]
            inner = TLObject.read(BytesIO(data[20:]))
            assert hashlib.sha1(inner.write()).digest() == data[:20]  # noqa: S324
            new_nonce = _nonce_bytes(inner.new_nonce, 32)
            server_nonce = _nonce_bytes(self.server_nonce, 16)
            self.tmp_key = (
                hashlib.sha1(new_nonce + server_nonce).digest()  # noqa: S324
                + hashlib.sha1(server_nonce + new_nonce).digest()[:12]  # noqa: S324
            )
            self.tmp_iv = (
                hashlib.sha1(server_nonce + new_nonce).digest()[12:]  # noqa: S324
                + hashlib.sha1(new_nonce + new_nonce).digest()  # noqa: S324
                + new_nonce[:4]
            )
            g_a = pow(DH_G, self.a, prime.CURRENT_DH_PRIME)
            answer = raw.types.ServerDHInnerData(
                nonce=query.nonce,
                server_nonce=self.server_nonce,
                g=DH_G,
                dh_prime=prime.CURRENT_DH_PRIME.to_bytes(256, "big"),
                g_a=g_a.to_bytes(256, "big"),
                server_time=int(time.time()),
            ).write()
            with_hash = hashlib.sha1(answer).digest() + answer  # noqa: S324
            with_hash += os.urandom(-len(with_hash) % 16)
            return raw.types.ServerDHParamsOk(
                nonce=query.nonce,
                server_nonce=self.server_nonce,
                encrypted_answer=aes.ige256_encrypt(with_hash, self.tmp_key, self.tmp_iv),
            ), None
        if isinstance(query, raw.functions.SetClientDHParams):
            data = aes.ige256_decrypt(query.encrypted_data, self.tmp_key, self.tmp_iv)
            inner = TLObject.read(BytesIO(data[20:]))
            g_b = int.from_bytes(inner.g_b, "big")
            auth_key = pow(g_b, self.a, prime.CURRENT_DH_PRIME).to_bytes(256, "big")
            return raw.types.DhGenOk(
                nonce=query.nonce, server_nonce=self.server_nonce, new_nonce_hash1=0
            ), auth_key
        raise AssertionError(f"unexpected handshake message {type(query).__name__}")


@dataclass
class FakeAccount:
    """A Telegram account the fake server knows (fake phone numbers, fake people)."""

    phone: str
    user_id: int
    first_name: str = "Test"
    password: str | None = None

    def raw_user(self) -> raw.types.User:
        return raw.types.User(
            id=self.user_id, is_self=True, first_name=self.first_name, access_hash=1,
            phone=self.phone,
        )  # fmt: skip


class Srp:
    """Server side of Telegram's SRP 2FA for one password."""

    def __init__(self, password: str) -> None:
        self.algo = raw.types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(40), salt2=os.urandom(16), g=DH_G,
            p=prime.CURRENT_DH_PRIME.to_bytes(256, "big"),
        )  # fmt: skip
        self.p = prime.CURRENT_DH_PRIME
        self.v = pow(DH_G, btoi(compute_password_hash(self.algo, password)), self.p)
        self.b = btoi(os.urandom(256))
        k = btoi(sha256(self.algo.p + itob(DH_G)))
        self.B = itob((k * self.v + pow(DH_G, self.b, self.p)) % self.p)
        self.srp_id = int.from_bytes(os.urandom(8), "big", signed=True)

    def password_info(self) -> raw.types.account.Password:
        return raw.types.account.Password(
            new_algo=raw.types.PasswordKdfAlgoUnknown(),
            new_secure_algo=raw.types.SecurePasswordKdfAlgoUnknown(),
            secure_random=os.urandom(32),
            has_password=True,
            current_algo=self.algo,
            srp_B=self.B,
            srp_id=self.srp_id,
            hint="the usual one",
        )

    def verify(self, check: Any) -> bool:
        if check.srp_id != self.srp_id:
            return False
        a_bytes = check.A
        u = btoi(sha256(a_bytes + self.B))
        s = pow(btoi(a_bytes) * pow(self.v, u, self.p) % self.p, self.b, self.p)
        g_bytes = itob(DH_G)
        m1 = sha256(
            xor(sha256(self.algo.p), sha256(g_bytes))
            + sha256(self.algo.salt1)
            + sha256(self.algo.salt2)
            + a_bytes
            + self.B
            + sha256(itob(s))
        )
        return bool(m1 == check.M1)
