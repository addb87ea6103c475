// NAME
//   header_lint.hpp - MIME header fields that readers may take apart differently
// SUMMARY
//   GMime reads Content-Type and Content-Transfer-Encoding one way; a
//   mail client or the scanner's own parser may read the same bytes
//   another way and so see other parts or other bytes. These checks look
//   at one entity's raw header fields and sort what they find:
//   "ambiguous" findings mean the readings cannot all be produced (the
//   message fails closed), "suspect" ones mean the walker's reading plus
//   the scanner's own reading of the whole message cover them.
//   Pure functions of their input, without GMime, so they can be fuzzed.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace icapm {

// LintFindings - reasons, in words fit for a log line and an SMTP reply.
struct LintFindings {
    std::vector<std::string> ambiguous; // fail closed
    std::vector<std::string> suspect;   // covered by the whole-message view
};

// HeaderField - one raw header field: its name and its raw value.
using HeaderField = std::pair<std::string, std::string>;

// lint_entity_headers - the Content-Type and Content-Transfer-Encoding
// fields of one MIME entity (duplicates that differ, comments that hide
// parameters, invalid parameters, boundary tricks, non-standard
// encodings), added to f.
void lint_entity_headers(const std::vector<HeaderField>& fields, LintFindings& f);

// lint_content_type - one raw Content-Type value, added to f.
void lint_content_type(std::string_view value, LintFindings& f);

// standard_encoding - the RFC 2045 token for a raw Content-Transfer-
// Encoding value ("7bit", "8bit", "binary", "base64",
// "quoted-printable"), or "" when the value is none of them.
std::string standard_encoding(std::string_view value);

} // namespace icapm
