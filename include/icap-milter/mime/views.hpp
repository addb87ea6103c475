// NAME
//   views.hpp - the whole-message views the walker adds to a walk
// SUMMARY
//   Internal to src/mime: walker.cpp decides when (WholeMessage), these
//   make the items.
#pragma once

#include "icap-milter/mime/scan_item.hpp"

#include <memory>

namespace icapm {

// whole_message_item - part "0": the raw message as one item (over
// max_scan_size: unscannable, with the size as reason). It reads shared
// when given (raw itself, owned), else a copy of raw.
ScanItem whole_message_item(const Spool& raw, const WalkLimits& limits, std::shared_ptr<const Spool> shared = nullptr);

// add_text_view - append part "0.text" ("0.text2", ... when they need
// more than max_scan_size) when the walk has base64 or quoted-printable
// text/* items (see views.cpp).
void add_text_view(WalkResult& result, const WalkLimits& limits);

} // namespace icapm
