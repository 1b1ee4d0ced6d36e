"""The auditor's module on its own: signed notes, verifier keys, checkpoints, proof checks,
and the key file every process of a deployment signs with.

The signed-note vectors are the published ones: the example of the C2SP signed-note
specification, and the PeterNeumann key and note of golang.org/x/mod/sumdb/note.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.audit.checkpoints import SigningKeyError, load_signing_key
from registry.audit.proofs import (
    EM_DASH,
    Checkpoint,
    ProofError,
    Verifier,
    leaf_hash,
    node_hash,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_vkey,
    root_of,
    sign_note,
    verify_consistency,
    verify_inclusion,
)

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_NOTE = (SPEC_TEXT + "\n" + EM_DASH + " example.com/foo "
             "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (GO_TEXT + "\n" + EM_DASH + " PeterNeumann "
           "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def go_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])  # PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>
    assert seed[0] == 1
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


# Published vectors

def test_the_signed_note_spec_example_verifies() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey() == SPEC_VKEY
    assert open_note(SPEC_NOTE, verifier) == SPEC_TEXT


def test_the_go_note_vector_signs_and_verifies_byte_for_byte() -> None:
    # Ed25519 is deterministic: the Go key signs the Go text into exactly the Go note.
    key = go_private_key()
    verifier = Verifier("PeterNeumann", key.public_key().public_bytes_raw())
    assert verifier.vkey() == GO_VKEY
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    assert open_note(GO_NOTE.encode(), parse_vkey(GO_VKEY)) == GO_TEXT


# Notes that must be refused

def test_a_note_signed_only_by_an_unknown_key_is_refused() -> None:
    with pytest.raises(ProofError, match="no signature by"):
        open_note(GO_NOTE, parse_vkey(SPEC_VKEY))


def test_a_note_with_a_changed_line_is_refused() -> None:
    changed = SPEC_NOTE.replace("example message", "exemplary message")
    with pytest.raises(ProofError, match="does not verify"):
        open_note(changed, parse_vkey(SPEC_VKEY))


def test_a_note_with_a_bad_signature_is_refused() -> None:
    line = SPEC_NOTE.rsplit(" ", 1)[1]
    raw = bytearray(base64.b64decode(line))
    raw[10] ^= 0x01  # one bit of the signature, the key id kept
    forged = SPEC_NOTE.replace(line, base64.b64encode(bytes(raw)).decode() + "\n")
    with pytest.raises(ProofError, match="does not verify"):
        open_note(forged, parse_vkey(SPEC_VKEY))


def test_other_keys_signatures_are_ignored_beside_a_good_one() -> None:
    cosigned = SPEC_NOTE + f"{EM_DASH} witness.example AAAAAAB0ZXN0\n"
    assert open_note(cosigned, parse_vkey(SPEC_VKEY)) == SPEC_TEXT


@pytest.mark.parametrize("note", [
    "no signature block\n",
    SPEC_TEXT + "\n" + "- example.com/foo AAAA\n",  # a hyphen, not an em dash
    SPEC_TEXT + "\n" + EM_DASH + " example.com/foo not*base64\n",
    SPEC_NOTE.removesuffix("\n"),
])
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(ProofError):
        open_note(note, parse_vkey(SPEC_VKEY))


@pytest.mark.parametrize("vkey", [
    "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
    "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong name
    "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # not base64 of 33 bytes
    "example.com/foo+530d903a",
    "",
])
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(ProofError):
        parse_vkey(vkey)


# Checkpoints

def test_a_checkpoint_round_trips_and_must_come_from_its_origin() -> None:
    key = Ed25519PrivateKey.generate()
    root = hashlib.sha256(b"a root").digest()
    note = sign_note(Checkpoint("cooperation-registry/log", 42, root).body(), "cooperation-registry/log", key)
    assert note.splitlines()[:3] == ["cooperation-registry/log", "42", base64.b64encode(root).decode()]
    verifier = Verifier("cooperation-registry/log", key.public_key().public_bytes_raw())
    assert open_checkpoint(note, verifier) == Checkpoint("cooperation-registry/log", 42, root)
    other_origin = sign_note(Checkpoint("another/log", 42, root).body(), "cooperation-registry/log", key)
    with pytest.raises(ProofError, match="origin"):
        open_checkpoint(other_origin, verifier)


@pytest.mark.parametrize("body", ["log\n-1\nAAAA\n", "log\n01\n" + "A" * 44 + "\n", "log\n3\nAAAA\n", "log\n3\n"])
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(ProofError):
        parse_checkpoint(body)


# Proof checks refuse what does not add up

def tree(n: int) -> list[bytes]:
    return [leaf_hash(bytes([i % 256, i // 256])) for i in range(n)]


def test_an_inclusion_proof_for_another_leaf_or_root_is_refused() -> None:
    leaves = tree(7)
    _, root = root_of(leaves)
    # Leaf 4 of 7: sibling leaf 5, then the pair (6), then the left half (0..3).
    proof = [leaves[5], leaves[6], root_of(leaves[:4])[1]]
    verify_inclusion(4, 7, leaves[4], proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(4, 7, leaves[3], proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(5, 7, leaves[4], proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(4, 7, leaves[4], proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(4, 7, leaves[4], [*proof, root], root)
    with pytest.raises(ProofError):
        verify_inclusion(7, 7, leaves[4], proof, root)


def test_a_consistency_proof_refuses_a_rewritten_past() -> None:
    leaves = tree(7)
    _, root3 = root_of(leaves[:3])
    _, root7 = root_of(leaves)
    # RFC 9162 section 2.1.4.1's example: from 3 to 7 the proof is c, d, g, l.
    c, d = leaves[2], leaves[3]
    g = node_hash(leaves[0], leaves[1])
    l_ = root_of(leaves[4:])[1]
    verify_consistency(3, 7, root3, root7, [c, d, g, l_])
    forked = [*leaves[:2], leaf_hash(b"another event"), *leaves[3:]]
    with pytest.raises(ProofError):
        verify_consistency(3, 7, root_of(forked[:3])[1], root7, [c, d, g, l_])
    with pytest.raises(ProofError):
        verify_consistency(3, 7, root3, root_of(forked)[1], [c, d, g, l_])
    with pytest.raises(ProofError):
        verify_consistency(3, 7, root3, root7, [])
    with pytest.raises(ProofError):
        verify_consistency(4, 3, root3, root7, [c])
    with pytest.raises(ProofError):
        verify_consistency(3, 3, root3, root7, [])


# The signing key file

def test_the_key_file_is_made_with_mode_0600_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    first = load_signing_key(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signing_key(str(path))
    assert again.public_key().public_bytes_raw() == first.public_key().public_bytes_raw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key"]


def _public_key_of(path: str) -> bytes:
    return load_signing_key(path).public_key().public_bytes_raw()


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    path = str(tmp_path / "signing.key")
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        keys = pool.map(_public_key_of, [path] * 32)
    assert len(set(keys)) == 1
    assert keys[0] == _public_key_of(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key"]


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="directory .* does not exist"):
        load_signing_key(str(tmp_path / "absent" / "signing.key"))
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.mkdir()  # a directory where the file should be: cannot be read (even by root)
    with pytest.raises(SigningKeyError, match="cannot read it"):
        load_signing_key(str(path))


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("not a key\n")
    os.chmod(path, 0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted PKCS#8 PEM private key"):
        load_signing_key(str(path))
    assert path.read_text() == "not a key\n"


def test_the_default_key_file_is_made_in_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.audit.checkpoints import Signer
    from registry.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGISTRY_SIGNING_KEY", raising=False)
    signer = Signer.of(Settings.from_env({}))
    assert signer.origin == "cooperation-registry/log"
    assert stat.S_IMODE((tmp_path / "var" / "signing.key").stat().st_mode) == 0o600
    assert Signer.of(Settings()).verifier == signer.verifier
