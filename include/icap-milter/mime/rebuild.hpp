// NAME
//   rebuild.hpp - new MIME bodies for the notify and clean actions
// SUMMARY
//   notify_message() makes a text/plain body out of an administrator's
//   text; clean_message() swaps the infected entities of a spooled
//   message for text/plain parts and keeps every other byte as it was.
//   Both return the new body (everything after the top-level header
//   block, for smfi_replacebody) and the top-level header edits (for
//   smfi_chgheader / smfi_addheader). Pure functions: no milter, no I/O
//   but reading the spool.
// DIAGNOSTICS
//   clean_message() returns std::nullopt whenever a part cannot be
//   located beyond doubt (the caller falls back to notify); it throws
//   std::system_error only when the spool cannot be read.
#pragma once

#include "icap-milter/mime/spool.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// MimeHeaderEdit - one change to the top-level header block: remove_all
// deletes every field called name; otherwise every field called name
// is replaced by one "name: value". (Not milter/plan.hpp's HeaderEdit,
// which works on numbered occurrences: the milter, which knows how many
// there are, turns these into those.)
struct MimeHeaderEdit {
    std::string name;
    std::string value;
    bool remove_all = false;
};

// RebuiltMessage - the new body (the bytes after the top-level blank
// line) and the header edits that go with it.
struct RebuiltMessage {
    std::string body;
    std::vector<MimeHeaderEdit> headers;
};

// Replacement - one infected walker item (its part id, see
// walk_message) and the rendered text of the part that takes its place.
struct Replacement {
    std::string part_id;
    std::string text;
};

// notify_message - a text/plain body holding text (UTF-8, CRLF line
// ends): us-ascii when the text is 7-bit, else utf-8; 7bit when it is
// ASCII with lines of 998 bytes at most, else quoted-printable. The
// edits set MIME-Version, Content-Type and Content-Transfer-Encoding and
// remove Content-Disposition, -ID, -Description, -Location, -MD5 and
// -Language.
RebuiltMessage notify_message(std::string_view text);

// clean_message - the message in raw with the entity of each replacement
// swapped for "text/plain; charset=..." with Content-Disposition inline
// holding its text; every other byte stays as it was. Ids map to the
// entity that holds them in the raw bytes: an inline block "X.u1" and
// anything inside an encoded message/rfc822 or S/MIME blob at X replace
// X; the body of a message/rfc822 at P that is not a multipart ("P.1")
// replaces P; "preamble"/"P.epilogue" give that text a one-line notice
// instead. Replacing the body of a single-part message replaces the
// whole body, with notify_message's header edits. Texts that land in one
// entity are joined. std::nullopt for "0", "0.text", an id not in the
// message, a message over 64 MiB or that GMime and the byte scan read
// differently: then only notify is safe.
std::optional<RebuiltMessage> clean_message(const Spool& raw, const std::vector<Replacement>& replacements);

} // namespace icapm
