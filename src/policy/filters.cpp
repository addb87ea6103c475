// NAME
//   filters.cpp - attachment filters by file name and content type
// SUMMARY
//   A name is compared the way the recipient's system will read it:
//   only its last component, with the trailing dots and blanks that
//   Windows ignores removed and an NTFS stream suffix ("a.exe::$DATA")
//   cut, case-insensitively; only the last extension decides, so
//   "invoice.pdf.exe" is an .exe. The walker has already decoded
//   RFC 2231 and RFC 2047 names (mime/gmime_fields.cpp). Both names of
//   a part count (Content-Disposition filename and Content-Type name),
//   since mail clients differ in which they show and save.
// DIAGNOSTICS
//   None: pure functions; config entries that do not parse get a reason.
#include "icap-milter/policy/filters.hpp"

#include "icap-milter/common/ascii.hpp"

#include <algorithm>

namespace icapm {

namespace {

// token_char - RFC 2045 token characters (content types, extensions).
bool token_char(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 && std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// synthetic_name - names the walker gives (preamble.txt, epilogue.txt),
// which no sender chose.
bool synthetic_name(const ScanItem& item) {
    std::string_view id = item.part_id;
    return id.ends_with("preamble") || id.ends_with("epilogue");
}

} // namespace

// windows_name - last component, stream cut, trailing dots/blanks dropped.
std::string windows_name(std::string_view filename) {
    if (filename.size() > 1024) filename = filename.substr(filename.size() - 1024);
    if (auto slash = filename.find_last_of("/\\"); slash != std::string_view::npos)
        filename = filename.substr(slash + 1);
    if (auto colon = filename.find(':'); colon != std::string_view::npos) filename = filename.substr(0, colon);
    while (!filename.empty() &&
           (filename.back() == '.' || filename.back() == ' ' || filename.back() == '\t' || filename.back() == '\0'))
        filename.remove_suffix(1);
    return lower(filename);
}

// extension_rule - the entry naming the name's final extension(s).
std::optional<std::string> extension_rule(const std::vector<std::string>& list, std::string_view filename) {
    if (list.empty() || filename.empty()) return std::nullopt;
    const std::string name = windows_name(filename);
    for (const std::string& ext : list) {
        // ".exe" must end the name and leave something before it: ".exe" alone is a hidden file named so, still an exe to Windows.
        if (name.size() > ext.size() && name.ends_with(ext) && name[name.size() - ext.size() - 1] == '.')
            return ext;
    }
    return std::nullopt;
}

// type_rule - exact type or a "type/*" wildcard.
std::optional<std::string> type_rule(const std::vector<std::string>& list, std::string_view content_type) {
    if (list.empty() || content_type.empty()) return std::nullopt;
    const std::string type = lower(trim(content_type));
    for (const std::string& rule : list) {
        if (rule.ends_with("/*")) {
            if (type.size() > rule.size() - 1 && type.compare(0, rule.size() - 1, rule, 0, rule.size() - 1) == 0)
                return rule;
        } else if (type == rule) {
            return rule;
        }
    }
    return std::nullopt;
}

// normalize_extension - "*.EXE", ".exe", "exe" -> "exe"; "tar.gz" kept.
std::string normalize_extension(std::string_view entry, std::string* error) {
    std::string_view e = entry;
    if (e.starts_with("*.")) e.remove_prefix(2);
    else if (e.starts_with(".")) e.remove_prefix(1);
    bool ok = !e.empty() && e.size() <= 32 && e.front() != '.' && e.back() != '.' &&
              std::all_of(e.begin(), e.end(), [](char c) { return token_char(c) || c == '.'; }) &&
              e.find('*') == std::string_view::npos;
    if (!ok) {
        if (error) *error = "'" + std::string(entry) + "' is not a file name extension (e.g. exe or .exe)";
        return {};
    }
    return lower(e);
}

// normalize_type - a content type or a "type/*" wildcard.
std::string normalize_type(std::string_view entry, std::string* error) {
    auto slash = entry.find('/');
    std::string_view major = entry.substr(0, slash);
    std::string_view minor = slash == std::string_view::npos ? std::string_view() : entry.substr(slash + 1);
    auto token = [](std::string_view t) { return !t.empty() && t.size() <= 127 && std::all_of(t.begin(), t.end(), token_char); };
    if (slash == std::string_view::npos || !token(major) || !(minor == "*" || token(minor)) || major.find('*') != std::string_view::npos ||
        (minor != "*" && minor.find('*') != std::string_view::npos)) {
        if (error) *error = "'" + std::string(entry) + "' is not a content type (type/subtype or type/*)";
        return {};
    }
    return lower(entry);
}

// blocked_parts - either name, then the type, of every attachment.
std::vector<BlockedPart> blocked_parts(const Config& c, const std::vector<ScanItem>& items) {
    std::vector<BlockedPart> out;
    if (c.blocked_extensions.empty() && c.blocked_types.empty()) return out;
    for (const auto& item : items) {
        if (is_view_id(item.part_id) || synthetic_name(item) || out.size() >= 64) continue;
        std::string name = item.filename;
        std::optional<std::string> rule = extension_rule(c.blocked_extensions, item.filename);
        if (!rule && (rule = extension_rule(c.blocked_extensions, item.type_name))) name = item.type_name;
        if (!rule) rule = type_rule(c.blocked_types, item.content_type);
        if (rule) out.push_back({item.part_id, name.substr(0, 200), *rule}); // sanitised where it is used
    }
    return out;
}

// scan_only_skips - a named part whose extension is not listed.
bool scan_only_skips(const Config& c, const ScanItem& item) {
    if (c.scan_only_extensions.empty() || item.filename.empty() || synthetic_name(item) || is_view_id(item.part_id))
        return false;
    return !extension_rule(c.scan_only_extensions, item.filename);
}

} // namespace icapm
