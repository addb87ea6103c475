// NAME
//   header_lint.cpp - MIME header fields that readers may take apart differently
// SUMMARY
//   A Content-Type value is split at ';' outside quoted strings and
//   comments (RFC 2045 with RFC 822 comments). Parameters are compared
//   by name: two "boundary" parameters that differ, or a "boundary"
//   beside RFC 2231 "boundary*0"/"boundary*" sections that spell
//   another value, leave each reader to pick one, and the parts it
//   finds follow from its pick. So do a comment holding parameter text
//   (a reader without comment support takes it as a parameter), an
//   invalid parameter in a multipart's field (some readers stop reading
//   parameters there, before the boundary), a boundary shaped like an
//   RFC 2047 encoded word (decoded by some) and one ending in white
//   space (RFC 2046 forbids it; readers trim it or not). These are
//   ambiguous. Non-standard transfer encoding tokens ("x-base64") are
//   suspect: the walker decodes what a lenient reader decodes, and the
//   raw text reaches the scanner in the whole-message view.
#include "icap-milter/mime/header_lint.hpp"

#include "icap-milter/common/ascii.hpp"

#include <algorithm>
#include <map>

namespace icapm {

namespace {

// quoted - a bounded, printable copy of hostile text for a reason.
std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char ch : s.substr(0, 40)) {
        auto c = static_cast<unsigned char>(ch);
        out += (c >= 32 && c < 127 && c != '"') ? ch : '?';
    }
    if (s.size() > 40) out += "...";
    return out + "\"";
}

// Param - one parameter as written: name, value, and whether a comment
// around it held parameter text.
struct Param {
    std::string name;  // lower case, blanks trimmed
    std::string value; // unquoted
    bool valid = true; // "name=value" with a non-empty token name
};

// Split - the pieces of a structured field value.
struct Split {
    std::string type;          // "type/subtype", lower case
    std::vector<Param> params;
    bool comment_with_params = false; // a comment held '=', ';' or '"'
};

// split_field - cut a Content-Type value at ';' outside quotes and
// comments; comments are dropped from the pieces.
Split split_field(std::string_view v) {
    Split out;
    std::vector<std::string> pieces(1);
    int depth = 0;
    bool quote = false, escape = false;
    for (char c : v) {
        if (escape) {
            escape = false;
            if (depth == 0) pieces.back() += c;
            continue;
        }
        if (c == '\\' && (quote || depth > 0)) {
            escape = true;
            if (depth == 0) pieces.back() += c;
            continue;
        }
        if (depth > 0) {
            if (c == '(') ++depth;
            else if (c == ')') --depth;
            else if (c == '=' || c == ';' || c == '"') out.comment_with_params = true;
            continue;
        }
        if (quote) {
            if (c == '"') quote = false;
            pieces.back() += c;
            continue;
        }
        if (c == '"') {
            quote = true;
            pieces.back() += c;
        } else if (c == '(') {
            depth = 1;
        } else if (c == ';') {
            pieces.emplace_back();
        } else {
            pieces.back() += c;
        }
    }
    out.type = lower(trim(pieces.front()));
    for (std::size_t i = 1; i < pieces.size(); ++i) {
        std::string_view p = trim(pieces[i]);
        if (p.empty()) continue; // "a; ; b" or a trailing ';' is harmless
        Param param;
        std::size_t eq = p.find('=');
        std::string_view name = trim(p.substr(0, eq));
        if (eq == std::string_view::npos || name.empty() ||
            name.find_first_of(" \t\"") != std::string_view::npos) {
            param.valid = false;
            param.name = lower(name);
            out.params.push_back(std::move(param));
            continue;
        }
        param.name = lower(name);
        std::string_view raw = trim(p.substr(eq + 1));
        if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
            raw = raw.substr(1, raw.size() - 2);
            for (std::size_t k = 0; k < raw.size(); ++k) {
                if (raw[k] == '\\' && k + 1 < raw.size()) ++k;
                param.value += raw[k];
            }
        } else {
            param.value = std::string(raw);
        }
        out.params.push_back(std::move(param));
    }
    return out;
}

// hex - value of a hex digit, or -1.
int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// percent_decode - RFC 2231 extended value text ("%41" is 'A').
std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Boundary - every way the field spells its boundary.
struct Boundary {
    std::vector<std::string> plain;          // boundary=
    std::map<unsigned, std::string> section; // boundary*N / boundary*N* (decoded)
    bool any_section = false;
};

// boundary_params - collect the plain and RFC 2231 boundary parameters.
Boundary boundary_params(const std::vector<Param>& params) {
    Boundary b;
    for (const auto& p : params) {
        if (!p.valid) continue;
        if (p.name == "boundary") {
            b.plain.push_back(p.value);
            continue;
        }
        if (p.name.rfind("boundary*", 0) != 0) continue;
        b.any_section = true;
        std::string_view rest = std::string_view(p.name).substr(9);
        bool extended = !rest.empty() && rest.back() == '*';
        if (extended) rest.remove_suffix(1);
        unsigned n = 0;
        bool numbered = !rest.empty() && rest.size() <= 3 &&
                        std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (numbered) n = static_cast<unsigned>(std::stoul(std::string(rest)));
        else if (!rest.empty()) continue; // "boundary*x": no reader uses it
        std::string value = p.value;
        if (extended) {
            if (n == 0) { // charset'language'text
                std::size_t q1 = value.find('\'');
                std::size_t q2 = q1 == std::string::npos ? q1 : value.find('\'', q1 + 1);
                if (q2 != std::string::npos) value = value.substr(q2 + 1);
            }
            value = percent_decode(value);
        }
        b.section.emplace(n, std::move(value));
    }
    return b;
}

// encoded_word - text shaped like an RFC 2047 encoded word.
bool encoded_word(std::string_view s) {
    std::size_t start = s.find("=?");
    return start != std::string_view::npos && s.find("?=", start + 2) != std::string_view::npos;
}

// normal_value - a field value compared loosely (case, blanks).
std::string normal_value(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (is_blank_char(c)) continue;
        out += ascii_lower(c);
    }
    return out;
}

} // namespace

// standard_encoding - the token, if it is one of RFC 2045's five
// (comments, which RFC 2045 allows around it, dropped).
std::string standard_encoding(std::string_view value) {
    std::string bare;
    int depth = 0;
    for (char c : value) {
        if (c == '(') ++depth;
        else if (c == ')') depth -= depth > 0;
        else if (depth == 0) bare += c;
    }
    std::string t = lower(trim(bare));
    for (const char* s : {"7bit", "8bit", "binary", "base64", "quoted-printable"})
        if (t == s) return t;
    return {};
}

// lint_content_type - the parameter tricks of one field.
void lint_content_type(std::string_view value, LintFindings& f) {
    if (std::any_of(value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        f.suspect.push_back("8-bit bytes in Content-Type");
    Split s = split_field(value);
    bool multipart = s.type.rfind("multipart/", 0) == 0;
    if (s.comment_with_params)
        f.ambiguous.push_back("a comment in Content-Type holds parameter text");
    for (const auto& p : s.params) {
        if (p.valid) continue;
        std::string why = "invalid Content-Type parameter " + quoted(p.name);
        (multipart ? f.ambiguous : f.suspect).push_back(why);
    }
    if (!multipart) return;
    Boundary b = boundary_params(s.params);
    for (std::size_t i = 1; i < b.plain.size(); ++i) {
        if (b.plain[i] != b.plain[0]) {
            f.ambiguous.push_back("boundary parameters that differ (" + quoted(b.plain[0]) + ", " +
                                  quoted(b.plain[i]) + ")");
            break;
        }
    }
    std::string joined;
    for (const auto& [n, text] : b.section) joined += text;
    if (b.any_section && b.plain.empty())
        f.ambiguous.push_back("boundary given only as RFC 2231 sections");
    else if (b.any_section && joined != b.plain[0])
        f.ambiguous.push_back("boundary and RFC 2231 boundary* sections differ (" + quoted(b.plain[0]) + ", " +
                              quoted(joined) + ")");
    if (b.plain.empty() && !b.any_section) {
        f.ambiguous.push_back("multipart without a boundary parameter");
        return;
    }
    const std::string& effective = b.plain.empty() ? joined : b.plain[0];
    if (encoded_word(effective))
        f.ambiguous.push_back("boundary shaped like an encoded word " + quoted(effective));
    if (!effective.empty() && (effective.back() == ' ' || effective.back() == '\t'))
        f.ambiguous.push_back("boundary ending in white space " + quoted(effective));
    if (effective.empty()) f.ambiguous.push_back("empty boundary");
}

// lint_entity_headers - duplicates that differ, then each field alone.
void lint_entity_headers(const std::vector<HeaderField>& fields, LintFindings& f) {
    std::vector<std::string> types, encodings;
    for (const auto& [name, value] : fields) {
        if (iequals(name, "Content-Type")) {
            std::string n = normal_value(value);
            if (std::find(types.begin(), types.end(), n) == types.end()) types.push_back(std::move(n));
            lint_content_type(value, f);
        } else if (iequals(name, "Content-Transfer-Encoding")) {
            std::string std_token = standard_encoding(value);
            std::string n = std_token.empty() ? normal_value(value) : std_token;
            if (std::find(encodings.begin(), encodings.end(), n) == encodings.end()) encodings.push_back(n);
            if (std_token.empty())
                f.suspect.push_back("non-standard Content-Transfer-Encoding " + quoted(trim(value)));
        }
    }
    if (types.size() > 1) f.ambiguous.push_back(std::to_string(types.size()) + " Content-Type fields that differ");
    if (encodings.size() > 1) {
        std::string list;
        for (const auto& e : encodings) list += (list.empty() ? "" : ", ") + quoted(e);
        f.ambiguous.push_back("Content-Transfer-Encoding fields that differ (" + list + ")");
    }
}

} // namespace icapm
