// NAME
//   scan_item.hpp - one leaf of a message, as the scanners will see it
#pragma once

#include "icap-milter/mime/spool.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// ScanItem - a decoded MIME leaf (or an unscannable placeholder).
struct ScanItem {
    std::string part_id;            // MIME path, "1", "2.1", ... ("0" = whole message fallback,
                                    // "2.preamble", "1.u1": see walk_message)
    std::string filename;           // from Content-Disposition / Content-Type name; may be empty
    std::string type_name;          // the Content-Type name when it differs from filename (filters)
    std::string content_type;       // "type/subtype", lower case
    std::string transfer_encoding;  // "base64", "quoted-printable", "7bit", ... lower case
    std::string disposition;        // "attachment", "inline" or ""
    std::uint64_t size = 0;         // decoded bytes
    std::array<unsigned char, 32> sha256{}; // SHA-256 of the decoded bytes
    bool scannable = true;
    std::string unscannable_reason; // set when !scannable ("encrypted", "size limit", ...)
    std::shared_ptr<const Spool> data; // decoded bytes; null when !scannable
};

// is_view_id - part ids of the whole-message views: "0" (the raw
// message) and "0.text", "0.text2", ... (decoded text parts); they are
// second readings, never a part of their own.
inline bool is_view_id(std::string_view id) noexcept { return id == "0" || id.substr(0, 2) == "0."; }

// WholeMessage - when the raw message is also scanned as one item
// (part "0"), so the scanner's own MIME parser gives its reading too.
enum class WholeMessage {
    Never,     // only when a limit stopped the walk; suspect MIME fails closed
    Ambiguous, // also when the walk found MIME that readers may read differently
    Always,    // for every message (as clamav-milter does)
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
    // The process's RAM for all spools (SpoolMemoryTotal); null: none.
    std::shared_ptr<MemoryBudget> budget;
    // The config's default (ScanWholeMessage) is always; the walker's own
    // default keeps its tests to the items the walk itself makes.
    WholeMessage whole_message = WholeMessage::Ambiguous;
};

// WalkResult - the items of one message, in MIME order.
struct WalkResult {
    std::vector<ScanItem> items;
    // limit_hit - depth, part count or header count exceeded (or GMime
    // found no body): walking stopped, the items found so far are kept
    // and a whole-message item (part_id "0") is appended last, so nothing
    // goes unscanned. The message is ambiguous (see ambiguous()).
    bool limit_hit = false;
    std::string limit_reason;     // which limit, for the log
    // ambiguities - why other readers (the recipient's mail client) may
    // see other parts or bytes than the walk produced, where their
    // readings cannot be produced here: the message must not be Clean.
    std::vector<std::string> ambiguities;
    // suspects - why readers may differ where GMime's reading plus the
    // scanner's reading of the whole message (part "0") cover it; with
    // WholeMessage::Never they are ambiguities too.
    std::vector<std::string> suspects;
    std::vector<std::string> warnings; // GMime's complaints, for the log (at most 16, then a count)
    std::string preamble;         // top-level multipart preamble (for the token hash later)
    std::string epilogue;         // top-level multipart epilogue

    // ambiguous - fail closed: a limit was hit or a reading is missing.
    bool ambiguous() const noexcept { return limit_hit || !ambiguities.empty(); }
    // ambiguity - the first reason, for replies and the log.
    std::string ambiguity() const {
        if (limit_hit) return limit_reason;
        return ambiguities.empty() ? std::string() : ambiguities.front();
    }
    // hashable - one reading that a token may vouch for.
    bool hashable() const noexcept { return !ambiguous() && suspects.empty(); }
};

} // namespace icapm
