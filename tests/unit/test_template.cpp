// NAME
//   test_template.cpp - unit tests of the administrator's templates
#include "icap-milter/policy/template.hpp"

#include <doctest/doctest.h>

using namespace icapm;

namespace {
// fields - a typical infected message.
TemplateFields fields() {
    TemplateFields f;
    f.viruses = {"Eicar-Test", "Win.Trojan.X"};
    f.files = {"invoice.exe", "", "a.zip"};
    f.sender = "alice@example.org";
    f.recipients = {"bob@example.net", "carol@example.net"};
    f.queue_id = "4ABC";
    f.job_id = "Job-7";
    f.date = "Fri, 27 Nov 2026 19:00:00 +0000";
    f.host = "mx1.example.net";
    f.status = "Infected";
    f.reason = "infected: Eicar-Test";
    f.subject = "Invoice";
    return f;
}
} // namespace

TEST_CASE("template: fields expand, unknown text stays, braces escape") {
    TemplateFields f = fields();
    CHECK(render("Virus found: {viruses}", f) == "Virus found: Eicar-Test, Win.Trojan.X");
    CHECK(render("{files} from {sender} to {recipients}", f) ==
          "invoice.exe, a.zip from alice@example.org to bob@example.net, carol@example.net");
    CHECK(render("{queue_id} {job_id} {host} {status} {subject}", f) == "4ABC Job-7 mx1.example.net Infected Invoice");
    CHECK(render("{{viruses}} {nope} }}", f) == "{viruses} {nope} }");
    CHECK(render("line one\nline two", f) == "line one line two");
    CHECK(render("line one\r\nline two", f, true) == "line one\nline two");
    CHECK(render("a{nl}b", f, true) == "a\nb");
    CHECK(render("a{nl}b", f) == "a b");
}

TEST_CASE("template: hostile values cannot add lines or control bytes") {
    TemplateFields f = fields();
    f.viruses = {"Evil\r\nBcc: victim@example.org"};
    f.files = {"a\x01\x7f.exe"};
    std::string r = render("{viruses} {files}", f, true);
    CHECK(r.find('\r') == std::string::npos);
    CHECK(r.find('\n') == std::string::npos);
    CHECK(r == "Evil  Bcc: victim@example.org a  .exe");
    TemplateFields big;
    big.viruses = {std::string(5000, 'v')};
    CHECK(render("{viruses}", big).size() == 1000);
}

TEST_CASE("template: config check names unknown fields and stray braces") {
    CHECK(template_error("Virus found: {viruses} in {files}").empty());
    CHECK(template_error("{{literal}}").empty());
    CHECK(template_error("{virus}").find("unknown field {virus}") == 0);
    CHECK(template_error("a { b").find("without '}'") != std::string::npos);
    CHECK(template_error("a } b").find("without '{'") != std::string::npos);
}

TEST_CASE("template: header and reply lines") {
    CHECK(header_line("  [VIRUS]\r\n  Invoice  ") == "[VIRUS] Invoice");
    CHECK(header_line(std::string(300, 'x')).size() == 200);
    std::string utf = std::string(199, 'x') + "\xc3\xa9"; // the 'é' would straddle 200
    CHECK(header_line(utf) == std::string(199, 'x'));
    CHECK(reply_line("Virus 100% found\r\nnext") == "Virus 100_ found next");
    CHECK(reply_line(std::string(500, 'a')).size() == 400);
    CHECK(reply_line("caf\xc3\xa9") == "caf");
}
