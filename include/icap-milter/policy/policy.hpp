// NAME
//   policy.hpp - map a message's verdicts to one action
// SUMMARY
//   Mechanism-free: it only looks at the verdicts and the configured
//   OnInfected / OnFail / OnUnscannable / OnAmbiguous actions and says
//   what to do,
//   with the SMTP reply and the X-Virus-Status value.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/icap/verdict.hpp"

#include <string>
#include <vector>

namespace icapm {

// MessageStatus - the X-Virus-Status of a message. Clean is the claim
// that every reading of every part was scanned by a scanner known to
// scan. Ambiguous: readers may take the MIME apart in ways that could
// not all be scanned. Blocked: a part's name or type is banned
// (BlockedExtensions, BlockedTypes). Skipped: a bypass rule let the
// message through without scanning (never Clean).
enum class MessageStatus { Clean, Infected, Unscanned, Ambiguous, Blocked, Skipped };

// to_string - "Clean", "Infected", "Unscanned", "Ambiguous", "Blocked",
// "Skipped" (headers, logs).
const char* to_string(MessageStatus s) noexcept;

// Decision - what to do with one message.
struct Decision {
    Action action = Action::Tempfail;
    MessageStatus status = MessageStatus::Unscanned; // X-Virus-Status
    std::string rcode;         // SMTP reply code for reject/tempfail ("550", "451")
    std::string xcode;         // enhanced status code ("5.7.1", "4.7.1")
    std::string reply;         // reply text (already safe for smfi_setreply)
    std::vector<std::string> threats; // every virus name found, de-duplicated
    std::string reason;        // why (for the log)
};

// BlockedPart - a part banned by name or type.
struct BlockedPart {
    std::string part_id;
    std::string filename;   // "" when only its type was banned
    std::string rule;       // "exe", "application/x-msdownload"
};

// decide - the action for a message whose items got these verdicts;
// ambiguity, when not empty, says why its MIME fails closed; blocked
// lists the banned parts (Blocked, OnBlocked, unless a virus was found).
Decision decide(const Config& config, const std::vector<Verdict>& verdicts, std::string_view ambiguity = {},
                const std::vector<BlockedPart>& blocked = {});

// skip_decision - accept without scanning, for a bypass rule; why is
// the rule and what it matched, for the log.
Decision skip_decision(std::string why);

// fail_decision - the OnFail outcome for an error outside scanning
// (spool, parse, queue full ...), with the reason for the log.
Decision fail_decision(const Config& config, std::string reason);

// reply_safe - keep a name fit for an SMTP reply: [A-Za-z0-9._:/+-] and
// single inner spaces, at most 100 chars.
std::string reply_safe(std::string_view text);

// reply_text - a sentence (a MIME finding) fit for an SMTP reply:
// printable ASCII, no '%', at most 160 chars.
std::string reply_text(std::string_view text);

} // namespace icapm
