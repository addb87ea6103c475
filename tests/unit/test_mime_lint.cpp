// NAME
//   test_mime_lint.cpp - unit tests of the MIME reading checks
// SUMMARY
//   header_lint (Content-Type and Content-Transfer-Encoding tricks),
//   Base64Reader (junk, data after padding, missing padding), LineCensus
//   (bare CR, bare LF, NUL and over-long header lines), and the walker's
//   verdict on each class of trick: which reason, ambiguous or suspect,
//   and whether the whole-message view is added per ScanWholeMessage.
#include "icap-milter/mime/base64_reader.hpp"
#include "icap-milter/mime/census.hpp"
#include "icap-milter/mime/header_lint.hpp"
#include "icap-milter/mime/walker.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace icapm;

namespace {

// lint_ct - the findings for one Content-Type value.
LintFindings lint_ct(std::string_view v) {
    LintFindings f;
    lint_content_type(v, f);
    return f;
}

// has - some reason in the list contains text.
bool has(const std::vector<std::string>& list, std::string_view text) {
    for (const auto& s : list)
        if (s.find(text) != std::string::npos) return true;
    return false;
}

// b64 - decode all of text at once.
std::string b64(std::string_view text, Base64Anomalies* seen = nullptr) {
    Base64Reader r;
    std::string out;
    r.decode(text, out);
    r.finish(out);
    if (seen) *seen = r.anomalies();
    return out;
}

// census - the census of a whole text.
Census census(std::string_view text) {
    LineCensus c;
    c.feed(text);
    return c.finish();
}

// walk_text - walk raw bytes with the given whole-message mode.
WalkResult walk_text(const std::string& raw, WholeMessage mode = WholeMessage::Ambiguous) {
    Spool s("/tmp", 1u << 20);
    s.append(raw);
    WalkLimits lim;
    lim.whole_message = mode;
    return walk_message(s, lim);
}

// has_whole - the result holds the whole-message item "0".
bool has_whole(const WalkResult& r) { return !r.items.empty() && r.items.back().part_id == "0"; }

// multipart - a two-part message with this Content-Type field value.
std::string multipart(const std::string& ct, const std::string& boundary) {
    return "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: " + ct + "\r\n\r\n--" + boundary +
           "\r\nContent-Type: text/plain\r\n\r\nhello\r\n--" + boundary + "--\r\n";
}

} // namespace

TEST_CASE("header lint: a clean Content-Type has no findings") {
    for (const char* v : {"text/plain; charset=utf-8; format=flowed", "multipart/mixed; boundary=\"----=_Part_1_2.3\"",
                          "multipart/alternative;\r\n boundary=\"Apple-Mail=_0B6C1D2E-3F40\"",
                          "multipart/related; type=\"multipart/alternative\"; boundary=\"_000_DB9PR_\"",
                          "application/pdf; name=\"a (1).pdf\"", "multipart/mixed; boundary=x;"}) {
        CAPTURE(v);
        LintFindings f = lint_ct(v);
        CHECK(f.ambiguous.empty());
        CHECK(f.suspect.empty());
    }
}

TEST_CASE("header lint: boundary tricks are ambiguous") {
    CHECK(has(lint_ct("multipart/mixed; boundary=a; boundary=b").ambiguous, "boundary parameters that differ"));
    CHECK(lint_ct("multipart/mixed; boundary=a; boundary=\"a\"").ambiguous.empty()); // same value twice
    CHECK(has(lint_ct("multipart/mixed; boundary=a; boundary*0=b; boundary*1=c").ambiguous, "RFC 2231"));
    CHECK(lint_ct("multipart/mixed; boundary=bc; boundary*0=b; boundary*1=c").ambiguous.empty());
    CHECK(has(lint_ct("multipart/mixed; boundary*=us-ascii''x%41").ambiguous, "only as RFC 2231"));
    CHECK(has(lint_ct("multipart/mixed; boundary=\"=?utf-8?q?abc?=\"").ambiguous, "encoded word"));
    CHECK(has(lint_ct("multipart/mixed; boundary=\"abc \"").ambiguous, "white space"));
    CHECK(has(lint_ct("multipart/mixed").ambiguous, "without a boundary"));
    CHECK(has(lint_ct("multipart/mixed; boundary=\"\"").ambiguous, "empty boundary"));
    // Not a multipart: a boundary parameter means nothing.
    CHECK(lint_ct("text/plain; boundary=a; boundary=b").ambiguous.empty());
}

TEST_CASE("header lint: comments and invalid parameters") {
    CHECK(has(lint_ct("multipart/mixed; (boundary=\"fake\";) boundary=\"real\"").ambiguous, "comment"));
    CHECK(has(lint_ct("multipart/mixed; boundary=\"real\" (; boundary=fake)").ambiguous, "comment"));
    CHECK(lint_ct("multipart/mixed (a plain comment); boundary=x").ambiguous.empty());
    CHECK(has(lint_ct("multipart/mixed; foo; boundary=\"b\"").ambiguous, "invalid Content-Type parameter"));
    CHECK(has(lint_ct("multipart/mixed; =bad; boundary=\"b\"").ambiguous, "invalid Content-Type parameter"));
    // Outside a multipart an invalid parameter only touches names: suspect.
    LintFindings f = lint_ct("application/octet-stream; foo; name=a.exe");
    CHECK(f.ambiguous.empty());
    CHECK(has(f.suspect, "invalid Content-Type parameter"));
    CHECK(has(lint_ct("text/plain; name=\"caf\xe9.txt\"").suspect, "8-bit"));
    // ';' and '=' inside quotes are text, not parameters.
    CHECK(lint_ct("multipart/mixed; boundary=\"a;b=c\"").ambiguous.empty());
}

TEST_CASE("header lint: duplicate fields and transfer encodings") {
    LintFindings f;
    lint_entity_headers({{"Content-Type", " text/plain"}, {"Content-Type", " multipart/mixed; boundary=x"}}, f);
    CHECK(has(f.ambiguous, "2 Content-Type fields that differ"));
    f = {};
    lint_entity_headers({{"Content-Type", " text/plain"}, {"content-type", "TEXT/PLAIN"}}, f);
    CHECK(f.ambiguous.empty());
    f = {};
    lint_entity_headers({{"Content-Transfer-Encoding", " 7bit"}, {"Content-Transfer-Encoding", " base64"}}, f);
    CHECK(has(f.ambiguous, "Content-Transfer-Encoding fields that differ"));
    f = {};
    lint_entity_headers({{"Content-Transfer-Encoding", " BASE64"}}, f);
    CHECK(f.suspect.empty());
    for (const char* odd : {"x-base64", "base-64", "base64;", "x-uuencode"}) {
        CAPTURE(odd);
        f = {};
        lint_entity_headers({{"Content-Transfer-Encoding", odd}}, f);
        CHECK(has(f.suspect, "non-standard Content-Transfer-Encoding"));
        CHECK(f.ambiguous.empty());
    }
    CHECK(standard_encoding(" Quoted-Printable ") == "quoted-printable");
    CHECK(standard_encoding("x-base64").empty());
}

TEST_CASE("base64 reader: what decoders agree on and what they do not") {
    Base64Anomalies a;
    CHECK(b64("SGVs\r\nbG8=\r\n", &a) == "Hello");
    CHECK(a.junk == 0);
    CHECK_FALSE(a.data_after_padding);
    CHECK(b64("SGVsbG8", &a) == "Hello"); // no padding: every reader gets it all
    CHECK(a.junk == 0);
    CHECK(b64("SGV!sb*G8.", &a) == "Hello"); // junk skipped, and counted
    CHECK(a.junk == 3);
    CHECK(b64("SGk=SGk=", &a) == "HiHi"); // quantum restarted after the pad
    CHECK(a.data_after_padding);
    CHECK(b64("SGk=\r\n==\r\n", &a) == "Hi"); // extra pads only: nothing after them
    CHECK_FALSE(a.data_after_padding);
    CHECK(b64("SGVsbA", &a) == "Hell");
    b64("SGVsb", &a);
    CHECK(a.dangling_bits);
    // Chunked input decodes the same as one piece.
    Base64Reader r;
    std::string out;
    for (char c : std::string("SGVsbG8gV29ybGQ=")) r.decode(std::string_view(&c, 1), out);
    r.finish(out);
    CHECK(out == "Hello World");
}

TEST_CASE("census: line shapes that readers split differently") {
    Census c = census("Content-Type: text/plain\r\n\r\n--b\r\nx\r\n--b--\r\n");
    CHECK(c.delimiters == 2);
    CHECK(c.crlf_lines == 5);
    CHECK(c.bare_cr_delimiters == 0);
    CHECK(c.lf_delimiters == 0);
    c = census("a: b\r\n--b\rContent-Type: text/plain\r\n");
    CHECK(c.bare_cr_delimiters == 1);
    c = census("x\r--b\rContent-Type: text/plain\r\n"); // bare CR line ends throughout
    CHECK(c.bare_cr_delimiters == 1);
    c = census("a: b\r\n--b\n");
    CHECK(c.lf_delimiters == 1);
    c = census("Content-Type: text/plain;\r boundary=x\r\n");
    CHECK(c.bare_cr_headers == 1);
    c = census(std::string("Content-Type: text/\0plain\r\n", 27));
    CHECK(c.nul_headers == 1);
    c = census("Content-Type: text/plain; x=\"" + std::string(1000, 'a') + "\"\r\n");
    CHECK(c.long_content_headers == 1);
    c = census("X-Long: " + std::string(1000, 'a') + "\r\n");
    CHECK(c.long_content_headers == 0);
    // A CR split from its LF by a chunk boundary is still a line end.
    LineCensus split;
    split.feed("--b\r");
    split.feed("\nx\r\n");
    c = split.finish();
    CHECK(c.bare_cr_delimiters == 0);
    CHECK(c.crlf_lines == 2);
}

TEST_CASE("mime walker: each ambiguity class fails closed, with the whole-message view to find a virus") {
    struct Case {
        const char* name;
        std::string raw;
        const char* reason;
    };
    const Case cases[] = {
        {"duplicate boundary", multipart("multipart/mixed; boundary=\"a\"; boundary=\"b\"", "b"), "boundary parameters"},
        {"boundary and RFC 2231", multipart("multipart/mixed; boundary=\"a\"; boundary*0=\"b\"", "a"), "RFC 2231"},
        {"encoded-word boundary", multipart("multipart/mixed; boundary=\"=?utf-8?q?b?=\"", "=?utf-8?q?b?="),
         "encoded word"},
        {"comment", multipart("multipart/mixed; (boundary=\"f\";) boundary=\"b\"", "b"), "comment"},
        {"invalid parameter", multipart("multipart/mixed; foo; boundary=\"b\"", "b"), "invalid Content-Type"},
        {"bare CR delimiter",
         "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\rContent-Type: text/plain\r\n\r\n"
         "x\r\n--b--\r\n",
         "bare CR"},
        {"bare LF delimiter",
         "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\nContent-Type: text/plain\r\n\r\n"
         "x\r\n--b--\r\n",
         "bare LF"},
        {"prefix boundary",
         "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=frontier-long\r\n\r\n--frontier-long\r\n"
         "Content-Type: multipart/mixed; boundary=frontier\r\n\r\n--frontier\r\nContent-Type: text/plain\r\n\r\nx\r\n"
         "--frontier--\r\n--frontier-long--\r\n",
         "start alike"},
        {"junk base64",
         "From: a@example.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         "SGV!sbG8=\r\n",
         "outside its alphabet"},
        {"data after padding",
         "From: a@example.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         "SGk=\r\nSGk=\r\n",
         "after '=' padding"},
        {"conflicting CTE",
         "From: a@example.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
         "Content-Transfer-Encoding fields that differ"},
        {"delimiter going on with text (Postfix's stray-CR rewrite)",
         "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
         "x\r\n--b Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nSGk=\r\n--b--\r\n",
         "going on with text"},
        {"message/partial",
         "From: a@example.org\r\nContent-Type: message/partial; id=\"x@y\"; number=1; total=2\r\n\r\nFrom: b\r\n",
         "message/partial"},
        {"NUL in header",
         std::string("From: a@example.org\r\nContent-Type: text/pl\0ain\r\n\r\nx\r\n", 50), "NUL"},
    };
    for (const auto& c : cases) {
        std::string name = c.name;
        CAPTURE(name);
        WalkResult r = walk_text(c.raw);
        CHECK(r.ambiguous());
        CHECK_FALSE(r.hashable());
        CHECK(has(r.ambiguities, c.reason));
        CHECK(has_whole(r));
        CHECK_FALSE(r.ambiguity().empty());
        // Never: no view for a second opinion, the message still fails closed.
        WalkResult n = walk_text(c.raw, WholeMessage::Never);
        CHECK(n.ambiguous());
        CHECK_FALSE(has_whole(n));
    }
}

TEST_CASE("delimiter lines: prefix readers' delimiters that GMime does not take") {
    DelimiterLines d({"b1", "b1"});
    d.feed("--b1\r\n--b1 \t\r\n--b1--\r\n--b1-- \r\n--b2 x\r\n-b1 x\r\n");
    CHECK(d.finish() == 0);
    DelimiterLines e({"b1"});
    e.feed("--b1 Content-Type: text/plain\r\n--b1x\r\n--b1--tail\r");
    e.feed("\n--b1");
    CHECK(e.finish() == 3);
    // Text after the kept head of a long line still counts.
    DelimiterLines f({"b1"});
    f.feed("--b1" + std::string(300, ' ') + "x\r\n");
    CHECK(f.finish() == 1);
}

TEST_CASE("mime walker: a message decoded from base64 has boundaries of its own") {
    std::string inner = "From: b@example.org\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
                        "Content-Type: text/plain\r\n\r\ninner\r\n--b1--\r\n";
    std::string b64 = "RnJvbTogYkBleGFtcGxlLm9yZw0KQ29udGVudC1UeXBlOiBtdWx0aXBhcnQvbWl4ZWQ7IGJvdW5kYXJ5PWIx"
                      "DQoNCi0tYjENCkNvbnRlbnQtVHlwZTogdGV4dC9wbGFpbg0KDQppbm5lcg0KLS1iMS0tDQo=";
    std::string raw = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
                      "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 +
                      "\r\n--b1--\r\n";
    WalkResult r = walk_text(raw);
    CHECK(r.hashable());
    CHECK(r.ambiguities.empty());
    bool found = false;
    for (const auto& it : r.items) found = found || it.part_id == "1.1";
    CHECK(found);
    (void)inner;
}

TEST_CASE("mime walker: suspect MIME gets the whole-message view, or fails closed without it") {
    // No close delimiter: every reader sees the last part to the end.
    std::string open = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                       "Content-Type: text/plain\r\n\r\nx\r\n";
    WalkResult r = walk_text(open);
    CHECK_FALSE(r.ambiguous());
    CHECK(has(r.suspects, "close delimiter"));
    CHECK(has_whole(r));
    WalkResult n = walk_text(open, WholeMessage::Never);
    CHECK(n.ambiguous());
    CHECK(has(n.ambiguities, "ScanWholeMessage never"));
    CHECK_FALSE(has_whole(n));
    // x-base64: decoded as base64, the raw text goes to the scanner in part 0.
    std::string odd = "From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Transfer-Encoding: x-base64\r\n\r\nSGVsbG8=\r\n";
    r = walk_text(odd);
    CHECK(has(r.suspects, "x-base64"));
    REQUIRE(r.items.size() == 2);
    CHECK(r.items[0].size == 5);
    // Too big for the view: fails closed.
    Spool s("/tmp", 1u << 20);
    s.append(open);
    WalkLimits lim;
    lim.max_scan_size = open.size() - 1;
    r = walk_message(s, lim);
    CHECK(r.ambiguous());
    CHECK(has(r.ambiguities, "over MaxScanSize"));
}

TEST_CASE("mime walker: ScanWholeMessage always adds the view to well-formed mail; never and ambiguous do not") {
    std::string ok = multipart("multipart/mixed; boundary=\"b\"", "b");
    CHECK(has_whole(walk_text(ok, WholeMessage::Always)));
    CHECK(walk_text(ok, WholeMessage::Always).hashable());
    CHECK_FALSE(has_whole(walk_text(ok, WholeMessage::Ambiguous)));
    CHECK_FALSE(has_whole(walk_text(ok, WholeMessage::Never)));
}

TEST_CASE("mime walker: always adds a decoded-text view when text parts are transfer-encoded") {
    std::string raw = "From: a@example.org\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
                      "Content-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\nPHA+aGk8L3A+\r\n--b--\r\n";
    WalkResult r = walk_text(raw, WholeMessage::Always);
    REQUIRE(r.items.size() == 4);
    CHECK(r.items[2].part_id == "0");
    const ScanItem& v = r.items[3];
    CHECK(v.part_id == "0.text");
    REQUIRE(v.data);
    std::string body;
    auto rd = v.data->reader();
    std::vector<char> buf(4096);
    for (std::size_t n; (n = rd->read(buf)) > 0;) body.append(buf.data(), n);
    CHECK(body.rfind("MIME-Version: 1.0\r\nContent-Type: text/plain", 0) == 0);
    CHECK(body.find("\r\n\r\n<p>hi</p>\r\n") != std::string::npos);
    CHECK(body.find("\r\nplain\r\n") == std::string::npos); // the 7bit part is literal in "0" already
    CHECK(r.hashable());
    // Not in the other modes, and not when every text part is literal.
    CHECK(walk_text(raw, WholeMessage::Ambiguous).items.size() == 2);
    CHECK(walk_text(multipart("multipart/mixed; boundary=b", "b"), WholeMessage::Always).items.size() == 2);
}

TEST_CASE("mime walker: the decoded-text view is split by MaxScanSize and made even without part 0") {
    std::string part = "PHA+" + std::string(400, 'A') + "\r\n"; // base64: <p> and 300 zero bytes
    std::string raw = "From: a@example.org\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n";
    for (int i = 0; i < 3; ++i)
        raw += "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + part;
    raw += "--b--\r\n";
    Spool s("/tmp", 1u << 20);
    s.append(raw);
    WalkLimits lim;
    lim.whole_message = WholeMessage::Always;
    lim.max_scan_size = 600; // one decoded part (303 bytes) plus the view's header fits, two do not
    WalkResult r = walk_message(s, lim);
    std::vector<std::string> got;
    for (const auto& it : r.items) got.push_back(it.part_id);
    // The raw message (over 600 bytes) has no part 0; every text part is in a view.
    CHECK(got == std::vector<std::string>{"1", "2", "3", "0.text", "0.text2", "0.text3"});
    for (const auto& it : r.items) {
        CHECK(it.scannable);
        CHECK(it.size <= lim.max_scan_size);
    }
    CHECK(r.hashable());
}

TEST_CASE("mime walker: limits are ambiguous in every mode, and the raw message is still scanned") {
    std::string deep = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n";
    std::string tail;
    for (int i = 1; i <= 20; ++i) {
        deep += "--b" + std::to_string(i - 1) + "\r\nContent-Type: multipart/mixed; boundary=b" + std::to_string(i) +
                "\r\n\r\n";
        tail = "--b" + std::to_string(i - 1) + "--\r\n" + tail;
    }
    deep += "--b20\r\nContent-Type: text/plain\r\n\r\nx\r\n--b20--\r\n" + tail;
    for (WholeMessage m : {WholeMessage::Never, WholeMessage::Ambiguous, WholeMessage::Always}) {
        WalkResult r = walk_text(deep, m);
        CHECK(r.limit_hit);
        CHECK(r.ambiguous());
        CHECK(r.ambiguity().find("depth limit") != std::string::npos);
        CHECK(has_whole(r));
    }
}
