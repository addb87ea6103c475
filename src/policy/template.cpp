// NAME
//   template.cpp - the administrator's texts: reply, subject tag, notices
// SUMMARY
//   One pass over the template; a field's value is cleaned as it goes
//   in (control bytes and line breaks become spaces), so no value can
//   forge a header line, end an SMTP reply, or break a notice's MIME.
#include "icap-milter/policy/template.hpp"

#include <array>
#include <utility>

namespace icapm {

namespace {

constexpr std::array<std::string_view, 12> kFields = {"viruses", "files",  "sender", "recipients", "queue_id", "job_id",
                                                     "date",    "host",   "status", "reason",     "subject",  "nl"};

// join - list items, comma separated, empty ones skipped.
std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        if (!s.empty()) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// value - the text of a known field.
std::string value(std::string_view name, const TemplateFields& f) {
    if (name == "viruses") return join(f.viruses);
    if (name == "files") return join(f.files);
    if (name == "sender") return f.sender;
    if (name == "recipients") return join(f.recipients);
    if (name == "queue_id") return f.queue_id;
    if (name == "job_id") return f.job_id;
    if (name == "date") return f.date;
    if (name == "host") return f.host;
    if (name == "status") return f.status;
    if (name == "reason") return f.reason;
    return f.subject;
}

// known - is name one of the fields?
bool known(std::string_view name) {
    for (auto k : kFields)
        if (k == name) return true;
    return false;
}

// clean_value - control bytes (line breaks included) as spaces, at most
// 1000 bytes per field.
std::string clean_value(std::string_view v) {
    std::string out;
    for (char c : v.substr(0, 1000)) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 32 || u == 127) ? ' ' : c;
    }
    return out;
}

} // namespace

// render - copy text, expand {field}, keep or flatten the template's lines.
std::string render(std::string_view tmpl, const TemplateFields& f, bool multi_line) {
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        char c = tmpl[i];
        if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
            out += c;
            ++i;
            continue;
        }
        if (c == '{') {
            std::size_t end = tmpl.find('}', i);
            if (end != std::string_view::npos && known(tmpl.substr(i + 1, end - i - 1))) {
                std::string_view name = tmpl.substr(i + 1, end - i - 1);
                out += name == "nl" ? (multi_line ? "\n" : " ") : clean_value(value(name, f));
                i = end;
                continue;
            }
        }
        if (c == '\r') continue;
        if (c == '\n') {
            out += multi_line ? "\n" : " ";
            continue;
        }
        auto u = static_cast<unsigned char>(c);
        out += (u < 32 && c != '\t') || u == 127 ? ' ' : c;
    }
    return out;
}

// template_error - unknown fields and stray braces, for the config check.
std::string template_error(std::string_view tmpl) {
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        char c = tmpl[i];
        if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
            ++i;
            continue;
        }
        if (c == '}') return "a '}' without '{' (write }} for a brace)";
        if (c != '{') continue;
        std::size_t end = tmpl.find('}', i);
        if (end == std::string_view::npos) return "a '{' without '}' (write {{ for a brace)";
        std::string_view name = tmpl.substr(i + 1, end - i - 1);
        if (!known(name)) {
            std::string list;
            for (auto k : kFields) list += (list.empty() ? "" : ", ") + std::string(k);
            return "unknown field {" + std::string(name.substr(0, 40)) + "} (known: " + list + ")";
        }
        i = end;
    }
    return {};
}

// header_line - control bytes out, blanks collapsed, cut at a UTF-8 boundary.
std::string header_line(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        bool space = u < 32 || u == 127 || c == ' ';
        if (space) {
            if (!out.empty() && out.back() != ' ') out += ' ';
            continue;
        }
        out += c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (out.size() > max) {
        std::size_t cut = max;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out.resize(cut);
    }
    return out;
}

// reply_line - what smfi_setreply can carry safely.
std::string reply_line(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text) {
        if (out.size() >= max) break;
        auto u = static_cast<unsigned char>(c);
        if (u < 32 || u >= 127) {
            if (!out.empty() && out.back() != ' ') out += ' ';
            continue;
        }
        out += c == '%' ? '_' : c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

} // namespace icapm
