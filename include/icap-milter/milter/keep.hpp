// NAME
//   keep.hpp - the milter's side of the quarantine store
// SUMMARY
//   A copy of each message QuarantineCopy names goes to the store before
//   the answer is given; a copy that cannot be written makes the message
//   tempfail. A message carrying X-Icap-Milter-Released is let through
//   once when it is the copy `icap-milterctl quarantine release`
//   re-injected (same body, released, not yet claimed). Retention and
//   the size bound are enforced at most once a minute.
#pragma once

#include "icap-milter/milter/context.hpp"
#include "icap-milter/milter/end_of_message.hpp"

#include <string>

namespace icapm {

// release_claimed - msg is a released quarantine copy, let through now
// (true once per release; a forged or repeated marker gives false).
bool release_claimed(const Runtime& rt, const MessageContext& msg);

// keep_copy - store msg when QuarantineCopy covers its status; the new
// copy's id, or "" when none was due. Throws std::system_error when the
// copy cannot be written.
std::string keep_copy(const Runtime& rt, const MessageContext& msg, const Outcome& out, Action action,
                      const std::string& client);

// enforce_quarantine - remove copies past QuarantineRetention or
// QuarantineMaxSize, logging each, at most every minute (or half the
// retention when that is shorter). Never throws.
void enforce_quarantine(const Runtime& rt);

} // namespace icapm
