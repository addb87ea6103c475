#!/usr/bin/env python3
# NAME
#   make_golden.py - write the synthetic vendor ICAP replies in this folder
# SUMMARY
#   The cicap_*.icap files were captured verbatim from c-icap 0.5.10 with
#   virus_scan and clamd (see README); everything else is written here,
#   modelled on what each vendor documents or is known to send, so the
#   encapsulated offsets and chunk sizes are always exact. A "<name>.sent"
#   file holds the body the client sent, for the 200-echo rules.
#   Run it from anywhere: python3 tests/data/icap/make_golden.py
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = b"\r\n"

BLOCK_PAGE = (b"<html><head><title>Access denied</title></head>\n"
              b"<body><h1>Virus found</h1><p>The file was blocked.</p></body></html>\n")
ECHO_BODY = b"Quarterly report, plain text.\nNothing to see here.\n"


def chunked(body, sizes=None):
    """body as chunks (one, or the given sizes), ending with the last chunk."""
    out = b""
    pos = 0
    for n in (sizes or [len(body)]):
        if n == 0:
            continue
        out += b"%x\r\n" % n + body[pos:pos + n] + CRLF
        pos += n
    assert pos == len(body)
    return out + b"0\r\n\r\n"


def http_head(status, headers=()):
    return (status.encode() + CRLF + b"".join(h.encode() + CRLF for h in headers) + CRLF)


def reply(status, headers=(), http=None, body=None, encap=True, sizes=None):
    """A whole ICAP reply; Encapsulated is computed unless encap is False."""
    lines = [status.encode()] + [h.encode() for h in headers]
    tail = b""
    if encap:
        if http is not None and body is not None:
            lines.append(b"Encapsulated: res-hdr=0, res-body=%d" % len(http))
            tail = http + chunked(body, sizes)
        elif http is not None:
            lines.append(b"Encapsulated: res-hdr=0, null-body=%d" % len(http))
            tail = http
        else:
            lines.append(b"Encapsulated: null-body=0")
    return CRLF.join(lines) + CRLF + CRLF + tail


def write(name, data, sent=None):
    with open(os.path.join(HERE, name + ".icap"), "wb") as f:
        f.write(data)
    if sent is not None:
        with open(os.path.join(HERE, name + ".sent"), "wb") as f:
            f.write(sent)


def main():
    page403 = http_head("HTTP/1.1 403 Forbidden", ["Content-Type: text/html", "Connection: close"])

    # --- c-icap extras (the real captures are cicap_*.icap without "x") ---
    write("cicapx_echo_truncated", reply(
        "ICAP/1.0 200 OK", ["Server: C-ICAP/0.5.10", 'ISTag: "CI0001-XXXXXXXXXXXXXXXXXXXXXX"'],
        http_head("HTTP/1.1 200 OK", ["Content-Length: %d" % len(ECHO_BODY)]),
        ECHO_BODY[:20]), sent=ECHO_BODY)  # SendPercentData: cut short, no marker
    write("cicapx_echo_modified", reply(
        "ICAP/1.0 200 OK", ["Server: C-ICAP/0.5.10", 'ISTag: "CI0001-XXXXXXXXXXXXXXXXXXXXXX"'],
        http_head("HTTP/1.1 200 OK", ["Content-Length: %d" % len(ECHO_BODY)]),
        ECHO_BODY.replace(b"report", b"REPORT")), sent=ECHO_BODY)
    write("cicapx_echo_multichunk", reply(
        "ICAP/1.0 200 OK", ["Server: C-ICAP/0.5.10", 'ISTag: "CI0001-XXXXXXXXXXXXXXXXXXXXXX"'],
        http_head("HTTP/1.1 200 OK", ["Content-Length: %d" % len(ECHO_BODY)]),
        ECHO_BODY, sizes=[1, 10, len(ECHO_BODY) - 11]), sent=ECHO_BODY)

    # --- squidclamav ---
    write("squidclamav_infected_403", reply(
        "ICAP/1.0 200 OK", ["Server: C-ICAP/0.5.10", "Connection: keep-alive", 'ISTag: "SQUIDCLAMAV"',
                            "X-Infection-Found: Type=0; Resolution=2; Threat=Win.Test.EICAR_HDB-1;",
                            "X-Virus-ID: Win.Test.EICAR_HDB-1"],
        page403, BLOCK_PAGE))
    write("squidclamav_redirect_307", reply(
        "ICAP/1.0 200 OK", ["Server: C-ICAP/0.5.10", 'ISTag: "SQUIDCLAMAV"',
                            "X-Virus-ID: stream: Win.Test.EICAR_HDB-1 FOUND"],
        http_head("HTTP/1.1 307 Temporary Redirect",
                  ["Location: http://proxy.example/cgi-bin/clwarn.cgi?virus=Win.Test.EICAR_HDB-1",
                   "Content-Length: 0"])))

    # --- Kaspersky Scan Engine / KWTS ---
    write("kaspersky_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "KAV-20240512-0911"', "X-Virus-ID: EICAR-Test-File",
                            "X-Response-Info: Blocked"],
        page403, BLOCK_PAGE))
    write("kaspersky_kwts_no_threats_204", reply(
        "ICAP/1.0 204 No Content", ['ISTag: "KAV-20240512-0911"', "X-Virus-ID: no threats",
                                    "X-Response-Info: Allowed"], encap=False))
    write("kaspersky_options", reply(
        "ICAP/1.0 200 OK", ["Methods: RESPMOD, REQMOD", 'ISTag: "KAV-20240512-0911"',
                            "Service: Kaspersky Scan Engine ICAP", "Max-Connections: 100",
                            "Options-TTL: 300", "Allow: 204", "Preview: 2048",
                            "X-AV-Database-time: 2024-05-12 09:11:00 UTC"]))

    # --- ESET ---
    write("eset_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "ESET-1715500000"',
                            "X-Infection-Found: Type=0; Resolution=0; Threat=Eicar test file;",
                            "X-Virus-ID: Eicar test file", "X-Response-Info: Blocked"],
        page403, BLOCK_PAGE))
    write("eset_405", reply("ICAP/1.0 405 Method not allowed for service",
                            ['ISTag: "ESET-1715500000"'], encap=False))

    # --- Symantec Protection Engine ---
    write("symantec_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "20240512.001"',
                            "X-Infection-Found: Type=0; Resolution=2; Threat=EICAR Test String;",
                            "X-Violations-Found: 1\r\n\teicar.com\r\n\tEICAR Test String\r\n\t11101\r\n\t2"],
        page403, BLOCK_PAGE))
    write("symantec_container_type2", reply(
        "ICAP/1.0 200 OK", ['ISTag: "20240512.001"',
                            "X-Infection-Found: Type=2; Resolution=2; Threat=Container Depth Exceeded;",
                            "X-Violations-Found: 1\r\n\tnested.zip\r\n\tContainer Depth Exceeded\r\n\t0\r\n\t2"],
        page403, BLOCK_PAGE))
    write("symantec_two_violations", reply(
        "ICAP/1.0 200 OK", ['ISTag: "20240512.001"',
                            "X-Violations-Found: 2\r\n\ta.exe\r\n\tW32.Test.A\r\n\t100\r\n\t2"
                            "\r\n  b.doc\r\n  W97M.Test.B\r\n  101\r\n  2"],
        page403, BLOCK_PAGE))
    write("symantec_539_unlicensed", reply("ICAP/1.0 539 Unlicensed", ['ISTag: "20240512.001"'],
                                           encap=False))
    write("symantec_500_error_code", reply("ICAP/1.0 500 Server Error",
                                           ['ISTag: "20240512.001"', "X-Error-Code: 4 (resource exhausted)"],
                                           encap=False))

    # --- McAfee / Skyhigh ---
    write("mcafee_403_virusfound", reply(
        "ICAP/1.0 200 OK", ['ISTag: "00000001-1-2"', "Connection: keep-alive"],
        http_head("HTTP/1.1 403 VirusFound", ["Content-Type: text/html"]), BLOCK_PAGE))
    write("mcafee_custom_virus_id", reply(
        "ICAP/1.0 200 OK", ['ISTag: "00000001-1-2"', "X-Virus-ID: EICAR test file"],
        http_head("HTTP/1.1 403 VirusFound", ["Content-Type: text/html"]), BLOCK_PAGE))
    write("mcafee_418", reply("ICAP/1.0 418 Bad composition", ['ISTag: "00000001-1-2"'], encap=False))

    # --- Trend Micro ---
    write("trend_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "1715500000-6.5.1205"', "X-Virus-ID: Eicar_test_file",
                            "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar_test_file;"],
        page403, BLOCK_PAGE))

    # --- Sophos SAVDI ---
    write("sophos_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "SAVDI-5.98"', "X-Blocked: Virus found during virus scan",
                            "X-Virus-ID: EICAR-AV-Test",
                            "X-Infection-Found: Type=0; Resolution=2; Threat=EICAR-AV-Test;",
                            "X-Violations-Found: 1\r\n\teicar.com\r\n\tEICAR-AV-Test\r\n\t0\r\n\t0"],
        page403, BLOCK_PAGE))
    write("sophos_blocked_only", reply(
        "ICAP/1.0 200 OK", ['ISTag: "SAVDI-5.98"', "X-Blocked: Virus found during virus scan"],
        http_head("HTTP/1.1 200 OK", ["Content-Length: %d" % len(ECHO_BODY)]), ECHO_BODY),
        sent=ECHO_BODY)

    # --- OPSWAT MetaDefender ---
    write("opswat_blocked", reply(
        "ICAP/1.0 200 OK", ['ISTag: "MD-ICAP-4.20"', "X-ICAP-Profile: File process",
                            "X-Response-Info: Blocked", "X-Blocked-Reason: Infected"],
        page403, BLOCK_PAGE))
    write("opswat_blocked_named", reply(
        "ICAP/1.0 200 OK", ['ISTag: "MD-ICAP-4.20"', "X-Response-Info: Blocked",
                            "X-Virus-ID: EICAR-Test-File", "X-Infection-Found: Type=0; Resolution=2; Threat=EICAR-Test-File;"],
        page403, BLOCK_PAGE))
    write("opswat_allowed_204", reply(
        "ICAP/1.0 204 No Content", ['ISTag: "MD-ICAP-4.20"', "X-ICAP-Profile: File process",
                                    "X-Response-Info: Allowed"], encap=False))

    # --- F-Secure ---
    write("fsecure_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "FSAV-2024-05-12_01"', "X-FSecure-Scan-Result: infected",
                            'X-FSecure-Infection-Name: "EICAR_Test_File"'],
        page403, BLOCK_PAGE))
    write("fsecure_clean_204", reply(
        "ICAP/1.0 204 No Content", ['ISTag: "FSAV-2024-05-12_01"', "X-FSecure-Scan-Result: clean"],
        encap=False))
    write("fsecure_options", reply(
        "ICAP/1.0 200 OK", ["Methods: RESPMOD", 'ISTag: "FSAV-2024-05-12_01"', "Service: F-Secure ICAP",
                            "Preview: 0", "Allow: 204", "Options-TTL: 3600",
                            "X-Definition-Info: Aquarius 2024-05-12_01, Hydra 2024-05-12_02"]))

    # --- Bitdefender ---
    write("bitdefender_infected", reply(
        "ICAP/1.0 200 OK", ['ISTag: "BD-7.9"',
                            "X-Infection-Found: Type=0; Resolution=2; Threat=EICAR-Test-File (not a virus);",
                            "X-Virus-ID: EICAR-Test-File (not a virus)"],
        page403, BLOCK_PAGE))

    # --- generic status handling ---
    for code, text in [(408, "Request timeout"), (501, "Method not implemented"), (502, "Bad Gateway"),
                       (503, "Service overloaded"), (505, "ICAP version not supported by server"),
                       (403, "Forbidden")]:
        write("generic_%d" % code, reply("ICAP/1.0 %d %s" % (code, text), ['ISTag: "X"'], encap=False))
    write("generic_206_unexpected", reply("ICAP/1.0 206 Partial Content", ['ISTag: "X"']))
    write("generic_infected_on_204", reply(
        "ICAP/1.0 204 No Content", ['ISTag: "X"', "X-Infection-Found: Type=0; Resolution=2; Threat=Odd.Vendor;"],
        encap=False))
    write("generic_folded_virus_id", reply(
        "ICAP/1.0 200 OK", ['ISTag: "X"', "x-virus-id: Long.Threat.Name\r\n  .Continued"],
        page403, BLOCK_PAGE))
    write("generic_200_no_encapsulated", reply("ICAP/1.0 200 OK", ['ISTag: "X"'], encap=False),
          sent=ECHO_BODY)
    write("generic_lf_only", reply("ICAP/1.0 204 No Content", ['ISTag: "X"'], encap=False)
          .replace(b"\r\n", b"\n"))
    write("generic_chunk_extensions", reply(
        "ICAP/1.0 200 OK", ['ISTag: "X"'],
        http_head("HTTP/1.1 200 OK", ["Content-Length: %d" % len(ECHO_BODY)]), ECHO_BODY)
        .replace(b"\r\n%x\r\n" % len(ECHO_BODY), b"\r\n%x; name=value\r\n" % len(ECHO_BODY))
        .replace(b"0\r\n\r\n", b"0; ieof\r\nX-Trailer: ignored\r\n\r\n"),
        sent=ECHO_BODY)


if __name__ == "__main__":
    main()
