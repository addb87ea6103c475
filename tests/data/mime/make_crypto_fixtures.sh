#!/bin/sh
# NAME
#   make_crypto_fixtures.sh - make the genuine encrypted and signed fixtures
# SYNOPSIS
#   tests/data/mime/make_crypto_fixtures.sh [outdir]   (default: this directory)
# DESCRIPTION
#   Writes pgp_encrypted.eml (PGP/MIME, ASCII armour), pgp_binary.eml
#   (PGP/MIME, binary OpenPGP packets in base64), smime_enveloped.eml
#   (openssl cms -encrypt), smime_auth_enveloped.eml (the same with
#   AES-GCM: authEnvelopedData) and smime_opaque_signed.eml (openssl cms -sign
#   -nodetach) with throw-away keys made in a temporary directory, which
#   is removed again (its gpg-agent is stopped through gpgconf). The keys
#   are random, so every run gives other bytes; the unit tests check
#   structure, not these bytes. Needs gpg and openssl.
# DIAGNOSTICS
#   Exits non-zero (set -e) when a tool fails.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
tmp=$(mktemp -d /tmp/icapm-crypto-fixtures-XXXXXX)
trap 'gpgconf --homedir "$tmp/gnupg" --kill gpg-agent 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -m 700 "$tmp/gnupg"
export GNUPGHOME="$tmp/gnupg"

# The content every fixture protects: a MIME entity with an attachment.
cat > "$tmp/inner.txt" <<'EOF'
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain

Signed inside the CMS blob.
--inner
Content-Type: application/octet-stream; name="inner.bin"
Content-Disposition: attachment; filename="inner.bin"
Content-Transfer-Encoding: base64

SU5ORVItQVRUQUNITUVOVC1CWVRFUw==
--inner--
EOF

# --- PGP/MIME (RFC 3156)
gpg --batch --quiet --passphrase '' --quick-gen-key 'Bob <bob@example.net>' default default never
gpg --batch --quiet --trust-model always -r bob@example.net --armor --encrypt \
    -o "$tmp/msg.asc" "$tmp/inner.txt"
gpg --batch --quiet --trust-model always -r bob@example.net --encrypt \
    -o "$tmp/msg.gpg" "$tmp/inner.txt"

{
    printf 'From: frank@example.org\nTo: bob@example.net\nSubject: secret\nMIME-Version: 1.0\n'
    printf 'Content-Type: multipart/mixed; boundary="mix"\n\n'
    printf -- '--mix\nContent-Type: text/plain\n\nCover note, readable.\n'
    printf -- '--mix\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\n\n'
    printf -- '--enc\nContent-Type: application/pgp-encrypted\nContent-Description: PGP/MIME version identification\n\nVersion: 1\n\n'
    printf -- '--enc\nContent-Type: application/octet-stream; name="encrypted.asc"\n'
    printf 'Content-Disposition: inline; filename="encrypted.asc"\n\n'
    cat "$tmp/msg.asc"
    printf '\n--enc--\n--mix--\n'
} > "$out/pgp_encrypted.eml"

{
    printf 'From: frank@example.org\nTo: bob@example.net\nSubject: secret, binary\nMIME-Version: 1.0\n'
    printf 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\n\n'
    printf -- '--enc\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n'
    printf -- '--enc\nContent-Type: application/octet-stream; name="msg.gpg"\n'
    printf 'Content-Transfer-Encoding: base64\n\n'
    base64 -w 76 "$tmp/msg.gpg"
    printf -- '--enc--\n'
} > "$out/pgp_binary.eml"

# --- S/MIME (RFC 8551)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -days 36500 -subj "/CN=bob@example.net" 2>/dev/null
{
    printf 'From: grace@example.org\nTo: bob@example.net\nSubject: encrypted\n'
    openssl cms -encrypt -aes256 -in "$tmp/inner.txt" -outform SMIME "$tmp/cert.pem"
} > "$out/smime_enveloped.eml"
{
    printf 'From: grace@example.org\nTo: bob@example.net\nSubject: encrypted, AES-GCM\n'
    openssl cms -encrypt -aes-256-gcm -in "$tmp/inner.txt" -outform SMIME "$tmp/cert.pem"
} > "$out/smime_auth_enveloped.eml"
{
    printf 'From: grace@example.org\nTo: bob@example.net\nSubject: opaque signed\n'
    openssl cms -sign -nodetach -in "$tmp/inner.txt" -signer "$tmp/cert.pem" \
        -inkey "$tmp/key.pem" -outform SMIME
} > "$out/smime_opaque_signed.eml"

# CRLF line ends, the way the milter spools mail.
for f in pgp_encrypted pgp_binary smime_enveloped smime_auth_enveloped smime_opaque_signed; do
    sed -i 's/\r*$/\r/' "$out/$f.eml"
done
