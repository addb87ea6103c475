#!/usr/bin/env python3
"""
make_corpus.py - write the adversarial MIME corpus

SUMMARY
    Writes tests/data/mime/corpus/*.eml and corpus/MANIFEST: small
    messages whose payload (the 68-byte EICAR test file, mostly base64 in
    an attachment called invoice.exe) only a correct reading of the MIME
    structure reveals, each with a clean twin of the same shape, plus
    clean messages in the shapes real mail clients write. The integration
    case tests/integration/cases_corpus.py sends them through Postfix, the
    milter, c-icap and clamd and checks each against MANIFEST.

    Every message has CRLF line ends unless its trick needs others, a
    fixed Date and the literal header line
        Message-ID: <CORPUS-ID@icapm-lab.test>
    which the test replaces byte-wise with a unique id before sending.

    MANIFEST has one line per message:
        <file> TAB <class> TAB <expect> TAB <description>
    expect: infected (550 5.7.1 naming the virus), ambiguous (550 5.6.0),
    rejected (either: a payload inside an ambiguous structure), clean
    (250, delivered with one X-Virus-Status: Clean).

    The output is deterministic except for the two signed client messages
    (client_smime_signed_clean.eml, client_pgpmime_signed_clean.eml):
    their keys are made on the spot (openssl, gpg in a temporary
    GNUPGHOME), so an existing copy is kept unless --regen-crypto is given.

USAGE
    python3 tests/data/mime/make_corpus.py [--regen-crypto] [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import quopri
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_inline_fixtures import binhex, yenc  # noqa: E402  (BinHex 4.0 and yEnc encoders, tested)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLEAN = b"harmless little file\n" * 3
# As tests/integration/mail.py: SENDER, RECIPIENT.
SENDER = "sender@client.icapm-lab.test"
RECIPIENT = "user@dest.icapm-lab.test"
DATE = "Mon, 04 Mar 2024 10:00:00 +0100"
MSGID = "<CORPUS-ID@icapm-lab.test>"
# Placeholders for line ends that differ from CRLF, replaced after the
# "\n" -> CRLF conversion.
BARE_CR = "\x00BARECR\x00"
BARE_LF = "\x00BARELF\x00"
NUL = "\x00NUL\x00"

ENTRIES: list[tuple[str, str, str, str, bytes]] = []   # file, class, expect, what, bytes


# ---------------------------------------------------------------- helpers

def wire(text: str) -> bytes:
    """wire - text with "\n" as CRLF and the placeholders resolved; latin-1
    so 8-bit header bytes can be written as \\xNN."""
    out = text.replace("\r\n", "\n").replace("\n", "\r\n")
    out = out.replace(BARE_CR, "\r").replace(BARE_LF, "\n").replace(NUL, "\0")
    return out.encode("latin-1")


def head(name: str, extra: str = "") -> str:
    """head - the fixed header block (without Content-Type) of a message."""
    return (f"From: Test Sender <{SENDER}>\nTo: Test User <{RECIPIENT}>\n"
            f"Subject: corpus {name}\nDate: {DATE}\nMessage-ID: {MSGID}\n"
            f"MIME-Version: 1.0\n{extra}")


def b64(data: bytes, width: int = 76) -> str:
    """b64 - base64 in lines of width characters, each ending in "\n"."""
    text = base64.b64encode(data).decode()
    return "".join(text[i:i + width] + "\n" for i in range(0, len(text), width))


def exe(data: bytes, cte: str = "base64", encoded: str | None = None,
        name: str = "invoice.exe", ctype: str = "application/octet-stream",
        extra: str = "") -> str:
    """exe - the attachment part (headers, blank line, content)."""
    return (f'Content-Type: {ctype}; name="{name}"\n'
            f'Content-Disposition: attachment; filename="{name}"\n'
            f"Content-Transfer-Encoding: {cte}\n{extra}\n"
            + (encoded if encoded is not None else b64(data)))


TEXT = "Content-Type: text/plain; charset=us-ascii\n\nPlease find the invoice attached.\n"
PRE = "This is a multi-part message in MIME format.\n"


def multipart(boundary: str, parts: list[str], pre: str = PRE, epi: str = "",
              close: bool = True) -> str:
    """multipart - a multipart body: preamble, parts, close delimiter, epilogue."""
    out = pre
    for p in parts:
        out += f"--{boundary}\n{p}"
    if close:
        out += f"--{boundary}--\n{epi}"
    return out


def add(name: str, cls: str, expect: str, what: str, data: bytes | str) -> None:
    """add - one corpus message."""
    if isinstance(data, str):
        data = wire(data)
    assert len(data) < 1_000_000, name
    assert data.count(MSGID.encode()) == 1, name
    ENTRIES.append((f"{name}.eml", cls, expect, what, data))


def twins(cls: str, trick: str, build, eicar_expect: str, clean_expect: str,
          what: str) -> None:
    """twins - <cls>_<trick>_eicar and _clean from build(name, payload)."""
    for tag, payload, expect in (("eicar", EICAR, eicar_expect), ("clean", CLEAN, clean_expect)):
        name = f"{cls}_{trick}_{tag}"
        add(name, cls, expect, f"{what} ({'EICAR' if tag == 'eicar' else 'clean twin'})",
            build(name, payload))


def mixed(name: str, body: str, ctype: str | None = None, boundary: str = "b1") -> str:
    """mixed - a whole message: head, Content-Type, blank line, body."""
    ctype = ctype or f'multipart/mixed; boundary="{boundary}"'
    return head(name) + f"Content-Type: {ctype}\n\n" + body


def std(name: str, payload: bytes, **kw) -> str:
    """std - text part plus the attachment, nothing odd."""
    return mixed(name, multipart("b1", [TEXT, exe(payload, **kw)]))


# ---------------------------------------------------------------- 1 boundary

def boundary_class() -> None:
    cls = "boundary"

    def dup_body(payload: bytes) -> str:
        # Read with "aaa": one text part whose text holds the raw base64.
        # Read with "bbb": the attachment.
        return ("--aaa\n" + "Content-Type: text/plain\n\nHello,\n"
                + multipart("bbb", [exe(payload)], pre="") + "--aaa--\n")

    twins(cls, "dupparam",
          lambda n, p: mixed(n, dup_body(p), 'multipart/mixed; boundary="aaa"; boundary="bbb"'),
          "ambiguous", "ambiguous", 'two boundary parameters, payload under the second ("bbb")')
    twins(cls, "rfc2231",
          lambda n, p: mixed(n, dup_body(p),
                             'multipart/mixed; boundary="aaa"; boundary*0="bb"; boundary*1="b"'),
          "ambiguous", "ambiguous", 'boundary="aaa" plus RFC 2231 boundary*0/*1 giving "bbb"; '
          'payload under "bbb"')
    twins(cls, "rfc2231rev",
          lambda n, p: mixed(n, dup_body(p),
                             'multipart/mixed; boundary*0="aa"; boundary*1="a"; boundary="bbb"'),
          "infected", "ambiguous", 'RFC 2231 boundary*0/*1 giving "aaa" before boundary="bbb"; '
          'payload under "bbb"')
    twins(cls, "encword",
          lambda n, p: mixed(n, multipart("=?utf-8?q?abc?=", [TEXT, exe(p)]),
                             'multipart/mixed; boundary="=?utf-8?q?abc?="'),
          "infected", "ambiguous", "boundary that looks like an encoded word, delimiters use "
          "it literally")
    twins(cls, "encworddecoded",
          lambda n, p: mixed(n, multipart("abc", [TEXT, exe(p)]),
                             'multipart/mixed; boundary="=?utf-8?q?abc?="'),
          "infected", "ambiguous", "boundary that looks like an encoded word, delimiters use "
          "its decoded value (abc)")
    twins(cls, "trailspace",
          lambda n, p: mixed(n, multipart("abc", [TEXT, exe(p)]),
                             'multipart/mixed; boundary="abc "'),
          "infected", "ambiguous", 'boundary "abc " (trailing space inside the quotes), '
          'delimiter lines "--abc"')

    def prefix(n: str, p: bytes, outer: str, inner: str) -> str:
        innerpart = (f'Content-Type: multipart/mixed; boundary="{inner}"\n\n'
                     + multipart(inner, [TEXT, exe(p)], pre=""))
        return mixed(n, multipart(outer, ["Content-Type: text/plain\n\nOuter text.\n",
                                          innerpart]),
                     f'multipart/mixed; boundary="{outer}"')
    twins(cls, "prefix", lambda n, p: prefix(n, p, "frontier-long", "frontier"),
          "infected", "ambiguous", 'inner boundary "frontier" a prefix of the outer '
          '"frontier-long"; payload in the inner multipart')
    twins(cls, "prefixrev", lambda n, p: prefix(n, p, "frontier", "frontier-long"),
          "infected", "ambiguous", 'outer boundary "frontier" a prefix of the inner '
          '"frontier-long" (prefix matching splits the inner); payload in the inner multipart')
    twins(cls, "none",
          lambda n, p: mixed(n, multipart("x", [TEXT, exe(p)]), "multipart/mixed"),
          "infected", "ambiguous", "multipart/mixed without a boundary parameter, body holds "
          "--x parts")
    # The attachment's delimiter line ends in a bare CR: the next header
    # follows on the same LF-terminated line.
    twins(cls, "barecr",
          lambda n, p: mixed(n, PRE + "--b1\n" + TEXT + "--b1" + BARE_CR + exe(p) + "--b1--\n"),
          "ambiguous", "ambiguous", "the attachment's delimiter line ends in a bare CR "
          "(--b1<CR>Content-Type... with no LF); Postfix >= 3.7.10 (cleanup_replace_stray_cr_lf) "
          "makes it '--b1 Content-Type...' before the milter")
    twins(cls, "barecrall",
          lambda n, p: mixed(n, (PRE + "--b1\n" + TEXT + "--b1\n" + exe(p) + "--b1--")
                             .replace("\n", BARE_CR) + "\n"),
          "clean", "clean", "the whole body has bare CR line ends (headers CRLF; one "
          "final CRLF); Postfix turns each CR into a space: one long line, no delimiter")
    # Postfix (smtpd_forbid_bare_newline = no) takes a bare LF as a line
    # end and hands the milter CRLF, so this is plain MIME by then.
    twins(cls, "barelf",
          lambda n, p: mixed(n, PRE + "--b1\n" + TEXT + "--b1" + BARE_LF + exe(p) + "--b1--\n"),
          "infected", "clean", "the attachment's delimiter line ends in a bare LF in a CRLF "
          "message (Postfix normalises it to CRLF)")
    twins(cls, "noclose",
          lambda n, p: mixed(n, multipart("b1", [TEXT, exe(p)], close=False)),
          "infected", "clean", "no close delimiter: the attachment is the last part and "
          "the message just ends")
    twins(cls, "noclosenested",
          lambda n, p: mixed(n, multipart("outer", [
              TEXT, 'Content-Type: multipart/mixed; boundary="inner"\n\n'
              + multipart("inner", [TEXT, exe(p)], pre="", close=False)]),
              'multipart/mixed; boundary="outer"'),
          "infected", "clean", "inner multipart without close delimiter, closed by the "
          "outer close delimiter; payload in the inner")


# ---------------------------------------------------------------- 2 outside

def outside_class() -> None:
    cls = "outside"

    def nested_pre(n: str, p: bytes) -> str:
        inner = ('Content-Type: multipart/alternative; boundary="inner"\n\n'
                 + multipart("inner", ["Content-Type: text/plain\n\nplain\n",
                                       "Content-Type: text/html\n\n<p>html</p>\n"],
                             pre=p.decode() + "\n"))
        return mixed(n, multipart("outer", [TEXT, inner]), boundary="outer")
    twins(cls, "nestedpreamble", nested_pre, "infected", "clean",
          "the file as raw text in the preamble of a nested multipart/alternative")
    twins(cls, "topepilogue",
          lambda n, p: mixed(n, multipart("b1", [TEXT, "Content-Type: text/plain\n\nmore\n"],
                                          epi=p.decode() + "\n")),
          "infected", "clean", "the file as raw text in the epilogue of the top multipart")


# ---------------------------------------------------------------- 3 encoding

def encoding_class() -> None:
    cls = "encoding"

    def nopad(p: bytes) -> bytes:
        return p if len(p) % 3 else p[:-1]      # the clean twin needs padding too
    twins(cls, "b64nopad",
          lambda n, p: std(n, nopad(p), encoded=b64(nopad(p)).replace("=", "")),
          "infected", "clean", "base64 without its = padding")

    def junk(p: bytes) -> str:
        text, out = base64.b64encode(p).decode(), ""
        for i in range(0, len(text), 10):
            out += text[i:i + 10] + "!*."[(i // 10) % 3]
        return "".join(out[i:i + 60] + "\n" for i in range(0, len(out), 60))
    twins(cls, "b64junk", lambda n, p: std(n, p, encoded=junk(p)),
          "infected", "ambiguous", "base64 with junk characters (! * .) inside the lines")

    def midpad(p: bytes) -> str:
        half = len(p) // 2
        assert half % 3, "the first half must end in = padding"
        return b64(p[:half]) + b64(p[half:])
    twins(cls, "b64midpad", lambda n, p: std(n, p, encoded=midpad(p)),
          "infected", "ambiguous", "two separately padded base64 runs (first half==, then "
          "the second half): the file only appears if decoding goes on after the =")
    twins(cls, "b64midpadline",
          lambda n, p: std(n, p, encoded=midpad(p).replace("\n", "", 1)),
          "infected", "ambiguous", "as b64midpad, the == in the middle of one line")
    twins(cls, "ctexbase64", lambda n, p: std(n, p, cte="x-base64"),
          "infected", "clean", "Content-Transfer-Encoding: x-base64 (unknown token)")
    twins(cls, "ctebase-64", lambda n, p: std(n, p, cte="base-64"),
          "infected", "clean", "Content-Transfer-Encoding: base-64 (unknown token)")
    twins(cls, "cteupper", lambda n, p: std(n, p, cte="BASE64"),
          "infected", "clean", "Content-Transfer-Encoding: BASE64 (case-insensitive)")
    twins(cls, "ctequoted", lambda n, p: std(n, p, cte='"base64"'),
          "infected", "clean", 'Content-Transfer-Encoding: "base64" (quoted)')
    twins(cls, "ctecomment", lambda n, p: std(n, p, cte="base64 (it is)"),
          "infected", "clean", "Content-Transfer-Encoding: base64 (comment)")
    twins(cls, "dupcte7bitfirst",
          lambda n, p: std(n, p, cte="7bit", extra="Content-Transfer-Encoding: base64\n"),
          "infected", "ambiguous", "two Content-Transfer-Encoding headers: 7bit then base64")
    twins(cls, "dupcteb64first",
          lambda n, p: std(n, p, extra="Content-Transfer-Encoding: 7bit\n"),
          "infected", "ambiguous", "two Content-Transfer-Encoding headers: base64 then 7bit")

    def qp_soft(p: bytes) -> str:
        # Soft line breaks every 20 characters: the signature text is split
        # over four lines; a final soft break keeps the file's exact length.
        text = p.decode()
        return "".join(text[i:i + 20] + "=\n" for i in range(0, len(text), 20))
    twins(cls, "qpsoftbreak", lambda n, p: std(n, p, cte="quoted-printable",
                                               encoded=qp_soft(p)),
          "infected", "clean", "quoted-printable with soft line breaks splitting the signature")

    def qp_esc(p: bytes) -> str:
        toks = []
        for b in p:
            c = chr(b)
            toks.append(f"={b:02X}" if c in "EICAR" or b in (10, 61) else c)
        return qp_lines(toks)
    twins(cls, "qpescapes", lambda n, p: std(n, p, cte="quoted-printable", encoded=qp_esc(p)),
          "infected", "clean", "quoted-printable with =45=49=43=41=52 style escapes for the "
          "letters of EICAR")

    def qp_lower(p: bytes) -> str:
        return qp_lines([f"={b:02x}" if chr(b).isalpha() or b in (10, 61) else chr(b)
                         for b in p])
    twins(cls, "qplowerhex", lambda n, p: std(n, p, cte="quoted-printable", encoded=qp_lower(p)),
          "infected", "clean", "quoted-printable with every letter escaped in lower-case hex "
          "(=4a style)")


def qp_lines(tokens: list[str], width: int = 72) -> str:
    """qp_lines - QP tokens (characters or =XX escapes) in lines of at most
    width characters, each ending in a soft line break, never splitting an
    escape; the final soft break keeps the decoded length exact."""
    out, line = "", ""
    for t in tokens:
        if len(line) + len(t) > width:
            out += line + "=\n"
            line = ""
        line += t
    return out + line + "=\n"


# ---------------------------------------------------------------- 4 inline

def uuencode(data: bytes, name: str) -> str:
    """uuencode - begin/end block, binascii.b2a_uu per 45-byte line."""
    out = f"begin 644 {name}\n"
    for i in range(0, len(data), 45):
        out += binascii.b2a_uu(data[i:i + 45], backtick=True).decode()
    return out + "`\nend\n"


def inline_class() -> None:
    cls = "inline"

    def body(block: str) -> str:
        return "Hello,\n\nthe file you asked for is below.\n\n" + block + "\nRegards\n"

    def single(n: str, block: str, cs: str = "us-ascii", cte: str = "7bit") -> str:
        return (head(n) + f"Content-Type: text/plain; charset={cs}\n"
                f"Content-Transfer-Encoding: {cte}\n\n" + body(block))
    twins(cls, "uuencode", lambda n, p: single(n, uuencode(p, "eicar.com")),
          "infected", "clean", "uuencode block inside a text/plain body")
    twins(cls, "yenc", lambda n, p: single(n, yenc(p, "eicar.com"), "iso-8859-1", "8bit"),
          "infected", "clean", "yEnc block inside a text/plain body")
    twins(cls, "binhex", lambda n, p: single(n, binhex(p, "eicar.com")),
          "infected", "clean", "BinHex 4.0 block inside a text/plain body")

    def in_b64_text(n: str, p: bytes) -> str:
        text = wire(body(uuencode(p, "eicar.com")))
        part = ("Content-Type: text/plain; charset=us-ascii\n"
                "Content-Transfer-Encoding: base64\n\n" + b64(text))
        return mixed(n, multipart("b1", [part]))
    twins(cls, "uuencodeinb64", in_b64_text, "infected", "clean",
          "uuencode block inside a base64-encoded text/plain part")

    def in_qp_text(n: str, p: bytes) -> str:
        text = quopri.encodestring(wire(body(yenc(p, "eicar.com"))).replace(b"\r\n", b"\n"))
        part = ("Content-Type: text/plain; charset=iso-8859-1\n"
                "Content-Transfer-Encoding: quoted-printable\n\n" + text.decode())
        return mixed(n, multipart("b1", [part]))
    twins(cls, "yencinqp", in_qp_text, "infected", "clean",
          "yEnc block inside a quoted-printable text/plain part")


# ---------------------------------------------------------------- 5 structure

def structure_class() -> None:
    cls = "structure"

    def deep(n: str, p: bytes, levels: int = 24) -> str:
        inner = exe(p)
        for lvl in reversed(range(1, levels)):
            inner = (f'Content-Type: multipart/mixed; boundary="d{lvl}"\n\n'
                     + multipart(f"d{lvl}", [inner], pre=""))
        return mixed(n, multipart("d0", [TEXT, inner]), boundary="d0")
    twins(cls, "deep24", deep, "ambiguous", "ambiguous",
          "24 nested multipart/mixed levels (MaxMimeDepth 16), payload at the bottom")

    def many(n: str, p: bytes, count: int = 1010) -> str:
        parts = [f"Content-Type: text/plain\n\n{i}\n" for i in range(count)]
        return mixed(n, multipart("p", parts + [exe(p)]), boundary="p")
    twins(cls, "manyparts", many, "infected", "ambiguous",
          "1011 parts (MaxMimeParts 1000), payload the last part")

    def inner_msg(p: bytes) -> str:
        return ("Subject: the whole message\nMIME-Version: 1.0\n"
                'Content-Type: multipart/mixed; boundary="pb"\n\n'
                + multipart("pb", [TEXT, exe(p)]))

    def partial(n: str, p: bytes, number: int) -> str:
        whole = inner_msg(p)
        cut = whole.index("--pb\nContent-Type: application/octet-stream")
        if number == 1:      # inner headers, text part and all of the attachment
            frag = whole[:whole.index("--pb--")]
        else:                # the attachment part with its headers, and the close
            frag = whole[cut:]
        return (head(n) + 'Content-Type: message/partial; id="corpus-partial@icapm-lab.test"; '
                f"number={number}; total=2\n\n" + frag)
    twins(cls, "partial1", lambda n, p: partial(n, p, 1), "infected", "ambiguous",
          "message/partial number=1 of 2: inner headers, text part and the whole base64 "
          "attachment (no close delimiter)")
    twins(cls, "partial2", lambda n, p: partial(n, p, 2), "ambiguous", "ambiguous",
          "message/partial number=2 of 2: the attachment part (headers, base64) and the close")

    twins(cls, "noheaders",
          lambda n, p: mixed(n, multipart("b1", [TEXT, b64(p)])),
          "ambiguous", "ambiguous", "a part with no headers at all: the delimiter line is "
          "followed directly by the base64 lines, no blank line")
    twins(cls, "noheadersblank",
          lambda n, p: mixed(n, multipart("b1", [TEXT, "\n" + b64(p)])),
          "clean", "clean", "a part with an empty header section (blank line) then base64 "
          "lines: text/plain 7bit by RFC 2045, so the text is base64 that no reader decodes")
    twins(cls, "emptypart",
          lambda n, p: mixed(n, multipart("b1", [
              TEXT, 'Content-Type: application/octet-stream; name="empty.bin"\n'
                    "Content-Transfer-Encoding: base64\n", exe(p)])),
          "infected", "clean", "a part with headers but no blank line and no content, "
          "then the attachment")

    def rfc822_b64(n: str, p: bytes, inner_boundary: str = "fw1") -> str:
        inner = wire(mixed("forwarded", multipart(inner_boundary, [TEXT, exe(p)]),
                           boundary=inner_boundary)
                     .replace(f"Message-ID: {MSGID}\n", "Message-ID: <inner@icapm-lab.test>\n"))
        part = ("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n"
                'Content-Disposition: attachment; filename="forwarded.eml"\n\n' + b64(inner))
        return mixed(n, multipart("b1", [TEXT, part]))
    twins(cls, "rfc822b64", rfc822_b64, "infected", "clean",
          "message/rfc822 with Content-Transfer-Encoding: base64 holding a message with the "
          "attachment")
    twins(cls, "rfc822b64sameboundary", lambda n, p: rfc822_b64(n, p, "b1"), "infected", "clean", "as rfc822b64, the encoded message reusing the outer boundary b1 (it "
          "cannot collide: it is base64 on the wire)")


# ---------------------------------------------------------------- 6 alternatives

def alternative_class() -> None:
    cls = "alternative"
    plain = "Content-Type: text/plain; charset=us-ascii\n\nHello, see the HTML version.\n"

    def html(p: bytes) -> bytes:
        return b"<html><body><p>" + p.replace(b"\n", b"<br>") + b"</p></body></html>\n"

    def alt(n: str, parts: list[str]) -> str:
        return (head(n) + 'Content-Type: multipart/alternative; boundary="alt"\n\n'
                + multipart("alt", parts))
    twins(cls, "htmlraw",
          lambda n, p: alt(n, [plain, "Content-Type: text/html; charset=us-ascii\n\n"
                               + html(p).decode()]),
          "infected", "clean", "text/plain clean, text/html holding the file as raw text")
    twins(cls, "htmlb64",
          lambda n, p: alt(n, [plain, "Content-Type: text/html; charset=us-ascii\n"
                               "Content-Transfer-Encoding: base64\n\n" + b64(html(p))]),
          "infected", "clean", "text/plain clean, base64 text/html holding the file")
    twins(cls, "third",
          lambda n, p: alt(n, [plain, "Content-Type: text/html; charset=us-ascii\n\n"
                               "<p>Hello</p>\n", exe(p)]),
          "infected", "clean", "a third alternative: application/octet-stream base64")


# ---------------------------------------------------------------- 7 headers

def header_class() -> None:
    cls = "headers"
    body = lambda p: multipart("b1", [TEXT, exe(p)])  # noqa: E731

    twins(cls, "dupcttextfirst",
          lambda n, p: head(n) + 'Content-Type: text/plain\nContent-Type: multipart/mixed; '
          'boundary="b1"\n\n' + body(p),
          "infected", "ambiguous", "two Content-Type headers: text/plain, then multipart/mixed")
    twins(cls, "dupctmultifirst",
          lambda n, p: head(n) + 'Content-Type: multipart/mixed; boundary="b1"\n'
          "Content-Type: text/plain\n\n" + body(p),
          "infected", "ambiguous", "two Content-Type headers: multipart/mixed, then text/plain")
    twins(cls, "duppartct",
          lambda n, p: mixed(n, multipart("b1", [TEXT, "Content-Type: text/plain\n" + exe(p)])),
          "infected", "ambiguous", "the attachment part has two Content-Type headers "
          "(text/plain, then application/octet-stream)")
    twins(cls, "commentfakefirst",
          lambda n, p: mixed(n, multipart("real", [TEXT, exe(p)]),
                             'multipart/mixed; (boundary="fake";) boundary="real"'),
          "infected", "ambiguous", 'a comment hides boundary="fake" before boundary="real"')
    twins(cls, "commentfakelast",
          lambda n, p: mixed(n, multipart("real", [TEXT, exe(p)]),
                             'multipart/mixed; boundary="real" (boundary="fake";)'),
          "infected", "ambiguous", 'boundary="real", then a comment hiding boundary="fake"')
    twins(cls, "paramfoo",
          lambda n, p: mixed(n, body(p), 'multipart/mixed; foo; boundary="b1"'),
          "infected", "ambiguous", "an invalid parameter (foo) before boundary")
    twins(cls, "parameqbad",
          lambda n, p: mixed(n, body(p), 'multipart/mixed; =bad; boundary="b1"'),
          "infected", "ambiguous", "an invalid parameter (=bad) before boundary")
    twins(cls, "8bitname",
          lambda n, p: mixed(n, multipart("b1", [TEXT, exe(p, name="inv\xf6ice.exe")])),
          "infected", "clean", "latin-1 byte in the attachment's name and filename")
    twins(cls, "8bitct",
          lambda n, p: mixed(n, body(p), 'multipart/mixed; x-note="caf\xe9"; boundary="b1"'),
          "infected", "clean", "latin-1 byte in the top Content-Type before boundary")
    twins(cls, "nul",
          lambda n, p: mixed(n, body(p), f'multipart/mixed;{NUL} boundary="b1"'),
          "infected", "ambiguous", "a NUL byte in the top Content-Type line before boundary")
    twins(cls, "nulpart",
          lambda n, p: mixed(n, multipart("b1", [TEXT, exe(
              p, ctype=f"application/octet-stream{NUL}; x=y")])),
          "infected", "clean", "a NUL byte in the attachment's Content-Type line")
    pad = "; ".join(f'x-pad{i:02d}="{"p" * 40}"' for i in range(24))
    twins(cls, "longct",
          lambda n, p: mixed(n, body(p), f'multipart/mixed; {pad}; boundary="b1"'),
          "infected", "ambiguous", f"a {len(pad) + 40}-character unfolded Content-Type line, "
          "boundary last")
    twins(cls, "rfc2231name",
          lambda n, p: mixed(n, multipart("b1", [TEXT,
              "Content-Type: application/octet-stream; name*=utf-8''inv%C3%B6ice.exe\n"
              "Content-Disposition: attachment; filename*=utf-8''inv%C3%B6ice.exe\n"
              "Content-Transfer-Encoding: base64\n\n" + b64(p)])),
          "infected", "clean", "RFC 2231 encoded file name (filename*=utf-8''inv%C3%B6ice.exe)")
    enc = "=?utf-8?B?" + base64.b64encode("invöice.exe".encode()).decode() + "?="
    twins(cls, "rfc2047name",
          lambda n, p: mixed(n, multipart("b1", [TEXT, exe(p, name=enc)])),
          "infected", "clean", "RFC 2047 encoded-word file name on the attachment")


# ---------------------------------------------------------------- 8 clients

def png() -> bytes:
    """png - a valid 4x4 RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    raw = b"".join(b"\0" + bytes([200, 30, 30] * 4) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def pdf() -> bytes:
    """pdf - a valid one-page PDF with a line of text and a correct xref."""
    stream = b"BT /F1 12 Tf 72 720 Td (Quarterly report) Tj ET"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def client_head(name: str, extra: str, order: str = "std") -> str:
    """client_head - the fixed headers plus a client's own, in its order."""
    frm, to = f"From: Test Sender <{SENDER}>\n", f"To: Test User <{RECIPIENT}>\n"
    subj, date, mid = f"Subject: corpus {name}\n", f"Date: {DATE}\n", f"Message-ID: {MSGID}\n"
    if order == "thunderbird":
        return mid + date + "MIME-Version: 1.0\n" + extra + to + frm + subj
    if order == "outlook":
        return frm + to + subj + extra + date + mid
    return frm + to + subj + date + mid + extra


def qp(text: str) -> str:
    """qp - quoted-printable of UTF-8 text, CRLF kept as line ends."""
    return quopri.encodestring(text.encode("utf-8")).decode()


def client_class(regen_crypto: bool, outdir: Path) -> None:
    cls = "clients"

    # Thunderbird: mixed > alternative (format=flowed) + PDF.
    n = "client_thunderbird_clean"
    ob, ib = "------------0SQnLw8Zt1xWc9kYhN4Vb2Ma", "------------kD7fR2pXqL0vT5nB8eY3uJ1c"
    add(n, cls, "clean", "Thunderbird 115: mixed > alternative (format=flowed) + PDF",
        client_head(n, "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101\n"
                       " Thunderbird/115.8.0\nContent-Language: en-US\n", "thunderbird")
        + f'Content-Type: multipart/mixed; boundary="{ob}"\n\n'
        + multipart(ob, [
            f'Content-Type: multipart/alternative;\n boundary="{ib}"\n\n'
            + multipart(ib, [
                "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
                "Content-Transfer-Encoding: 7bit\n\nHi,\n\nhere is the quarterly report, as "
                "promised. Let me know if \nanything is missing.\n\nCheers\n\n",
                "Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n"
                "<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv=\"content-type\" "
                "content=\"text/html; charset=UTF-8\">\n  </head>\n  <body>\n    <p>Hi,</p>\n"
                "    <p>here is the quarterly report, as promised. Let me know if\n"
                "      anything is missing.</p>\n    <p>Cheers<br>\n    </p>\n  </body>\n"
                "</html>\n"], pre=""),
            'Content-Type: application/pdf; name="report.pdf"\n'
            'Content-Disposition: attachment; filename="report.pdf"\n'
            "Content-Transfer-Encoding: base64\n\n" + b64(pdf(), 72)]))

    # Outlook: related (type=alternative) > alternative (_000_) + inline PNG.
    n = "client_outlook_clean"
    rb = "_004_DB9PR07MB7865A1B2C3D4E5F6A7B8EURP_"
    ab = "_000_DB9PR07MB7865A1B2C3D4E5F6A7B8EURP_"
    html = ('<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
            'office:office">\n<head>\n<meta http-equiv="Content-Type" content="text/html; '
            'charset=utf-8">\n<meta name="Generator" content="Microsoft Word 15 (filtered '
            'medium)">\n<style><!--\np.MsoNormal {margin:0cm; font-size:11.0pt; '
            'font-family:"Calibri",sans-serif;}\n--></style>\n</head>\n<body lang="EN-GB" '
            'link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n<div class='
            '"WordSection1">\n<p class="MsoNormal">Hello,<o:p></o:p></p>\n<p class="MsoNormal">'
            'Please see the chart below – figures are final.<o:p></o:p></p>\n<p class='
            '"MsoNormal"><img width="4" height="4" style="width:.04in;height:.04in" id='
            '"Picture_x0020_1" src="cid:image001.png@01DA6E1F.2B3C4D50" alt="chart">'
            '<o:p></o:p></p>\n<p class="MsoNormal">Kind regards,<o:p></o:p></p>\n</div>\n'
            '</body>\n</html>\n')
    add(n, cls, "clean", "Outlook 16: related > alternative (_000_, quoted-printable HTML) + "
        "inline PNG by cid:",
        client_head(n, "Thread-Topic: corpus client_outlook_clean\n"
                       "Thread-Index: AdpuHysyPU5BdHJhQ0uJ2a1b2c3d4e==\n"
                       "Accept-Language: en-GB, en-US\nContent-Language: en-GB\n"
                       "X-MS-Has-Attach: yes\nX-MS-TNEF-Correlator:\n"
                       "X-Mailer: Microsoft Outlook 16.0\n", "outlook")
        + f'Content-Type: multipart/related;\n\tboundary="{rb}";\n\ttype="multipart/alternative"'
          "\nMIME-Version: 1.0\n\n"
        + multipart(rb, [
            f'Content-Type: multipart/alternative;\n\tboundary="{ab}"\n\n'
            + multipart(ab, [
                'Content-Type: text/plain; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\n"
                + qp("Hello,\n\nPlease see the chart below – figures are final.\n\n"
                     "[chart]\n\nKind regards,\n\n"),
                'Content-Type: text/html; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\n" + qp(html)], pre="") + "\n",
            'Content-Type: image/png; name="image001.png"\n'
            'Content-Description: image001.png\n'
            'Content-Disposition: inline; filename="image001.png"; size=%d;\n'
            '\tcreation-date="Mon, 04 Mar 2024 09:00:00 GMT";\n'
            '\tmodification-date="Mon, 04 Mar 2024 09:00:00 GMT"\n'
            "Content-ID: <image001.png@01DA6E1F.2B3C4D50>\n"
            "Content-Transfer-Encoding: base64\n\n" % len(png()) + b64(png()) + "\n"], pre=""))

    # Apple Mail: alternative > text/plain (qp) + related (html + inline PNG).
    n = "client_applemail_clean"
    ab = "Apple-Mail=_5C1E7A2B-3F4D-4E8A-9B6C-0D1E2F3A4B5C"
    rb = "Apple-Mail=_8A9B0C1D-2E3F-4A5B-8C7D-6E5F4A3B2C1D"
    add(n, cls, "clean", "Apple Mail 16: alternative > plain + related (HTML + inline PNG), "
        "Apple-Mail=_ boundaries",
        client_head(n, "Content-Type: multipart/alternative;\n\tboundary=\"%s\"\n"
                       "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.400.31\\))\n"
                       "X-Mailer: Apple Mail (2.3774.400.31)\n" % ab).replace(
            "MIME-Version: 1.0\n", "")
        + "\n" + multipart(ab, [
            "Content-Transfer-Encoding: quoted-printable\nContent-Type: text/plain;\n"
            "\tcharset=utf-8\n\n" + qp("Hi,\n\nthe logo we talked about:\n\n\n\nBest,\nTest\n"),
            "Content-Type: multipart/related;\n\ttype=\"text/html\";\n\tboundary=\"%s\"\n\n" % rb
            + multipart(rb, [
                "Content-Transfer-Encoding: quoted-printable\nContent-Type: text/html;\n"
                "\tcharset=utf-8\n\n" + qp(
                    '<html><head><meta http-equiv="content-type" content="text/html; '
                    'charset=utf-8"></head><body style="overflow-wrap: break-word; '
                    '-webkit-nbsp-mode: space; line-break: after-white-space;">Hi,<div><br>'
                    '</div><div>the logo we talked about:</div><div><br></div><div><img '
                    'apple-inline="yes" id="A1B2C3D4-E5F6-4789-ABCD-EF0123456789" src="cid:'
                    'F0E1D2C3-B4A5-4697-8877-665544332211"></div><div><br></div><div>Best,'
                    '</div><div>Test</div></body></html>'),
                "Content-Transfer-Encoding: base64\nContent-Disposition: inline;\n"
                "\tfilename=logo.png\nContent-Type: image/png;\n\tx-unix-mode=0644;\n"
                "\tname=\"logo.png\"\nContent-Id: <F0E1D2C3-B4A5-4697-8877-665544332211>\n\n"
                + b64(png())], pre="") + "\n"], pre=""))

    # Gmail: mixed > alternative + CSV attachment, 000000000000 boundaries.
    n = "client_gmail_clean"
    mb, ab = "000000000000a1b2c3061300f8e1", "000000000000a1b2bf061300f8df"
    csv = b"region,q1,q2\r\nnorth,10,12\r\nsouth,7,9\r\n"
    add(n, cls, "clean", "Gmail: mixed > alternative (ltr div) + CSV attachment, "
        "000000000000 boundaries",
        client_head(n, "").replace("MIME-Version: 1.0\n", "")
        .replace(f"From: Test Sender <{SENDER}>\n", f"MIME-Version: 1.0\nFrom: Test Sender <{SENDER}>\n")
        + f'Content-Type: multipart/mixed; boundary="{mb}"\n\n'
        + multipart(mb, [
            f'Content-Type: multipart/alternative; boundary="{ab}"\n\n'
            + multipart(ab, [
                'Content-Type: text/plain; charset="UTF-8"\n\nNumbers attached.\n\n',
                'Content-Type: text/html; charset="UTF-8"\n\n<div dir="ltr">Numbers '
                "attached.<br></div>\n\n"], pre="") + "\n",
            'Content-Type: text/csv; charset="US-ASCII"; name="data.csv"\n'
            'Content-Disposition: attachment; filename="data.csv"\n'
            "Content-Transfer-Encoding: base64\nContent-ID: <f_lteq4x1h0>\n"
            "X-Attachment-Id: f_lteq4x1h0\n\n" + b64(csv)], pre=""))

    # Calendar invite: mixed > alternative (plain, html, text/calendar) + ics.
    n = "client_calendar_clean"
    ics = ("BEGIN:VCALENDAR\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\nVERSION:2.0\n"
           "CALSCALE:GREGORIAN\nMETHOD:REQUEST\nBEGIN:VEVENT\nDTSTART:20240311T090000Z\n"
           "DTEND:20240311T100000Z\nDTSTAMP:20240304T090000Z\n"
           f"ORGANIZER;CN=Test Sender:mailto:{SENDER}\nUID:corpus-invite-1@icapm-lab.test\n"
           "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=\n"
           f" TRUE;CN=Test User;X-NUM-GUESTS=0:mailto:{RECIPIENT}\n"
           "CREATED:20240304T090000Z\nDESCRIPTION:Quarterly review\nLAST-MODIFIED:"
           "20240304T090000Z\nLOCATION:Room 4\nSEQUENCE:0\nSTATUS:CONFIRMED\nSUMMARY:"
           "Quarterly review\nTRANSP:OPAQUE\nEND:VEVENT\nEND:VCALENDAR\n")
    mb, ab = "000000000000c3d4e5061300f9a2", "000000000000c3d4e4061300f9a0"
    add(n, cls, "clean", "calendar invite: alternative with text/calendar method=REQUEST "
        "plus application/ics attachment",
        client_head(n, "MIME-Version: 1.0\n")
        + f'Content-Type: multipart/mixed; boundary="{mb}"\n\n'
        + multipart(mb, [
            f'Content-Type: multipart/alternative; boundary="{ab}"\n\n'
            + multipart(ab, [
                'Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes\n'
                "Content-Transfer-Encoding: base64\n\n"
                + b64(b"Quarterly review\r\nMonday 11 March 2024, 09:00 - 10:00 (UTC)\r\n"),
                'Content-Type: text/html; charset="UTF-8"\nContent-Transfer-Encoding: '
                "quoted-printable\n\n" + qp('<span itemscope itemtype="http://schema.org/'
                                            'InformAction">Quarterly review</span>\n'),
                'Content-Type: text/calendar; charset="UTF-8"; method=REQUEST\n'
                "Content-Transfer-Encoding: 7bit\n\n" + ics], pre="") + "\n",
            'Content-Type: application/ics; name="invite.ics"\n'
            'Content-Disposition: attachment; filename="invite.ics"\n'
            "Content-Transfer-Encoding: base64\n\n" + b64(wire(ics))], pre=""))

    # A forwarded message as a message/rfc822 attachment (Thunderbird style).
    n = "client_forward_clean"
    inner = ("Return-Path: <alice@example.org>\nFrom: Alice <alice@example.org>\n"
             "To: Test Sender <%s>\nSubject: Minutes\nDate: Fri, 01 Mar 2024 16:20:00 +0100\n"
             "Message-ID: <minutes-1@example.org>\nMIME-Version: 1.0\n"
             'Content-Type: multipart/mixed; boundary="------------innerB0undary"\n\n'
             % SENDER
             + multipart("------------innerB0undary", [
                 "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n"
                 "Minutes attached.\n",
                 'Content-Type: text/plain; charset=UTF-8; name="minutes.txt"\n'
                 'Content-Disposition: attachment; filename="minutes.txt"\n'
                 "Content-Transfer-Encoding: base64\n\n"
                 + b64(b"1. Budget approved.\r\n2. Next meeting in April.\r\n")]))
    ob = "------------Fw8dRqT2mZ6yLk4Hn1Xc0Pv9"
    add(n, cls, "clean", "forwarded as attachment: message/rfc822 part holding a message "
        "with its own attachment",
        client_head(n, "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) "
                       "Gecko/20100101\n Thunderbird/115.8.0\nContent-Language: en-US\n",
                    "thunderbird")
        + f'Content-Type: multipart/mixed; boundary="{ob}"\n\n'
        + multipart(ob, [
            "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
            "Content-Transfer-Encoding: 7bit\n\nFYI, see the forwarded message.\n\n",
            'Content-Type: message/rfc822; name="Minutes.eml"\n'
            'Content-Disposition: attachment; filename="Minutes.eml"\n\n' + inner]))

    signed_part = ('Content-Type: multipart/mixed; boundary="sig-inner"\n\n'
                   + multipart("sig-inner", [
                       "Content-Type: text/plain; charset=UTF-8\n"
                       "Content-Transfer-Encoding: 7bit\n\nSigned note: the report is "
                       "attached.\n",
                       'Content-Type: application/pdf; name="report.pdf"\n'
                       'Content-Disposition: attachment; filename="report.pdf"\n'
                       "Content-Transfer-Encoding: base64\n\n" + b64(pdf())], pre=""))
    smime_signed(outdir, regen_crypto, wire(signed_part.rstrip("\n")))
    pgp_signed(outdir, regen_crypto, wire(signed_part.rstrip("\n")))


def keep_or_make(outdir: Path, name: str, regen: bool, make) -> bytes:
    """keep_or_make - keep an existing signed message (its key was random)
    unless regen; otherwise make it with make() -> bytes."""
    path = outdir / f"{name}.eml"
    if path.exists() and not regen:
        data = path.read_bytes()
    else:
        data = make()
    return data


def smime_signed(outdir: Path, regen: bool, content: bytes) -> None:
    """smime_signed - openssl cms -sign (detached, multipart/signed) with a
    throw-away self-signed certificate."""
    n = "client_smime_signed_clean"

    def make() -> bytes:
        with tempfile.TemporaryDirectory(prefix="icapm-corpus-") as tmp:
            t = Path(tmp)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", t / "key.pem", "-out", t / "cert.pem", "-days", "36500",
                            "-subj", f"/CN={SENDER}"], check=True, capture_output=True)
            (t / "part").write_bytes(content)
            out = subprocess.run(["openssl", "cms", "-sign", "-binary", "-md", "sha256",
                                  "-in", t / "part", "-signer", t / "cert.pem",
                                  "-inkey", t / "key.pem", "-outform", "SMIME"],
                                 check=True, capture_output=True).stdout
        # openssl writes its own headers and the signature with LF ends; the
        # signed content is already CRLF and stays as it is.
        out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert content in out
        return wire(client_head(n, "User-Agent: Mozilla/5.0 Thunderbird/115.8.0\n")
                    .replace("MIME-Version: 1.0\n", "")) + out
    data = keep_or_make(outdir, n, regen, make)
    add(n, "clients", "clean", "S/MIME signed (openssl cms -sign, detached multipart/signed, "
        "application/pkcs7-signature) around text + PDF", data)


def pgp_signed(outdir: Path, regen: bool, content: bytes) -> None:
    """pgp_signed - RFC 3156 multipart/signed made with gpg and a throw-away
    key in a temporary GNUPGHOME; no gpg: not written."""
    n = "client_pgpmime_signed_clean"

    def make() -> bytes:
        if not shutil.which("gpg"):
            raise SystemExit("gpg is not installed: cannot make " + n)
        tmp = tempfile.mkdtemp(prefix="icapm-corpus-gpg-")
        home = Path(tmp) / "gnupg"
        home.mkdir(mode=0o700)
        env = dict(os.environ, GNUPGHOME=str(home))
        try:
            subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "",
                            "--quick-gen-key", f"Test Sender <{SENDER}>", "ed25519", "sign",
                            "never"], check=True, capture_output=True, env=env)
            (Path(tmp) / "part").write_bytes(content)
            sig = subprocess.run(["gpg", "--batch", "--quiet", "--armor", "--detach-sign",
                                  "--digest-algo", "SHA256", "-o", "-", str(Path(tmp) / "part")],
                                 check=True, capture_output=True, env=env).stdout.decode()
            # check it verifies against exactly these bytes
            (Path(tmp) / "part.asc").write_text(sig)
            subprocess.run(["gpg", "--batch", "--verify", str(Path(tmp) / "part.asc"),
                            str(Path(tmp) / "part")], check=True, capture_output=True, env=env)
        finally:
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                           capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
        sb = "------------pgpSigN3dB0undary7Q2w"
        return (wire(client_head(n, "User-Agent: Mozilla/5.0 Thunderbird/115.8.0\n"
                                    "Content-Language: en-US\n", "thunderbird")
                     + "Content-Type: multipart/signed; micalg=pgp-sha256;\n"
                       ' protocol="application/pgp-signature";\n'
                       f' boundary="{sb}"\n\n'
                       "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n"
                       f"--{sb}\n")
                + content
                + wire(f"\n--{sb}\n"
                       'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"\n'
                       "Content-Description: OpenPGP digital signature\n"
                       'Content-Disposition: attachment; filename="OpenPGP_signature.asc"\n\n'
                       + sig + f"\n--{sb}--\n"))
    data = keep_or_make(outdir, n, regen, make)
    add(n, "clients", "clean", "PGP/MIME signed (gpg --detach-sign, multipart/signed, "
        "application/pgp-signature) around text + PDF", data)


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description="write the adversarial MIME corpus")
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    ap.add_argument("--regen-crypto", action="store_true",
                    help="make the signed client messages again (new keys)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    boundary_class()
    outside_class()
    encoding_class()
    inline_class()
    structure_class()
    alternative_class()
    header_class()
    client_class(args.regen_crypto, args.out)

    # The encodings hide the payload: the raw file is never in the message
    # except where the trick is raw text (outside, htmlraw).
    raw_ok = ("outside_", "alternative_htmlraw_")
    lines = ["# corpus MANIFEST, written by make_corpus.py",
             "# file\tclass\texpect\tdescription",
             "# expect: infected (550 5.7.1 + virus name), ambiguous (550 5.6.0), rejected "
             "(either), clean (250, delivered, X-Virus-Status: Clean)"]
    names = set()
    for fname, cls, expect, what, data in ENTRIES:
        assert fname not in names, fname
        names.add(fname)
        assert expect in ("infected", "ambiguous", "rejected", "clean"), fname
        if "_eicar" in fname and not fname.startswith(raw_ok):
            assert b"EICAR-STANDARD" not in data, f"{fname}: the payload is visible raw"
        (args.out / fname).write_bytes(data)
        lines.append(f"{fname}\t{cls}\t{expect}\t{what}")
    for stale in set(p.name for p in args.out.glob("*.eml")) - names:
        (args.out / stale).unlink()
    (args.out / "MANIFEST").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(ENTRIES)} messages to {args.out}")


if __name__ == "__main__":
    main()
