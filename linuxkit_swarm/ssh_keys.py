"""OpenSSH keys of the stack: its login key (from config) and the managers' host key.

Pure functions over key text, with ``cryptography`` doing the parsing and
generation: the settings check ``sshPrivateKey`` and authorize its public key;
``operations.swarmctl host-key`` makes the host key the managers present.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

HOST_KEY_TYPE = "ssh-ed25519"


def _load(private_text: str) -> serialization.SSHPrivateKeyTypes:
    return serialization.load_ssh_private_key(private_text.strip().encode() + b"\n", password=None)


def check_private_key(private_text: str) -> str | None:
    """``None`` for an unencrypted OpenSSH private key, else what is accepted."""
    try:
        _load(private_text)
    except (ValueError, TypeError, IndexError) as exc:
        encrypted = "encrypted" in str(exc).lower() or "password" in str(exc).lower()
        if encrypted:
            return "a private key without passphrase (the stack uses it unattended)"
        return "an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`, e.g. from ssh-keygen)"
    except Exception:  # cryptography raises its own types for unsupported algorithms
        return "an OpenSSH private key of a supported type (ed25519, ecdsa or rsa)"
    return None


def public_key_of(private_text: str) -> str:
    """``<type> <base64>`` of a private key :func:`check_private_key` accepted."""
    public = _load(private_text).public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def new_host_key() -> tuple[str, str]:
    """A fresh ed25519 host key: (OpenSSH private key text, ``ssh-ed25519 <base64>``)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()
