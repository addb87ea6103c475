"""
sink.py - an SMTP sink for the icap-milter lab: accepts every message

SUMMARY
    A small threaded SMTP server (socketserver, standard library only) that
    accepts any sender and recipient and stores each message, as received,
    to NNNNNN.eml in its directory, with the envelope in NNNNNN.json. It
    serves many messages per connection, PIPELINING, and large messages
    (the body is streamed to disk, never held whole in memory).

    Tests look messages up by Message-ID (wait_for) and read their headers.

    Run alone:  python3 sink.py --port 2525 --dir /tmp/sink
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import socketserver
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MAX_LINE = 1 << 20          # longest command or text line accepted
MAX_SIZE = 200 * 1024 * 1024


@dataclass
class StoredMessage:
    """StoredMessage - one message the sink accepted."""
    path: Path
    mail_from: str
    rcpt_to: list[str]
    size: int
    headers: email.message.Message

    def header_values(self, name: str) -> list[str]:
        """header_values - every value of a header (case-insensitive)."""
        return [str(v) for v in (self.headers.get_all(name) or [])]

    @property
    def message_id(self) -> str:
        """message_id - the Message-ID header, or ""."""
        return str(self.headers.get("Message-ID", "")).strip()

    def raw(self) -> bytes:
        """raw - the message bytes as delivered."""
        return self.path.read_bytes()


class _Handler(socketserver.StreamRequestHandler):
    """_Handler - one SMTP session (RFC 5321 subset a relaying MTA uses)."""

    def reply(self, text: str) -> None:
        """reply - send one reply line."""
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self.reply(f"220 {sink.name}.icapm-lab.test ESMTP icap-milter lab sink")
        mail_from: Optional[str] = None
        rcpts: list[str] = []
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd[:4].upper()
            arg = cmd[5:] if len(cmd) > 4 else ""
            if verb in ("EHLO", "HELO"):
                mail_from, rcpts = None, []
                if verb == "EHLO":
                    self.wfile.write(f"250-{sink.name}.icapm-lab.test\r\n250-PIPELINING\r\n"
                                     f"250-SIZE {MAX_SIZE}\r\n250-8BITMIME\r\n"
                                     "250 ENHANCEDSTATUSCODES\r\n".encode())
                    self.wfile.flush()
                else:
                    self.reply(f"250 {sink.name}.icapm-lab.test")
            elif verb == "MAIL":
                mail_from, rcpts = _address(arg), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                if mail_from is None:
                    self.reply("503 5.5.1 Error: need MAIL command")
                else:
                    rcpts.append(_address(arg))
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    self.reply("503 5.5.1 Error: need RCPT command")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                number = sink.store(self.rfile, mail_from, rcpts)
                if number is None:
                    return
                self.reply(f"250 2.0.0 Ok: stored as {number:06d}")
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


def _address(arg: str) -> str:
    """_address - the address inside <...> of a MAIL FROM:/RCPT TO: argument."""
    start, end = arg.find("<"), arg.find(">")
    return arg[start + 1:end] if 0 <= start < end else arg.split(":", 1)[-1].strip()


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """_Server - threaded TCP server; sessions die with the process."""
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """SmtpSink - the sink: start() serves in a background thread, stop()
    shuts it down; messages()/wait_for() read what was delivered."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0,
                 name: str = "sink") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port, self.name = host, port, name
        self._lock = threading.Lock()
        self._count = 0
        self._cache: dict[Path, StoredMessage] = {}
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "SmtpSink":
        """start - listen and serve in a background thread."""
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sink = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"{self.name}-smtp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """stop - stop listening (sessions in progress are abandoned)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def store(self, rfile, mail_from: str, rcpts: list[str]) -> Optional[int]:
        """store - read DATA up to the lone dot, undo dot-stuffing, write the
        message and its envelope; returns its number (None on EOF)."""
        with self._lock:
            self._count += 1
            number = self._count
        part = self.dir / f"{number:06d}.part"
        size = 0
        with open(part, "wb") as out:
            while True:
                line = rfile.readline(MAX_LINE)
                if not line:
                    part.unlink(missing_ok=True)
                    return None
                if line in (b".\r\n", b".\n"):
                    break
                if line.startswith(b"."):
                    line = line[1:]
                out.write(line)
                size += len(line)
        (self.dir / f"{number:06d}.json").write_text(json.dumps(
            {"mail_from": mail_from, "rcpt_to": rcpts, "size": size, "time": time.time()}))
        part.rename(self.dir / f"{number:06d}.eml")   # atomic: readers see whole files
        return number

    def messages(self) -> list[StoredMessage]:
        """messages - every message stored so far, oldest first."""
        out = []
        for path in sorted(self.dir.glob("*.eml")):
            msg = self._cache.get(path)
            if msg is None:
                msg = self._load(path)
                self._cache[path] = msg
            out.append(msg)
        return out

    def _load(self, path: Path) -> StoredMessage:
        """_load - read one stored message's envelope and headers."""
        env = json.loads(path.with_suffix(".json").read_text())
        with open(path, "rb") as f:
            head = b""
            for line in f:
                head += line
                if line in (b"\r\n", b"\n"):
                    break
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        return StoredMessage(path, env["mail_from"], env["rcpt_to"], env["size"], headers)

    def find(self, message_id: str) -> list[StoredMessage]:
        """find - stored messages with this Message-ID (normally 0 or 1)."""
        return [m for m in self.messages() if m.message_id == message_id]

    def wait_for(self, message_id: str, timeout: float = 30.0) -> Optional[StoredMessage]:
        """wait_for - the message with this Message-ID once it has arrived,
        or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(message_id)
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def count(self) -> int:
        """count - how many messages were stored."""
        return len(list(self.dir.glob("*.eml")))


def main() -> None:
    """main - run a sink in the foreground until interrupted."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    sink = SmtpSink(args.dir, args.host, args.port).start()
    print(f"sink: listening on {args.host}:{sink.port}, storing in {args.dir}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
