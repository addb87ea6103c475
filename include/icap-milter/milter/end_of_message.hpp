// NAME
//   end_of_message.hpp - parse, scan and decide for one whole message
#pragma once

#include "icap-milter/milter/context.hpp"
#include "icap-milter/mime/scan_item.hpp"
#include "icap-milter/policy/policy.hpp"
#include "icap-milter/stats/alerts.hpp"

#include <functional>

namespace icapm {

// Outcome - the decision plus what the headers and the log need.
struct Outcome {
    Decision decision;
    std::string scanners;   // "icaps://h:p/avscan ISTag=..." for X-Virus-Scanned
    std::string parts_log;  // "1:clean 2:infected(Eicar)" for the summary line
    std::size_t parts = 0;
    // InfectedItem - an infected walker item (templates, the clean action).
    struct InfectedItem {
        std::string part_id;
        std::string filename;
        std::vector<std::string> threats;
    };
    std::vector<InfectedItem> infected_items;
    std::vector<BlockedPart> blocked_items; // BlockedExtensions / BlockedTypes matches
    // Scan token: strip_tokens - remove every incoming token header (it
    // failed, or a new one replaces it); new_token - the folded value of
    // the token header to add ("" = none); token_log - "token=..." for
    // the summary line ("" when the message had no token and got none).
    bool strip_tokens = false;
    std::string new_token;
    std::string token_log;
};

// infected_files - the file names of the infected parts ("part 2.1" when
// unnamed; "(the whole message)" when only a whole-message view was
// infected), at most 16, for templates.
std::vector<std::string> infected_files(const Outcome& out);

// infection_alert - what the infection alert tells of this message: queue
// id, envelope, virus names, infected files, the action taken and the client.
InfectionAlert infection_alert(const MessageContext& msg, const Outcome& out, Action action, const std::string& client);

// skipped_outcome - the outcome of a message msg.bypass let through
// unscanned (X-Virus-Status: Skipped), counted.
Outcome skipped_outcome(const MessageContext& msg);

// walk_limits - the walker limits the config asks for; decoded parts are
// charged to budget (the runtime's SpoolMemoryTotal) when one is given.
WalkLimits walk_limits(const Config& c, std::shared_ptr<MemoryBudget> budget = nullptr);

// process_message - walk the spool, scan every item, apply policy. Never
// throws: failures become the OnFail decision with a reason.
Outcome process_message(const Runtime& rt, MessageContext& msg, const std::function<void()>& progress);

} // namespace icapm
