// NAME
//   scan_item.hpp - one leaf of a message, as the scanners will see it
#pragma once

#include "icap-milter/mime/spool.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace icapm {

// ScanItem - a decoded MIME leaf (or an unscannable placeholder).
struct ScanItem {
    std::string part_id;            // MIME path, "1", "2.1", ... ("0" = whole message fallback,
                                    // "2.preamble", "1.u1": see walk_message)
    std::string filename;           // from Content-Disposition / Content-Type name; may be empty
    std::string content_type;       // "type/subtype", lower case
    std::string transfer_encoding;  // "base64", "quoted-printable", "7bit", ... lower case
    std::string disposition;        // "attachment", "inline" or ""
    std::uint64_t size = 0;         // decoded bytes
    std::array<unsigned char, 32> sha256{}; // SHA-256 of the decoded bytes
    bool scannable = true;
    std::string unscannable_reason; // set when !scannable ("encrypted", "size limit", ...)
    std::shared_ptr<const Spool> data; // decoded bytes; null when !scannable
};

// WalkLimits - bounds applied while walking a message tree.
struct WalkLimits {
    unsigned max_depth = 16;          // nesting of multiparts and message/rfc822
    unsigned max_parts = 1000;        // leaves and containers counted together
    std::uint64_t max_scan_size = 25ull << 20; // decoded bytes per item
    std::string temp_dir = "/tmp";
    std::size_t memory_limit = 1u << 20; // per decoded-part spool
    // RAM for all decoded-part spools of one message together: past it,
    // further parts go straight to temp files, so a message of many
    // mid-sized parts cannot hold max_parts * memory_limit in memory.
    std::size_t total_memory_limit = 16u << 20;
};

// WalkResult - the items of one message, in MIME order.
struct WalkResult {
    std::vector<ScanItem> items;
    // limit_hit - depth, part count or header count exceeded (or GMime
    // found no body): walking stopped, the items found so far are kept
    // and a whole-message item (part_id "0") is appended last, so nothing
    // goes unscanned.
    bool limit_hit = false;
    std::string limit_reason;     // which limit, for the log
    // ambiguous - GMime reported MIME that other parsers (the recipient's
    // mail client) may read differently: conflicting headers or
    // parameters, invalid header lines, a multipart without boundary. The
    // walk went on, and the whole message was added as part "0" too (if
    // it fits max_scan_size), so the scanner also judges it raw.
    bool ambiguous = false;
    std::vector<std::string> warnings; // GMime's complaints, for the log (at most 16, then a count)
    std::string preamble;         // top-level multipart preamble (for the token hash later)
    std::string epilogue;         // top-level multipart epilogue
};

} // namespace icapm
