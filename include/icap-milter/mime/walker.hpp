// NAME
//   walker.hpp - parse a spooled message with GMime and list its leaves
// SUMMARY
//   Walks every leaf (nested message/rfc822 and every alternative
//   included), decodes the transfer encoding into a per-part Spool while
//   hashing it, and marks oversized parts unscannable, and encrypted
//   parts too when their bytes are ciphertext (see encryption.hpp); a
//   part or wrapper that only claims encryption is scanned like any other.
//   Preambles and epilogues that are not blank, and the uuencode, yEnc
//   and BinHex blocks inside text (see inline_encodings.hpp), are items
//   of their own.
// DIAGNOSTICS
//   Throws std::runtime_error when the message cannot be parsed at all;
//   limits never throw, they set limit_hit and add a whole-message item.
#pragma once

#include "icap-milter/mime/scan_item.hpp"
#include "icap-milter/mime/spool.hpp"

namespace icapm {

// walk_message - list the scan items of the RFC 5322 message in spool.
// Part ids follow IMAP: "1" is the body of a single-part message, the
// children of a multipart are "1", "2", ..., and a message/rfc822 at "2"
// holds "2.1", "2.2", .... A multipart's preamble and epilogue are
// "preamble"/"epilogue" at the top and "P.preamble"/"P.epilogue" when its
// children are "P.n"; the k-th inline block of text item X is "X.uk"
// (uuencode), "X.yk" (yEnc) or "X.bk" (BinHex), right after X, and
// counts towards max_parts. Each item's data is a new Spool (in
// limits.temp_dir, memory_limit bytes in RAM at most, all items of one
// message together total_memory_limit at most). Different messages may
// be walked on different threads at once; one spool by one thread only.
// Throws std::runtime_error when GMime makes no message of it (an empty
// spool, binary noise) and std::system_error on temp file errors.
WalkResult walk_message(const Spool& message, const WalkLimits& limits);

// walk_message - the same, with the whole-message item (part 0) reading
// message itself instead of a copy of it (the milter's path: the spool
// is complete and no longer appended to).
WalkResult walk_message(std::shared_ptr<const Spool> message, const WalkLimits& limits);

// walk_report - the walk as text: "structure: hashable|suspect|ambiguous",
// the limit and every reason, then one line per item (part id, type,
// encoding, file name, size, SHA-256 prefix, scannable or why not).
// For icap-milterctl mime and the golden files; names are printed as
// they are (the caller sanitises for a terminal).
std::string walk_report(const WalkResult& r);

// mime_init - one-time GMime initialisation (call from main, before threads;
// safe to call again, walk_message does).
void mime_init();

} // namespace icapm
