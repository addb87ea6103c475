// NAME
//   filters.hpp - attachment filters by file name and content type
// SUMMARY
//   BlockedExtensions / BlockedTypes (banned attachments) and
//   ScanOnlyExtensions (IMail's ExtensionList) as pure functions of a
//   part's decoded file name and content type, plus the checks the
//   config parser uses for their list entries.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/mime/scan_item.hpp"
#include "icap-milter/policy/policy.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// windows_name - the name a Windows client would create: the last path
// component (after '/' or '\'), cut at an NTFS stream suffix (':'),
// without the trailing dots and blanks Windows drops ("a.exe. " ->
// "a.exe"), lower case. Bounded to 1024 bytes.
std::string windows_name(std::string_view filename);

// extension_rule - the config entry of list that names filename's
// extension (the last one counts: "invoice.pdf.exe" is an "exe"; an
// entry with a dot, "tar.gz", matches the end of the name), or nullopt.
std::optional<std::string> extension_rule(const std::vector<std::string>& list, std::string_view filename);

// type_rule - the entry of list ("type/subtype" or "type/*") matching
// content_type (case-insensitive), or nullopt.
std::optional<std::string> type_rule(const std::vector<std::string>& list, std::string_view content_type);

// normalize_extension - a list entry as stored: lower case, without a
// leading "*." or "."; "" and *error for anything malformed.
std::string normalize_extension(std::string_view entry, std::string* error);

// normalize_type - "type/subtype" or "type/*", lower case; "" and
// *error for anything malformed.
std::string normalize_type(std::string_view entry, std::string* error);

// blocked_parts - the items BlockedExtensions or BlockedTypes ban, by
// either of their names (filename, type_name) or their type; the
// whole-message views and the walker's own names (preamble.txt) are
// never attachments. At most 64.
std::vector<BlockedPart> blocked_parts(const Config& c, const std::vector<ScanItem>& items);

// scan_only_skips - does ScanOnlyExtensions leave this item unscanned?
// Only items with a sender-given file name can be left out.
bool scan_only_skips(const Config& c, const ScanItem& item);

} // namespace icapm
