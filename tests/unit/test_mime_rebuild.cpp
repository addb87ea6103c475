// NAME
//   test_mime_rebuild.cpp - unit tests of the notify and clean rebuilds
// SUMMARY
//   Every rebuilt message (top headers with the edits applied, blank
//   line, new body) is parsed again: by GMime directly (tree shape,
//   Content-Type of the new parts) and by the walker (each leaf's
//   decoded bytes, compared with the original's leaf by leaf; no
//   ambiguity or suspicion). Where a part is replaced the whole new body
//   is also compared byte for byte with the original in which only that
//   entity's bytes were swapped. Cases: attachment, alternative inside
//   mixed, inline and encoded message/rfc822, single part, several
//   replacements, inline uuencode, preamble and nested epilogue, ids that
//   cannot be cleaned, bare LF, delimiter-like texts, spools on disk;
//   notify_message's charset and encoding choices.
#include "icap-milter/mime/gobject_ptr.hpp"
#include "icap-milter/mime/rebuild.hpp"
#include "icap-milter/mime/walker.hpp"

#include "mime_fixtures.hpp"

#include <doctest/doctest.h>
#include <gmime/gmime.h>

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace icapm;
using namespace icapm::test;

namespace {

// clean - clean_message over raw bytes.
std::optional<RebuiltMessage> clean(std::string_view raw, const std::vector<Replacement>& r, std::size_t mem = 1u << 20) {
    auto s = spool_of(raw, mem);
    return clean_message(*s, r);
}

// header_end - offset of the top-level body (after the first empty line).
std::size_t header_end(const std::string& raw) {
    std::size_t crlf_at = raw.find("\r\n\r\n");
    std::size_t lf_at = raw.find("\n\n");
    if (crlf_at != std::string::npos && (lf_at == std::string::npos || crlf_at + 1 <= lf_at)) return crlf_at + 4;
    REQUIRE(lf_at != std::string::npos);
    return lf_at + 2;
}

// iequal - ASCII case-insensitive equality.
bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// rebuilt - what the milter passes on: the top header fields with the
// edits applied (chgheader replaces, addheader appends), then the body.
std::string rebuilt(const std::string& raw, const RebuiltMessage& m) {
    std::size_t he = header_end(raw);
    std::string eol = raw.compare(he - 4, 4, "\r\n\r\n") == 0 ? "\r\n" : "\n";
    std::vector<std::pair<std::string, std::string>> fields; // name, whole field text with line ends
    std::string block = raw.substr(0, he - eol.size());
    for (std::size_t p = 0; p < block.size();) {
        std::size_t nl = block.find('\n', p);
        std::string line = block.substr(p, nl + 1 - p);
        if ((line[0] == ' ' || line[0] == '\t') && !fields.empty())
            fields.back().second += line;
        else
            fields.emplace_back(line.substr(0, line.find(':')), line);
        p = nl + 1;
    }
    for (const auto& e : m.headers) {
        bool set = false;
        std::vector<std::pair<std::string, std::string>> kept;
        for (auto& f : fields) {
            if (!iequal(f.first, e.name)) {
                kept.push_back(f);
            } else if (!e.remove_all && !set) {
                kept.emplace_back(e.name, e.name + ": " + e.value + eol);
                set = true;
            }
        }
        if (!e.remove_all && !set) kept.emplace_back(e.name, e.name + ": " + e.value + eol);
        fields = std::move(kept);
    }
    std::string out;
    for (const auto& f : fields) out += f.second;
    return out + eol + m.body;
}

// Leaf - one walker item: type and decoded bytes.
struct Leaf {
    std::string type;
    std::string data;
    bool scannable = true; // not compared: a wrapper that lost a part may read otherwise
    bool operator==(const Leaf& o) const { return type == o.type && data == o.data; }
};

// leaves - the walker's items of a message by id; the walk must find
// nothing ambiguous or suspect.
std::map<std::string, Leaf> leaves(const std::string& raw) {
    WalkLimits lim;
    lim.whole_message = WholeMessage::Never;
    auto s = spool_of(raw);
    WalkResult r = walk_message(*s, lim);
    CHECK_MESSAGE(!r.ambiguous(), r.ambiguity());
    CHECK_MESSAGE(r.suspects.empty(), (r.suspects.empty() ? "" : r.suspects.front()));
    std::map<std::string, Leaf> out;
    for (const auto& it : r.items) {
        Leaf l;
        l.type = it.content_type;
        l.scannable = it.scannable;
        if (it.data) {
            auto rd = it.data->reader();
            std::vector<char> buf(4096);
            for (std::size_t n; (n = rd->read(buf)) > 0;) l.data.append(buf.data(), n);
        }
        out[it.part_id] = l;
    }
    return out;
}

// ids - the keys of a leaf map, comma separated.
std::string ids(const std::map<std::string, Leaf>& m) {
    std::string s;
    for (const auto& [id, l] : m) s += (s.empty() ? "" : ",") + id;
    return s;
}

// Tree - GMime's reading: "mixed(text,alternative(text,text))".
std::string shape(GMimeObject* o) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    std::string sub = ct && g_mime_content_type_get_media_subtype(ct) ? g_mime_content_type_get_media_subtype(ct) : "?";
    if (GMIME_IS_MULTIPART(o)) {
        std::string s = sub + "(";
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
        for (int i = 0; i < n; ++i) s += (i ? "," : "") + shape(g_mime_multipart_get_part(GMIME_MULTIPART(o), i));
        return s + ")";
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage* m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        return "rfc822[" + (m ? shape(g_mime_message_get_mime_part(m)) : std::string()) + "]";
    }
    return sub;
}

// tree - the shape of a whole message, as GMime parses it.
std::string tree(const std::string& raw) {
    mime_init();
    GObjectPtr<GMimeStream> st = adopt(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
    GObjectPtr<GMimeParser> p = adopt(g_mime_parser_new_with_stream(st.get()));
    GObjectPtr<GMimeMessage> m = adopt(g_mime_parser_construct_message(p.get(), nullptr));
    REQUIRE(m);
    return shape(g_mime_message_get_mime_part(m.get()));
}

// text_part - the entity clean_message puts in place of an infected one.
std::string text_part(const std::string& body, const std::string& eol = "\r\n", const char* charset = "us-ascii",
                      const char* cte = "7bit") {
    return std::string("Content-Type: text/plain; charset=") + charset + eol + "Content-Transfer-Encoding: " + cte +
           eol + "Content-Disposition: inline" + eol + eol + body;
}

// swapped - raw's body with one entity's bytes replaced.
std::string swapped(const std::string& raw, const std::string& entity, const std::string& by) {
    std::string body = raw.substr(header_end(raw));
    std::size_t at = body.find(entity);
    REQUIRE(at != std::string::npos);
    REQUIRE(body.find(entity, at + 1) == std::string::npos);
    return body.replace(at, entity.size(), by);
}

// same_except - after holds exactly want_ids; every leaf not in changed
// is as before, every leaf in changed is text/plain with that text.
void same_except(const std::map<std::string, Leaf>& before, const std::map<std::string, Leaf>& after,
                 const std::string& want_ids, const std::map<std::string, std::string>& changed) {
    CHECK(ids(after) == want_ids);
    for (const auto& [id, leaf] : after) {
        auto c = changed.find(id);
        if (c != changed.end()) {
            CHECK_MESSAGE(leaf.type == "text/plain", id);
            CHECK_MESSAGE(leaf.data == c->second, id << " [" << leaf.data.size() << " vs " << c->second.size() << "]");
        } else {
            REQUIRE_MESSAGE(before.count(id) == 1, id);
            CHECK_MESSAGE(leaf == before.at(id), id);
        }
    }
}

const char* const kEicarB64 =
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\n"
    "LUZJTEUhJEgrSCo=\n";

// eicar_part - an EICAR attachment entity (no final line end: that one
// belongs to the next delimiter).
std::string eicar_part(const std::string& name) {
    return "Content-Type: application/octet-stream; name=\"" + name +
           "\"\nContent-Disposition: attachment; filename=\"" + name +
           "\"\nContent-Transfer-Encoding: base64\n\n" + std::string(kEicarB64, std::strlen(kEicarB64) - 1);
}

const char* const kHead = "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: test\n"
                          "Date: Mon, 04 Mar 2024 10:00:00 +0100\nMIME-Version: 1.0\n";

// mixed - a multipart/mixed message of these entities (LF; crlf() it).
std::string mixed(const std::vector<std::string>& parts, const std::string& boundary = "=_b1") {
    std::string m = std::string(kHead) + "Content-Type: multipart/mixed; boundary=\"" + boundary +
                    "\"\n\nThis is a multi-part message in MIME format.\n";
    for (const auto& p : parts) m += "--" + boundary + "\n" + p + "\n";
    return m + "--" + boundary + "--\n";
}

const char* const kText = "Content-Type: text/plain; charset=us-ascii\n\nHello Bob,\nsee attached.\n";
const char* const kPdf = "Content-Type: application/pdf; name=\"r.pdf\"\nContent-Transfer-Encoding: base64\n\n"
                         "JVBERi0xLjQKJSBpY2FwLW1pbHRlciB0ZXN0IGF0dGFjaG1lbnQK";
const char* const kNote = "The attachment eicar.com was removed: it held Eicar-Test-Signature.\n";

} // namespace

TEST_CASE("mime rebuild: notify_message of ASCII text is 7bit us-ascii") {
    RebuiltMessage m = notify_message("Your message held a virus.\nIt was not delivered.");
    CHECK(m.body == "Your message held a virus.\r\nIt was not delivered.\r\n");
    REQUIRE(m.headers.size() == 9);
    CHECK(m.headers[0].name == "MIME-Version");
    CHECK(m.headers[0].value == "1.0");
    CHECK(m.headers[1].name == "Content-Type");
    CHECK(m.headers[1].value == "text/plain; charset=us-ascii");
    CHECK(m.headers[2].name == "Content-Transfer-Encoding");
    CHECK(m.headers[2].value == "7bit");
    for (std::size_t i = 3; i < m.headers.size(); ++i) {
        CHECK(m.headers[i].remove_all);
        CHECK(m.headers[i].name.rfind("Content-", 0) == 0);
    }
    // Applied to a message with an attachment, it is a valid single part.
    std::string raw = crlf(mixed({kText, eicar_part("eicar.com")}));
    std::string out = rebuilt(raw, m);
    CHECK(tree(out) == "plain");
    auto after = leaves(out);
    CHECK(ids(after) == "1");
    CHECK(after["1"].data == "Your message held a virus.\r\nIt was not delivered.\r\n");
    CHECK(out.find("multipart") == std::string::npos);
}

TEST_CASE("mime rebuild: notify_message of UTF-8 or long lines is quoted-printable") {
    SUBCASE("utf-8") {
        std::string text = "Virus gefunden in \xC3\xBC" "ber.exe = schlecht\n-- \nPostmaster\n";
        RebuiltMessage m = notify_message(text);
        CHECK(m.headers[1].value == "text/plain; charset=utf-8");
        CHECK(m.headers[2].value == "quoted-printable");
        CHECK(m.body.find("=C3=BC") != std::string::npos);
        CHECK(m.body.find("=3D") != std::string::npos);
        std::string out = rebuilt(crlf(std::string(kHead) + "Content-Type: text/plain\n\nhi\n"), m);
        CHECK(leaves(out)["1"].data == crlf(text));
    }
    SUBCASE("a 2000-character ASCII line") {
        std::string text = std::string(2000, 'a') + " end \n";
        RebuiltMessage m = notify_message(text);
        CHECK(m.headers[1].value == "text/plain; charset=us-ascii");
        CHECK(m.headers[2].value == "quoted-printable");
        for (std::size_t p = 0, nl; (nl = m.body.find("\r\n", p)) != std::string::npos; p = nl + 2)
            CHECK(nl - p <= 76);
        CHECK(m.body.find(" end=20\r\n") != std::string::npos); // trailing blank encoded
        std::string out = rebuilt(crlf(std::string(kHead) + "Content-Type: text/plain\n\nhi\n"), m);
        CHECK(leaves(out)["1"].data == crlf(text));
    }
    SUBCASE("empty text still ends its body with a line end") {
        CHECK(notify_message("").body == "\r\n");
    }
}

TEST_CASE("mime rebuild: clean a base64 EICAR attachment in multipart/mixed") {
    std::string raw = crlf(mixed({kText, eicar_part("eicar.com"), kPdf}));
    auto m = clean(raw, {{"2", kNote}});
    REQUIRE(m);
    CHECK(m->headers.empty());
    CHECK(m->body == swapped(raw, crlf(eicar_part("eicar.com")), text_part(crlf(kNote))));
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(plain,plain,pdf)");
    same_except(leaves(raw), leaves(out), "1,2,3,preamble", {{"2", crlf(kNote)}});
}

TEST_CASE("mime rebuild: clean one alternative of a multipart/alternative inside mixed") {
    std::string html = "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
                       std::string(kEicarB64, std::strlen(kEicarB64) - 1);
    std::string alt = "Content-Type: multipart/alternative; boundary=\"alt\"\n\n--alt\n"
                      "Content-Type: text/plain\n\nplain version\n--alt\n" +
                      html + "\n--alt--\n";
    std::string raw = crlf(mixed({alt, kPdf}));
    auto before = leaves(raw);
    REQUIRE(ids(before) == "1.1,1.2,2,preamble");
    auto m = clean(raw, {{"1.2", kNote}});
    REQUIRE(m);
    CHECK(m->body == swapped(raw, crlf(html), text_part(crlf(kNote))));
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(alternative(plain,plain),pdf)");
    same_except(before, leaves(out), "1.1,1.2,2,preamble", {{"1.2", crlf(kNote)}});
}

TEST_CASE("mime rebuild: clean an attachment inside an inline message/rfc822") {
    std::string raw = load("nested_rfc822.eml");
    auto before = leaves(raw);
    REQUIRE(ids(before) == "1,2.1,2.2,3");
    auto m = clean(raw, {{"2.2", kNote}});
    REQUIRE(m);
    std::string zip = raw.substr(raw.find("Content-Type: application/zip"));
    zip = zip.substr(0, zip.find("\r\n--inner--"));
    CHECK(m->body == swapped(raw, zip, text_part(crlf(kNote))));
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(plain,rfc822[mixed(plain,plain)],octet-stream)");
    same_except(before, leaves(out), "1,2.1,2.2,3", {{"2.2", crlf(kNote)}});
}

TEST_CASE("mime rebuild: the body of a single-part inline message/rfc822 replaces the message") {
    std::string fwd = "Content-Type: message/rfc822\n\nFrom: dave@example.com\nSubject: original\n"
                      "Content-Type: text/plain\n\nhere it is:\nbegin 644 eicar.com\n"
                      "M6#5/(5`E0$%06S1<4%I8-30H4%XI-T-#*3=])$5)0T%2+5-404Y$05)$+4%.\n"
                      "75$E625)54RU415-4+49)3$4A)$@K2\"H`\n`\nend";
    std::string raw = crlf(mixed({kText, fwd, kPdf}));
    auto before = leaves(raw);
    REQUIRE(ids(before) == "1,2.1,2.1.u1,3,preamble");
    for (const char* id : {"2.1.u1", "2.1", "2"}) {
        CAPTURE(std::string(id));
        auto m = clean(raw, {{id, kNote}});
        REQUIRE(m);
        CHECK(m->body == swapped(raw, crlf(fwd), text_part(crlf(kNote))));
        std::string out = rebuilt(raw, *m);
        CHECK(tree(out) == "mixed(plain,plain,pdf)");
        same_except(before, leaves(out), "1,2,3,preamble", {{"2", crlf(kNote)}});
    }
    CHECK_FALSE(clean(raw, {{"2.2", "t"}}));
    CHECK_FALSE(clean(raw, {{"2.1.1", "t"}}));
}

TEST_CASE("mime rebuild: an id inside a base64-encoded message/rfc822 replaces that message") {
    std::string inner = crlf(mixed({kText, eicar_part("eicar.com")}, "in"));
    // base64 of the inner message, 76 columns.
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    for (std::size_t i = 0; i < inner.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(inner[i]) << 16;
        if (i + 1 < inner.size()) v |= static_cast<unsigned char>(inner[i + 1]) << 8;
        if (i + 2 < inner.size()) v |= static_cast<unsigned char>(inner[i + 2]);
        b64 += abc[(v >> 18) & 63];
        b64 += abc[(v >> 12) & 63];
        b64 += i + 1 < inner.size() ? abc[(v >> 6) & 63] : '=';
        b64 += i + 2 < inner.size() ? abc[v & 63] : '=';
        if ((i / 3 + 1) % 19 == 0) b64 += "\n";
    }
    if (b64.back() == '\n') b64.pop_back();
    std::string fwd = "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" + b64;
    std::string raw = crlf(mixed({kText, fwd}));
    auto before = leaves(raw);
    REQUIRE(ids(before) == "1,2.1,2.2,2.preamble,preamble");
    auto m = clean(raw, {{"2.2", kNote}});
    REQUIRE(m);
    CHECK(m->body == swapped(raw, crlf(fwd), text_part(crlf(kNote))));
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(plain,plain)");
    same_except(before, leaves(out), "1,2,preamble", {{"2", crlf(kNote)}});
}

TEST_CASE("mime rebuild: cleaning the body of a single-part message edits the top headers") {
    std::string raw = crlf(std::string(kHead) +
                           "Content-Type: application/octet-stream; name=\"eicar.com\"\n"
                           "Content-Disposition: attachment; filename=\"eicar.com\"\n"
                           "Content-Transfer-Encoding: base64\nContent-ID: <x@y>\n\n" + kEicarB64);
    auto m = clean(raw, {{"1", kNote}});
    REQUIRE(m);
    CHECK(m->body == crlf(kNote));
    bool ct = false, cd = false;
    for (const auto& h : m->headers) {
        if (h.name == "Content-Type") ct = h.value == "text/plain; charset=us-ascii" && !h.remove_all;
        if (h.name == "Content-Disposition") cd = h.remove_all;
    }
    CHECK(ct);
    CHECK(cd);
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "plain");
    CHECK(out.find("eicar.com\"") == std::string::npos);
    CHECK(out.find("Content-ID") == std::string::npos);
    CHECK(out.find("Subject: test\r\n") != std::string::npos);
    same_except(leaves(raw), leaves(out), "1", {{"1", crlf(kNote)}});
}

TEST_CASE("mime rebuild: two infected parts, and texts that land in one entity") {
    std::string raw = crlf(mixed({kText, eicar_part("a.com"), kPdf, eicar_part("b.com")}));
    SUBCASE("two parts") {
        auto m = clean(raw, {{"4", "b.com removed\n"}, {"2", "a.com removed\n"}});
        REQUIRE(m);
        std::string want = swapped(raw, crlf(eicar_part("a.com")), text_part("a.com removed\r\n"));
        std::size_t at = want.find(crlf(eicar_part("b.com")));
        REQUIRE(at != std::string::npos);
        want.replace(at, crlf(eicar_part("b.com")).size(), text_part("b.com removed\r\n"));
        CHECK(m->body == want);
        std::string out = rebuilt(raw, *m);
        CHECK(tree(out) == "mixed(plain,plain,pdf,plain)");
        same_except(leaves(raw), leaves(out), "1,2,3,4,preamble",
                    {{"2", "a.com removed\r\n"}, {"4", "b.com removed\r\n"}});
    }
    SUBCASE("the same entity twice: texts joined once each") {
        auto m = clean(raw, {{"2", "first"}, {"2.u1", "second\n"}, {"2", "first"}});
        REQUIRE(m);
        std::string out = rebuilt(raw, *m);
        same_except(leaves(raw), leaves(out), "1,2,3,4,preamble", {{"2", "first\r\nsecond\r\n"}});
    }
}

TEST_CASE("mime rebuild: an inline uuencode block replaces the text that holds it") {
    SUBCASE("single-part message") {
        std::string raw = load("uuencode_eicar.eml");
        REQUIRE(ids(leaves(raw)) == "1,1.u1");
        auto m = clean(raw, {{"1.u1", kNote}});
        REQUIRE(m);
        CHECK(m->body == crlf(kNote));
        std::string out = rebuilt(raw, *m);
        same_except(leaves(raw), leaves(out), "1", {{"1", crlf(kNote)}});
    }
    SUBCASE("a text part of a multipart") {
        std::string uu = load("uuencode_eicar.eml");
        std::erase(uu, '\r');
        std::string text = "Content-Type: text/plain\n\n" + uu.substr(uu.find("Hello Bob"));
        text.pop_back(); // the last line end belongs to the delimiter
        std::string raw = crlf(mixed({kText, text, kPdf}));
        auto before = leaves(raw);
        REQUIRE(ids(before) == "1,2,2.u1,3,preamble");
        auto m = clean(raw, {{"2.u1", kNote}});
        REQUIRE(m);
        std::string out = rebuilt(raw, *m);
        CHECK(tree(out) == "mixed(plain,plain,pdf)");
        same_except(before, leaves(out), "1,2,3,preamble", {{"2", crlf(kNote)}});
    }
}

TEST_CASE("mime rebuild: a preamble or nested epilogue becomes a notice") {
    SUBCASE("top-level preamble") {
        std::string raw = load("preamble_eicar.eml");
        auto before = leaves(raw);
        REQUIRE(ids(before) == "1,preamble");
        auto m = clean(raw, {{"preamble", "- removed: Eicar-Test-Signature \xC3\xBC"}});
        REQUIRE(m);
        std::string old = raw.substr(header_end(raw));
        old = old.substr(0, old.find("\r\n--outer"));
        CHECK(m->body == swapped(raw, old, " - removed: Eicar-Test-Signature ??"));
        std::string out = rebuilt(raw, *m);
        CHECK(tree(out) == "mixed(plain)");
        same_except(before, leaves(out), "1,preamble", {{"preamble", " - removed: Eicar-Test-Signature ??"}});
    }
    SUBCASE("epilogue of a nested multipart") {
        std::string raw = load("nested_epilogue_eicar.eml");
        auto before = leaves(raw);
        REQUIRE(ids(before) == "1.1,1.2,1.epilogue,2,preamble");
        auto m = clean(raw, {{"1.epilogue", "removed"}});
        REQUIRE(m);
        std::string old = raw.substr(raw.find("--inner--\r\n") + 11);
        old = old.substr(0, old.find("\r\n--outer"));
        CHECK(m->body == swapped(raw, old, "removed"));
        std::string out = rebuilt(raw, *m);
        CHECK(tree(out) == "mixed(alternative(plain,html),plain)");
        same_except(before, leaves(out), "1.1,1.2,1.epilogue,2,preamble", {{"1.epilogue", "removed"}});
    }
    SUBCASE("a blank preamble cannot be cleaned") {
        std::string raw = crlf(mixed({kText}));
        raw.replace(raw.find("This is a multi-part message in MIME format."), 44, "  ");
        CHECK_FALSE(clean(raw, {{"preamble", "x"}}));
    }
}

TEST_CASE("mime rebuild: ids that cannot be cleaned give nullopt") {
    std::string raw = crlf(mixed({kText, eicar_part("eicar.com")}));
    for (const char* id : {"0", "0.text", "3", "2.1", "1.2", "", "01", "x", "2.0", "2.u0", "2.u1.u2", "1.preamble", "epilogue"}) {
        CAPTURE(std::string(id));
        CHECK_FALSE(clean(raw, {{id, "t"}}));
    }
    CHECK_FALSE(clean(raw, {{"2", "t"}, {"0", "t"}}));
    CHECK_FALSE(clean(raw, {}));
    std::string single = crlf(std::string(kHead) + "Content-Type: text/plain\n\nhi\n");
    CHECK_FALSE(clean(single, {{"2", "t"}}));
    CHECK(clean(single, {{"1", "t"}}));
}

TEST_CASE("mime rebuild: bare LF messages keep LF") {
    std::string raw = mixed({kText, eicar_part("eicar.com"), kPdf});
    auto m = clean(raw, {{"2", "removed\n"}});
    REQUIRE(m);
    CHECK(m->body == swapped(raw, eicar_part("eicar.com"), text_part("removed\n", "\n")));
    CHECK(m->body.find('\r') == std::string::npos);
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(plain,plain,pdf)");
    same_except(leaves(raw), leaves(out), "1,2,3,preamble", {{"2", "removed\n"}});
}

TEST_CASE("mime rebuild: texts that look like delimiters are quoted-printable") {
    std::string raw = crlf(mixed({kText, eicar_part("eicar.com"), kPdf}));
    std::string text = "removed file\n--=_b1--\n--=_b1\nContent-Type: text/html\n\n<b>x</b>\n";
    auto m = clean(raw, {{"2", text}});
    REQUIRE(m);
    CHECK(m->body.find("charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable") != std::string::npos);
    CHECK(m->body.find("\r\n=2D-=3D_b1") != std::string::npos);
    std::string out = rebuilt(raw, *m);
    CHECK(tree(out) == "mixed(plain,plain,pdf)");
    same_except(leaves(raw), leaves(out), "1,2,3,preamble", {{"2", crlf(text)}});
}

TEST_CASE("mime rebuild: a message spooled on disk, and one without its close delimiter") {
    std::string raw = crlf(mixed({kText, eicar_part("eicar.com"), kPdf}));
    SUBCASE("on disk") {
        auto m = clean(raw, {{"2", kNote}}, 0);
        REQUIRE(m);
        CHECK(m->body == swapped(raw, crlf(eicar_part("eicar.com")), text_part(crlf(kNote))));
    }
    SUBCASE("no close delimiter") {
        std::string open = raw.substr(0, raw.find("--=_b1--"));
        auto m = clean(open, {{"3", kNote}});
        REQUIRE(m);
        std::string pdf = crlf(kPdf) + "\r\n";
        CHECK(m->body == swapped(open, pdf, text_part(crlf(kNote))));
    }
}

TEST_CASE("mime rebuild: readings that disagree give nullopt") {
    SUBCASE("an inner boundary that starts like the outer one") {
        std::string alt = "Content-Type: multipart/alternative; boundary=\"=_b1x\"\n\n--=_b1x\n"
                          "Content-Type: text/plain\n\nplain\n--=_b1x--\n";
        std::string raw = crlf(mixed({alt, eicar_part("eicar.com")}));
        CHECK_FALSE(clean(raw, {{"2", "t"}}));
    }
    SUBCASE("a part glued to a delimiter at the end of the message") {
        std::string raw = crlf(std::string(kHead) + "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n" + kText +
                               "--b");
        CHECK_FALSE(clean(raw, {{"1", "t"}}));
    }
}

TEST_CASE("mime rebuild: bounds on hostile input") {
    SUBCASE("nesting deeper than 32 levels") {
        std::string m = std::string(kHead);
        for (int i = 0; i < 40; ++i)
            m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" + std::to_string(i) + "\n";
        m += "Content-Type: text/plain\n\nleaf\n";
        for (int i = 39; i >= 0; --i) m += "--b" + std::to_string(i) + "--\n";
        CHECK_FALSE(clean(crlf(m), {{"1", "t"}}));
    }
    SUBCASE("a large attachment is spliced around, not parsed") {
        std::string big = "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n";
        for (int i = 0; i < 100000; ++i) big += "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
        big.pop_back();
        std::string raw = crlf(mixed({kText, eicar_part("eicar.com"), big}));
        auto m = clean(raw, {{"2", kNote}}, 0);
        REQUIRE(m);
        CHECK(m->body == swapped(raw, crlf(eicar_part("eicar.com")), text_part(crlf(kNote))));
    }
}

TEST_CASE("mime rebuild: every item of every fixture") {
    // Each item that the walker finds is cleaned alone. Either the clean
    // is refused, or the result parses without ambiguity and every leaf
    // outside the replaced entity is as it was.
    std::vector<std::string> names;
    for (const char* dir : {"", "corpus/"}) {
        std::string path = std::string(TEST_DATA_DIR) + "/mime/" + dir;
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n.size() > 4 && n.compare(n.size() - 4, 4, ".eml") == 0) names.push_back(dir + n);
            }
            ::closedir(d);
        }
    }
    std::sort(names.begin(), names.end());
    REQUIRE(names.size() > 20);
    int cleaned = 0, refused = 0;
    for (const auto& name : names) {
        std::string raw = load(name);
        WalkLimits lim;
        lim.whole_message = WholeMessage::Never;
        auto sp = spool_of(raw);
        WalkResult before = walk_message(*sp, lim);
        if (before.ambiguous() || !before.suspects.empty()) continue;
        std::map<std::string, Leaf> old = leaves(raw);
        for (const auto& it : before.items) {
            CAPTURE(name);
            CAPTURE(it.part_id);
            auto m = clean(raw, {{it.part_id, "removed"}});
            if (!m) {
                MESSAGE("refused " << name << " " << it.part_id);
                ++refused;
                continue;
            }
            ++cleaned;
            std::map<std::string, Leaf> now = leaves(rebuilt(raw, *m));
            // The replaced entity is the longest prefix of the id still
            // present with the text; leaves elsewhere are unchanged.
            std::string top = it.part_id;
            while (!now.count(top) && top.find('.') != std::string::npos) top.erase(top.rfind('.'));
            REQUIRE(now.count(top) == 1);
            // A whole body gets a final line end (and so may a top-level epilogue).
            const std::string& got = now[top].data;
            CHECK((got == "removed" || got == "removed\r\n" || got == "removed\n"));
            for (const auto& [id, leaf] : now)
                if (id != top && id.rfind(top + ".", 0) != 0 && old[id].scannable) CHECK_MESSAGE(leaf == old[id], id);
        }
    }
    MESSAGE("cleaned " << cleaned << ", refused " << refused);
    CHECK(cleaned > 20);
}
