// NAME
//   plan.hpp - one list of everything a decision does to a message
// SUMMARY
//   make_plan() turns an Outcome into the edits the MTA is asked for:
//   header removals, changes and additions (forged status and token
//   headers out; status, token and subject tag in), recipient changes
//   (redirect), the hold reason (smfi_quarantine) and the SMTP reply.
//   callbacks.cpp only carries the plan out, so what a message gets is
//   decided, and unit-tested, in one place.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/milter/end_of_message.hpp"
#include "icap-milter/mime/rebuild.hpp"
#include "icap-milter/policy/template.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace icapm {

// HeaderEdit - one header operation, in the order it is to be done.
struct HeaderEdit {
    enum class Op { Remove, Change, Add };
    Op op = Op::Add;
    std::string name;
    int index = 1;      // Remove/Change: which occurrence (1-based)
    std::string value;  // Change/Add: the value, without the leading space
    bool operator==(const HeaderEdit&) const = default;
};

// PlanInput - what the plan is made from.
struct PlanInput {
    const Config* config = nullptr;
    const Outcome* outcome = nullptr;
    std::string hostname;               // for X-Virus-Scanned and templates
    std::string version;                // PACKAGE_VERSION
    std::string queue_id;
    unsigned long job = 0;
    std::string sender;
    std::vector<std::string> rcpts;     // as given at RCPT TO, in order
    bool rcpts_complete = true;         // false when more arrived than were kept
    std::optional<std::string> subject; // the first Subject value, if any
    std::map<std::string, int> strip;   // incoming own headers (lower case) -> count
    bool tokens_enabled = false;
    unsigned long granted = ~0ul;       // SMFIF_* actions the MTA allows
    std::string date;                   // RFC 5322 date for templates
    // notify / clean: the new body and its top-level header edits (null
    // when it could not be made: tempfail), and how many of each
    // Content-* / MIME-Version field the message has (lower-case names).
    const RebuiltMessage* rebuilt = nullptr;
    std::map<std::string, int> header_counts;
};

// Plan - what to ask of the MTA, and the answer.
struct Plan {
    Action action = Action::Tempfail; // final: may be tempfail where the MTA lacks a needed action
    std::vector<HeaderEdit> headers;
    std::vector<std::string> del_rcpts;
    std::vector<std::string> add_rcpts;
    std::string quarantine_reason;    // hold: smfi_quarantine's reason
    std::optional<std::string> body;  // notify / clean: smfi_replacebody
    std::string rcode, xcode, reply;  // reject / tempfail
    std::string note;                 // why the action was changed ("" = it was not)
};

// template_fields - the template fields of the message in.
TemplateFields template_fields(const PlanInput& in);

// tempfail_plan - turn p into a tempfail (nothing delivered) for why.
void tempfail_plan(Plan& p, std::string why);

// make_plan - the plan for one decided message.
Plan make_plan(const PlanInput& in);

} // namespace icapm
