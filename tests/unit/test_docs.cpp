// NAME
//   test_docs.cpp - the shipped docs must agree with the schema
// SUMMARY
//   conf/icap-milter.conf.in and man/icap-milter.conf.5.in are read from
//   the source tree (TOP_SRCDIR); they name the installation directories
//   as placeholders (@sysconfdir@, ...), which the build substitutes. Each schema key must appear exactly once as
//   a key line in the sample and as a ".B Key" entry in the man page,
//   neither may name a key the schema lacks, and the defaults, types and
//   ranges they show must be the schema's. Both files are also compared
//   with what sample_config() and man_options() generate.
//   To regenerate after editing the schema: ICAPM_UPDATE_DOCS=1
//   tests/unit/unit_tests -tc='docs:*' (rewrites the sample and the
//   OPTIONS section of the man page in place), then review the diff.
#include "icap-milter/config/config.hpp"
#include "icap-milter/config/paths.hpp"
#include "icap-milter/config/schema.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

using namespace icapm;

namespace {

const std::string conf_path = TOP_SRCDIR "/conf/icap-milter.conf.in";
const std::string man_path = TOP_SRCDIR "/man/icap-milter.conf.5.in";

// slurp - a whole file.
std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// lines - text split at newlines.
std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// first_difference - where two texts part, for a readable failure message.
std::string first_difference(const std::string& got, const std::string& want) {
    auto g = lines(got), w = lines(want);
    for (std::size_t i = 0; i < std::max(g.size(), w.size()); ++i) {
        std::string gl = i < g.size() ? g[i] : "<end of file>", wl = i < w.size() ? w[i] : "<end of file>";
        if (gl != wl) return "line " + std::to_string(i + 1) + ": file has '" + gl + "', schema gives '" + wl + "'";
    }
    return "texts differ only in the final newline";
}

// update_requested - whether the run should rewrite the docs.
bool update_requested() { return std::getenv("ICAPM_UPDATE_DOCS") != nullptr; }

// options_section - the body of ".SH OPTIONS" up to the next ".SH".
std::pair<std::size_t, std::size_t> options_section(const std::string& man) {
    const std::string head = ".SH OPTIONS\n";
    std::size_t start = man.find(head);
    if (start == std::string::npos) return {std::string::npos, std::string::npos};
    start += head.size();
    // Search from the head's own newline, so an empty section is found too.
    std::size_t end = man.find("\n.SH ", start - 1);
    end = end == std::string::npos ? man.size() : end + 1;
    return {start, end};
}

// unroff - undo the escapes the generator and hand-written entries use.
std::string unroff(std::string s) {
    const std::pair<std::string, std::string> subs[] = {
        {"\\-", "-"}, {"\\&", ""}, {"\\e", "\\"}, {"\\(dq", "\""}, {"\\fB", ""}, {"\\fR", ""}, {"\\fI", ""}, {"\\fP", ""}};
    for (const auto& [from, to] : subs)
        for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
    return s;
}

// KeyLine - a key line of the sample config ("Key value" or "#Key value").
struct KeyLine {
    std::string key;
    std::string value;
    bool commented;
    unsigned number;
};

// key_lines - every line of the sample that sets, or shows, a key. Help
// comments start with "# " (a blank after the '#'), so they never match.
std::vector<KeyLine> key_lines(const std::string& text) {
    static const std::regex key_re(R"(^(#?)([A-Za-z][A-Za-z0-9]*)(?:[ \t]+(.*))?$)");
    std::vector<KeyLine> out;
    unsigned n = 0;
    for (const std::string& l : lines(text)) {
        ++n;
        std::smatch m;
        if (std::regex_match(l, m, key_re)) out.push_back({m[2], m[3], m[1].length() == 1, n});
    }
    return out;
}

// ManEntry - one ".B Word" / ".BR Word ..." line of the man page and the text after it.
struct ManEntry {
    std::string word;
    std::string body;      // up to the next .TP, .SS or .SH
    bool option_entry;     // a .TP tag inside the OPTIONS section
};

// man_entries - every .B and .BR line. Keys mentioned in running text are
// written \fBKey\fR, so a ".B Key" line is always the key's own entry.
std::vector<ManEntry> man_entries(const std::string& man) {
    static const std::regex entry_re(R"(^\.BR? (\S+)(?: .*)?$)");
    std::vector<ManEntry> out;
    auto ls = lines(man);
    bool in_options = false;
    for (std::size_t i = 0; i < ls.size(); ++i) {
        if (ls[i].starts_with(".SH")) in_options = ls[i] == ".SH OPTIONS";
        std::smatch m;
        if (!std::regex_match(ls[i], m, entry_re)) continue;
        ManEntry e{m[1], {}, in_options && i > 0 && ls[i - 1] == ".TP"};
        for (std::size_t j = i + 1; j < ls.size(); ++j) {
            if (ls[j].starts_with(".TP") || ls[j].starts_with(".SS") || ls[j].starts_with(".SH")) break;
            e.body += ls[j] + "\n";
        }
        out.push_back(std::move(e));
    }
    return out;
}

} // namespace

TEST_CASE("docs: sample config is generated from the schema") {
    std::string conf = slurp(conf_path);
    if (update_requested() && conf != sample_config()) {
        std::ofstream(conf_path, std::ios::binary) << sample_config();
        conf = slurp(conf_path);
    }
    const bool same = conf == sample_config();
    CHECK_MESSAGE(same, "conf/icap-milter.conf differs from sample_config(), "
                            << (same ? "" : first_difference(conf, sample_config()))
                            << "; regenerate with ICAPM_UPDATE_DOCS=1");
}

TEST_CASE("docs: every key once in the sample config, and no others") {
    const std::string conf = slurp(conf_path);
    REQUIRE(!conf.empty());
    std::map<std::string, unsigned> count;
    for (const KeyLine& k : key_lines(conf)) {
        CAPTURE(k.number);
        CHECK_MESSAGE(find_option(k.key) != nullptr, "sample names unknown key " << k.key);
        ++count[k.key];
        if (const OptionSpec* s = find_option(k.key); s && k.commented)
            CHECK_MESSAGE(k.value == (s->sample.empty() ? paths::templated(quote_value(s->default_value))
                                                        : quote_value(s->sample)),
                          k.key << ": commented value is not the default (or the example of a required key)");
    }
    for (const OptionSpec& s : schema()) CHECK_MESSAGE(count[std::string(s.name)] == 1, s.name);
}

TEST_CASE("docs: sample config refuses to start until a scanner is named, and its defaults are real") {
    // As installed: the placeholders substituted, as the build does.
    const std::string conf = paths::substituted(slurp(conf_path));
    for (const char* placeholder : {"@sysconfdir@", "@runstatedir@", "@localstatedir@"})
        REQUIRE(conf.find(placeholder) == std::string::npos);
    std::vector<ConfigError> errors;
    auto config = parse_config_text(conf, conf_path, errors);
    CHECK_FALSE(config);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].reason == "no IcapServer given; at least one is required");
    errors.clear();
    Config expected;
    expected.icap_servers = {"icap://127.0.0.1:1344/avscan"};

    // Uncommenting a default must not change anything: the shown values are real.
    std::string uncommented;
    for (const std::string& l : lines(conf)) {
        bool key_line = l.size() > 1 && l[0] == '#' && ((l[1] >= 'A' && l[1] <= 'Z') || (l[1] >= 'a' && l[1] <= 'z'));
        uncommented += (key_line ? l.substr(1) : l) + "\n";
    }
    config = parse_config_text(uncommented, conf_path + " (uncommented)", errors);
    for (const auto& e : errors) FAIL_CHECK(e.str());
    REQUIRE(config);
    CHECK(*config == expected);
}

TEST_CASE("docs: man page OPTIONS are generated from the schema") {
    std::string man = slurp(man_path);
    auto [start, end] = options_section(man);
    REQUIRE_MESSAGE(start != std::string::npos, "man page has no .SH OPTIONS");
    if (update_requested() && man.substr(start, end - start) != man_options()) {
        man.replace(start, end - start, man_options());
        std::ofstream(man_path, std::ios::binary) << man;
        std::tie(start, end) = options_section(man);
    }
    const std::string section = man.substr(start, end - start);
    const bool same = section == man_options();
    CHECK_MESSAGE(same, "OPTIONS of man/icap-milter.conf.5 differ from man_options(), "
                            << (same ? "" : first_difference(section, man_options()))
                            << "; regenerate with ICAPM_UPDATE_DOCS=1");
}

TEST_CASE("docs: every key once in the man page, with its default, type and range") {
    const std::string man = slurp(man_path);
    REQUIRE(!man.empty());
    std::map<std::string, unsigned> count;
    for (const ManEntry& e : man_entries(man)) {
        CAPTURE(e.word);
        const OptionSpec* s = find_option(e.word);
        if (e.option_entry) CHECK_MESSAGE(s != nullptr, "man page documents unknown key " << e.word);
        if (!s) continue;
        ++count[e.word];
        std::string body = unroff(e.body);
        std::smatch m;
        static const std::regex facts_re(R"(Type: ([^;]+); default: (.*?)(?: \(empty\))?; range: (.*)\.\n)");
        if (!std::regex_search(body, m, facts_re)) {
            FAIL_CHECK("no Type/default/range line for " << e.word);
            continue;
        }
        CHECK(m[1].str() == std::string(type_name(s->type)) + (s->repeatable ? ", repeatable" : ""));
        CHECK(m[2].str() ==
              (s->repeatable && s->default_value.empty() ? "none" : paths::templated(quote_value(s->default_value))));
        CHECK(m[3].str() == std::string(s->range));
    }
    for (const OptionSpec& s : schema()) CHECK_MESSAGE(count[std::string(s.name)] == 1, s.name);
}

TEST_CASE("docs: man page has the expected sections") {
    const std::string man = slurp(man_path);
    for (const char* needle : {".TH ICAP-MILTER.CONF 5", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS",
                               ".SH \"DESIGN CHOICES\"", ".SH FILES", ".SH \"SEE ALSO\"", ".BR icap-milter (8)",
                               "@sysconfdir@/icap-milter/icap-milter.conf"}) {
        CHECK_MESSAGE(man.find(needle) != std::string::npos, std::string(needle));
    }
}
