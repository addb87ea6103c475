// NAME
//   walker.hpp - parse a spooled message with GMime and list its leaves
// SUMMARY
//   Walks every leaf (nested message/rfc822 and every alternative
//   included), decodes the transfer encoding into a per-part Spool while
//   hashing it, and marks encrypted or oversized parts unscannable.
// DIAGNOSTICS
//   Throws std::runtime_error when the message cannot be parsed at all;
//   limits never throw, they set limit_hit and add a whole-message item.
#pragma once

#include "icap-milter/mime/scan_item.hpp"
#include "icap-milter/mime/spool.hpp"

namespace icapm {

// walk_message - list the scan items of the RFC 5322 message in spool.
WalkResult walk_message(const Spool& message, const WalkLimits& limits);

// mime_init - one-time GMime initialisation (call from main, before threads).
void mime_init();

} // namespace icapm
