"""NATS nkeys: an Ed25519 key pair, its seed kept as `SU...` (a user's), the public key as
`U...`; a server that knows a user by its nkey (or by a JWT, in a creds file) sends a nonce,
which the client signs. Pure Python (RFC 8032's algorithm; a signature takes a few
milliseconds, once per connection): the runner needs no cryptography package.
"""

from __future__ import annotations

import base64
import hashlib

PREFIX_SEED = 18 << 3
PREFIX_USER = 20 << 3

# -- Ed25519 (RFC 8032, section 5.1), on extended coordinates --------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y: int, sign: int) -> int:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)

Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _secret(seed: bytes) -> tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def public_key(seed: bytes) -> bytes:
    scalar, _ = _secret(seed)
    return _encode(_multiply(scalar, G))


def sign(seed: bytes, message: bytes) -> bytes:
    scalar, prefix = _secret(seed)
    public = _encode(_multiply(scalar, G))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = _encode(_multiply(r, G))
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return big_r + int.to_bytes((r + k * scalar) % L, 32, "little")


# -- the nkey encoding: base32 of prefix, key and CRC-16 (XMODEM) ----------------------------


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode_key(prefix: bytes, key: bytes) -> str:
    raw = prefix + key
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def decode_seed(text: str) -> bytes:
    """The 32 bytes of a user's seed (`SU...`); ValueError for anything else."""
    text = text.strip()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise ValueError("not an nkey seed") from None
    if len(raw) != 36 or _crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise ValueError("not an nkey seed (bad length or checksum)")
    if raw[0] & 0xF8 != PREFIX_SEED or ((raw[0] & 7) << 5 | (raw[1] & 0xF8) >> 3) != PREFIX_USER:
        raise ValueError("not a user's nkey seed (SU...)")
    return raw[2:34]


def encode_seed(seed: bytes) -> str:
    """`SU...` for 32 bytes of seed."""
    first = PREFIX_SEED | PREFIX_USER >> 5
    second = (PREFIX_USER & 31) << 3
    return _encode_key(bytes([first, second]), seed)


def user_public_key(seed: bytes) -> str:
    """`U...`: what a server's configuration names the user by."""
    return _encode_key(bytes([PREFIX_USER]), public_key(seed))


def signed_nonce(seed: bytes, nonce: str) -> str:
    """The CONNECT `sig` for a server's nonce: base64url, without padding."""
    return base64.urlsafe_b64encode(sign(seed, nonce.encode())).decode().rstrip("=")
