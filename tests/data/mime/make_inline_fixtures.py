#!/usr/bin/env python3
"""
make_inline_fixtures.py - write the inline-encoding and preamble fixtures

SUMMARY
    Writes tests/data/mime/{uuencode,yenc,binhex}_{eicar,clean}.eml (a
    text/plain body with text before and after one inline-encoded block),
    preamble_{eicar,clean}.eml (the file as the top-level multipart's
    preamble) and nested_epilogue_{eicar,clean}.eml (the file as the
    epilogue of a multipart/alternative inside a multipart/mixed). CRLF
    line ends, as the milter spools mail. The encoders are written here
    from the format descriptions; run from anywhere, no arguments.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLEAN = b"This is a harmless little file.\nNothing to see here.\n"
BINHEX_ALPHABET = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"


def uuencode(data: bytes, name: str) -> str:
    """uuencode - a begin/end block, 45 bytes a line."""
    ch = lambda v: "`" if v == 0 else chr(32 + v)
    out = [f"begin 644 {name}"]
    for off in range(0, len(data), 45):
        chunk = data[off:off + 45]
        line = ch(len(chunk))
        padded = chunk + b"\0" * (-len(chunk) % 3)
        for i in range(0, len(padded), 3):
            b0, b1, b2 = padded[i:i + 3]
            line += ch(b0 >> 2) + ch(((b0 << 4) | (b1 >> 4)) & 63) + \
                ch(((b1 << 2) | (b2 >> 6)) & 63) + ch(b2 & 63)
        out.append(line)
    out += ["`", "end"]
    return "\n".join(out) + "\n"


def yenc(data: bytes, name: str) -> str:
    """yenc - a =ybegin/=yend block, 128 characters a line."""
    out, line = [f"=ybegin line=128 size={len(data)} name={name}"], ""
    for b in data:
        c = (b + 42) & 0xff
        if c in (0, 10, 13, 61):
            line += "="
            c = (c + 64) & 0xff
        line += chr(c)
        if len(line) >= 128:
            out.append(line)
            line = ""
    if line:
        out.append(line)
    out.append(f"=yend size={len(data)}")
    return "\n".join(out) + "\n"


def crc16(data: bytes) -> int:
    """crc16 - the CCITT CRC of BinHex 4.0."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xffff
    return crc


def binhex(data: bytes, name: str) -> str:
    """binhex - header, data fork, empty resource fork; RLE, then 6-bit."""
    n = name.encode()
    hdr = bytes([len(n)]) + n + b"\0" + b"TEXTttxt" + b"\0\0" + len(data).to_bytes(4, "big") + b"\0" * 4
    raw = hdr + crc16(hdr + b"\0\0").to_bytes(2, "big")
    raw += data + crc16(data + b"\0\0").to_bytes(2, "big") + b"\0\0"
    rle = bytearray()
    for b in raw:
        rle += b"\x90\x00" if b == 0x90 else bytes([b])
    chars, bits, nbits = bytearray(), 0, 0
    for b in rle:
        bits, nbits = (bits << 8) | b, nbits + 8
        while nbits >= 6:
            nbits -= 6
            chars.append(BINHEX_ALPHABET[(bits >> nbits) & 63])
    if nbits:
        chars.append(BINHEX_ALPHABET[(bits << (6 - nbits)) & 63])
    text = ":" + chars.decode() + ":"
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "(This file must be converted with BinHex 4.0)\n\n" + "\n".join(lines) + "\n"


def headers(subject: str, ctype: str) -> str:
    """headers - the fixed header block of every fixture."""
    return ("From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n"
            f"Subject: {subject}\nDate: Mon, 04 Mar 2024 10:00:00 +0100\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.org>\nMIME-Version: 1.0\n"
            f"Content-Type: {ctype}\n")


def write(name: str, text: str) -> None:
    """write - the fixture with CRLF line ends."""
    (HERE / name).write_bytes(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("latin-1"))


def main() -> None:
    """main - write every fixture."""
    for kind, enc in (("uuencode", uuencode), ("yenc", yenc), ("binhex", binhex)):
        for tag, data, fname in (("eicar", EICAR, "eicar.com"), ("clean", CLEAN, "notes.txt")):
            body = ("Hello Bob,\n\nthe file you asked for is below.\n\n" + enc(data, fname) +
                    "\nRegards,\nAlice\n")
            # yEnc is 8-bit text (as on Usenet); the others are 7-bit.
            cs, cte = ("iso-8859-1", "8bit") if kind == "yenc" else ("us-ascii", "7bit")
            write(f"{kind}_{tag}.eml",
                  headers(f"{kind} {tag}", f"text/plain; charset={cs}") +
                  f"Content-Transfer-Encoding: {cte}\n\n" + body)
    for tag, data in (("eicar", EICAR), ("clean", CLEAN)):
        text = data.decode("latin-1")
        write(f"preamble_{tag}.eml",
              headers(f"preamble {tag}", 'multipart/mixed; boundary="outer"') + "\n" + text +
              "\n--outer\nContent-Type: text/plain\n\nJust a note.\n--outer--\n")
        write(f"nested_epilogue_{tag}.eml",
              headers(f"nested epilogue {tag}", 'multipart/mixed; boundary="outer"') +
              "\nThis is a multi-part message in MIME format.\n--outer\n"
              'Content-Type: multipart/alternative; boundary="inner"\n\n'
              "--inner\nContent-Type: text/plain\n\nplain\n"
              "--inner\nContent-Type: text/html\n\n<p>html</p>\n--inner--\n" + text +
              "\n--outer\nContent-Type: text/plain\n\nsecond part\n--outer--\n")


if __name__ == "__main__":
    main()
