// NAME
//   docs.cpp - the sample config and the man page's OPTIONS, from the schema
// SUMMARY
//   Help text lives in the schema table only. conf/icap-milter.conf and
//   the OPTIONS section of man/icap-milter.conf.5 are this file's output,
//   kept in the tree so they ship without a build step; test_docs.cpp
//   compares them with what is generated here (and rewrites them when
//   ICAPM_UPDATE_DOCS=1 is set), so help text cannot drift apart.
#include "icap-milter/config/schema.hpp"
#include "icap-milter/config/paths.hpp"

namespace icapm {
namespace {

constexpr std::size_t wrap_width = 72;

// wrap_comment - help text as "# " comment lines of at most wrap_width columns.
std::string wrap_comment(std::string_view text) {
    std::string out, line = "#";
    while (!text.empty()) {
        std::size_t sp = text.find(' ');
        std::string_view word = text.substr(0, sp);
        text.remove_prefix(sp == std::string_view::npos ? text.size() : sp + 1);
        if (word.empty()) continue;
        if (line.size() > 1 && line.size() + 1 + word.size() > wrap_width) {
            out += line + "\n";
            line = "#";
        }
        line += " ";
        line += word;
    }
    if (line.size() > 1) out += line + "\n";
    return out;
}

// roff - text safe in a roff body line: backslashes and hyphens escaped,
// and a leading '.' or '\'' kept from being read as a request.
std::string roff(std::string_view text) {
    std::string out;
    if (!text.empty() && (text.front() == '.' || text.front() == '\'')) out = "\\&";
    for (char c : text) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    return out;
}

// default_text - a default as written in a config file ("" when empty);
// "none" for a repeatable key, whose default is to have no values. The
// installation directories appear as placeholders (@runstatedir@, ...),
// which the build substitutes (see paths.hpp).
std::string default_text(const OptionSpec& s) {
    if (s.repeatable && s.default_value.empty()) return "none";
    return paths::templated(quote_value(s.default_value));
}

} // namespace

// sample_config - every key once, commented out: the default, or for a
// key without one its example; each under its help text.
std::string sample_config() {
    std::string out =
        "# icap-milter.conf - configuration of icap-milter(8)\n"
        "#\n"
        "# One \"Key value\" per line; see icap-milter.conf(5). A line \"#Key value\"\n"
        "# shows the built-in default: remove the \"#\" to change it. Values with\n"
        "# blanks or '#' go in double quotes; \"\" is an empty value. Sizes take\n"
        "# K, M or G; durations take ms, s, m or h (a bare number is seconds).\n"
        "#\n"
        "# Generated from the program's key table; keep edits to local values.\n";
    std::string_view section;
    for (const OptionSpec& s : schema()) {
        if (s.section != section) {
            section = s.section;
            out += "\n# ======== " + std::string(section) + " ========\n";
        }
        out += "\n";
        out += wrap_comment(std::string(s.name) + ": " + std::string(s.help));
        std::string facts = "Type: " + std::string(type_name(s.type)) + (s.repeatable ? ", repeatable" : "") +
                            ". Range: " + std::string(s.range) + ". Default: " + default_text(s) + ".";
        out += wrap_comment(facts);
        // A required key (IcapServer) ships as a commented example: a fresh
        // install refuses to start, with the reason, until a scanner is named.
        if (!s.sample.empty()) out += "#" + std::string(s.name) + " " + quote_value(s.sample) + "\n";
        else out += "#" + std::string(s.name) + " " + default_text(s) + "\n";
    }
    return out;
}

// man_options - one .TP entry per key, grouped by section with .SS.
std::string man_options() {
    std::string out;
    std::string_view section;
    for (const OptionSpec& s : schema()) {
        if (s.section != section) {
            section = s.section;
            out += ".SS " + roff(section) + "\n";
        }
        out += ".TP\n.B " + std::string(s.name) + "\n";
        out += "Type: " + roff(type_name(s.type)) + (s.repeatable ? ", repeatable" : "") +
               "; default: \\fB" + roff(default_text(s)) + "\\fR" + (s.default_value.empty() && !s.repeatable ? " (empty)" : "") +
               "; range: " + roff(s.range) + ".\n.br\n";
        out += roff(s.help) + "\n";
    }
    return out;
}

} // namespace icapm
